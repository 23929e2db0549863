// A hot-add while another vCPU is in guest mode, on VcpuCreation alone (no VM, no worker: the running
// vCPU is a FakeVcpu over its control words). Upstream creates the APIC-access page once, so a
// hot-add waits for nobody; the 2016 RFC resizes the APIC-access memslot at every higher id, and the
// new vCPU is not counted until the running one has acknowledged the resize (two grace periods: the
// old memory goes away), after which it is asked to reload its moved backing page.
import { describe, expect, it } from 'vitest';
import { VcpuCreation } from '../../../src/kvm/vm/vcpu-creation.js';
import { VmMemslots } from '../../../src/kvm/vm/memslot-updates.js';
import { KvmLocks } from '../../../src/kvm/control/kvm-locks.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { backingPagePolicy } from '../../../src/kvm/control/backing-page-policy.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';
import { MemslotKind, MemslotSet, memslotId } from '../../../src/memory/memslot.js';
import { guestPhysicalAddress } from '../../../src/memory/guest-physical-address.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { FakeVcpu, eventually } from '../../support/fake-vcpu.js';

const RAM_BYTES = 1 << 20;
const MAX_VCPUS = 2;

/** As Vm.create does: the RAM slot published, then vCPU 0 created before anything runs. */
async function vmWithOneVcpu(
  policy: 'upstream' | 'rfc-v2',
): Promise<{ memory: VmControlViews; memslots: VmMemslots; creation: VcpuCreation; start: () => void }> {
  const memory = new VmControlViews(allocateVmBuffers(MAX_VCPUS, RAM_BYTES));
  const locks = new KvmLocks(memory, MAX_VCPUS, { enabled: true });
  const ram = MemslotSet.empty(RAM_BYTES).createMemslot({
    id: memslotId(0),
    guestPhysicalAddress: guestPhysicalAddress(0),
    size: RAM_BYTES,
    hostOffset: 0,
    kind: MemslotKind.ram,
  });
  if (!ram.ok) throw new Error(ram.error.message);
  let running = false;
  const memslots = new VmMemslots(memory, locks, ram.set, () => running);
  await locks.inContext('test', () => locks.withMutex(locks.slotsLock, 'test', () => memslots.publish(memslots.set, false)));
  const creation = new VcpuCreation(memory, locks, backingPagePolicy(policy, MAX_VCPUS), memslots, MAX_VCPUS - 1);
  await creation.create(0);
  return {
    memory,
    memslots,
    creation,
    start: () => {
      running = true;
    },
  };
}

describe('hot-add while vCPU 0 is in guest mode, on VcpuCreation alone', () => {
  it('upstream: the APIC-access page exists already, so vCPU 1 is created without waiting for vCPU 0', async () => {
    const { memory, memslots, creation, start } = await vmWithOneVcpu('upstream');
    start();
    const running = new FakeVcpu(memory, 0);
    running.enterGuestMode();
    await creation.create(1);
    expect(memory.createdVcpus()).toBe(2);
    expect(running.kicked(VcpuRequest.MemslotsChanged | VcpuRequest.ApicPageReload)).toBe(false);
    expect(memslots.statistics.gracePeriods).toBe(0);
  });

  it('rfc-v2: vCPU 1 is counted only after vCPU 0 acknowledged the resized memslot; then vCPU 0 reloads its page', async () => {
    const { memory, memslots, creation, start } = await vmWithOneVcpu('rfc-v2');
    start();
    const running = new FakeVcpu(memory, 0);
    running.enterGuestMode();
    const pageBefore = memory.apicPageBase(0);
    const hotAdd = creation.create(1);
    await eventually(() => running.kicked());
    expect(memory.createdVcpus()).toBe(1);
    expect(memory.physicalApicIdTable.isValid(apicId(1))).toBe(false);

    running.reloadRamWindows();
    await hotAdd;
    expect(memory.createdVcpus()).toBe(2);
    expect(memory.physicalApicIdTable.isValid(apicId(1))).toBe(true);
    expect(memslots.statistics.gracePeriods).toBe(2);
    expect(memory.apicPageBase(0)).not.toBe(pageBefore);
    expect(running.kicked(VcpuRequest.ApicPageReload)).toBe(true);
    expect(creation.statistics).toMatchObject({ apicAccessMemslotResizes: 1, backingPagesReinitialised: 1 });
  });
});
