// Per-thread held-lock stacks (lockdep's task_struct.held_locks[]) in the shared region: one
// stack per thread slot, at most MAX_HELD_LOCKS deep. Only the owning thread (or main context)
// writes its stack; any thread may read it for a dump or a report.
//
// Ordering: push writes the entry, then stores depth + 1, so a reader that loads depth sees whole
// entries below it. Removing from the middle (locks need not be released in LIFO order, as in the
// kernel) shifts the entries above down and then stores depth - 1; a concurrent reader may see
// one entry twice for a moment, which a diagnostic dump tolerates.

import { LockdepMisuseError } from './lockdep-errors.js';
import { HELD_ENTRY, MAX_HELD_LOCKS, type LockdepIndices, type LockMode } from './lockdep-layout.js';

export interface HeldLock {
  readonly classId: number;
  readonly mode: LockMode;
  /** Label id of the acquisition site. */
  readonly site: number;
  /** Lock instance id, or -1 when the acquisition named only a class (validator-only use). */
  readonly instance: number;
}

export class HeldLockStacks {
  readonly #int32: Int32Array;
  readonly #indices: LockdepIndices;
  readonly #threadSlots: number;

  // Each slot's word indices are computed when used (a multiply-add), not tabled per slot up front:
  // every vCPU attaches its own view of the region, and a table per view made each attach a walk
  // over every thread slot (4096 attaches of 4105 slots at 4096 vCPUs).
  constructor(int32: Int32Array, indices: LockdepIndices, threadSlots: number) {
    this.#int32 = int32;
    this.#indices = indices;
    this.#threadSlots = threadSlots;
  }

  /** Index of `slot`'s depth word, or -1 (which Atomics rejects) for a slot the region lacks. */
  #depthIndex(slot: number): number {
    return this.#hasSlot(slot) ? this.#indices.thread(slot, 'depth') : -1;
  }

  /** Index of `slot`'s first held entry, or -1 for a slot the region lacks. */
  #heldIndex(slot: number): number {
    return this.#hasSlot(slot) ? this.#indices.heldEntry(slot, 0, 'classId') : -1;
  }

  #hasSlot(slot: number): boolean {
    return Number.isInteger(slot) && slot >= 0 && slot < this.#threadSlots;
  }

  depth(slot: number): number {
    return Math.min(MAX_HELD_LOCKS, Math.max(0, Atomics.load(this.#int32, this.#depthIndex(slot))));
  }

  entry(slot: number, position: number): HeldLock {
    const base = this.#heldIndex(slot) + position * HELD_ENTRY.words;
    return {
      classId: Atomics.load(this.#int32, base + HELD_ENTRY.classId),
      mode: Atomics.load(this.#int32, base + HELD_ENTRY.mode) as LockMode,
      site: Atomics.load(this.#int32, base + HELD_ENTRY.site),
      instance: Atomics.load(this.#int32, base + HELD_ENTRY.instance),
    };
  }

  /** classId * 8 + mode of one entry, without allocating (the chain cache's key). */
  classAndMode(slot: number, position: number): number {
    const base = this.#heldIndex(slot) + position * HELD_ENTRY.words;
    return Atomics.load(this.#int32, base + HELD_ENTRY.classId) * 8 + Atomics.load(this.#int32, base + HELD_ENTRY.mode);
  }

  /** Bottom (first taken) to top (last taken). */
  entries(slot: number): HeldLock[] {
    const depth = this.depth(slot);
    const entries: HeldLock[] = [];
    for (let position = 0; position < depth; position++) entries.push(this.entry(slot, position));
    return entries;
  }

  push(slot: number, held: HeldLock, describe: () => string): void {
    const depth = this.depth(slot);
    if (depth >= MAX_HELD_LOCKS) throw new LockdepMisuseError('heldLockStackFull', describe());
    this.#write(slot, depth, held);
    Atomics.store(this.#int32, this.#depthIndex(slot), depth + 1);
  }

  /** Topmost position whose entry matches, or -1. */
  findTopmost(slot: number, matches: (held: HeldLock) => boolean): number {
    for (let position = this.depth(slot) - 1; position >= 0; position--) {
      if (matches(this.entry(slot, position))) return position;
    }
    return -1;
  }

  removeAt(slot: number, position: number): void {
    const depth = this.depth(slot);
    for (let above = position + 1; above < depth; above++) this.#write(slot, above - 1, this.entry(slot, above));
    Atomics.store(this.#int32, this.#depthIndex(slot), depth - 1);
  }

  clear(slot: number): void {
    Atomics.store(this.#int32, this.#depthIndex(slot), 0);
  }

  #write(slot: number, position: number, held: HeldLock): void {
    const base = this.#heldIndex(slot) + position * HELD_ENTRY.words;
    Atomics.store(this.#int32, base + HELD_ENTRY.classId, held.classId);
    Atomics.store(this.#int32, base + HELD_ENTRY.mode, held.mode);
    Atomics.store(this.#int32, base + HELD_ENTRY.site, held.site);
    Atomics.store(this.#int32, base + HELD_ENTRY.instance, held.instance);
  }
}
