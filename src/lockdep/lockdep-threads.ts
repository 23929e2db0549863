// Thread slots: which execution context is acquiring, and what it is called in a report.
//
// Slot 0 is the main thread; slots 1..workerThreads are workers (a vCPU worker attaches with its
// slot and vCPU index); the slots after them are the main thread's async contexts.
//
// Why async contexts: a worker is one synchronous execution context, but
// the main thread interleaves async chains. A memslot update holds kvm->slots_lock across an await
// (the SRCU grace period), while another chain on main may take other locks meanwhile; one
// held-lock stack for all of main would mix the two chains and invent dependencies. So each chain
// that holds an instrumented lock across an await runs in runInMainContext(name, body): it claims
// its own slot (its own held-lock stack), found again after every await through AsyncLocalStorage.
// Code on main outside any context uses slot 0 and must not hold a lock across an await while
// another chain takes locks.

import { AsyncLocalStorage } from 'node:async_hooks';
import { threadNowMs } from '../host/host-thread.js';
import { isMainThread } from 'node:worker_threads';
import { LockdepMisuseError } from './lockdep-errors.js';
import type { LockdepIndices } from './lockdep-layout.js';
import type { SharedLabelTable } from './site-labels.js';

export const MAIN_THREAD_SLOT = 0;
/** waitingMode value of a thread waiting for an SRCU grace period (the other values are LockMode). */
export const WAITING_FOR_GRACE_PERIOD = 3;

export interface ThreadWait {
  readonly instance: number;
  readonly mode: number;
  readonly sinceMs: number;
}

export interface LockdepThreadLayout {
  readonly threadSlots: number;
  readonly workerThreads: number;
}

export class LockdepThreads {
  readonly threadSlots: number;
  readonly workerThreads: number;
  readonly #int32: Int32Array;
  readonly #float64: Float64Array;
  readonly #indices: LockdepIndices;
  readonly #labels: SharedLabelTable;
  readonly #contexts = new AsyncLocalStorage<number>();
  #defaultSlot = MAIN_THREAD_SLOT;

  constructor(int32: Int32Array, indices: LockdepIndices, labels: SharedLabelTable, layout: LockdepThreadLayout) {
    this.#int32 = int32;
    this.#float64 = new Float64Array(int32.buffer);
    this.#indices = indices;
    this.#labels = labels;
    this.threadSlots = layout.threadSlots;
    this.workerThreads = layout.workerThreads;
  }

  /** The slot of the calling context: a main async context, else this thread's slot. */
  current(): number {
    return isMainThread ? (this.#contexts.getStore() ?? this.#defaultSlot) : this.#defaultSlot;
  }

  /**
   * Makes `slot` this thread's slot (a worker at attach). Tests on one thread also call it to play
   * several threads in turn, which is how lockdep's self-tests model two contexts.
   */
  setCurrent(slot: number, vcpu = -1): void {
    this.#checkSlot(slot);
    this.#defaultSlot = slot;
    this.describe(slot, vcpu, defaultName(slot, vcpu, this.workerThreads));
  }

  /** Sets a slot's vCPU and display name. */
  describe(slot: number, vcpu: number, name: string): void {
    this.#checkSlot(slot);
    Atomics.store(this.#int32, this.#indices.thread(slot, 'vcpu'), vcpu);
    Atomics.store(this.#int32, this.#indices.thread(slot, 'nameLabel'), this.#labels.intern(name));
    Atomics.store(this.#int32, this.#indices.thread(slot, 'claimed'), 1);
  }

  name(slot: number): string {
    const label = Atomics.load(this.#int32, this.#indices.thread(slot, 'nameLabel'));
    return label === 0 ? defaultName(slot, this.vcpu(slot), this.workerThreads) : this.#labels.text(label);
  }

  nameLabel(slot: number): number {
    const label = Atomics.load(this.#int32, this.#indices.thread(slot, 'nameLabel'));
    return label === 0 ? this.#labels.intern(this.name(slot)) : label;
  }

  vcpu(slot: number): number {
    return Atomics.load(this.#int32, this.#indices.thread(slot, 'vcpu'));
  }

  /** Runs `body` as its own context on main, with its own held-lock stack (see the file comment). */
  async runInMainContext<T>(name: string, body: () => Promise<T>, heldCount: (slot: number) => number): Promise<T> {
    if (!isMainThread) throw new LockdepMisuseError('badThreadSlot', 'main contexts exist only on the main thread');
    const slot = this.#claimContextSlot(name);
    try {
      const result = await this.#contexts.run(slot, body);
      if (heldCount(slot) > 0) throw new LockdepMisuseError('contextEndedHoldingLocks', `main/${name} holds ${heldCount(slot)}`);
      return result;
    } finally {
      Atomics.store(this.#int32, this.#indices.thread(slot, 'depth'), 0);
      Atomics.store(this.#int32, this.#indices.thread(slot, 'claimed'), 0);
    }
  }

  setWaiting(slot: number, instance: number, mode: number): void {
    Atomics.store(this.#int32, this.#indices.thread(slot, 'waitingMode'), mode);
    this.#float64[this.#indices.threadWaitingSince(slot)] = threadNowMs();
    // waitingFor last: a reader that sees it also sees the mode and the start time.
    Atomics.store(this.#int32, this.#indices.thread(slot, 'waitingFor'), instance + 1);
  }

  clearWaiting(slot: number): void {
    Atomics.store(this.#int32, this.#indices.thread(slot, 'waitingFor'), 0);
  }

  waiting(slot: number): ThreadWait | undefined {
    const waitingFor = Atomics.load(this.#int32, this.#indices.thread(slot, 'waitingFor'));
    if (waitingFor === 0) return undefined;
    return {
      instance: waitingFor - 1,
      mode: Atomics.load(this.#int32, this.#indices.thread(slot, 'waitingMode')),
      sinceMs: this.#float64[this.#indices.threadWaitingSince(slot)] ?? 0,
    };
  }

  #claimContextSlot(name: string): number {
    for (let slot = 1 + this.workerThreads; slot < this.threadSlots; slot++) {
      if (Atomics.compareExchange(this.#int32, this.#indices.thread(slot, 'claimed'), 0, 1) === 0) {
        Atomics.store(this.#int32, this.#indices.thread(slot, 'depth'), 0);
        this.describe(slot, -1, `main/${name}`);
        return slot;
      }
    }
    throw new LockdepMisuseError('mainContextsExhausted', `starting main/${name}`);
  }

  #checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.threadSlots) {
      throw new LockdepMisuseError('badThreadSlot', `${slot} (slots 0..${this.threadSlots - 1})`);
    }
  }
}

function defaultName(slot: number, vcpu: number, workerThreads: number): string {
  if (slot === MAIN_THREAD_SLOT) return 'main';
  if (slot > workerThreads) return `main/context ${slot}`;
  return vcpu >= 0 ? `vCPU ${vcpu}/worker ${slot}` : `worker ${slot}`;
}
