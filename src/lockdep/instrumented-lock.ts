// Instrumented locks on shared-memory words, usable from workers (blocking, bounded) and from the
// main thread (asynchronous, never blocking the event loop). Each lock knows its class, keeps its
// holder in shared memory (so a watchdog can print who holds what, and who waits for what), and
// calls the validator around each acquisition when it is enabled: checkAcquire before it may block
// (a possible deadlock is reported before anything hangs), noteAcquired once taken, release before
// the word is freed. With the validator disabled the only cost is one boolean check.
//
// This file: the parts every lock shares (LockHandle, ReaderDepths) and the Mutex.
//   Mutex state word: 0 = free, else the holder's thread slot + 1 (one compareExchange takes the
//   lock and records the holder). Not recursive: re-locking from the holder is an AA (lockdep
//   reports it; the wait then times out naming the holder itself).

import { hostThread, mainHostThread, SchedulingPoint, threadNowMs } from '../host/host-thread.js';
import { VirtualTimeCost } from '../host/virtual-time-costs.js';
import { LockKind, type LockClass } from './lock-class.js';
import { LockWaitAborted, LockWaitTimeout, LockdepMisuseError } from './lockdep-errors.js';
import { LockInstanceKind, LockMode } from './lockdep-layout.js';
import type { Lockdep, LockClassReference } from './lockdep.js';
import { assertMayBlock, checkTimeout, waitAsync, waitBlocking, wakeWaiters, type AcquireAttempt, type LockWord } from './lock-wait.js';

const INSTANCE_KIND_OF_CLASS: Readonly<Record<LockKind, LockInstanceKind>> = {
  mutex: LockInstanceKind.Mutex,
  rwSemaphore: LockInstanceKind.RwSemaphore,
  srcu: LockInstanceKind.Srcu,
};

/** What a wait was for, as LockWaitTimeout prints it. */
export interface WaitDescription {
  readonly slot: number;
  /** Stored in the thread's waitingMode word (LockMode, or WAITING_FOR_GRACE_PERIOD). */
  readonly mode: number;
  readonly waitKind: string;
  readonly timeoutMs: number;
  /** Thread slots holding the lock, read when the wait gives up. */
  readonly holders: () => number[];
}

/** One registered lock instance: its class, words, and the waiting/timeout logic all locks share. */
export class LockHandle {
  readonly lockdep: Lockdep;
  readonly lockClass: LockClass;
  readonly instance: number;
  readonly name: string;
  readonly word: LockWord;

  /** Registers a new instance of `lockClass` (any thread; usually main at VM creation). */
  static register(lockdep: Lockdep, lockClass: LockClassReference, kind: LockKind, name?: string, flags = 0): number {
    const resolved = lockdep.resolve(lockClass);
    if (resolved.kind !== kind) throw new LockdepMisuseError('badInstance', `${resolved.name} is a ${resolved.kind}, not a ${kind}`);
    return lockdep.instances.register(INSTANCE_KIND_OF_CLASS[kind], resolved.id, name ?? resolved.name, flags);
  }

  constructor(lockdep: Lockdep, instance: number, kind: LockKind) {
    const description = lockdep.instances.expect(instance, INSTANCE_KIND_OF_CLASS[kind]);
    this.lockdep = lockdep;
    this.lockClass = lockdep.classes.byId(description.classId);
    this.instance = instance;
    this.name = description.name;
    const int32 = new Int32Array(lockdep.shared.buffer);
    this.word = { int32, stateIndex: lockdep.instances.stateIndex(instance), waitersIndex: lockdep.instances.waitersIndex(instance) };
  }

  get flags(): number {
    return this.lockdep.instances.describe(this.instance).flags;
  }

  /** "slots (kvm->slots_lock)" or "kvm->slots_lock" when the instance is named after its class. */
  get displayName(): string {
    return this.name === this.lockClass.name ? this.name : `${this.name} (${this.lockClass.name})`;
  }

  /** Workers: waits until `attempt` succeeds; throws LockWaitTimeout at the deadline. */
  waitBlocking(attempt: AcquireAttempt, wait: WaitDescription): void {
    assertMayBlock(`${wait.waitKind} ${this.displayName}`);
    checkTimeout(wait.timeoutMs);
    const startedAt = hostThread().nowMs();
    this.lockdep.threads.setWaiting(wait.slot, this.instance, wait.mode);
    try {
      const outcome = waitBlocking(this.word, attempt, startedAt + wait.timeoutMs, this.#aborted);
      if (outcome !== 'acquired') throw this.#failure(outcome, wait, startedAt);
    } finally {
      this.lockdep.threads.clearWaiting(wait.slot);
    }
  }

  /** Main: the same wait with waitAsync; never blocks the event loop. */
  async waitAsync(attempt: AcquireAttempt, wait: WaitDescription): Promise<void> {
    checkTimeout(wait.timeoutMs);
    const startedAt = mainHostThread().nowMs();
    this.lockdep.threads.setWaiting(wait.slot, this.instance, wait.mode);
    try {
      const outcome = await waitAsync(this.word, attempt, startedAt + wait.timeoutMs, this.#aborted);
      if (outcome !== 'acquired') throw this.#failure(outcome, wait, startedAt);
    } finally {
      this.lockdep.threads.clearWaiting(wait.slot);
    }
  }

  readonly #aborted = (): boolean => this.lockdep.waitsAborted;

  #failure(outcome: 'timedOut' | 'aborted', wait: WaitDescription, startedAt: number): Error {
    return outcome === 'aborted' ? this.aborted(wait) : this.timeout(wait, startedAt);
  }

  aborted(wait: WaitDescription): LockWaitAborted {
    return new LockWaitAborted(this.displayName, wait.waitKind, this.lockdep.threadName(wait.slot));
  }

  timeout(wait: WaitDescription, startedAt: number, cause?: unknown): LockWaitTimeout {
    return new LockWaitTimeout({
      lockName: this.displayName,
      waitKind: wait.waitKind,
      waiterName: this.lockdep.threadName(wait.slot),
      holderNames: wait.holders().map((slot) => this.lockdep.threadName(slot)),
      waitedMs: threadNowMs() - startedAt,
      cause,
    });
  }

  wake(): void {
    wakeWaiters(this.word);
  }

  releaseNotHeld(slot: number, detail: string): LockdepMisuseError {
    return new LockdepMisuseError('releaseNotHeld', `${this.lockdep.threadName(slot)} is trying to release ${this.displayName}, ${detail}`);
  }
}

/**
 * Per-thread read nesting of shared locks, so a thread's reader bit (the watchdog's "who reads")
 * is set by its outermost read and cleared by the matching release. Kept by the thread itself:
 * only the owning thread (or main context) changes its own count.
 */
export class ReaderDepths {
  readonly #handle: LockHandle;
  readonly #depths = new Map<number, number>();

  constructor(handle: LockHandle) {
    this.#handle = handle;
  }

  depth(slot: number): number {
    return this.#depths.get(slot) ?? 0;
  }

  enter(slot: number): void {
    const depth = this.depth(slot);
    this.#depths.set(slot, depth + 1);
    if (depth === 0) this.#handle.lockdep.instances.setReader(this.#handle.instance, slot, true);
  }

  leave(slot: number): void {
    const depth = this.depth(slot);
    if (depth <= 1) {
      this.#depths.delete(slot);
      this.#handle.lockdep.instances.setReader(this.#handle.instance, slot, false);
    } else {
      this.#depths.set(slot, depth - 1);
    }
  }
}

/** A main-thread caller of InstrumentedMutex.lockAsync waiting for its turn to contend. */
interface MainTurn {
  readonly grant: () => void;
}

export class InstrumentedMutex {
  readonly #handle: LockHandle;
  readonly #lockdep: Lockdep;
  /** lockAsync callers of this thread, in arrival order; the first one contends for the word. */
  readonly #mainQueue: MainTurn[] = [];

  /** Registers a new mutex of `lockClass` (a class of kind mutex). */
  static create(lockdep: Lockdep, lockClass: LockClassReference, name?: string): InstrumentedMutex {
    return new InstrumentedMutex(lockdep, LockHandle.register(lockdep, lockClass, LockKind.Mutex, name));
  }

  /** The same mutex in another thread, by the instance id main registered. */
  static attach(lockdep: Lockdep, instance: number): InstrumentedMutex {
    return new InstrumentedMutex(lockdep, instance);
  }

  private constructor(lockdep: Lockdep, instance: number) {
    this.#handle = new LockHandle(lockdep, instance, LockKind.Mutex);
    this.#lockdep = lockdep;
  }

  get instance(): number {
    return this.#handle.instance;
  }

  get lockClass(): LockClass {
    return this.#handle.lockClass;
  }

  get name(): string {
    return this.#handle.name;
  }

  /** Thread slot of the holder, or undefined when free. */
  holder(): number | undefined {
    const state = Atomics.load(this.#handle.word.int32, this.#handle.word.stateIndex);
    return state === 0 ? undefined : state - 1;
  }

  /** Workers: mutex_lock, bounded by timeoutMs (throws LockWaitTimeout). */
  lock(site: string, timeoutMs: number): void {
    const slot = this.#lockdep.currentThreadSlot();
    if (this.#lockdep.enabled) this.#lockdep.checkAcquire(this.#handle.lockClass, LockMode.Write, site, this.#handle.instance);
    // Another thread may take or release it between this decision to lock and the attempt.
    hostThread().point(SchedulingPoint.LockAcquire);
    hostThread().advance(VirtualTimeCost.lockAcquisitionNs);
    const attempt = this.#attempt(slot);
    if (attempt() !== undefined) this.#handle.waitBlocking(attempt, this.#wait(slot, timeoutMs));
    if (this.#lockdep.enabled) this.#lockdep.noteAcquired(this.#handle.lockClass, LockMode.Write, site, this.#handle.instance);
  }

  /**
   * Main: the same, awaiting with waitAsync. Validated before the first await. Main-thread callers
   * queue FIFO (see #takeTurn) and each acquisition passes through the event loop once.
   */
  async lockAsync(site: string, timeoutMs: number): Promise<void> {
    const slot = this.#lockdep.currentThreadSlot();
    if (this.#lockdep.enabled) this.#lockdep.checkAcquire(this.#handle.lockClass, LockMode.Write, site, this.#handle.instance);
    checkTimeout(timeoutMs);
    const host = mainHostThread();
    const startedAt = host.nowMs();
    await this.#takeTurn(this.#wait(slot, timeoutMs), startedAt);
    try {
      const attempt = this.#attempt(slot);
      if (attempt() !== undefined)
        await this.#handle.waitAsync(attempt, this.#wait(slot, Math.max(0, startedAt + timeoutMs - host.nowMs())));
    } finally {
      this.#passTurn();
    }
    if (this.#lockdep.enabled) this.#lockdep.noteAcquired(this.#handle.lockClass, LockMode.Write, site, this.#handle.instance);
  }

  /**
   * Waits until this caller heads the queue of main-thread callers, bounded by the caller's timeout.
   * Only the head contends for the lock word, so main-thread callers get the lock in the order they
   * asked (a kernel mutex's FIFO wait list with hand-off): one that just unlocked and asks again
   * queues behind those already waiting instead of taking the word back before their waitAsync
   * wakes (an update loop did that, and the others timed out). The turn is always granted from a
   * setImmediate callback, never synchronously: an `await` loop of acquisitions whose lock is free
   * would otherwise run on microtasks alone and starve every timer and I/O callback of the thread.
   */
  async #takeTurn(wait: WaitDescription, startedAt: number): Promise<void> {
    const queue = this.#mainQueue;
    let granted = false;
    const turn = new Promise<void>((resolve) => {
      queue.push({
        grant: () => {
          granted = true;
          resolve();
        },
      });
    });
    const entry = queue[queue.length - 1]!;
    if (queue.length === 1) {
      mainHostThread().defer(entry.grant);
      return turn;
    }
    // Behind other callers: a waiter for the wait-for graph, bounded by the caller's timeout.
    this.#lockdep.threads.setWaiting(wait.slot, this.#handle.instance, wait.mode);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timedOut'>((resolve) => {
      timer = setTimeout(() => resolve('timedOut'), wait.timeoutMs);
    });
    try {
      if ((await Promise.race([turn, timedOut])) === 'timedOut' && !granted) {
        const position = queue.indexOf(entry);
        queue.splice(position, 1);
        if (position === 0 && queue.length > 0) mainHostThread().defer(queue[0]!.grant);
        throw this.#handle.timeout(wait, startedAt);
      }
    } finally {
      clearTimeout(timer);
      this.#lockdep.threads.clearWaiting(wait.slot);
    }
  }

  /** The head got the lock (or gave up): the next main-thread caller may contend, from the event loop. */
  #passTurn(): void {
    this.#mainQueue.shift();
    const next = this.#mainQueue[0];
    if (next !== undefined) mainHostThread().defer(next.grant);
  }

  /** mutex_trylock: never waits, adds no dependency (trylocks cannot deadlock), is held if taken. */
  tryLock(site: string): boolean {
    if (this.#attempt(this.#lockdep.currentThreadSlot())() !== undefined) return false;
    if (this.#lockdep.enabled) this.#lockdep.noteAcquired(this.#handle.lockClass, LockMode.Write, site, this.#handle.instance);
    return true;
  }

  unlock(): void {
    const slot = this.#lockdep.currentThreadSlot();
    const holder = this.holder();
    if (holder !== slot) {
      throw this.#handle.releaseNotHeld(slot, holder === undefined ? 'which is not locked' : `held by ${this.#lockdep.threadName(holder)}`);
    }
    if (this.#lockdep.enabled) this.#lockdep.release(this.#handle.lockClass, this.#handle.instance);
    Atomics.store(this.#handle.word.int32, this.#handle.word.stateIndex, 0);
    this.#handle.wake(); // after the store: pairs with the waiter's increment-then-retry
  }

  #attempt(slot: number): AcquireAttempt {
    const { int32, stateIndex } = this.#handle.word;
    return () => {
      const observed = Atomics.compareExchange(int32, stateIndex, 0, slot + 1);
      return observed === 0 ? undefined : observed;
    };
  }

  #wait(slot: number, timeoutMs: number): WaitDescription {
    const holders = (): number[] => {
      const holder = this.holder();
      return holder === undefined ? [] : [holder];
    };
    return { slot, mode: LockMode.Write, waitKind: 'lock', timeoutMs, holders };
  }
}
