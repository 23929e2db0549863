// The published memslot table in shared memory: what vCPU workers read to translate guest physical
// addresses (our "nested page table"). It follows KVM's two-copy scheme (kvm_swap_active_memslots,
// O5 and O6 in docs/architecture.md#orderings): two copies of the table, one active, one inactive.
//
// Writer (the main thread, with slotsLock held by the caller), for each memslot change:
//   1. writeInactiveCopy(next)   edit the copy no reader can reach;
//   2. publish()                 flip activeCopy, then bump generation;
//   3. the caller waits for an SRCU grace period (src/host/srcu.ts): after it, no reader is still
//      decoding the old copy;
//   4. writeInactiveCopy(next)   bring the old copy up to date, so the next change starts from it.
// (KVM's DELETE and MOVE first publish an "invalid" slot and wait a second grace period; that is
// the caller's policy and needs nothing more from this file.)
//
// Readers (vCPU workers, always inside an SRCU read section): generation() to see whether their
// decoded table is stale, readActive() to decode the active copy again.
//
// Why readers never see a torn entry: a copy is written only in steps 1 and 4. In step 1 it has been
// unreachable since the grace period that ended the previous change's step 3; in step 4 it has been
// unreachable since this change's step 3. The grace period waits for every read section that could
// have loaded the old activeCopy, so the writer's plain stores to a copy never overlap a reader's
// plain loads of it. The entries themselves therefore use plain reads and writes; ordering comes from
// the seq-cst Atomics on the header (see publish() and readActive()) and on the SRCU counters.

import { defineBufferLayout, defineStruct, int32IndexOf } from '../host/shared-layout.js';
import { PAGE_SIZE, type GuestPhysicalAddress } from './guest-physical-address.js';
import { MEMSLOT_ID_LIMIT, MemslotKind, type MemslotId, type MemslotSet } from './memslot.js';

const WRITER = 'main thread, slotsLock held (MemslotSnapshot writer methods)';
const COPY_WRITER = `${WRITER}; only while no SRCU reader can reach this copy`;

export const MemslotSnapshotHeader = defineStruct('MemslotSnapshotHeader', {
  activeCopy: { type: 'i32', writer: WRITER, description: 'copy readers decode: 0 or 1' },
  generation: { type: 'i32', writer: WRITER, description: 'bumped after each flip; compare for equality (wraps)' },
});

export const MemslotSnapshotCopy = defineStruct('MemslotSnapshotCopy', {
  count: { type: 'i32', writer: COPY_WRITER, description: 'entries in use, sorted by guest physical address' },
  guestPhysicalAddress: { type: 'i32', count: MEMSLOT_ID_LIMIT, writer: COPY_WRITER, description: 'bit pattern; read >>> 0' },
  // Pages, not bytes: a slot covering the whole 32-bit space has 2^32 bytes, which no word holds.
  pageCount: { type: 'i32', count: MEMSLOT_ID_LIMIT, writer: COPY_WRITER },
  hostOffset: { type: 'i32', count: MEMSLOT_ID_LIMIT, writer: COPY_WRITER, description: 'bit pattern; read >>> 0' },
  flags: { type: 'i32', count: MEMSLOT_ID_LIMIT, writer: COPY_WRITER, description: 'bits 0-7 id, 8-15 kind code' },
});

/** The region as a stand-alone layout; the VM embeds it as a raw region of the same size. */
export const MEMSLOT_SNAPSHOT_LAYOUT = defineBufferLayout('MemslotSnapshot', {
  header: { struct: MemslotSnapshotHeader, writer: WRITER },
  copies: { struct: MemslotSnapshotCopy, count: 2, writer: COPY_WRITER },
});

/** Bytes the VM must reserve (64-byte aligned) for one MemslotSnapshot. */
export function memslotSnapshotRegionBytes(): number {
  return MEMSLOT_SNAPSHOT_LAYOUT.byteSize;
}

const KIND_CODE = { ram: 0, apicAccess: 1 } as const satisfies Record<MemslotKind, number>;
const KIND_BY_CODE: readonly MemslotKind[] = [MemslotKind.ram, MemslotKind.apicAccess];
const FLAGS_ID_MASK = 0xff;
const FLAGS_KIND_SHIFT = 8;
const FLAGS_KIND_MASK = 0xff;

/** One decoded memslot: what the interpreter translates guest physical addresses with. */
export interface MemslotTranslation {
  id: MemslotId;
  guestPhysicalAddress: GuestPhysicalAddress;
  size: number;
  hostOffset: number;
  kind: MemslotKind;
}

export type MemslotCopyIndex = 0 | 1;

const MISUSE_MESSAGES = {
  placement: 'the memslot snapshot region must lie inside a SharedArrayBuffer-backed Int32Array, on a 64-byte boundary',
  publishWithoutWrite: 'publish() with no writeInactiveCopy() since the last publish() would republish the stale copy',
  corruptCopy: 'a memslot snapshot copy holds an impossible entry count or kind code (emulator bug)',
} as const;

/** Host misuse of a MemslotSnapshot (or a corrupted region). */
export class MemslotSnapshotMisuseError extends Error {
  readonly reason: keyof typeof MISUSE_MESSAGES;
  readonly detail: number;

  constructor(reason: keyof typeof MISUSE_MESSAGES, detail: number) {
    super(`${MISUSE_MESSAGES[reason]} (${detail})`);
    this.name = 'MemslotSnapshotMisuseError';
    this.reason = reason;
    this.detail = detail;
  }
}

interface CopyWords {
  readonly count: number;
  readonly guestPhysicalAddress: number;
  readonly pageCount: number;
  readonly hostOffset: number;
  readonly flags: number;
}

export class MemslotSnapshot {
  readonly #int32: Int32Array;
  readonly #activeCopyWord: number;
  readonly #generationWord: number;
  readonly #copies: readonly [CopyWords, CopyWords];
  /** Writer-local: the inactive copy was written since the last publish(). */
  #inactiveCopyWritten = false;

  /**
   * `int32` views the buffer holding the region; `baseIndex` is the region's first word (the VM
   * gets it from regionInt32Index). A zero-filled region is valid: both copies empty, copy 0
   * active, generation 0.
   */
  constructor(int32: Int32Array, baseIndex: number) {
    const regionWords = memslotSnapshotRegionBytes() / 4;
    const placedOnLine = (int32.byteOffset + baseIndex * 4) % 64 === 0;
    const fits = Number.isInteger(baseIndex) && baseIndex >= 0 && baseIndex + regionWords <= int32.length;
    if (!(int32.buffer instanceof SharedArrayBuffer) || !fits || !placedOnLine) {
      throw new MemslotSnapshotMisuseError('placement', baseIndex);
    }
    const word = (field: 'activeCopy' | 'generation'): number =>
      baseIndex + int32IndexOf(MEMSLOT_SNAPSHOT_LAYOUT, 'header', MemslotSnapshotHeader, 0, field);
    const copyWords = (copy: MemslotCopyIndex): CopyWords => {
      const at = (field: keyof CopyWords): number =>
        baseIndex + int32IndexOf(MEMSLOT_SNAPSHOT_LAYOUT, 'copies', MemslotSnapshotCopy, copy, field);
      return {
        count: at('count'),
        guestPhysicalAddress: at('guestPhysicalAddress'),
        pageCount: at('pageCount'),
        hostOffset: at('hostOffset'),
        flags: at('flags'),
      };
    };
    this.#int32 = int32;
    this.#activeCopyWord = word('activeCopy');
    this.#generationWord = word('generation');
    this.#copies = [copyWords(0), copyWords(1)];
  }

  // ---- writer: main thread, slotsLock held ----

  /**
   * Encodes `set` into the copy readers cannot reach. The caller guarantees that: either nothing
   * was published since the last grace period ended, or this is step 4 after one.
   */
  writeInactiveCopy(set: MemslotSet): void {
    const words = this.#copies[this.#inactiveCopy()];
    const int32 = this.#int32;
    set.slots.forEach((slot, entry) => {
      int32[words.guestPhysicalAddress + entry] = slot.guestPhysicalAddress | 0;
      int32[words.pageCount + entry] = slot.size / PAGE_SIZE;
      int32[words.hostOffset + entry] = slot.hostOffset | 0;
      int32[words.flags + entry] = slot.id | (KIND_CODE[slot.kind] << FLAGS_KIND_SHIFT);
    });
    int32[words.count] = set.slots.length;
    this.#inactiveCopyWritten = true;
  }

  /**
   * Makes the inactive copy the active one and returns the new generation.
   *
   * Order: store activeCopy, then store generation (both seq-cst). Pairs with readActive(), which
   * loads generation, then activeCopy: a reader that sees the new generation also sees the new
   * copy, so a decoded table is never labelled newer than its contents (the reverse, old label on
   * new contents, only costs one extra decode later). The seq-cst store of activeCopy also
   * publishes the plain stores writeInactiveCopy made to the copy.
   */
  publish(): number {
    if (!this.#inactiveCopyWritten) throw new MemslotSnapshotMisuseError('publishWithoutWrite', this.generation());
    Atomics.store(this.#int32, this.#activeCopyWord, this.#inactiveCopy());
    const generation = (Atomics.load(this.#int32, this.#generationWord) + 1) | 0;
    Atomics.store(this.#int32, this.#generationWord, generation);
    this.#inactiveCopyWritten = false;
    return generation;
  }

  // ---- readers: vCPU workers inside an SRCU read section (any thread for diagnostics) ----

  generation(): number {
    return Atomics.load(this.#int32, this.#generationWord);
  }

  activeCopyIndex(): MemslotCopyIndex {
    return Atomics.load(this.#int32, this.#activeCopyWord) === 0 ? 0 : 1;
  }

  /**
   * Decodes the active copy into `into` (resized to the slot count, its objects reused) and returns
   * the generation that labels it. Allocates nothing when `into` already has the right length.
   * Loads generation before activeCopy: see publish() for the pairing.
   */
  readActive(into: MemslotTranslation[]): number {
    const generation = this.generation();
    this.readCopy(this.activeCopyIndex(), into);
    return generation;
  }

  /**
   * Decodes one copy. Only meaningful for the active copy, or for the inactive one when no writer
   * can be editing it (tests, diagnostics with slotsLock held).
   */
  readCopy(copy: MemslotCopyIndex, into: MemslotTranslation[]): void {
    const words = this.#copies[copy];
    const int32 = this.#int32;
    const count = int32[words.count]!;
    if (count < 0 || count > MEMSLOT_ID_LIMIT) throw new MemslotSnapshotMisuseError('corruptCopy', count);
    if (into.length > count) into.length = count;
    for (let entry = 0; entry < count; entry++) {
      const flags = int32[words.flags + entry]!;
      const kind = KIND_BY_CODE[(flags >>> FLAGS_KIND_SHIFT) & FLAGS_KIND_MASK];
      if (kind === undefined) throw new MemslotSnapshotMisuseError('corruptCopy', flags);
      const guestPhysicalAddress = (int32[words.guestPhysicalAddress + entry]! >>> 0) as GuestPhysicalAddress;
      const size = int32[words.pageCount + entry]! * PAGE_SIZE;
      const hostOffset = int32[words.hostOffset + entry]! >>> 0;
      // Below 32 by construction (only MemslotSet entries are encoded): no checked constructor here.
      const id = (flags & FLAGS_ID_MASK) as MemslotId;
      const translation = into[entry];
      if (translation === undefined) {
        into.push({ id, guestPhysicalAddress, size, hostOffset, kind });
      } else {
        translation.id = id;
        translation.guestPhysicalAddress = guestPhysicalAddress;
        translation.size = size;
        translation.hostOffset = hostOffset;
        translation.kind = kind;
      }
    }
  }

  #inactiveCopy(): MemslotCopyIndex {
    return this.activeCopyIndex() === 0 ? 1 : 0;
  }
}

/** The translation whose range holds `address` (binary search; `translations` sorted by GPA). */
export function findTranslation(
  translations: readonly MemslotTranslation[],
  address: GuestPhysicalAddress,
): MemslotTranslation | undefined {
  let low = 0;
  let high = translations.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const translation = translations[middle]!;
    if (address < translation.guestPhysicalAddress) high = middle - 1;
    else if (address - translation.guestPhysicalAddress >= translation.size) low = middle + 1;
    else return translation;
  }
  return undefined;
}
