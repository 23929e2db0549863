// KVM's locks on the main thread, alone (no VM, no worker threads): withMutex holds and releases,
// slots_lock's assertion, the validator's summary, what the watchdog's dump shows of a holder and a
// waiter, and a vCPU's view (VcpuLocks) attaching to the same instances once.
import { describe, expect, it } from 'vitest';
import { KvmLocks, VcpuLocks, type InjectedLockBug } from '../../../src/kvm/control/kvm-locks.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { MAX_THREAD_SLOTS } from '../../../src/lockdep/lockdep-layout.js';
import { eventually } from '../../support/fake-vcpu.js';

const VCPUS = 2;

function kvmLocks(options: { enabled: boolean; vcpus?: number; injectLockBug?: InjectedLockBug }): {
  locks: KvmLocks;
  memory: VmControlViews;
} {
  const vcpus = options.vcpus ?? VCPUS;
  const memory = new VmControlViews(allocateVmBuffers(vcpus, 1 << 16));
  return { locks: new KvmLocks(memory, vcpus, options), memory };
}

/** A promise and the function that resolves it: the test's side of a handshake. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('KvmLocks', () => {
  it('withMutex holds the mutex for the body and releases it after, also when the body throws', async () => {
    const { locks } = kvmLocks({ enabled: true });
    const holder = await locks.inContext('test', () =>
      locks.withMutex(locks.kvmLock, 'test', async () => {
        expect(locks.kvmLock.holder()).toBe(locks.lockdep.currentThreadSlot());
        return locks.kvmLock.holder();
      }),
    );
    expect(holder).toBeGreaterThan(0); // a main context's own slot, not the main thread's slot 0
    expect(locks.kvmLock.holder()).toBeUndefined();
    const failing = locks.inContext('test', () =>
      locks.withMutex(locks.kvmLock, 'test', async () => {
        throw new Error('the body failed');
      }),
    );
    await expect(failing).rejects.toThrow('the body failed');
    expect(locks.kvmLock.holder()).toBeUndefined();
  });

  it.each([true, false])('assertSlotsLockHeld fails outside kvm->slots_lock and passes inside it (validator on: %s)', async (enabled) => {
    const { locks } = kvmLocks({ enabled });
    expect(() => locks.assertSlotsLockHeld()).toThrow();
    await locks.inContext('test', () => locks.withMutex(locks.slotsLock, 'test', async () => locks.assertSlotsLockHeld()));
    // Held by another context is not held by this one.
    const { opened, open } = gate();
    const holding = locks.inContext('holder', () => locks.withMutex(locks.slotsLock, 'test', () => opened));
    await eventually(() => locks.slotsLock.holder() !== undefined);
    await locks.inContext('other', async () => expect(() => locks.assertSlotsLockHeld()).toThrow());
    open();
    await holding;
  });

  it('summary(): with the validator on, kvm->slots_lock then kvm->lock (against locking.rst) is reported', async () => {
    const { locks } = kvmLocks({ enabled: true });
    expect(locks.summary()).toEqual({ enabled: true });
    await locks.inContext('test', () =>
      locks.withMutex(locks.slotsLock, 'test', () => locks.withMutex(locks.kvmLock, 'test', async () => undefined)),
    );
    const summary = locks.summary();
    expect(summary.report?.cycle).toEqual(expect.arrayContaining(['kvm->lock', 'kvm->slots_lock']));
    expect(summary.report?.text).toContain('possible circular locking dependency');
  });

  it('summary(): with the validator off, the same order is not reported', async () => {
    const { locks } = kvmLocks({ enabled: false });
    await locks.inContext('test', () =>
      locks.withMutex(locks.slotsLock, 'test', () => locks.withMutex(locks.kvmLock, 'test', async () => undefined)),
    );
    expect(locks.summary()).toEqual({ enabled: false });
  });

  it('the validator needs thread slots: the largest VM (4096 vCPUs) fits with it on; more than the slots is a RangeError', () => {
    expect(() => kvmLocks({ enabled: true, vcpus: 4096 })).not.toThrow();
    // The shared views of a 4096-vCPU VM, asked for more vCPUs than lockdep has thread slots for.
    const memory = new VmControlViews(allocateVmBuffers(4096, 1 << 16));
    expect(() => new KvmLocks(memory, MAX_THREAD_SLOTS - 1, { enabled: true })).toThrow(RangeError);
    expect(() => new KvmLocks(memory, MAX_THREAD_SLOTS - 1, { enabled: false })).not.toThrow();
  });

  it('the watchdog sees a holder and a waiter: locksHeldBy, waitsOnCycle (no cycle) and the wait-for graph', async () => {
    const { locks } = kvmLocks({ enabled: false });
    const { opened, open } = gate();
    let holderSlot = -1;
    const holding = locks.inContext('holder', () => {
      holderSlot = locks.lockdep.currentThreadSlot();
      return locks.withMutex(locks.slotsLock, 'holder', () => opened);
    });
    await eventually(() => locks.slotsLock.holder() === holderSlot);
    let waiterSlot = -1;
    const waiting = locks.inContext('waiter', () => {
      waiterSlot = locks.lockdep.currentThreadSlot();
      return locks.withMutex(locks.slotsLock, 'waiter', async () => undefined);
    });
    await eventually(() => locks.lockdep.threads.waiting(waiterSlot) !== undefined);

    expect(locks.locksHeldBy(holderSlot)).toEqual({ held: ['kvm->slots_lock'] });
    expect(locks.locksHeldBy(waiterSlot)).toEqual({ held: [], waitingFor: 'lock kvm->slots_lock' });
    expect(locks.waitsOnCycle(waiterSlot)).toBe(false);
    expect(locks.waitsOnCycle(holderSlot)).toBe(false); // not waiting at all
    const graph = locks.waitForGraphText();
    expect(graph).toContain('Wait-for graph: 1 thread waiting');
    expect(graph).toMatch(/kvm->slots_lock \[mutex\]: held by /);
    expect(graph).toContain('No cycle of waits');

    open();
    await Promise.all([holding, waiting]);
    expect(locks.locksHeldBy(holderSlot)).toEqual({ held: [] });
  });

  it('shared: the instances a worker attaches by; an injected replay passed through untouched', () => {
    const { locks } = kvmLocks({ enabled: false });
    const { instances } = locks.shared;
    const ids = [instances.kvmLock, instances.slotsLock, instances.slotsArchLock, instances.srcu, ...instances.vcpuMutexes];
    expect(new Set(ids).size).toBe(ids.length);
    expect(instances.vcpuMutexes).toHaveLength(VCPUS);
    expect(locks.shared.injectLockBug).toBeUndefined();
    const injected: InjectedLockBug = { name: 's4', handshake: new SharedArrayBuffer(64) };
    const replay = kvmLocks({ enabled: true, injectLockBug: injected }).locks.shared;
    expect(replay.injectLockBug).toBe(injected);
  });
});

describe("VcpuLocks (a vCPU worker's view, played on this thread)", () => {
  it('attaches the VM-wide locks by instance on first use, once, and holds its own vcpu->mutex', () => {
    const { locks, memory } = kvmLocks({ enabled: false });
    const vcpuLocks = new VcpuLocks(locks.shared, memory, 1);
    expect(vcpuLocks.lockdep.currentThreadSlot()).toBe(2); // the vCPU's own slot: index + 1
    expect(vcpuLocks.vcpuMutex.instance).toBe(locks.vcpuMutexes[1]!.instance);
    expect(vcpuLocks.slotsLock.instance).toBe(locks.slotsLock.instance);
    expect(vcpuLocks.slotsLock).toBe(vcpuLocks.slotsLock);
    expect(vcpuLocks.apicvUpdateLock.instance).toBe(locks.apicvUpdateLock.instance);
    expect(vcpuLocks.apicvUpdateLock).toBe(vcpuLocks.apicvUpdateLock);
    // A lock taken through the vCPU's view is held in the VM's: one lock word, two views.
    vcpuLocks.vcpuMutex.lock('KVM_RUN', 1000);
    expect(locks.vcpuMutexes[1]!.holder()).toBe(2);
    expect(locks.locksHeldBy(2).held).toEqual(['vcpu1->mutex (vcpu->mutex)']);
    vcpuLocks.vcpuMutex.unlock();
    expect(locks.vcpuMutexes[1]!.holder()).toBeUndefined();
  });
});
