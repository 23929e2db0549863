// The lock instance table: every instrumented lock's words live in the lockdep region, so that a
// watchdog on any thread can enumerate all locks and read who holds and who waits (wait-for-graph.ts)
// without knowing where the emulator keeps them. An instance is registered once (usually by main,
// at VM creation) and named by its id in structured-cloneable worker payloads.
//
// Registration: reserve an id (Atomics.add nextInstance), write class, name and flags, then store
// the kind last; a reader that sees a non-zero kind sees the rest.

import { LockdepMisuseError } from './lockdep-errors.js';
import { LockInstanceKind, MAX_THREAD_SLOTS, type LockdepIndices } from './lockdep-layout.js';
import type { SharedLabelTable } from './site-labels.js';

export const INSTANCE_FLAG_WRITER_PREFERRING = 1;

export interface LockInstanceDescription {
  readonly id: number;
  readonly kind: LockInstanceKind;
  readonly classId: number;
  readonly name: string;
  readonly flags: number;
}

export class LockInstanceTable {
  readonly capacity: number;
  readonly #int32: Int32Array;
  readonly #indices: LockdepIndices;
  readonly #labels: SharedLabelTable;

  constructor(int32: Int32Array, indices: LockdepIndices, labels: SharedLabelTable, capacity: number) {
    this.#int32 = int32;
    this.#indices = indices;
    this.#labels = labels;
    this.capacity = capacity;
  }

  register(kind: LockInstanceKind, classId: number, name: string, flags = 0): number {
    const id = Atomics.add(this.#int32, this.#indices.header('nextInstance'), 1);
    if (id >= this.capacity) throw new LockdepMisuseError('instanceTableFull', `registering ${name} (${this.capacity} instances)`);
    Atomics.store(this.#int32, this.#indices.instance(id, 'classId'), classId);
    Atomics.store(this.#int32, this.#indices.instance(id, 'nameLabel'), this.#labels.intern(name));
    Atomics.store(this.#int32, this.#indices.instance(id, 'flags'), flags);
    Atomics.store(this.#int32, this.#indices.instance(id, 'kind'), kind);
    return id;
  }

  /** Registered instances, in id order. */
  count(): number {
    return Math.min(this.capacity, Atomics.load(this.#int32, this.#indices.header('nextInstance')));
  }

  describe(id: number): LockInstanceDescription {
    return {
      id,
      kind: this.kind(id),
      classId: Atomics.load(this.#int32, this.#indices.instance(id, 'classId')),
      name: this.#labels.text(Atomics.load(this.#int32, this.#indices.instance(id, 'nameLabel'))),
      flags: Atomics.load(this.#int32, this.#indices.instance(id, 'flags')),
    };
  }

  kind(id: number): LockInstanceKind {
    if (!Number.isInteger(id) || id < 0 || id >= this.capacity) return LockInstanceKind.Unused;
    return Atomics.load(this.#int32, this.#indices.instance(id, 'kind')) as LockInstanceKind;
  }

  /** Checks that `id` is a registered instance of `kind` (a worker attaching by id). */
  expect(id: number, kind: LockInstanceKind): LockInstanceDescription {
    if (this.kind(id) !== kind) throw new LockdepMisuseError('badInstance', `instance ${id} is not a registered lock of kind ${kind}`);
    return this.describe(id);
  }

  stateIndex(id: number): number {
    return this.#indices.instance(id, 'state');
  }

  ownerIndex(id: number): number {
    return this.#indices.instance(id, 'owner');
  }

  waitersIndex(id: number): number {
    return this.#indices.instance(id, 'waiters');
  }

  /** Marks or clears `slot` as a reader of instance `id` (a thread's outermost read only). */
  setReader(id: number, slot: number, reading: boolean): void {
    const word = this.#indices.instance(id, 'readerBits') + (slot >> 5);
    const bit = 1 << (slot & 31);
    if (reading) Atomics.or(this.#int32, word, bit);
    else Atomics.and(this.#int32, word, ~bit);
  }

  /** Thread slots currently marked as readers of instance `id`. */
  readers(id: number): number[] {
    const slots: number[] = [];
    const base = this.#indices.instance(id, 'readerBits');
    for (let word = 0; word < MAX_THREAD_SLOTS / 32; word++) {
      const bits = Atomics.load(this.#int32, base + word);
      for (let bit = 0; bits !== 0 && bit < 32; bit++) if ((bits & (1 << bit)) !== 0) slots.push(word * 32 + bit);
    }
    return slots;
  }
}
