// kvm->srcu under the validator: a wrapper over src/host/srcu.ts that tells lockdep what the
// kernel's SRCU annotations tell it (Boqun Feng's 2023 SRCU lockdep support):
//   srcu_read_lock    -> a recursive-read acquisition of the srcu class (rcu_lock_acquire, read=2):
//                        nested read sections are fine, and a reader blocks nobody but a synchronizer;
//   srcu_read_unlock  -> its release;
//   synchronize_srcu  -> lock_sync: a write acquisition validated against the held locks and
//                        released at once (it waits for the readers but holds nothing).
// So "srcu read, then slots_lock" plus "slots_lock, then synchronize_srcu" is a strong cycle
// kvm->srcu -(SN)-> kvm->slots_lock -(EN)-> kvm->srcu, reported; and synchronize_srcu inside a
// read section is an AA on kvm->srcu (scenario S1, a self-deadlock).
//
// The reader slots are srcu.ts's (0 = main, i + 1 = vCPU i); the watchdog's reader bits are per
// lockdep thread slot, so two main contexts reading at once are still told apart.

import { hostThread, mainHostThread } from '../host/host-thread.js';
import type { Srcu, SrcuIndex } from '../host/srcu.js';
import { SrcuGracePeriodTimeout } from '../host/srcu.js';
import { LockKind, type LockClass } from './lock-class.js';
import { LockMode } from './lockdep-layout.js';
import { WAITING_FOR_GRACE_PERIOD } from './lockdep-threads.js';
import type { Lockdep, LockClassReference } from './lockdep.js';
import { LockHandle, ReaderDepths, type WaitDescription } from './instrumented-lock.js';
import { WAIT_SLICE_MS, assertMayBlock } from './lock-wait.js';

export interface SrcuSynchronizeRequest {
  readonly site: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export class InstrumentedSrcu {
  readonly srcu: Srcu;
  readonly #handle: LockHandle;
  readonly #lockdep: Lockdep;
  readonly #readers: ReaderDepths;

  /** Registers the instance (main, at VM creation); `srcu` is this thread's view of the SRCU region. */
  static create(lockdep: Lockdep, srcu: Srcu, lockClass: LockClassReference = 'kvm->srcu', name?: string): InstrumentedSrcu {
    return new InstrumentedSrcu(lockdep, LockHandle.register(lockdep, lockClass, LockKind.Srcu, name), srcu);
  }

  static attach(lockdep: Lockdep, instance: number, srcu: Srcu): InstrumentedSrcu {
    return new InstrumentedSrcu(lockdep, instance, srcu);
  }

  private constructor(lockdep: Lockdep, instance: number, srcu: Srcu) {
    this.#handle = new LockHandle(lockdep, instance, LockKind.Srcu);
    this.#lockdep = lockdep;
    this.#readers = new ReaderDepths(this.#handle);
    this.srcu = srcu;
  }

  get instance(): number {
    return this.#handle.instance;
  }

  get lockClass(): LockClass {
    return this.#handle.lockClass;
  }

  /** Lockdep thread slots inside a read section (instrumented readers only). */
  readers(): number[] {
    return this.#lockdep.instances.readers(this.#handle.instance);
  }

  readLock(readerSlot: number, site: string): SrcuIndex {
    const lockdep = this.#lockdep;
    if (lockdep.enabled) lockdep.checkAcquire(this.#handle.lockClass, LockMode.RecursiveRead, site, this.#handle.instance);
    const index = this.srcu.readLock(readerSlot);
    this.#readers.enter(lockdep.currentThreadSlot());
    if (lockdep.enabled) lockdep.noteAcquired(this.#handle.lockClass, LockMode.RecursiveRead, site, this.#handle.instance);
    return index;
  }

  readUnlock(readerSlot: number, index: SrcuIndex): void {
    const slot = this.#lockdep.currentThreadSlot();
    if (this.#readers.depth(slot) === 0) throw this.#handle.releaseNotHeld(slot, 'outside any read section of this thread');
    if (this.#lockdep.enabled) this.#lockdep.release(this.#handle.lockClass, this.#handle.instance);
    this.srcu.readUnlock(readerSlot, index);
    this.#readers.leave(slot);
  }

  /** Main: synchronize_srcu with waitAsync. Validated (lock_sync) before the first await. */
  async synchronize(request: SrcuSynchronizeRequest): Promise<void> {
    const wait = this.#beginSynchronize(request.site, request.timeoutMs);
    const startedAt = mainHostThread().nowMs();
    // Lockdep.abortWaits() is a shared word, not a signal: poll it once per wait slice.
    const teardown = new AbortController();
    const poll = setInterval(() => {
      if (this.#lockdep.waitsAborted) teardown.abort();
    }, WAIT_SLICE_MS);
    const signal = request.signal === undefined ? teardown.signal : AbortSignal.any([request.signal, teardown.signal]);
    try {
      if (this.#lockdep.waitsAborted) teardown.abort();
      await this.srcu.synchronize({ timeoutMs: request.timeoutMs, signal });
    } catch (error) {
      throw teardown.signal.aborted ? this.#handle.aborted(wait) : this.#translate(error, wait, startedAt);
    } finally {
      clearInterval(poll);
      this.#lockdep.threads.clearWaiting(wait.slot);
    }
  }

  /** Workers: the same, blocking in bounded waits (the worker's host) inside srcu.ts. */
  synchronizeBlocking(site: string, timeoutMs: number): void {
    assertMayBlock(`synchronize ${this.#handle.displayName}`);
    const wait = this.#beginSynchronize(site, timeoutMs);
    const startedAt = hostThread().nowMs();
    try {
      this.srcu.synchronizeBlocking(timeoutMs);
    } catch (error) {
      throw this.#translate(error, wait, startedAt);
    } finally {
      this.#lockdep.threads.clearWaiting(wait.slot);
    }
  }

  #beginSynchronize(site: string, timeoutMs: number): WaitDescription {
    if (this.#lockdep.enabled) this.#lockdep.synchronize(this.#handle.lockClass, site, this.#handle.instance);
    const slot = this.#lockdep.currentThreadSlot();
    this.#lockdep.threads.setWaiting(slot, this.#handle.instance, WAITING_FOR_GRACE_PERIOD);
    return { slot, mode: WAITING_FOR_GRACE_PERIOD, waitKind: 'a grace period of', timeoutMs, holders: () => this.readers() };
  }

  /** A grace period that ran out becomes a LockWaitTimeout naming the readers it waited for. */
  #translate(error: unknown, wait: WaitDescription, startedAt: number): unknown {
    return error instanceof SrcuGracePeriodTimeout ? this.#handle.timeout(wait, startedAt, error) : error;
  }
}
