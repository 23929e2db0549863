// Typed errors of the lock-order validator and the instrumented locks. Host misuse gets one typed
// error whose message is written once, here; a possible deadlock is not an error but a report
// (lockdep-splat.ts), because lockdep reports and carries on.

const MISUSE_MESSAGES = {
  releaseNotHeld: 'WARNING: bad unlock balance detected! (release of a lock not held)',
  heldLockStackFull: 'BUG: MAX_LOCK_DEPTH too low! (held-lock stack full)',
  badThreadSlot: 'not a thread slot of this lockdep region',
  mainContextsExhausted: 'no free main-thread context slot (raise dimensions.mainContexts)',
  contextEndedHoldingLocks: 'a main-thread context ended while still holding locks',
  instanceTableFull: 'the lock instance table is full (raise dimensions.lockInstances)',
  badInstance: 'not a lock instance of this kind in this lockdep region',
  registryMismatch: 'the lock class registry differs from the one the region was created with',
  blockingOnMainThread: 'the main thread must not block: use the async acquire (lockAsync / writeLockAsync / synchronize)',
  unboundedTimeout: 'a lock wait needs a finite, non-negative timeout in milliseconds',
  tooManyReaders: 'too many concurrent readers of one rw-semaphore',
} as const;
export type LockdepMisuseReason = keyof typeof MISUSE_MESSAGES;

/** Host misuse of the validator or of an instrumented lock. */
export class LockdepMisuseError extends Error {
  readonly reason: LockdepMisuseReason;
  readonly detail: string;

  constructor(reason: LockdepMisuseReason, detail: string) {
    super(`${MISUSE_MESSAGES[reason]}: ${detail}`);
    this.name = 'LockdepMisuseError';
    this.reason = reason;
    this.detail = detail;
  }
}

/** lockdep_assert_held / lockdep_assert_not_held failed in the current thread. */
export class LockAssertionError extends Error {
  readonly assertion: 'held' | 'notHeld';
  readonly lockName: string;
  readonly threadName: string;

  constructor(assertion: 'held' | 'notHeld', lockName: string, threadName: string, heldLocks: readonly string[]) {
    const expected = assertion === 'held' ? 'must hold' : 'must not hold';
    const holding = heldLocks.length === 0 ? 'no locks' : heldLocks.join(', ');
    super(`${threadName} ${expected} ${lockName} (it holds: ${holding})`);
    this.name = 'LockAssertionError';
    this.assertion = assertion;
    this.lockName = lockName;
    this.threadName = threadName;
  }
}

export interface LockWaitTimeoutDetails {
  readonly lockName: string;
  /** "lock", "read lock", "write lock", "grace period". */
  readonly waitKind: string;
  readonly waiterName: string;
  /** Threads holding the lock when the wait gave up (readers for SRCU); empty if it was free by then. */
  readonly holderNames: readonly string[];
  readonly waitedMs: number;
  readonly cause?: unknown;
}

/** A bounded lock wait ran out: names the lock, who held it, and who waited. */
export class LockWaitTimeout extends Error {
  readonly lockName: string;
  readonly waitKind: string;
  readonly waiterName: string;
  readonly holderNames: readonly string[];
  readonly waitedMs: number;

  constructor(details: LockWaitTimeoutDetails) {
    const holders = details.holderNames.length === 0 ? 'nobody (released as the wait ended)' : details.holderNames.join(', ');
    super(
      `${details.waiterName} timed out after ${details.waitedMs.toFixed(0)} ms waiting for ${details.waitKind} ${details.lockName}, held by ${holders}`,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.name = 'LockWaitTimeout';
    this.lockName = details.lockName;
    this.waitKind = details.waitKind;
    this.waiterName = details.waiterName;
    this.holderNames = details.holderNames;
    this.waitedMs = details.waitedMs;
  }
}

/** A lock wait abandoned because the run is being torn down (Lockdep.abortWaits), not because it ran out. */
export class LockWaitAborted extends Error {
  readonly lockName: string;
  readonly waiterName: string;

  constructor(lockName: string, waitKind: string, waiterName: string) {
    super(`${waiterName} stopped waiting for ${waitKind} ${lockName}: the run is being torn down`);
    this.name = 'LockWaitAborted';
    this.lockName = lockName;
    this.waiterName = waiterName;
  }
}
