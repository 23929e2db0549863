// The instrumented locks on the main thread (async acquisition, never blocking the event loop),
// with other threads played by thread slots: holder words, validator hooks, typed errors for
// unbalanced releases, bounded waits that name holder and waiter, and the wait-for dump.

import { describe, expect, it } from 'vitest';
import { Srcu } from '../../src/host/srcu.js';
import { InstrumentedMutex } from '../../src/lockdep/instrumented-lock.js';
import { InstrumentedRwSemaphore } from '../../src/lockdep/instrumented-rw-semaphore.js';
import { InstrumentedSrcu } from '../../src/lockdep/instrumented-srcu.js';
import { LockWaitTimeout, LockdepMisuseError } from '../../src/lockdep/lockdep-errors.js';
import { LockMode } from '../../src/lockdep/lockdep-layout.js';
import type { Lockdep } from '../../src/lockdep/lockdep.js';
import { buildWaitForGraph, formatWaitForGraph } from '../../src/lockdep/wait-for-graph.js';
import { asThread, kvmLockdep, selftestLockdep } from './lockdep-test-support.js';

const SHORT_MS = 60;
const LONG_MS = 5_000;

/** Yields to the event loop until `count` threads are blocked on lock waits (never a fixed sleep). */
async function untilWaiting(lockdep: Lockdep, count: number): Promise<void> {
  const deadline = performance.now() + LONG_MS;
  const waiting = (): number =>
    Array.from({ length: lockdep.threads.threadSlots }, (_, slot) => lockdep.threads.waiting(slot)).filter(Boolean).length;
  while (waiting() < count) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${count} waiting threads`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function newSrcu(): Srcu {
  return new Srcu(new Int32Array(new SharedArrayBuffer(Srcu.regionBytes(5))), 0, 5);
}

describe('InstrumentedMutex on the main thread', () => {
  it('lockAsync takes the lock, records the holder and the held lock; unlock frees both', async () => {
    const lockdep = kvmLockdep();
    const slotsLock = InstrumentedMutex.create(lockdep, 'kvm->slots_lock');
    await slotsLock.lockAsync('kvm_vm_ioctl_set_memory_region', LONG_MS);

    expect(slotsLock.holder()).toBe(0);
    expect(() => lockdep.assertHeld('kvm->slots_lock')).not.toThrow();
    slotsLock.unlock();
    expect(slotsLock.holder()).toBeUndefined();
    expect(lockdep.heldLocks()).toEqual([]);
  });

  it('unlocking a mutex not held is a typed error (release of a lock not held)', () => {
    const lockdep = kvmLockdep();
    const kvmLock = InstrumentedMutex.create(lockdep, 'kvm->lock');

    expect(() => kvmLock.unlock()).toThrow(LockdepMisuseError);
    expect(() => kvmLock.unlock()).toThrow('main is trying to release kvm->lock, which is not locked');
  });

  it('unlocking a mutex another thread holds names that holder', () => {
    const lockdep = kvmLockdep();
    const kvmLock = InstrumentedMutex.create(lockdep, 'kvm->lock');
    asThread(lockdep, 2);
    kvmLock.tryLock('vcpu create');
    asThread(lockdep, 0);

    expect(() => kvmLock.unlock()).toThrow('held by vCPU 1/worker 2');
  });

  it('the blocking lock() refuses to run on the main thread', () => {
    const lockdep = kvmLockdep();
    const kvmLock = InstrumentedMutex.create(lockdep, 'kvm->lock');
    asThread(lockdep, 1);
    kvmLock.tryLock('held elsewhere');
    asThread(lockdep, 0);

    expect(() => kvmLock.lock('main blocking', LONG_MS)).toThrow(/main thread must not block/);
  });

  it('a bounded async wait times out with LockWaitTimeout naming the lock, holder and waiter', async () => {
    const lockdep = kvmLockdep();
    const slotsLock = InstrumentedMutex.create(lockdep, 'kvm->slots_lock');
    asThread(lockdep, 3);
    slotsLock.tryLock('vCPU 2 holds slots_lock');
    asThread(lockdep, 0);

    const failure = await slotsLock.lockAsync('main waits', SHORT_MS).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(LockWaitTimeout);
    expect(failure).toMatchObject({ lockName: 'kvm->slots_lock', holderNames: ['vCPU 2/worker 3'], waiterName: 'main' });
    expect(lockdep.threads.waiting(0)).toBeUndefined();
  });

  it('two main contexts exclude each other without blocking the event loop', async () => {
    const lockdep = selftestLockdep();
    const mutex = InstrumentedMutex.create(lockdep, 'A');
    const order: string[] = [];
    let releaseFirst!: () => void;
    const firstMayRelease = new Promise<void>((resolve) => (releaseFirst = resolve));
    const first = lockdep.runInMainContext('first', async () => {
      await mutex.lockAsync('first', LONG_MS);
      order.push('first has it');
      await firstMayRelease;
      order.push('first releases');
      mutex.unlock();
    });
    const second = lockdep.runInMainContext('second', async () => {
      await mutex.lockAsync('second', LONG_MS);
      order.push('second has it');
      mutex.unlock();
    });
    await untilWaiting(lockdep, 1);
    releaseFirst();
    await Promise.all([first, second]);

    expect(order).toEqual(['first has it', 'first releases', 'second has it']);
  });

  it('main contexts get the lock in the order they asked; one that unlocks and asks again queues behind them', async () => {
    const lockdep = selftestLockdep();
    const mutex = InstrumentedMutex.create(lockdep, 'A');
    const grants: string[] = [];
    // "loop" takes the lock three times in a row, as an update loop does; the others ask once each,
    // while loop holds it the first time.
    const loop = lockdep.runInMainContext('loop', async () => {
      for (let round = 1; round <= 3; round++) {
        await mutex.lockAsync('loop', LONG_MS);
        grants.push(`loop ${round}`);
        if (round === 1) await untilWaiting(lockdep, 2);
        mutex.unlock();
      }
    });
    const others = ['second', 'third'].map((name) =>
      lockdep.runInMainContext(name, async () => {
        await mutex.lockAsync(name, LONG_MS);
        grants.push(name);
        mutex.unlock();
      }),
    );
    await Promise.all([loop, ...others]);

    expect(grants).toEqual(['loop 1', 'second', 'third', 'loop 2', 'loop 3']);
  });

  it('taking a free lock passes through the event loop: a loop of acquisitions lets queued callbacks run', async () => {
    const lockdep = selftestLockdep();
    const mutex = InstrumentedMutex.create(lockdep, 'A');
    for (let round = 0; round < 3; round++) {
      let ran = false;
      setImmediate(() => {
        ran = true;
      });
      await mutex.lockAsync('loop', LONG_MS);
      mutex.unlock();
      expect(ran).toBe(true);
    }
  });

  it('a caller queued behind others gives up at its own bound with LockWaitTimeout and leaves the queue', async () => {
    const lockdep = selftestLockdep();
    const mutex = InstrumentedMutex.create(lockdep, 'A');
    asThread(lockdep, 3);
    mutex.tryLock('vCPU 2 holds A');
    asThread(lockdep, 0);
    let headGotIt = false;
    const head = lockdep.runInMainContext('head', async () => {
      await mutex.lockAsync('head', LONG_MS);
      headGotIt = true;
      mutex.unlock();
    });
    const queued = await lockdep.runInMainContext('queued', () => mutex.lockAsync('queued', SHORT_MS)).catch((error: unknown) => error);

    expect(queued).toBeInstanceOf(LockWaitTimeout);
    expect(queued).toMatchObject({ holderNames: ['vCPU 2/worker 3'] });
    asThread(lockdep, 3);
    mutex.unlock();
    asThread(lockdep, 0);
    await head;
    expect(headGotIt).toBe(true);
    expect(mutex.holder()).toBeUndefined();
  });
});

describe('InstrumentedRwSemaphore', () => {
  it('reader-preferring (default): reads are recursive reads, shared between threads', async () => {
    const lockdep = kvmLockdep();
    const apicv = InstrumentedRwSemaphore.create(lockdep, 'kvm->arch.apicv_update_lock');
    asThread(lockdep, 1);
    await apicv.readLockAsync('vCPU 0 refresh', LONG_MS);
    asThread(lockdep, 2);
    await apicv.readLockAsync('vCPU 1 refresh', LONG_MS);

    expect(apicv.readMode).toBe(LockMode.RecursiveRead);
    expect(apicv.readers()).toEqual([1, 2]);
  });

  it('a writer waits for the readers and its timeout names them', async () => {
    const lockdep = kvmLockdep();
    const apicv = InstrumentedRwSemaphore.create(lockdep, 'kvm->arch.apicv_update_lock');
    asThread(lockdep, 1);
    await apicv.readLockAsync('vCPU 0 refresh', LONG_MS);
    asThread(lockdep, 0);

    await expect(apicv.writeLockAsync('inhibit', SHORT_MS)).rejects.toThrow(
      /write lock kvm->arch.apicv_update_lock, held by vCPU 0\/worker 1/,
    );
  });

  it('reader-preferring: a new reader enters while a writer is queued', async () => {
    const lockdep = selftestLockdep();
    const rwsem = InstrumentedRwSemaphore.create(lockdep, 'X1');
    asThread(lockdep, 1);
    await rwsem.readLockAsync('first reader', LONG_MS);
    const writer = lockdep.runInMainContext('writer', async () => {
      await rwsem.writeLockAsync('queued writer', LONG_MS);
      rwsem.writeUnlock();
      return 'written';
    });
    await untilWaiting(lockdep, 1);
    asThread(lockdep, 2);
    await rwsem.readLockAsync('second reader', SHORT_MS);

    expect(rwsem.readers()).toEqual([1, 2]);
    rwsem.readUnlock();
    asThread(lockdep, 1);
    rwsem.readUnlock();
    expect(await writer).toBe('written');
  });

  it('writer-preferring: a queued writer holds back new readers; reads are non-recursive', async () => {
    const lockdep = selftestLockdep();
    const rwsem = InstrumentedRwSemaphore.create(lockdep, 'X1', { writerPreferring: true });
    asThread(lockdep, 1);
    await rwsem.readLockAsync('first reader', LONG_MS);
    const writer = lockdep
      .runInMainContext('writer', async () => {
        await rwsem.writeLockAsync('queued writer', LONG_MS);
        rwsem.writeUnlock();
      })
      .catch((error: unknown) => error);
    await untilWaiting(lockdep, 1);
    asThread(lockdep, 2);

    expect(rwsem.readMode).toBe(LockMode.Read);
    await expect(rwsem.readLockAsync('second reader', SHORT_MS)).rejects.toThrow(LockWaitTimeout);
    asThread(lockdep, 1);
    rwsem.readUnlock();
    expect(await writer).toBeUndefined();
  });

  it('releasing a read lock not held is a typed error', () => {
    const lockdep = selftestLockdep();
    const rwsem = InstrumentedRwSemaphore.create(lockdep, 'X1');

    expect(() => rwsem.readUnlock()).toThrow(/bad unlock balance.*does not hold for read/);
  });
});

describe('InstrumentedSrcu', () => {
  it('read sections are recursive reads of kvm->srcu, tracked per thread', () => {
    const lockdep = kvmLockdep();
    const srcu = InstrumentedSrcu.create(lockdep, newSrcu());
    asThread(lockdep, 1);
    const outer = srcu.readLock(1, 'vcpu_run');
    const inner = srcu.readLock(1, 'nested zap');

    expect(lockdep.heldLocks().map((held) => held.mode)).toEqual([LockMode.RecursiveRead, LockMode.RecursiveRead]);
    expect(srcu.readers()).toEqual([1]);
    srcu.readUnlock(1, inner);
    srcu.readUnlock(1, outer);
    expect(srcu.readers()).toEqual([]);
    expect(lockdep.report()).toBeUndefined();
  });

  it('synchronize waits for the readers; its timeout is a LockWaitTimeout naming them', async () => {
    const lockdep = kvmLockdep();
    const srcu = InstrumentedSrcu.create(lockdep, newSrcu());
    asThread(lockdep, 2);
    srcu.readLock(2, 'exit handler');
    asThread(lockdep, 0);

    const failure = await srcu.synchronize({ site: 'memslot update', timeoutMs: SHORT_MS }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(LockWaitTimeout);
    expect(failure).toMatchObject({ waiterName: 'main', holderNames: ['vCPU 1/worker 2'], waitKind: 'a grace period of' });
  });

  it('synchronize under slots_lock after a vCPU took slots_lock inside SRCU reports the SRCU cycle', async () => {
    const lockdep = kvmLockdep();
    const srcu = InstrumentedSrcu.create(lockdep, newSrcu());
    const slotsLock = InstrumentedMutex.create(lockdep, 'kvm->slots_lock');
    asThread(lockdep, 1);
    const index = srcu.readLock(1, 'vcpu_run');
    slotsLock.tryLock('no SRCU drop'); // trylock: no dependency ...
    slotsLock.unlock();
    srcu.readUnlock(1, index);
    expect(lockdep.graph.allLinks()).toEqual([]);
    asThread(lockdep, 1);
    srcu.readLock(1, 'vcpu_run');
    await slotsLock.lockAsync('kvm_inhibit_apic_access_page', LONG_MS); // ... but a real lock does
    slotsLock.unlock();
    asThread(lockdep, 0);
    await slotsLock.lockAsync('set memory region', LONG_MS);
    await srcu.synchronize({ site: 'synchronize_srcu', timeoutMs: SHORT_MS }).catch(() => undefined);

    expect(lockdep.report()?.cycle).toEqual(['kvm->srcu', 'kvm->slots_lock', 'kvm->srcu']);
  });
});

describe('wait-for graph', () => {
  it('shows who holds what, who waits for what, and a cycle of waits (validator off)', async () => {
    const lockdep = selftestLockdep({ enabled: false });
    const [a, b] = [InstrumentedMutex.create(lockdep, 'A'), InstrumentedMutex.create(lockdep, 'B')];
    let dump = '';
    const chain = (name: string, first: InstrumentedMutex, second: InstrumentedMutex): Promise<unknown> =>
      lockdep
        .runInMainContext(name, async () => {
          await first.lockAsync(`${name}: first`, LONG_MS);
          await new Promise((resolve) => setTimeout(resolve, 10));
          try {
            await second.lockAsync(`${name}: second`, 1_000);
          } finally {
            first.unlock();
          }
        })
        .catch((error: unknown) => error);
    const results = Promise.all([chain('one', a, b), chain('two', b, a)]);
    await untilWaiting(lockdep, 2);
    dump = formatWaitForGraph(buildWaitForGraph(lockdep));
    const [one, two] = await results;

    expect(dump).toContain('main/one waits');
    expect(dump).toMatch(/DEADLOCK: a cycle of waits:\n {2}main\/(one|two) -> [AB] -> main\/(one|two) -> [AB] -> main\/(one|two)/);
    expect([one, two].some((error) => error instanceof LockWaitTimeout)).toBe(true);
  });

  it('a thread waiting for a lock it holds is a cycle of one', async () => {
    const lockdep = selftestLockdep({ enabled: false });
    const a = InstrumentedMutex.create(lockdep, 'A');
    await a.lockAsync('first', LONG_MS);
    const again = a.lockAsync('again', 100).catch((error: unknown) => error);
    await untilWaiting(lockdep, 1);
    const graph = buildWaitForGraph(lockdep);

    expect(graph.cycle).toEqual([0, 0]);
    expect(await again).toBeInstanceOf(LockWaitTimeout);
  });
});
