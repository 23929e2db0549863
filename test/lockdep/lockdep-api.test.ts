// The validator's API around the self-tests: assertions, class lookup, the main thread's async
// contexts, attaching a second view (as a worker does), the documented KVM order, the layout.

import { describe, expect, it } from 'vitest';
import { describeLayout } from '../../src/host/shared-layout.js';
import { UnknownLockClassError, LockClassRegistry, LockKind } from '../../src/lockdep/lock-class.js';
import { KVM_DOCUMENTED_ORDERS, KVM_LOCK_CLASS_SPECS } from '../../src/lockdep/kvm-lock-classes.js';
import { LockAssertionError, LockdepMisuseError } from '../../src/lockdep/lockdep-errors.js';
import { lockdepLayout } from '../../src/lockdep/lockdep-layout.js';
import { Lockdep } from '../../src/lockdep/lockdep.js';
import { asThread, kvmLockdep, lockUnlock2, R, r, SELFTEST_CLASSES, selftestLockdep, W } from './lockdep-test-support.js';

describe('assertHeld / assertNotHeld (lockdep_assert_held)', () => {
  it('assertHeld passes while the current thread holds the class, in the asked mode', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 2);
    lockdep.acquire('kvm->slots_lock', W, 'set memory region');
    lockdep.acquire('kvm->arch.apicv_update_lock', R, 'refresh apicv');

    expect(() => lockdep.assertHeld('kvm->slots_lock')).not.toThrow();
    expect(() => lockdep.assertHeld('kvm->slots_lock', 'write')).not.toThrow();
    expect(() => lockdep.assertHeld('kvm->arch.apicv_update_lock', 'read')).not.toThrow();
  });

  it('assertHeld throws a LockAssertionError naming the lock, the thread and what it holds', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 2);
    lockdep.acquire('kvm->srcu', R, 'vcpu_run');

    expect(() => lockdep.assertHeld('kvm->slots_lock')).toThrow(LockAssertionError);
    expect(() => lockdep.assertHeld('kvm->slots_lock')).toThrow('vCPU 1/worker 2 must hold kvm->slots_lock (it holds: kvm->srcu)');
    expect(() => lockdep.assertHeld('kvm->srcu', 'write')).toThrow('must hold kvm->srcu for write');
  });

  it('a lock held by another thread does not count', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('kvm->slots_lock', W, 'held by vCPU 0');
    asThread(lockdep, 0);

    expect(() => lockdep.assertHeld('kvm->slots_lock')).toThrow('main must hold kvm->slots_lock (it holds: no locks)');
  });

  it('assertNotHeld throws while the class is held, and passes after the release', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('kvm->srcu', R, 'exit handler');

    expect(() => lockdep.assertNotHeld('kvm->srcu')).toThrow('vCPU 0/worker 1 must not hold kvm->srcu');
    lockdep.release('kvm->srcu');
    expect(() => lockdep.assertNotHeld('kvm->srcu')).not.toThrow();
  });

  it('assertions are no-ops when the validator is disabled', () => {
    const lockdep = kvmLockdep({ enabled: false });

    expect(() => lockdep.assertHeld('kvm->slots_lock')).not.toThrow();
  });
});

describe('lock classes', () => {
  it('an unknown lock name is a typed error listing the declared classes', () => {
    const lockdep = kvmLockdep();

    expect(() => lockdep.acquire('kvm->slot_lock', W, 'typo')).toThrow(UnknownLockClassError);
    expect(() => lockdep.acquire('kvm->slot_lock', W, 'typo')).toThrow(/unknown lock class "kvm->slot_lock".*kvm->slots_lock/);
  });

  it('declares the KVM classes with fixed ids in declaration order', () => {
    const lockdep = kvmLockdep();

    expect(lockdep.classes.classes.map((lockClass) => [lockClass.id, lockClass.name])).toEqual(
      KVM_LOCK_CLASS_SPECS.map((spec, id) => [id, spec.name]),
    );
    expect(lockdep.resolve('kvm->srcu').kind).toBe(LockKind.Srcu);
  });

  it('the held-lock stack holds 16 locks; the 17th is a typed error', () => {
    const specs = Array.from({ length: 17 }, (_, index) => ({ name: `L${index}`, kind: LockKind.Mutex, protects: 'test' }));
    const lockdep = Lockdep.create(new LockClassRegistry(specs), { workerThreads: 1 });
    for (const spec of specs.slice(0, 16)) lockdep.acquire(spec.name, W, spec.name);

    expect(() => lockdep.acquire('L16', W, 'one too many')).toThrow(/MAX_LOCK_DEPTH/);
  });
});

describe('main-thread async contexts (each chain its own held-lock stack)', () => {
  it('two chains holding locks across awaits do not invent a dependency between their locks', async () => {
    const lockdep = selftestLockdep();
    let releaseFirst!: () => void;
    const firstMayRelease = new Promise<void>((resolve) => (releaseFirst = resolve));
    const first = lockdep.runInMainContext('memslot-update', async () => {
      lockdep.acquire('A', W, 'chain 1: A');
      await firstMayRelease;
      lockdep.assertHeld('A');
      lockdep.release('A');
    });
    const second = lockdep.runInMainContext('inhibit', async () => {
      lockdep.acquire('B', W, 'chain 2: B');
      lockdep.assertNotHeld('A');
      await Promise.resolve();
      lockdep.release('B');
    });
    await second;
    releaseFirst();
    await first;

    expect(lockdep.graph.allLinks()).toEqual([]);
    expect(lockdep.heldLocks()).toEqual([]);
  });

  it('names the context in reports', async () => {
    const lockdep = selftestLockdep();
    lockUnlock2(lockdep, 1, 'A', 'B');
    asThread(lockdep, 0);
    await lockdep.runInMainContext('memslot-update', async () => {
      lockdep.acquire('B', W, 'B');
      lockdep.acquire('A', W, 'A under B');
      lockdep.release('A');
      lockdep.release('B');
    });

    expect(lockdep.report()?.thread).toBe('main/memslot-update');
  });

  it('a context that ends while holding a lock is an error', async () => {
    const lockdep = selftestLockdep();

    await expect(lockdep.runInMainContext('leaky', async () => lockdep.acquire('A', W, 'never released'))).rejects.toThrow(
      LockdepMisuseError,
    );
  });
});

describe('one region, every thread', () => {
  it('a second view attached to the same region sees the same graph, labels and report', () => {
    const main = selftestLockdep();
    const worker = Lockdep.attach(main.shared, { threadSlot: 1, vcpu: 0 });
    worker.acquire('A', W, 'worker: A');
    worker.acquire('B', W, 'worker: B under A');
    worker.release('B');
    worker.release('A');
    main.acquire('B', W, 'main: B');
    main.acquire('A', W, 'main: A under B');

    expect(worker.report()).toEqual(main.report());
    expect(main.report()?.text).toContain('first seen: vCPU 0/worker 1, step: worker: B under A');
    expect(worker.labels.intern('main: B')).toBe(main.labels.intern('main: B'));
  });

  it('attaching with a different class registry is refused', () => {
    const main = selftestLockdep();
    const other = { ...main.shared, classSpecs: [...SELFTEST_CLASSES].reverse() };

    expect(() => Lockdep.attach(other, { threadSlot: 1 })).toThrow(/registry differs/);
  });

  it('can be placed inside a larger buffer at a cache-line offset', () => {
    const registry = new LockClassRegistry(SELFTEST_CLASSES);
    const bytes = Lockdep.regionBytes(registry.size, { workerThreads: 2 });
    const buffer = new SharedArrayBuffer(bytes + 128);
    const lockdep = Lockdep.create(registry, { workerThreads: 2 }, { placement: { buffer, byteOffset: 128 } });
    lockUnlock2(lockdep, 1, 'A', 'B');

    expect(new Int32Array(buffer, 0, 32).every((word) => word === 0)).toBe(true);
    expect(lockdep.graph.allLinks()).toHaveLength(1);
  });

  it('the layout names every region with its writer', () => {
    const text = describeLayout(
      lockdepLayout(9, { workerThreads: 4, mainContexts: 8, lockInstances: 256, labels: 2048, labelBytes: 131072, reportBytes: 32768 }),
    );

    expect(text).toMatch(/dependencies .* writer: validating threads: Atomics.or only/);
    expect(text).toMatch(/debugLocks: i32 writer: main at creation \(1\); the first reporter/);
  });
});

describe('the documented KVM order (locking.rst) as primed dependencies', () => {
  it('is consistent: priming it reports nothing', () => {
    const lockdep = kvmLockdep();
    for (const order of KVM_DOCUMENTED_ORDERS) lockdep.declareOrder(order);

    expect(lockdep.report()).toBeUndefined();
    expect(lockdep.graph.allLinks().length).toBe(KVM_DOCUMENTED_ORDERS.length);
  });

  it('then one wrong-order acquisition is reported at once (S4: kvm->lock inside SRCU)', () => {
    const lockdep = kvmLockdep();
    for (const order of KVM_DOCUMENTED_ORDERS) lockdep.declareOrder(order);
    asThread(lockdep, 1);
    lockdep.acquire('kvm->srcu', R, 'vcpu_run');
    lockdep.acquire('kvm->lock', W, 'kvm_xen_set_evtchn');

    expect(lockdep.report()?.cycle).toEqual(['kvm->lock', 'kvm->srcu', 'kvm->lock']);
    expect(lockdep.report()?.text).toContain(
      'first seen: documented order, step: locking.rst (2023-01): synchronize_srcu is called inside kvm->lock',
    );
  });

  it('a writer-fair cpu_hotplug_lock read inside SRCU closes the S5 four-party cycle', () => {
    const lockdep = kvmLockdep();
    lockUnlock2(lockdep, 0, 'kvm->slots_lock', 'kvm->srcu', [W, W]); // T1: slots_lock -> synchronize (modelled as a write)
    lockUnlock2(lockdep, 2, 'kvm_lock', 'kvm->slots_lock'); // T2: set_nx_huge_pages
    lockUnlock2(lockdep, 3, 'cpu_hotplug_lock', 'kvm_lock', [r, W]); // T3: cpufreq notifier
    lockUnlock2(lockdep, 4, 'kvm->srcu', 'cpu_hotplug_lock', [R, r]); // T4: KVM_RUN -> static_branch_inc

    expect(lockdep.report()?.cycle).toEqual(['cpu_hotplug_lock', 'kvm_lock', 'kvm->slots_lock', 'kvm->srcu', 'cpu_hotplug_lock']);
  });

  it('the same four parties with recursive (reader-preferring) hotplug reads are no deadlock', () => {
    const lockdep = kvmLockdep();
    lockUnlock2(lockdep, 0, 'kvm->slots_lock', 'kvm->srcu', [W, W]);
    lockUnlock2(lockdep, 2, 'kvm_lock', 'kvm->slots_lock');
    lockUnlock2(lockdep, 3, 'cpu_hotplug_lock', 'kvm_lock', [R, W]);
    lockUnlock2(lockdep, 4, 'kvm->srcu', 'cpu_hotplug_lock', [R, R]);

    expect(lockdep.report()).toBeUndefined();
  });
});
