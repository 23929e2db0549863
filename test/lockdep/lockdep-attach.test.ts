// Lockdep.attach (each vCPU's KvmLocks calls it when its host CPU first builds the vCPU) costs the
// same whatever the number of thread slots: a 4096-vCPU VM attaches 4096 times, and a per-slot walk
// at each made start-up quadratic. The cost is counted as the thread-slot index look-ups
// (LockdepIndices.thread) one attach makes, in a region of 5 and one of 4100 worker slots.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lockdep } from '../../src/lockdep/lockdep.js';
import { LockClassRegistry } from '../../src/lockdep/lock-class.js';
import { LockdepIndices } from '../../src/lockdep/lockdep-layout.js';
import { SELFTEST_CLASSES } from './lockdep-test-support.js';

function lookUpsOfOneAttach(workerThreads: number): number {
  const main = Lockdep.create(new LockClassRegistry(SELFTEST_CLASSES), { workerThreads });
  const lookUps = vi.spyOn(LockdepIndices.prototype, 'thread');
  const attached = Lockdep.attach(main.shared, { threadSlot: workerThreads, vcpu: workerThreads - 1 });
  const count = lookUps.mock.calls.length;
  lookUps.mockRestore();
  // The attached view works: its slot is its own, and it reads the stacks of any slot.
  expect(attached.threads.current()).toBe(workerThreads);
  expect(attached.stacks.depth(1)).toBe(0);
  return count;
}

describe('Lockdep.attach', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('makes as many thread-slot look-ups with 4100 worker slots as with 5 (no walk over the slots)', () => {
    const small = lookUpsOfOneAttach(5);
    const large = lookUpsOfOneAttach(4100);
    expect(large).toBe(small);
    expect(large).toBeLessThan(16);
  });
});
