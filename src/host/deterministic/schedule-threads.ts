// The two kinds of participant in a deterministic run: a worker (DeterministicHostThread, which
// blocks while it waits for the baton) and the main thread (DeterministicMainHostThread, which must
// not block its event loop and waits with Atomics.waitAsync). Both implement the seam of
// src/host/host-thread.ts over a ScheduleCore; docs/deterministic.md explains the design.
//
// Waiting for the baton: a participant loads its turn word, then `running`; only if `running` is not
// itself does it wait on the turn word, expecting the value it loaded. The passer stores `running`
// before it adds to the turn word, so a hand-over between the two loads moved the word and the wait
// returns at once (no lost wake-up). Each wait is one bounded slice; between slices the participant
// checks for an abort and for a stall (no decision for stallMs of real time: it aborts the schedule).

import { performance } from 'node:perf_hooks';
import { SchedulingPoint, type HostThread, type HostWaitResult, type MainHostThread } from '../host-thread.js';
import { DecisionKind, DecisionReason, ScheduleAborted, type ScheduleCore } from './schedule-core.js';
import { ParticipantStatus, WAIT_SLOTS } from './schedule-layout.js';

/** One slice of a wait for the baton, in real ms. */
export const TURN_SLICE_MS = 50;
/** nowMs() at virtual time 0: a positive origin, so that code using 0 as "never" stays right. */
export const VIRTUAL_ORIGIN_MS = 1_000_000;

/** The real-time watch over a wait for the baton: aborts the schedule when decisions stop. */
class StallWatch {
  readonly core: ScheduleCore;
  readonly participant: number;
  #decisions = -1;
  #since = performance.now();

  constructor(core: ScheduleCore, participant: number) {
    this.core = core;
    this.participant = participant;
  }

  check(): void {
    const core = this.core;
    if (core.aborted()) throw core.abortedError();
    const decisions = core.float64[core.headerFloat64('decisions')]!;
    const now = performance.now();
    if (decisions !== this.#decisions) {
      this.#decisions = decisions;
      this.#since = now;
      return;
    }
    const stallMs = core.float64[core.headerFloat64('stallMs')]!;
    if (now - this.#since > stallMs)
      throw core.abort(`participant ${this.participant} saw no decision for ${Math.round(now - this.#since)} ms of real time (a stall)`);
  }
}

abstract class Participant {
  readonly core: ScheduleCore;
  readonly participant: number;

  constructor(core: ScheduleCore, participant: number) {
    this.core = core;
    this.participant = participant;
  }

  nowMs(): number {
    return VIRTUAL_ORIGIN_MS + this.core.float64[this.core.virtualNs]! / 1e6;
  }

  protected holding(): boolean {
    return Atomics.load(this.core.int32, this.core.running) === this.participant;
  }

  protected setStatus(status: number): void {
    this.core.int32[this.core.status(this.participant)] = status;
  }

  protected virtualNs(): number {
    return this.core.float64[this.core.virtualNs]!;
  }
}

/** A worker thread's part: blocks while another participant holds the baton. */
export class DeterministicHostThread extends Participant implements HostThread {
  readonly pointMaySwitch = true;

  /** Registers; blocks until this thread is first scheduled (the first decision waits for every participant). */
  start(): void {
    const core = this.core;
    this.setStatus(ParticipantStatus.Runnable);
    const started = Atomics.add(core.int32, core.started, 1) + 1;
    Atomics.notify(core.int32, core.started);
    // The last to start makes the first decision, unless the main thread holds the baton (it decides then).
    if (started === core.participants && Atomics.compareExchange(core.int32, core.running, -1, this.participant) === -1) {
      // Decided as nobody (-1): who happened to start last must not show in the counts.
      if (core.decide(-1, DecisionReason.Start, DecisionKind.Start) === this.participant) return;
    }
    this.#awaitTurn();
  }

  wait(words: Int32Array, index: number, expected: number, timeoutMs: number): HostWaitResult {
    if (Atomics.load(words, index) !== expected) return 'not-equal';
    if (!(timeoutMs > 0)) return 'timed-out';
    const core = this.core;
    core.recordWait(this.participant, 0, words, index, expected, this.virtualNs() + timeoutMs * 1e6);
    this.setStatus(ParticipantStatus.Waiting);
    if (core.decide(this.participant, DecisionReason.Wait, DecisionKind.Wait) !== this.participant) this.#awaitTurn();
    this.setStatus(ParticipantStatus.Runnable);
    core.clearWait(this.participant, 0);
    return Atomics.load(words, index) !== expected ? 'ok' : 'timed-out';
  }

  point(kind: SchedulingPoint): void {
    const core = this.core;
    const float64 = core.float64;
    float64[core.headerFloat64('pointsSeen') + kind]! += 1;
    float64[core.headerFloat64('pointsTotal')]! += 1;
    const reason = kind === SchedulingPoint.Spin ? DecisionReason.Spin : DecisionReason.Point;
    if (core.decide(this.participant, reason, kind) !== this.participant) this.#awaitTurn();
  }

  advance(ns: number): void {
    if (ns > 0) this.core.float64[this.core.virtualNs]! += ns;
  }

  /** Leaves the schedule for good and passes the baton on. Quiet after an abort (it runs in `finally` blocks). */
  finish(): void {
    const core = this.core;
    if (core.aborted() || !this.holding()) {
      Atomics.store(core.int32, core.status(this.participant), ParticipantStatus.Finished);
      return;
    }
    this.setStatus(ParticipantStatus.Finished);
    core.decide(this.participant, DecisionReason.Finish, DecisionKind.Finish);
  }

  #awaitTurn(): void {
    const core = this.core;
    const turn = core.turn(this.participant);
    const stall = new StallWatch(core, this.participant);
    for (;;) {
      const seen = Atomics.load(core.int32, turn);
      if (Atomics.load(core.int32, core.running) === this.participant) break;
      stall.check();
      Atomics.wait(core.int32, turn, seen, TURN_SLICE_MS);
    }
    if (core.aborted()) throw core.abortedError();
  }
}

interface MainWait {
  readonly words: Int32Array;
  readonly index: number;
  readonly expected: number;
  readonly resolve: (result: HostWaitResult) => void;
  readonly reject: (error: unknown) => void;
  /** A sleep that its caller may cut short: left unsettled when main leaves the schedule (the signal ends it). */
  readonly cancellable: boolean;
}

/**
 * The main thread's part. It holds the baton from start() (it sets the VM up before the workers
 * run); its async contexts wait through waitAsync/sleep, each in a wait slot; once no continuation is
 * left to run (a setImmediate after the microtasks), it hands the baton on, and takes it back when
 * one of its waits is over. Main code must touch the VM's memory only while main holds the baton,
 * that is in continuations of these waits.
 */
export class DeterministicMainHostThread extends Participant implements MainHostThread {
  readonly #waits: (MainWait | undefined)[] = new Array<MainWait | undefined>(WAIT_SLOTS).fill(undefined);
  /** Calls made while another participant held the baton: run at main's next turn. */
  #late: (() => void)[] = [];
  /** defer() callbacks queued but not yet run: main keeps the baton until they have. */
  #deferred = 0;
  #passScheduled = false;
  #holding = false;
  #finished = false;
  #firstPassDone = false;
  readonly #sleepWord = new Int32Array(new SharedArrayBuffer(4));

  /** Main has left the schedule (finish()), or the schedule was aborted: it no longer takes part. */
  get done(): boolean {
    return this.#finished || this.core.aborted();
  }

  /** Claims the baton (before any worker starts) and registers. */
  start(): Promise<void> {
    const core = this.core;
    if (Atomics.compareExchange(core.int32, core.running, -1, this.participant) !== -1)
      return Promise.reject(new ScheduleAborted('the main thread must start before any other participant'));
    this.setStatus(ParticipantStatus.Runnable);
    this.#holding = true;
    Atomics.add(core.int32, core.started, 1);
    return Promise.resolve();
  }

  waitAsync(words: Int32Array, index: number, expected: number, timeoutMs: number, cancellable = false): Promise<HostWaitResult> {
    if (this.#finished) return Promise.resolve(Atomics.load(words, index) !== expected ? 'not-equal' : 'timed-out');
    if (!this.#holding) {
      return new Promise((resolve, reject) => {
        this.#late.push(() => this.waitAsync(words, index, expected, timeoutMs, cancellable).then(resolve, reject));
      });
    }
    if (this.core.aborted()) return Promise.reject(this.core.abortedError());
    if (Atomics.load(words, index) !== expected) return Promise.resolve('not-equal');
    if (!(timeoutMs > 0)) return Promise.resolve('timed-out');
    const slot = this.#waits.indexOf(undefined);
    if (slot < 0) return Promise.reject(new ScheduleAborted(`the main thread has more than ${WAIT_SLOTS} waits at once`));
    return new Promise<HostWaitResult>((resolve, reject) => {
      this.#waits[slot] = { words, index, expected, resolve, reject, cancellable };
      this.core.recordWait(this.participant, slot, words, index, expected, this.virtualNs() + timeoutMs * 1e6);
      this.#schedulePass();
    });
  }

  /** A wait for `ms` of virtual time; `signal` ends it early (the caller goes on; the slot stays until its deadline). */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) return Promise.resolve();
    const wait = this.waitAsync(this.#sleepWord, 0, 0, ms, signal !== undefined);
    if (signal === undefined) return wait.then(() => undefined);
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      wait.then(done, done);
    });
  }

  /**
   * A setImmediate that main's turn waits for: #pass does not hand the baton on while one is queued
   * (a lock's turn granted from the event loop would otherwise run after main passed the baton, at
   * a moment the schedule does not decide). Called while another participant holds the baton, it is
   * queued at main's next turn; after main left the schedule, it is a plain setImmediate.
   */
  defer(callback: () => void): void {
    if (this.#finished) {
      setImmediate(callback);
      return;
    }
    if (!this.#holding) {
      this.#late.push(() => this.defer(callback));
      return;
    }
    this.#deferred++;
    setImmediate(() => {
      this.#deferred--;
      callback();
    });
  }

  /** Leaves the schedule and passes the baton on (at once when main holds it, else at its next turn). */
  finish(): Promise<void> {
    const core = this.core;
    if (this.#finished) return Promise.resolve();
    if (!this.#holding && !core.aborted())
      return new Promise((resolve, reject) => this.#late.push(() => this.finish().then(resolve, reject)));
    this.#finished = true;
    this.#holding = false;
    this.#settleAtFinish();
    Atomics.store(core.int32, core.status(this.participant), ParticipantStatus.Finished);
    if (!core.aborted()) core.decide(this.participant, DecisionReason.Finish, DecisionKind.Finish);
    return Promise.resolve();
  }

  #schedulePass(): void {
    if (this.#passScheduled) return;
    this.#passScheduled = true;
    setImmediate(() => {
      this.#passScheduled = false;
      this.#pass().catch((error: unknown) => this.#rejectAll(error));
    });
  }

  /** Every continuation ran: hand the baton on if main waits, and take it back when a wait is over. */
  async #pass(): Promise<void> {
    if (!this.#holding || this.#finished || this.#waits.every((wait) => wait === undefined)) return;
    if (this.#deferred > 0) {
      // Deferred work is still queued: let it run first (its setImmediate precedes the one queued here).
      this.#schedulePass();
      return;
    }
    const core = this.core;
    if (!this.#firstPassDone) {
      await this.#awaitAllStarted();
      this.#firstPassDone = true;
    }
    this.setStatus(ParticipantStatus.Waiting);
    if (core.decide(this.participant, DecisionReason.Wait, DecisionKind.Wait) !== this.participant) {
      this.#holding = false;
      await this.#awaitTurn();
      this.#holding = true;
    }
    this.setStatus(ParticipantStatus.Runnable);
    const nowNs = this.virtualNs();
    for (let slot = 0; slot < WAIT_SLOTS; slot++) {
      const wait = this.#waits[slot];
      if (wait === undefined || !core.waitOver(this.participant, slot, nowNs)) continue;
      this.#waits[slot] = undefined;
      core.clearWait(this.participant, slot);
      wait.resolve(Atomics.load(wait.words, wait.index) !== wait.expected ? 'ok' : 'timed-out');
    }
    for (const late of this.#late.splice(0)) late();
    this.#schedulePass();
  }

  /** The first decision waits until every participant has started (so real start order does not matter). */
  async #awaitAllStarted(): Promise<void> {
    const core = this.core;
    const stall = new StallWatch(core, this.participant);
    for (;;) {
      const started = Atomics.load(core.int32, core.started);
      if (started >= core.participants) return;
      stall.check();
      await waitSlice(core.int32, core.started, started);
    }
  }

  async #awaitTurn(): Promise<void> {
    const core = this.core;
    const turn = core.turn(this.participant);
    const stall = new StallWatch(core, this.participant);
    for (;;) {
      const seen = Atomics.load(core.int32, turn);
      if (Atomics.load(core.int32, core.running) === this.participant) break;
      stall.check();
      await waitSlice(core.int32, turn, seen);
    }
    if (core.aborted()) throw core.abortedError();
  }

  /**
   * Main leaves: its pending waits end as timed out (a host that no longer schedules), except
   * cancellable sleeps, which their callers' signals end (a --seconds timer cut short by the run's end).
   */
  #settleAtFinish(): void {
    for (let slot = 0; slot < WAIT_SLOTS; slot++) {
      const wait = this.#waits[slot];
      if (wait === undefined) continue;
      this.#waits[slot] = undefined;
      this.core.clearWait(this.participant, slot);
      if (!wait.cancellable) wait.resolve('timed-out');
    }
    for (const call of this.#late.splice(0)) call();
  }

  #rejectAll(error: unknown): void {
    for (let slot = 0; slot < WAIT_SLOTS; slot++) {
      const wait = this.#waits[slot];
      if (wait === undefined) continue;
      this.#waits[slot] = undefined;
      this.core.clearWait(this.participant, slot);
      wait.reject(error);
    }
    // After an abort the late calls fail at once (as finished); otherwise they wait for the next turn.
    if (this.core.aborted()) this.#finished = true;
    for (const call of this.#late.splice(0)) call();
  }
}

/**
 * One bounded Atomics.waitAsync slice. Node 20 does not count a pending waitAsync as event-loop work
 * (a process with nothing else to do would exit under it), so a timer of the same length races it.
 */
function waitSlice(int32: Int32Array, index: number, expected: number): Promise<void> {
  const wait = Atomics.waitAsync(int32, index, expected, TURN_SLICE_MS);
  if (!wait.async) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, TURN_SLICE_MS);
    void wait.value.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
