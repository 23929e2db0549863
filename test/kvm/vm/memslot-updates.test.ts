// Memslot updates (VmMemslots: kvm_set_memory_region's publish and grace periods) alone on the main
// thread, with no worker: the test plays the vCPUs' side of O5 (docs/architecture.md#orderings)
// through their control words, as Vcpu does (mode, finished, and observedMemslotGeneration stored
// and notified after it reloads its RAM windows on VcpuRequest.MemslotsChanged).
import { describe, expect, it } from 'vitest';
import { VmMemslots, type MemslotEdit } from '../../../src/kvm/vm/memslot-updates.js';
import { VmConfigError } from '../../../src/kvm/vm/vm-config.js';
import { KvmLocks } from '../../../src/kvm/control/kvm-locks.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';
import { MemslotKind, MemslotSet, memslotId } from '../../../src/memory/memslot.js';
import { guestPhysicalAddress } from '../../../src/memory/guest-physical-address.js';
import type { MemslotTranslation } from '../../../src/memory/memslot-snapshot.js';
import { FakeVcpu, eventually } from '../../support/fake-vcpu.js';

const RAM_BYTES = 1 << 20;

function setUp(options: { vcpus: number; running: boolean; readClock?: () => number }): {
  memory: VmControlViews;
  memslots: VmMemslots;
  vcpus: FakeVcpu[];
} {
  const memory = new VmControlViews(allocateVmBuffers(options.vcpus, RAM_BYTES));
  Atomics.store(memory.control, memory.headerIndex('createdVcpus'), options.vcpus);
  const locks = new KvmLocks(memory, options.vcpus, { enabled: true });
  const ram = MemslotSet.empty(RAM_BYTES).createMemslot({
    id: memslotId(0),
    guestPhysicalAddress: guestPhysicalAddress(0),
    size: RAM_BYTES / 2,
    hostOffset: 0,
    kind: MemslotKind.ram,
  });
  if (!ram.ok) throw new Error(ram.error.message);
  const memslots = new VmMemslots(memory, locks, ram.set, () => options.running, options.readClock);
  const vcpus = Array.from({ length: options.vcpus }, (_, vcpu) => new FakeVcpu(memory, vcpu));
  return { memory, memslots, vcpus };
}

const addSlot: MemslotEdit = (set) =>
  set.createMemslot({
    id: memslotId(1),
    guestPhysicalAddress: guestPhysicalAddress(0x4000_0000),
    size: 4096,
    hostOffset: RAM_BYTES / 2,
    kind: MemslotKind.ram,
  });

describe('VmMemslots', () => {
  it('before the vCPUs run: an update publishes the new set and brings the old copy up to date, with no grace period', async () => {
    const { memory, memslots } = setUp({ vcpus: 1, running: false });
    const before = memory.memslots.generation();
    await memslots.update(addSlot, false);
    expect(memory.memslots.generation()).toBe(before + 1);
    expect(memslots.set.byId(memslotId(1))?.guestPhysicalAddress).toBe(0x4000_0000);
    const copies: MemslotTranslation[][] = [[], []];
    memory.memslots.readCopy(0, copies[0]!);
    memory.memslots.readCopy(1, copies[1]!);
    expect(copies[0]).toHaveLength(2);
    expect(copies[1]).toEqual(copies[0]);
    expect(memslots.statistics).toEqual({ updates: 1, gracePeriods: 0, gracePeriodMsTotal: 0, gracePeriodMsMax: 0 });
  });

  it('publish() needs kvm->slots_lock held (lockdep_assert_held)', async () => {
    const { memslots } = setUp({ vcpus: 1, running: false });
    await expect(memslots.publish(memslots.set, false)).rejects.toThrow(/slots_lock/);
    expect(memslots.statistics.updates).toBe(0);
  });

  it('an edit the memslot layer refuses is a VmConfigError with its message, and nothing is published', async () => {
    const { memory, memslots } = setUp({ vcpus: 1, running: false });
    const before = memory.memslots.generation();
    const deleteMissing: MemslotEdit = (set) => set.deleteMemslot(memslotId(7));
    await expect(memslots.update(deleteMissing, true)).rejects.toBeInstanceOf(VmConfigError);
    expect(memory.memslots.generation()).toBe(before);
    expect(memslots.statistics.updates).toBe(0);
  });

  it('a grace period kicks only vCPUs in guest mode and waits until each acknowledges the new generation', async () => {
    const { memory, memslots, vcpus } = setUp({ vcpus: 3, running: true });
    const [inGuest, outside, finished] = vcpus as [FakeVcpu, FakeVcpu, FakeVcpu];
    inGuest.enterGuestMode();
    finished.enterGuestMode();
    finished.finish();
    let done = false;
    const update = memslots.update(addSlot, false).then(() => {
      done = true;
    });
    await eventually(() => inGuest.kicked());
    expect([outside.kicked(), finished.kicked()]).toEqual([false, false]);
    // An older generation is no acknowledgement: the writer kicks again and keeps waiting.
    inGuest.acknowledge(memory.memslots.generation() - 1);
    Atomics.and(memory.control, memory.controlBlockIndex(0, 'requests'), ~VcpuRequest.MemslotsChanged);
    await eventually(() => inGuest.kicked());
    expect(done).toBe(false);

    const windows = inGuest.reloadRamWindows();
    await update;
    expect(windows.map((window) => window.guestPhysicalAddress)).toContain(0x4000_0000);
    expect(memslots.statistics).toMatchObject({ updates: 1, gracePeriods: 1 });
  });

  it('a delete or move waits for two grace periods', async () => {
    const { memslots, vcpus } = setUp({ vcpus: 1, running: true });
    await memslots.update(addSlot, false); // one grace period, over at once: nobody is in guest mode
    expect(memslots.statistics.gracePeriods).toBe(1);
    vcpus[0]!.enterGuestMode();
    const update = memslots.update((set) => set.deleteMemslot(memslotId(1)), true);
    await eventually(() => vcpus[0]!.kicked());
    const windows = vcpus[0]!.reloadRamWindows();
    await update;
    expect(windows).toHaveLength(1);
    expect(memslots.statistics).toMatchObject({ updates: 2, gracePeriods: 1 + 2 });
  });

  it('a vCPU that never acknowledges fails the update within the bound, naming it (a fake clock, one second a read)', async () => {
    let now = 0;
    const { memory, memslots, vcpus } = setUp({ vcpus: 2, running: true, readClock: () => (now += 1000) });
    vcpus[1]!.enterGuestMode();
    const generation = memory.memslots.generation() + 1;
    await expect(memslots.update(addSlot, false)).rejects.toThrow(
      new VmConfigError(`vCPU 1 did not acknowledge memslot generation ${generation} within 10 s`),
    );
  });
});
