// The physical APIC ID table (AMD APM vol. 2, 15.29; svm.h AVIC_PHYSICAL_ID_ENTRY_*): one 64-bit entry per guest physical APIC ID,
// stored as two Int32 words (low word first) so that the hot fields can be read with plain Int32
// atomics instead of BigInt64 ones, which allocate in Node 20 (architecture.md "Speed").
//
//   low word  (bits 31:0):  host physical APIC ID in 11:0, backing page pointer bits 31:12
//   high word (bits 63:32): backing page pointer bits 51:32 in 19:0, IsRunning bit 30 (62),
//                           Valid bit 31 (63)
//
// Ordering. Writers store the low word first, then the high word; readers (IPI senders) load the
// high word first, then the low word. A reader that sees a high word therefore sees a low word at
// least as new as the one stored before it: Valid implies the pointer is complete (creation), and
// IsRunning = 1 implies the host ID of that load (vcpu load). Both stores and loads are seq-cst.
// The sender's "IRR Atomics.or, then high-word Atomics.load" pairs with the owner's "clear
// IsRunning (Atomics.store), then re-read IRR" before it blocks (O1, O7 in docs/architecture.md#orderings).
//
// Writers: the main thread writes a whole entry once, at vCPU creation, before the vCPU can be a
// target (avic_init_backing_page); from then on the owning vCPU's worker writes IsRunning and the
// host ID (avic_vcpu_put's ownership comment). One exception models the 2016 RFC (docs/lock-scenarios.md): its vCPU creation
// re-pointed every existing entry at a re-initialised page while the owners ran. That writer and
// the owner both change the low word with compare-exchange loops, so neither undoes the other.
//
// Beside the table, one Float64 per entry that the hardware does not have: when the owner last
// cleared a set IsRunning bit, on the VM clock, written by the owner only with the AMD erratum #1235
// model on (erratum-1235.ts) and read only by that model's senders.

import { HOST_PHYSICAL_APIC_ID_MAX, X2AVIC_MAX_PHYSICAL_ID, type HostPhysicalApicId } from '../apic/apic-id.js';

/** svm.h AVIC_PHYSICAL_ID_ENTRY_HOST_PHYSICAL_ID_MASK, GENMASK_ULL(11,0): in the low word. */
export const AVIC_PHYSICAL_ID_ENTRY_HOST_PHYSICAL_ID_MASK = 0xfff;
/** svm.h AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK (bits 51:12), low-word part: bits 31:12. */
export const AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_LOW = 0xfffff000 | 0;
/** svm.h AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK, high-word part: bits 51:32 = high bits 19:0. */
export const AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_HIGH = 0x000fffff;
/** svm.h AVIC_PHYSICAL_ID_ENTRY_IS_RUNNING_MASK (bit 62) = high word bit 30. */
export const AVIC_PHYSICAL_ID_ENTRY_IS_RUNNING_MASK_HIGH = 1 << 30;
/** svm.h AVIC_PHYSICAL_ID_ENTRY_VALID_MASK (bit 63) = high word bit 31. */
export const AVIC_PHYSICAL_ID_ENTRY_VALID_MASK_HIGH = 1 << 31;

/** Bytes per entry: one 64-bit entry per guest physical APIC ID. */
export const PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES = 8;
/** Int32 words per entry. */
export const PHYSICAL_APIC_ID_TABLE_ENTRY_WORDS = PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES / 4;
/**
 * Entries in one page of the table, the smallest table KVM allocates (order 0): enough for xAVIC
 * and for x2AVIC without the extension (indices 0..0x1FF, svm.h X2AVIC_MAX_PHYSICAL_ID). Larger
 * tables (the 4K extension) are whole powers of two of pages (x2avic.ts physicalApicIdTableBytes).
 */
export const PHYSICAL_APIC_ID_TABLE_ENTRIES = X2AVIC_MAX_PHYSICAL_ID + 1;

const TWO_POW_32 = 0x1_0000_0000;
const PAGE_BYTES = 4096;
/** The pointer field is 40 bits wide at bit 12: pointers are below 2^52. */
const BACKING_PAGE_POINTER_LIMIT = 2 ** 52;

export interface PhysicalApicIdTableEntry {
  readonly hostPhysicalApicId: HostPhysicalApicId;
  /** Page-aligned "host physical" address of the backing page, < 2^52. */
  readonly backingPagePointer: number;
  readonly isRunning: boolean;
  readonly isValid: boolean;
}

// Field extractors over the two words: the allocation-free hot path.

export function physicalEntryIsValid(high: number): boolean {
  return (high & AVIC_PHYSICAL_ID_ENTRY_VALID_MASK_HIGH) !== 0;
}

export function physicalEntryIsRunning(high: number): boolean {
  return (high & AVIC_PHYSICAL_ID_ENTRY_IS_RUNNING_MASK_HIGH) !== 0;
}

export function physicalEntryHostPhysicalApicId(low: number): HostPhysicalApicId {
  return (low & AVIC_PHYSICAL_ID_ENTRY_HOST_PHYSICAL_ID_MASK) as HostPhysicalApicId;
}

/** Bits 51:12 of the entry as a number (exact: < 2^52). */
export function physicalEntryBackingPagePointer(low: number, high: number): number {
  return (high & AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_HIGH) * TWO_POW_32 + ((low & AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_LOW) >>> 0);
}

function checkBackingPagePointer(pointer: number): void {
  if (!Number.isInteger(pointer) || pointer < 0 || pointer >= BACKING_PAGE_POINTER_LIMIT || pointer % PAGE_BYTES !== 0) {
    throw new RangeError(`not a page-aligned backing page pointer below 2^52: ${pointer}`);
  }
}

/** Encodes an entry as [low, high], each as the Int32 value the table holds. */
export function encodePhysicalApicIdTableEntry(entry: PhysicalApicIdTableEntry): [low: number, high: number] {
  checkBackingPagePointer(entry.backingPagePointer);
  if (entry.hostPhysicalApicId < 0 || entry.hostPhysicalApicId > HOST_PHYSICAL_APIC_ID_MAX) {
    throw new RangeError(`host physical APIC ID out of range: ${entry.hostPhysicalApicId}`);
  }
  const pointerLow = entry.backingPagePointer % TWO_POW_32;
  const pointerHigh = Math.floor(entry.backingPagePointer / TWO_POW_32);
  const low = (pointerLow & AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_LOW) | entry.hostPhysicalApicId;
  const high =
    (pointerHigh & AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_HIGH) |
    (entry.isRunning ? AVIC_PHYSICAL_ID_ENTRY_IS_RUNNING_MASK_HIGH : 0) |
    (entry.isValid ? AVIC_PHYSICAL_ID_ENTRY_VALID_MASK_HIGH : 0);
  return [low | 0, high | 0];
}

/** Decodes the two words (signed or unsigned). Reserved bits 61:52 are ignored. */
export function decodePhysicalApicIdTableEntry(low: number, high: number): PhysicalApicIdTableEntry {
  return {
    hostPhysicalApicId: physicalEntryHostPhysicalApicId(low),
    backingPagePointer: physicalEntryBackingPagePointer(low, high),
    isRunning: physicalEntryIsRunning(high),
    isValid: physicalEntryIsValid(high),
  };
}

/** The 64-bit entry as a BigInt, for tests that check bit positions against svm.h. */
export function physicalApicIdTableEntryToBigInt(low: number, high: number): bigint {
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
}

/** Splits a 64-bit entry into [low, high] Int32 words (tests only). */
export function physicalApicIdTableEntryFromBigInt(value: bigint): [low: number, high: number] {
  const unsigned = BigInt.asUintN(64, value);
  return [Number(unsigned & 0xffff_ffffn) | 0, Number(unsigned >> 32n) | 0];
}

/** The table over `entryCount` entries of `words` starting at word `tableBase`. */
export class PhysicalApicIdTable {
  readonly words: Int32Array;
  readonly tableBase: number;
  readonly entryCount: number;
  /** Per entry: the VM-clock ns of the owner's last IsRunning 1 -> 0 clear, 0 = none (erratum #1235 model only). */
  readonly #clearedAtNs: Float64Array;

  /**
   * `clearedAtNs`: entryCount Float64s, shared like `words` (vm-layout.ts places them beside the
   * table); by default a private array, enough for a table that lives in one thread.
   */
  constructor(
    words: Int32Array,
    tableBase: number,
    entryCount: number = PHYSICAL_APIC_ID_TABLE_ENTRIES,
    clearedAtNs: Float64Array = new Float64Array(entryCount),
  ) {
    if (tableBase < 0 || tableBase + entryCount * PHYSICAL_APIC_ID_TABLE_ENTRY_WORDS > words.length) {
      throw new RangeError(`physical APIC ID table [${tableBase}, +${entryCount} entries) is outside its ${words.length}-word array`);
    }
    if (clearedAtNs.length < entryCount) throw new RangeError(`${clearedAtNs.length} clear stamps for ${entryCount} entries`);
    this.words = words;
    this.tableBase = tableBase;
    this.entryCount = entryCount;
    this.#clearedAtNs = clearedAtNs;
  }

  /** Readers load this first (see the ordering note at the top). */
  loadHighWord(index: number): number {
    return Atomics.load(this.words, this.tableBase + index * 2 + 1);
  }

  /** Readers load this after the high word. */
  loadLowWord(index: number): number {
    return Atomics.load(this.words, this.tableBase + index * 2);
  }

  isValid(index: number): boolean {
    return physicalEntryIsValid(this.loadHighWord(index));
  }

  isRunning(index: number): boolean {
    return physicalEntryIsRunning(this.loadHighWord(index));
  }

  hostPhysicalApicId(index: number): HostPhysicalApicId {
    return physicalEntryHostPhysicalApicId(this.loadLowWord(index));
  }

  backingPagePointer(index: number): number {
    const high = this.loadHighWord(index);
    return physicalEntryBackingPagePointer(this.loadLowWord(index), high);
  }

  /** Slow path: the whole entry as an object. */
  load(index: number): PhysicalApicIdTableEntry {
    const high = this.loadHighWord(index);
    return decodePhysicalApicIdTableEntry(this.loadLowWord(index), high);
  }

  /**
   * Main thread, at vCPU creation (avic_init_backing_page): low word, then high word. The entry must not be
   * Valid yet, so a reader sees either the old invalid high word or the new low word under it.
   */
  storeEntry(index: number, entry: PhysicalApicIdTableEntry): void {
    this.checkIndex(index);
    const [low, high] = encodePhysicalApicIdTableEntry(entry);
    Atomics.store(this.words, this.tableBase + index * 2, low);
    Atomics.store(this.words, this.tableBase + index * 2 + 1, high);
  }

  /**
   * Owning vCPU only (avic_vcpu_load / avic_vcpu_put / avic_vcpu_blocking): writes the host ID into the low word, then
   * IsRunning into the high word, keeping Valid and the pointer. A put keeps the old host ID
   * (__avic_vcpu_put), so callers pass the current one. IsRunning changes with one atomic and/or
   * (seq-cst, so it still orders against the caller's IRR re-check). No allocation. A vCPU whose ID
   * is past the table (it set PHYSICAL_ID_TOO_BIG and has no entry) writes nothing, as
   * __avic_vcpu_load and __avic_vcpu_put check the ID against the table's size first.
   *
   * `clearedAtNs` > 0 (the erratum #1235 model): a clear of a set bit first stamps that VM-clock time
   * for the entry. The stamp is a plain store before the clear's Atomics.and, so a sender whose
   * Atomics.load sees the clear sees the stamp (or a later one). A clear of a bit that was not set
   * is no change the hardware could miss, and leaves the stamp alone.
   */
  setIsRunning(index: number, isRunning: boolean, hostId: HostPhysicalApicId, clearedAtNs = 0): void {
    if (index >= this.entryCount) return;
    const lowIndex = this.tableBase + index * 2;
    // Compare-exchange: the rfc-v2 re-pointing (replaceBackingPagePointer) may change the same word.
    for (;;) {
      const low = Atomics.load(this.words, lowIndex);
      const next = (low & ~AVIC_PHYSICAL_ID_ENTRY_HOST_PHYSICAL_ID_MASK) | (hostId & AVIC_PHYSICAL_ID_ENTRY_HOST_PHYSICAL_ID_MASK);
      if (next === low || Atomics.compareExchange(this.words, lowIndex, low, next) === low) break;
    }
    if (isRunning) {
      Atomics.or(this.words, lowIndex + 1, AVIC_PHYSICAL_ID_ENTRY_IS_RUNNING_MASK_HIGH);
      return;
    }
    // The owner is the bit's only writer while the vCPU exists, so this read is exact.
    if (clearedAtNs > 0 && physicalEntryIsRunning(Atomics.load(this.words, lowIndex + 1))) this.#clearedAtNs[index] = clearedAtNs;
    Atomics.and(this.words, lowIndex + 1, ~AVIC_PHYSICAL_ID_ENTRY_IS_RUNNING_MASK_HIGH);
  }

  /** When the owner last cleared IsRunning (VM-clock ns), 0 if never stamped: the erratum #1235 model's senders. */
  isRunningClearedAtNs(index: number): number {
    return this.#clearedAtNs[index] ?? 0;
  }

  /**
   * Main thread, rfc-v2 only (backing-page-policy.ts): point a live entry at another backing page, keeping Valid,
   * IsRunning and the host ID as the owner last wrote them. Only pointers that differ in address
   * bits 31:12 can be swapped this way (one word, one compare-exchange, no torn pointer); the caller
   * places both candidate pages under the same high word.
   */
  replaceBackingPagePointer(index: number, pointer: number): void {
    this.checkIndex(index);
    const lowIndex = this.tableBase + index * 2;
    const [newLow, newHigh] = encodePhysicalApicIdTableEntry({
      hostPhysicalApicId: 0 as HostPhysicalApicId,
      backingPagePointer: pointer,
      isRunning: false,
      isValid: false,
    });
    if (
      (Atomics.load(this.words, lowIndex + 1) & AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_HIGH) !==
      (newHigh & AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_HIGH)
    ) {
      throw new RangeError(`backing page pointer 0x${pointer.toString(16)} differs from entry ${index}'s in bits 51:32`);
    }
    for (;;) {
      const low = Atomics.load(this.words, lowIndex);
      const next = (low & AVIC_PHYSICAL_ID_ENTRY_HOST_PHYSICAL_ID_MASK) | (newLow & AVIC_PHYSICAL_ID_ENTRY_BACKING_PAGE_MASK_LOW);
      if (Atomics.compareExchange(this.words, lowIndex, low, next) === low) return;
    }
  }

  /**
   * Main thread, at vCPU teardown after the owner has stopped: clears Valid and IsRunning in one
   * atomic step. The pointer and host ID are left in place so that a sender which loaded the
   * high word just before still reads a consistent low word after it [I].
   */
  invalidate(index: number): void {
    this.checkIndex(index);
    Atomics.and(
      this.words,
      this.tableBase + index * 2 + 1,
      ~(AVIC_PHYSICAL_ID_ENTRY_VALID_MASK_HIGH | AVIC_PHYSICAL_ID_ENTRY_IS_RUNNING_MASK_HIGH),
    );
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.entryCount) {
      throw new RangeError(`physical APIC ID table index out of range: ${index}`);
    }
  }
}
