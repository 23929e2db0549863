// Bounded waits on a lock word, for the instrumented locks. Workers block in Atomics.wait slices;
// the main thread never blocks (a blocked event loop freezes piscina and vitest) and waits with
// Atomics.waitAsync. Every wait has a deadline; the caller turns "deadline passed" into a typed
// LockWaitTimeout naming the lock, its holder and the waiter.
//
// No lost wakeups: a waiter increments the lock's `waiters` word, then retries the acquisition,
// then waits only while the state word still holds the value its failed attempt observed
// (Atomics.wait compares and sleeps atomically with respect to notify). A releaser changes the
// state word, then loads `waiters` and notifies if it is non-zero. All seq-cst: either the waiter's
// retry sees the release, or the releaser sees the waiter and wakes it (Dekker-style pairing).
//
// Node 20 does not count a pending waitAsync as event-loop work (a process with nothing else to do
// exits under it), so each async wait is raced against a timer of the same length, as in
// src/host/srcu.ts; the timer also bounds the wait.

import { isMainThread } from 'node:worker_threads';
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

/** Workers: retries `attempt` until it succeeds (true) or `deadline` (performance.now) passes (false). */
export function waitBlocking(word: LockWord, attempt: AcquireAttempt, deadline: number): boolean {
  assertMayBlock('a blocking lock wait');
  Atomics.add(word.int32, word.waitersIndex, 1);
  try {
    for (;;) {
      const observed = attempt();
      if (observed === undefined) return true;
      const remaining = deadline - performance.now();
      if (remaining <= 0) return false;
      Atomics.wait(word.int32, word.stateIndex, observed, Math.min(WAIT_SLICE_MS, remaining));
    }
  } finally {
    Atomics.sub(word.int32, word.waitersIndex, 1);
  }
}

/** Main (or any thread that must not block): the same loop with waitAsync. */
export async function waitAsync(word: LockWord, attempt: AcquireAttempt, deadline: number): Promise<boolean> {
  Atomics.add(word.int32, word.waitersIndex, 1);
  try {
    for (;;) {
      const observed = attempt();
      if (observed === undefined) return true;
      const remaining = deadline - performance.now();
      if (remaining <= 0) return false;
      const result = Atomics.waitAsync(word.int32, word.stateIndex, observed, Math.min(WAIT_SLICE_MS, remaining));
      if (result.async) await settleWithin(result.value, Math.min(WAIT_SLICE_MS, remaining));
    }
  } finally {
    Atomics.sub(word.int32, word.waitersIndex, 1);
  }
}

/** Releaser side: wake the waiters if there are any (after the state word changed). */
export function wakeWaiters(word: LockWord): void {
  if (Atomics.load(word.int32, word.waitersIndex) > 0) Atomics.notify(word.int32, word.stateIndex);
}

function settleWithin(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}
