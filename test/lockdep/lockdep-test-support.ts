// Shared set-up for the lockdep tests: a registry shaped like lib/locking-selftest.c's locks
// (mutexes A..D, rw-locks X1, Y1, Z1, an SRCU class) and the helpers its scenarios are written in.
// Threads are played one after another on this thread by switching the current thread slot.

import { LockClassRegistry, LockKind, type LockClassSpec } from '../../src/lockdep/lock-class.js';
import { createKvmLockClassRegistry } from '../../src/lockdep/kvm-lock-classes.js';
import { LockMode } from '../../src/lockdep/lockdep-layout.js';
import { Lockdep, type LockdepOptions } from '../../src/lockdep/lockdep.js';

const mutex = (name: string): LockClassSpec => ({ name, kind: LockKind.Mutex, protects: `self-test lock ${name}` });
const rwLock = (name: string): LockClassSpec => ({ name, kind: LockKind.RwSemaphore, protects: `self-test rw-lock ${name}` });

export const SELFTEST_CLASSES: readonly LockClassSpec[] = [
  mutex('A'),
  mutex('B'),
  mutex('C'),
  mutex('D'),
  rwLock('X1'),
  rwLock('Y1'),
  rwLock('Z1'),
  { name: 'srcu', kind: LockKind.Srcu, protects: 'self-test SRCU' },
];

export const { Write: W, Read: r, RecursiveRead: R } = LockMode;

/** Worker slots 1..4 play vCPUs 0..3. */
export function selftestLockdep(options: LockdepOptions = {}): Lockdep {
  return Lockdep.create(new LockClassRegistry(SELFTEST_CLASSES), { workerThreads: 4 }, options);
}

export function kvmLockdep(options: LockdepOptions = {}): Lockdep {
  return Lockdep.create(createKvmLockClassRegistry(), { workerThreads: 4 }, options);
}

/** Plays thread `slot` (vCPU slot - 1 for worker slots, main for 0). */
export function asThread(lockdep: Lockdep, slot: number): void {
  lockdep.setCurrentThread(slot, slot === 0 ? -1 : slot - 1);
}

/** LOCK_UNLOCK_2(first, second) of locking-selftest.c, in thread `slot`. */
export function lockUnlock2(lockdep: Lockdep, slot: number, first: string, second: string, modes: [LockMode, LockMode] = [W, W]): void {
  asThread(lockdep, slot);
  lockdep.acquire(first, modes[0], `take ${first}`);
  lockdep.acquire(second, modes[1], `take ${second} under ${first}`);
  lockdep.release(second);
  lockdep.release(first);
}

/** One event of a rlock W/R test: lock `first` then `second` with the given modes, then unlock both. */
export interface SelftestEvent {
  readonly first: [string, LockMode];
  readonly second: [string, LockMode];
}

export function runEvent(lockdep: Lockdep, slot: number, event: SelftestEvent): void {
  lockUnlock2(lockdep, slot, event.first[0], event.second[0], [event.first[1], event.second[1]]);
}
