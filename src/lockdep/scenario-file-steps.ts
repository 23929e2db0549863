// Runs one thread of a lock scenario file (scenario-file.ts) on real instrumented locks: in a worker
// (vCPU n: blocking, bounded waits) or on the main thread (asynchronous waits, its own lockdep
// context). Both run the same steps through ScenarioThread; only the waiting differs.
//
// With the validator on, a thread validates each acquisition before it may block; once any thread
// has reported, it backs out instead of waiting (releases what it holds, in reverse, and ends), so
// a run with a report ends by itself. Without the validator, it waits: a real deadlock then lasts
// until the runner's watchdog (src/scenarios/lock-scenarios/scenario-file-runner.ts) calls
// Lockdep.abortWaits(), which every wait notices within a slice.
//
// The handshake buffer: one word per step label (set once the labelled step is done), then one
// progress counter per thread (steps done), then one "sleeping" word per thread (the watchdog
// does not count a sleeping thread as stuck).

import { hostThread, mainHostThread } from '../host/host-thread.js';
import type { SrcuIndex } from '../host/srcu.js';
import { Srcu } from '../host/srcu.js';
import { InstrumentedMutex } from './instrumented-lock.js';
import { InstrumentedRwSemaphore } from './instrumented-rw-semaphore.js';
import { InstrumentedSrcu } from './instrumented-srcu.js';
import { LockKind } from './lock-class.js';
import { setWord, sleepBlocking, waitForWordAsync, waitForWordBlocking } from './lock-wait.js';
import { LockWaitAborted } from './lockdep-errors.js';
import { LockMode } from './lockdep-layout.js';
import type { Lockdep, LockdepShared } from './lockdep.js';
import type { LockScenario, LockScenarioStep } from './scenario-file.js';

/**
 * What a scenario thread's wait may take beyond the file's sleeps and the watchdog: steps that are not
 * sleeps take microseconds, but a worker's start-up on a loaded host can take seconds.
 */
export const SCENARIO_WAIT_SLACK_MS = 60_000;

/**
 * The bound of every wait in a run of `scenario` (lock, grace period, label), derived from what a
 * wait can legitimately last, so that no wait times out while the run behaves as documented:
 *   - every sleep of the file, in sequence: a thread may hold a lock across its sleeps (each up to
 *     MAX_SLEEP_MS), and others may queue behind it in turn; the watchdog ignores sleeping threads;
 *   - the watchdog's bound: a real deadlock lasts until the watchdog sees `watchdogMs` without
 *     progress and aborts every wait (Lockdep.abortWaits), which must come before any wait's bound;
 *   - SCENARIO_WAIT_SLACK_MS for everything else.
 * A fixed bound (it was 60 s, the same as one maximal sleep) made a waiter behind a holder sleeping
 * the maximum time out in a race with the holder's release, and made --watchdog above 60 s useless.
 */
export function scenarioWaitBoundMs(scenario: LockScenario, watchdogMs: number): number {
  let sleeps = 0;
  for (const thread of scenario.threads) for (const step of thread.steps) if (step.op === 'sleep') sleeps += step.ms;
  return sleeps + watchdogMs + SCENARIO_WAIT_SLACK_MS;
}

export interface ScenarioLockInstance {
  readonly name: string;
  readonly kind: LockKind;
  readonly instance: number;
  /** srcu only: its SRCU region (reader slot 0 = main threads, n + 1 = vCPU n). */
  readonly srcuBuffer?: SharedArrayBuffer;
}

/** What a thread needs, structured-cloneable (sent to workers as workerData). */
export interface ScenarioThreadData {
  readonly lockdep: LockdepShared;
  readonly enabled: boolean;
  readonly locks: readonly ScenarioLockInstance[];
  readonly srcuReaderSlots: number;
  readonly handshake: SharedArrayBuffer;
  readonly labels: readonly string[];
  readonly threadCount: number;
  readonly threadIndex: number;
  readonly threadName: string;
  readonly vcpu: number;
  readonly steps: readonly LockScenarioStep[];
  /** The bound of every wait of this thread: scenarioWaitBoundMs of the run. */
  readonly waitBoundMs: number;
}

export interface ScenarioThreadResult {
  readonly thread: string;
  readonly outcome: 'done' | 'backed-out' | 'aborted' | 'error';
  readonly stepsDone: number;
  readonly message?: string;
}

export const progressWord = (data: Pick<ScenarioThreadData, 'labels'>, thread: number): number => data.labels.length + thread;
export const sleepingWord = (data: Pick<ScenarioThreadData, 'labels' | 'threadCount'>, thread: number): number =>
  data.labels.length + data.threadCount + thread;
export const handshakeWords = (labels: number, threads: number): number => labels + 2 * threads;

type Lock = InstrumentedMutex | InstrumentedRwSemaphore | InstrumentedSrcu;

/** Thrown inside a thread to stop it: the validator has reported, this thread backs out. */
class BackOut extends Error {}

export class ScenarioThread {
  readonly #data: ScenarioThreadData;
  readonly #lockdep: Lockdep;
  readonly #locks = new Map<string, Lock>();
  readonly #words: Int32Array;
  /** What this thread holds, in order: lock name and how (write, read, or an SRCU index). */
  readonly #held: { readonly name: string; readonly how: 'write' | 'read' | SrcuIndex }[] = [];
  readonly #readerSlot: number;
  #stepsDone = 0;

  constructor(data: ScenarioThreadData, lockdep: Lockdep) {
    this.#data = data;
    this.#lockdep = lockdep;
    this.#words = new Int32Array(data.handshake);
    this.#readerSlot = data.vcpu >= 0 ? data.vcpu + 1 : 0;
    for (const lock of data.locks) {
      if (lock.kind === LockKind.Mutex) this.#locks.set(lock.name, InstrumentedMutex.attach(lockdep, lock.instance));
      else if (lock.kind === LockKind.RwSemaphore) this.#locks.set(lock.name, InstrumentedRwSemaphore.attach(lockdep, lock.instance));
      else
        this.#locks.set(
          lock.name,
          InstrumentedSrcu.attach(lockdep, lock.instance, new Srcu(new Int32Array(lock.srcuBuffer!), 0, data.srcuReaderSlots)),
        );
    }
  }

  /** Workers: every step, blocking. */
  runBlocking(): ScenarioThreadResult {
    try {
      for (const step of this.#data.steps) {
        this.#before(step);
        this.#stepBlocking(step);
        this.#after(step);
      }
      return this.#result('done');
    } catch (error) {
      return this.#stop(error);
    }
  }

  /** Main: every step, asynchronously (the caller runs this in its lockdep context). */
  async runAsync(): Promise<ScenarioThreadResult> {
    try {
      for (const step of this.#data.steps) {
        this.#before(step);
        await this.#stepAsync(step);
        this.#after(step);
      }
      return this.#result('done');
    } catch (error) {
      return this.#stop(error);
    }
  }

  #site(step: LockScenarioStep): string {
    return `${step.op} ${step.target}${step.label === undefined ? '' : ` [${step.label}]`} at ${step.where}`;
  }

  /** Validates a blocking acquisition first; backs out if it (or anything before it) reported. */
  #before(step: LockScenarioStep): void {
    const lock = this.#locks.get(step.target);
    const lockdep = this.#lockdep;
    if (lockdep.enabled && lock !== undefined) {
      if (step.op === 'synchronize') lockdep.synchronize(lock.lockClass, this.#site(step), lock.instance);
      else if (step.op === 'acquire') lockdep.checkAcquire(lock.lockClass, this.#modeOf(step, lock), this.#site(step), lock.instance);
    }
    const blocks = step.op === 'acquire' || step.op === 'synchronize' || step.op === 'wait-for';
    if (blocks && lockdep.report() !== undefined) throw new BackOut();
  }

  #modeOf(step: LockScenarioStep, lock: Lock): LockMode {
    return lock instanceof InstrumentedRwSemaphore && step.mode === 'read' ? lock.readMode : LockMode.Write;
  }

  #after(step: LockScenarioStep): void {
    this.#stepsDone++;
    if (step.label !== undefined) setWord(this.#words, this.#data.labels.indexOf(step.label));
    Atomics.add(this.#words, progressWord(this.#data, this.#data.threadIndex), 1);
  }

  #stepBlocking(step: LockScenarioStep): void {
    const lock = this.#locks.get(step.target);
    const site = this.#site(step);
    const aborted = (): boolean => this.#lockdep.waitsAborted;
    switch (step.op) {
      case 'acquire':
        if (lock instanceof InstrumentedMutex) lock.lock(site, this.#data.waitBoundMs);
        else if (lock instanceof InstrumentedRwSemaphore)
          step.mode === 'read' ? lock.readLock(site, this.#data.waitBoundMs) : lock.writeLock(site, this.#data.waitBoundMs);
        this.#held.push({ name: step.target, how: step.mode });
        return;
      case 'synchronize':
        (lock as InstrumentedSrcu).synchronizeBlocking(site, this.#data.waitBoundMs);
        return;
      case 'wait-for':
        if (
          !waitForWordBlocking(this.#words, this.#data.labels.indexOf(step.target), hostThread().nowMs() + this.#data.waitBoundMs, aborted)
        )
          throw this.#labelWaitFailed(step);
        return;
      case 'sleep':
        this.#sleeping(true);
        sleepBlocking(step.ms, aborted);
        this.#sleeping(false);
        return;
      default:
        this.#nonBlocking(step, lock!, site);
    }
  }

  async #stepAsync(step: LockScenarioStep): Promise<void> {
    const lock = this.#locks.get(step.target);
    const site = this.#site(step);
    switch (step.op) {
      case 'acquire':
        if (lock instanceof InstrumentedMutex) await lock.lockAsync(site, this.#data.waitBoundMs);
        else if (lock instanceof InstrumentedRwSemaphore)
          await (step.mode === 'read'
            ? lock.readLockAsync(site, this.#data.waitBoundMs)
            : lock.writeLockAsync(site, this.#data.waitBoundMs));
        this.#held.push({ name: step.target, how: step.mode });
        return;
      case 'synchronize':
        await (lock as InstrumentedSrcu).synchronize({ site, timeoutMs: this.#data.waitBoundMs });
        return;
      case 'wait-for':
        if (
          !(await waitForWordAsync(
            this.#words,
            this.#data.labels.indexOf(step.target),
            mainHostThread().nowMs() + this.#data.waitBoundMs,
            () => this.#lockdep.waitsAborted,
          ))
        ) {
          throw this.#labelWaitFailed(step);
        }
        return;
      case 'sleep':
        this.#sleeping(true);
        await mainHostThread().sleep(step.ms);
        this.#sleeping(false);
        return;
      default:
        this.#nonBlocking(step, lock!, site);
    }
  }

  /** release, srcu-read-lock, srcu-read-unlock: never wait. */
  #nonBlocking(step: LockScenarioStep, lock: Lock, site: string): void {
    if (step.op === 'srcu-read-lock') {
      this.#held.push({ name: step.target, how: (lock as InstrumentedSrcu).readLock(this.#readerSlot, site) });
      return;
    }
    const position = this.#held.map((held) => held.name).lastIndexOf(step.target);
    if (position < 0) throw new Error(`${this.#data.threadName} releases ${step.target}, which it does not hold (${step.where})`);
    const [held] = this.#held.splice(position, 1);
    this.#release(lock, held!.how);
  }

  #release(lock: Lock, how: 'write' | 'read' | SrcuIndex): void {
    if (lock instanceof InstrumentedMutex) lock.unlock();
    else if (lock instanceof InstrumentedRwSemaphore) how === 'read' ? lock.readUnlock() : lock.writeUnlock();
    else lock.readUnlock(this.#readerSlot, how as SrcuIndex);
  }

  #sleeping(sleeping: boolean): void {
    Atomics.store(this.#words, sleepingWord(this.#data, this.#data.threadIndex), sleeping ? 1 : 0);
  }

  #labelWaitFailed(step: LockScenarioStep): Error {
    if (this.#lockdep.waitsAborted) return new LockWaitAborted(`label ${step.target}`, 'the step', this.#data.threadName);
    return new Error(`${this.#data.threadName} waited ${this.#data.waitBoundMs} ms for label "${step.target}" (${step.where})`);
  }

  /** Ends the thread early: releases what it holds (newest first) and says why. */
  #stop(error: unknown): ScenarioThreadResult {
    this.#sleeping(false);
    for (const held of this.#held.splice(0).reverse()) {
      try {
        this.#release(this.#locks.get(held.name)!, held.how);
      } catch {
        // best effort while backing out: the run is ending
      }
    }
    if (error instanceof BackOut) return this.#result('backed-out');
    if (error instanceof LockWaitAborted) return this.#result('aborted');
    return this.#result('error', error instanceof Error ? error.message : String(error));
  }

  #result(outcome: ScenarioThreadResult['outcome'], message?: string): ScenarioThreadResult {
    return { thread: this.#data.threadName, outcome, stepsDone: this.#stepsDone, ...(message === undefined ? {} : { message }) };
  }
}
