// Site labels ("kvm_set_memslot: synchronize_srcu", "vCPU 2/worker 3") interned to small ids in
// the shared region, so an Int32 word can name them and every thread can print them.
//
// Why shared, not per process or per thread: a report is written by whichever thread closes the
// cycle, and it prints where every earlier link was first seen, by other threads. A per-thread
// table would give the same text different ids in different threads; the shared table gives one id
// per text for the whole VM.
//
// Lock-free, append-only (labels are never removed, like lockdep's classes):
//   1. reserve an entry id (Atomics.add labelCount) and a byte span (Atomics.add labelBytesUsed);
//   2. write the bytes, then the entry's offset and length (Atomics.store);
//   3. publish: compareExchange labelHash[slot] 0 -> id + 1, probing linearly from the text's hash.
// A reader that loads a hash slot (seq-cst) and sees id + 1 therefore also sees the entry and its
// bytes (the stores of step 2 come before the publishing compareExchange). Two threads interning
// the same new text race on the same slot: the loser compares the winner's bytes, finds them
// equal, and uses the winner's id; its own reservation is wasted (rare, bounded by the table).
// Each thread also caches text -> id, so a hot site is interned once per thread.

import type { LockdepIndices } from './lockdep-layout.js';

/** Id 0 always exists: the text used when a label is missing or the table is full. */
export const UNKNOWN_LABEL = 0;
const UNKNOWN_TEXT = '?';
const MAX_LABEL_BYTES = 240;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SharedLabelTable {
  readonly #int32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #indices: LockdepIndices;
  readonly #capacity: number;
  readonly #hashSlots: number;
  readonly #cache = new Map<string, number>();
  readonly #texts = new Map<number, string>();

  constructor(int32: Int32Array, indices: LockdepIndices, capacity: number) {
    this.#int32 = int32;
    this.#indices = indices;
    this.#capacity = capacity;
    this.#hashSlots = capacity * 2;
    const start = indices.bytes('labelBytes');
    this.#bytes = new Uint8Array(int32.buffer, start, indices.layout.regionBytes.labelBytes);
  }

  /** Main, at creation: makes id 0 the unknown label. */
  initialize(): void {
    const id = this.intern(UNKNOWN_TEXT);
    if (id !== UNKNOWN_LABEL) throw new Error(`the label table was not empty at creation (first id ${id})`);
  }

  intern(text: string): number {
    const cached = this.#cache.get(text);
    if (cached !== undefined) return cached;
    const encoded = truncate(encoder.encode(text));
    const id = this.#publish(encoded, hashOf(encoded));
    if (id !== UNKNOWN_LABEL || text === UNKNOWN_TEXT) this.#cache.set(text, id);
    return id;
  }

  text(id: number): string {
    const cached = this.#texts.get(id);
    if (cached !== undefined) return cached;
    if (id < 0 || id >= Math.min(this.#capacity, Atomics.load(this.#int32, this.#indices.header('labelCount')))) return UNKNOWN_TEXT;
    const length = Atomics.load(this.#int32, this.#indices.labelEntry(id, 'length'));
    if (length <= 0) return UNKNOWN_TEXT; // reserved but not yet written
    const offset = Atomics.load(this.#int32, this.#indices.labelEntry(id, 'offset'));
    const text = decoder.decode(this.#bytes.slice(offset, offset + length));
    this.#texts.set(id, text);
    return text;
  }

  #publish(encoded: Uint8Array, hash: number): number {
    let reserved: number | undefined;
    for (let probe = 0; probe < this.#hashSlots; probe++) {
      const slotIndex = this.#indices.labelHash((hash + probe) % this.#hashSlots);
      let published = Atomics.load(this.#int32, slotIndex);
      if (published === 0) {
        reserved ??= this.#reserve(encoded);
        if (reserved === undefined) return UNKNOWN_LABEL;
        published = Atomics.compareExchange(this.#int32, slotIndex, 0, reserved + 1);
        if (published === 0) return reserved;
      }
      if (this.#equals(published - 1, encoded)) return published - 1;
    }
    return UNKNOWN_LABEL;
  }

  /** Reserves an entry and its bytes and writes them; undefined when the table is full. */
  #reserve(encoded: Uint8Array): number | undefined {
    const id = Atomics.add(this.#int32, this.#indices.header('labelCount'), 1);
    if (id >= this.#capacity) return undefined;
    const offset = Atomics.add(this.#int32, this.#indices.header('labelBytesUsed'), encoded.length);
    if (offset + encoded.length > this.#bytes.length) return undefined;
    this.#bytes.set(encoded, offset);
    Atomics.store(this.#int32, this.#indices.labelEntry(id, 'offset'), offset);
    Atomics.store(this.#int32, this.#indices.labelEntry(id, 'length'), encoded.length);
    return id;
  }

  #equals(id: number, encoded: Uint8Array): boolean {
    const length = Atomics.load(this.#int32, this.#indices.labelEntry(id, 'length'));
    if (length !== encoded.length) return false;
    const offset = Atomics.load(this.#int32, this.#indices.labelEntry(id, 'offset'));
    for (let index = 0; index < length; index++) if (this.#bytes[offset + index] !== encoded[index]) return false;
    return true;
  }
}

function truncate(encoded: Uint8Array): Uint8Array {
  if (encoded.length === 0) return encoder.encode(UNKNOWN_TEXT);
  if (encoded.length <= MAX_LABEL_BYTES) return encoded;
  let end = MAX_LABEL_BYTES;
  while (end > 0 && ((encoded[end] ?? 0) & 0xc0) === 0x80) end--; // do not cut a UTF-8 sequence
  return encoded.subarray(0, end);
}

/** FNV-1a over the bytes, non-negative. */
function hashOf(encoded: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of encoded) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}
