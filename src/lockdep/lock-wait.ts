// Bounded waits on a lock word, for the instrumented locks. Workers block in Atomics.wait slices;
// the main thread never blocks (a blocked event loop freezes piscina and vitest) and waits with
// Atomics.waitAsync, both through the thread's host (src/host/host-thread.ts), as are the clocks.
// Every wait has a deadline; the caller turns "deadline passed" into a typed LockWaitTimeout
// naming the lock, its holder and the waiter.
//
// No lost wakeups: a waiter increments the lock's `waiters` word, then retries the acquisition,
// then waits only while the state word still holds the value its failed attempt observed
// (Atomics.wait compares and sleeps atomically with respect to notify). A releaser changes the
// state word, then loads `waiters` and notifies if it is non-zero. All seq-cst: either the waiter's
// retry sees the release, or the releaser sees the waiter and wakes it (Dekker-style pairing).
//
// Node 20 does not count a pending waitAsync as event-loop work (a process with nothing else to do
// exits under it), so the main host races each async wait against a timer of the same length.

import { isMainThread } from 'node:worker_threads';
import { hostThread, mainHostThread } from '../host/host-thread.js';
import { LockdepMisuseError } from './lockdep-errors.js';

/** Longest single wait; the loop re-checks the deadline in between. */
export const WAIT_SLICE_MS = 50;

/** One acquisition attempt: undefined when acquired, else the state word value to wait on. */
export type AcquireAttempt = () => number | undefined;

export interface LockWord {
  readonly int32: Int32Array;
  readonly stateIndex: number;
  readonly waitersIndex: number;
}

export function checkTimeout(timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new LockdepMisuseError('unboundedTimeout', String(timeoutMs));
}

export function assertMayBlock(what: string): void {
  if (isMainThread) throw new LockdepMisuseError('blockingOnMainThread', what);
}

export type WaitOutcome = 'acquired' | 'timedOut' | 'aborted';

/** True once the run is being torn down (Lockdep.abortWaits): checked once per wait slice. */
export type AbortCheck = () => boolean;
const NEVER_ABORTED: AbortCheck = () => false;

/** Workers: retries `attempt` until it succeeds, `deadline` (the host clock, nowMs) passes, or `aborted()`. */
export function waitBlocking(word: LockWord, attempt: AcquireAttempt, deadline: number, aborted: AbortCheck = NEVER_ABORTED): WaitOutcome {
  assertMayBlock('a blocking lock wait');
  const host = hostThread();
  Atomics.add(word.int32, word.waitersIndex, 1);
  try {
    for (;;) {
      const observed = attempt();
      if (observed === undefined) return 'acquired';
      if (aborted()) return 'aborted';
      const remaining = deadline - host.nowMs();
      if (remaining <= 0) return 'timedOut';
      host.wait(word.int32, word.stateIndex, observed, Math.min(WAIT_SLICE_MS, remaining));
    }
  } finally {
    Atomics.sub(word.int32, word.waitersIndex, 1);
  }
}

/** Main (or any thread that must not block): the same loop with waitAsync. */
export async function waitAsync(
  word: LockWord,
  attempt: AcquireAttempt,
  deadline: number,
  aborted: AbortCheck = NEVER_ABORTED,
): Promise<WaitOutcome> {
  const host = mainHostThread();
  Atomics.add(word.int32, word.waitersIndex, 1);
  try {
    for (;;) {
      const observed = attempt();
      if (observed === undefined) return 'acquired';
      if (aborted()) return 'aborted';
      const remaining = deadline - host.nowMs();
      if (remaining <= 0) return 'timedOut';
      await host.waitAsync(word.int32, word.stateIndex, observed, Math.min(WAIT_SLICE_MS, remaining));
    }
  } finally {
    Atomics.sub(word.int32, word.waitersIndex, 1);
  }
}

// ---- handshake words (lock replays and scenario files order their threads with these) ----
// A handshake word goes from 0 to non-zero once; the setter stores, then notifies. A waiter checks,
// then waits only while the word is still 0, so a store between the check and the wait is seen.

/** Workers: waits until int32[index] !== 0; false at the deadline or when aborted. */
export function waitForWordBlocking(int32: Int32Array, index: number, deadline: number, aborted: AbortCheck = NEVER_ABORTED): boolean {
  assertMayBlock('a handshake wait');
  const host = hostThread();
  for (;;) {
    if (Atomics.load(int32, index) !== 0) return true;
    if (aborted()) return false;
    const remaining = deadline - host.nowMs();
    if (remaining <= 0) return false;
    host.wait(int32, index, 0, Math.min(WAIT_SLICE_MS, remaining));
  }
}

/** Main: the same with waitAsync. */
export async function waitForWordAsync(
  int32: Int32Array,
  index: number,
  deadline: number,
  aborted: AbortCheck = NEVER_ABORTED,
): Promise<boolean> {
  const host = mainHostThread();
  for (;;) {
    if (Atomics.load(int32, index) !== 0) return true;
    if (aborted()) return false;
    const remaining = deadline - host.nowMs();
    if (remaining <= 0) return false;
    await host.waitAsync(int32, index, 0, Math.min(WAIT_SLICE_MS, remaining));
  }
}

/** Sets a handshake word and wakes its waiters. */
export function setWord(int32: Int32Array, index: number, value = 1): void {
  Atomics.store(int32, index, value);
  Atomics.notify(int32, index);
}

/** Workers: sleeps `ms` (a scenario file's "sleep" step), in bounded slices, giving up when aborted. */
export function sleepBlocking(ms: number, aborted: AbortCheck = NEVER_ABORTED): void {
  assertMayBlock('a sleep');
  const host = hostThread();
  const nothing = new Int32Array(new SharedArrayBuffer(4));
  const deadline = host.nowMs() + ms;
  for (let remaining = ms; remaining > 0 && !aborted(); remaining = deadline - host.nowMs()) {
    host.wait(nothing, 0, 0, Math.min(WAIT_SLICE_MS, remaining));
  }
}

/** Releaser side: wake the waiters if there are any (after the state word changed). */
export function wakeWaiters(word: LockWord): void {
  if (Atomics.load(word.int32, word.waitersIndex) > 0) Atomics.notify(word.int32, word.stateIndex);
}
