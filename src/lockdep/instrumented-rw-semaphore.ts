// An instrumented reader/writer semaphore on one shared state word (plus an owner word for the
// writer and per-thread reader bits for the watchdog).
//
// State word: bits 0..15 readers holding, bits 16..29 writers waiting, bit 30 a writer holds.
//   read:   succeeds when no writer holds (and, if writer-preferring, none waits): +1 reader
//   write:  succeeds when no writer and no reader holds; a writer that must wait first counts
//           itself in "writers waiting" and removes that count in the same compareExchange that
//           takes the lock (or with a subtraction when it times out)
// Every change goes through the state word, so one waiter loop (lock-wait.ts) covers both sides.
//
// Reader- or writer-preferring, and what lockdep calls the reads (lockdep-design.rst, "Recursive
// read locks"):
//   - reader-preferring (the default): a reader waits only for a writer that HOLDS the lock, never
//     for one that waits. So a reader may re-enter while another thread queues to write: its reads
//     are recursive reads (LockMode.RecursiveRead, lockdep's R). A stream of readers can starve a
//     writer; acceptable for apicv_update_lock, whose writes (inhibit changes) are rare.
//   - writer-preferring ({ writerPreferring: true }): a queued writer blocks new readers, as the
//     kernel's fair rw_semaphore and the percpu cpu_hotplug_lock do. Its reads are non-recursive
//     (LockMode.Read, lockdep's r): read-after-read in one thread is reported as recursive locking,
//     and a read-read ABBA is a possible deadlock (two queued writers close the cycle).

import { hostThread, SchedulingPoint } from '../host/host-thread.js';
import { VirtualTimeCost } from '../host/virtual-time-costs.js';
import { LockKind, type LockClass } from './lock-class.js';
import { INSTANCE_FLAG_WRITER_PREFERRING } from './lock-instances.js';
import { LockdepMisuseError } from './lockdep-errors.js';
import { LockMode } from './lockdep-layout.js';
import type { Lockdep, LockClassReference } from './lockdep.js';
import { LockHandle, ReaderDepths, type WaitDescription } from './instrumented-lock.js';

const READER_MASK = 0xffff;
const WRITER_WAITING_UNIT = 1 << 16;
const WRITERS_WAITING_MASK = 0x3fff << 16;
const WRITER_HELD = 1 << 30;

export interface RwSemaphoreOptions {
  readonly name?: string;
  /** Queued writers block new readers (the kernel's rw_semaphore); reads are then non-recursive. */
  readonly writerPreferring?: boolean;
}

export class InstrumentedRwSemaphore {
  /** LockMode of this semaphore's reads: RecursiveRead unless writer-preferring. */
  readonly readMode: LockMode;
  readonly #handle: LockHandle;
  readonly #lockdep: Lockdep;
  readonly #readers: ReaderDepths;
  readonly #writerPreferring: boolean;

  static create(lockdep: Lockdep, lockClass: LockClassReference, options: RwSemaphoreOptions = {}): InstrumentedRwSemaphore {
    const flags = options.writerPreferring === true ? INSTANCE_FLAG_WRITER_PREFERRING : 0;
    return new InstrumentedRwSemaphore(lockdep, LockHandle.register(lockdep, lockClass, LockKind.RwSemaphore, options.name, flags));
  }

  static attach(lockdep: Lockdep, instance: number): InstrumentedRwSemaphore {
    return new InstrumentedRwSemaphore(lockdep, instance);
  }

  private constructor(lockdep: Lockdep, instance: number) {
    this.#handle = new LockHandle(lockdep, instance, LockKind.RwSemaphore);
    this.#lockdep = lockdep;
    this.#readers = new ReaderDepths(this.#handle);
    this.#writerPreferring = (this.#handle.flags & INSTANCE_FLAG_WRITER_PREFERRING) !== 0;
    this.readMode = this.#writerPreferring ? LockMode.Read : LockMode.RecursiveRead;
  }

  get instance(): number {
    return this.#handle.instance;
  }

  get lockClass(): LockClass {
    return this.#handle.lockClass;
  }

  /** Thread slot of the writer holding it, or undefined. */
  writer(): number | undefined {
    const owner = Atomics.load(this.#handle.word.int32, this.#lockdep.instances.ownerIndex(this.#handle.instance));
    return owner === 0 ? undefined : owner - 1;
  }

  /** Thread slots holding it for read. */
  readers(): number[] {
    return this.#lockdep.instances.readers(this.#handle.instance);
  }

  // ---- read side ----

  readLock(site: string, timeoutMs: number): void {
    const slot = this.#beginAcquire(this.readMode, site);
    if (this.#tryRead() !== undefined) this.#handle.waitBlocking(() => this.#tryRead(), this.#waitForWriter(slot, timeoutMs));
    this.#finishRead(slot, site);
  }

  async readLockAsync(site: string, timeoutMs: number): Promise<void> {
    const slot = this.#beginAcquire(this.readMode, site);
    if (this.#tryRead() !== undefined) await this.#handle.waitAsync(() => this.#tryRead(), this.#waitForWriter(slot, timeoutMs));
    this.#finishRead(slot, site);
  }

  readUnlock(): void {
    const slot = this.#lockdep.currentThreadSlot();
    if (this.#readers.depth(slot) === 0) throw this.#handle.releaseNotHeld(slot, 'which it does not hold for read');
    if (this.#lockdep.enabled) this.#lockdep.release(this.#handle.lockClass, this.#handle.instance);
    this.#readers.leave(slot);
    Atomics.sub(this.#handle.word.int32, this.#handle.word.stateIndex, 1);
    this.#handle.wake();
  }

  // ---- write side ----

  writeLock(site: string, timeoutMs: number): void {
    const slot = this.#beginAcquire(LockMode.Write, site);
    if (this.#tryWrite(false) !== undefined) {
      this.#queueWriter();
      try {
        this.#handle.waitBlocking(() => this.#tryWrite(true), this.#waitForAll(slot, timeoutMs));
      } catch (error) {
        this.#unqueueWriter();
        throw error;
      }
    }
    this.#finishWrite(slot, site);
  }

  async writeLockAsync(site: string, timeoutMs: number): Promise<void> {
    const slot = this.#beginAcquire(LockMode.Write, site);
    if (this.#tryWrite(false) !== undefined) {
      this.#queueWriter();
      try {
        await this.#handle.waitAsync(() => this.#tryWrite(true), this.#waitForAll(slot, timeoutMs));
      } catch (error) {
        this.#unqueueWriter();
        throw error;
      }
    }
    this.#finishWrite(slot, site);
  }

  writeUnlock(): void {
    const slot = this.#lockdep.currentThreadSlot();
    const writer = this.writer();
    if (writer !== slot) {
      throw this.#handle.releaseNotHeld(
        slot,
        writer === undefined ? 'which no writer holds' : `written by ${this.#lockdep.threadName(writer)}`,
      );
    }
    if (this.#lockdep.enabled) this.#lockdep.release(this.#handle.lockClass, this.#handle.instance);
    Atomics.store(this.#handle.word.int32, this.#lockdep.instances.ownerIndex(this.#handle.instance), 0);
    Atomics.and(this.#handle.word.int32, this.#handle.word.stateIndex, ~WRITER_HELD);
    this.#handle.wake();
  }

  // ---- internals ----

  #beginAcquire(mode: LockMode, site: string): number {
    if (this.#lockdep.enabled) this.#lockdep.checkAcquire(this.#handle.lockClass, mode, site, this.#handle.instance);
    // Another thread may take or release it between this decision to lock and the first attempt.
    hostThread().point(SchedulingPoint.LockAcquire);
    hostThread().advance(VirtualTimeCost.lockAcquisitionNs);
    return this.#lockdep.currentThreadSlot();
  }

  #finishRead(slot: number, site: string): void {
    this.#readers.enter(slot);
    if (this.#lockdep.enabled) this.#lockdep.noteAcquired(this.#handle.lockClass, this.readMode, site, this.#handle.instance);
  }

  #finishWrite(slot: number, site: string): void {
    Atomics.store(this.#handle.word.int32, this.#lockdep.instances.ownerIndex(this.#handle.instance), slot + 1);
    if (this.#lockdep.enabled) this.#lockdep.noteAcquired(this.#handle.lockClass, LockMode.Write, site, this.#handle.instance);
  }

  /** One read attempt: undefined when taken, else the state to wait on. */
  #tryRead(): number | undefined {
    const { int32, stateIndex } = this.#handle.word;
    for (;;) {
      const state = Atomics.load(int32, stateIndex);
      if ((state & WRITER_HELD) !== 0 || (this.#writerPreferring && (state & WRITERS_WAITING_MASK) !== 0)) return state;
      if ((state & READER_MASK) === READER_MASK) throw new LockdepMisuseError('tooManyReaders', this.#handle.displayName);
      if (Atomics.compareExchange(int32, stateIndex, state, state + 1) === state) return undefined;
    }
  }

  /** One write attempt; `queued`: this writer counted itself as waiting and uncounts on success. */
  #tryWrite(queued: boolean): number | undefined {
    const { int32, stateIndex } = this.#handle.word;
    for (;;) {
      const state = Atomics.load(int32, stateIndex);
      if ((state & (WRITER_HELD | READER_MASK)) !== 0) return state;
      const taken = (state | WRITER_HELD) - (queued ? WRITER_WAITING_UNIT : 0);
      if (Atomics.compareExchange(int32, stateIndex, state, taken) === state) return undefined;
    }
  }

  #queueWriter(): void {
    Atomics.add(this.#handle.word.int32, this.#handle.word.stateIndex, WRITER_WAITING_UNIT);
  }

  /** A writer that gave up: readers held back by it (writer-preferring) may go. */
  #unqueueWriter(): void {
    Atomics.sub(this.#handle.word.int32, this.#handle.word.stateIndex, WRITER_WAITING_UNIT);
    this.#handle.wake();
  }

  #waitForWriter(slot: number, timeoutMs: number): WaitDescription {
    const holders = (): number[] => {
      const writer = this.writer();
      return writer === undefined ? [] : [writer];
    };
    return { slot, mode: this.readMode, waitKind: 'read lock', timeoutMs, holders };
  }

  #waitForAll(slot: number, timeoutMs: number): WaitDescription {
    const holders = (): number[] => {
      const writer = this.writer();
      return writer === undefined ? this.readers() : [writer];
    };
    return { slot, mode: LockMode.Write, waitKind: 'write lock', timeoutMs, holders };
  }
}
