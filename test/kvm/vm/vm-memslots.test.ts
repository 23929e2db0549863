// The memslot API (Vm.setMemoryRegion / moveMemoryRegion / deleteMemoryRegion) is
// KVM_SET_USER_MEMORY_REGION: it takes user slots only. KVM's kvm_vm_ioctl_set_memory_region refuses
// an id at or above KVM_USER_MEM_SLOTS with EINVAL before it takes slots_lock, so userspace can never
// move, delete or replace the private APIC-access slot that kvm_alloc_apic_access_page installed.
import { describe, expect, it } from 'vitest';
import {
  APIC_ACCESS_PAGE_PRIVATE_MEMSLOT,
  KVM_USER_MEM_SLOTS,
  MemslotKind,
  PrivateMemslotIdError,
  memslotId,
} from '../../../src/memory/memslot.js';
import { Vm } from '../../../src/kvm/vm/vm.js';

describe("the private APIC-access memslot is out of the memslot API's reach", () => {
  it('moving, deleting or replacing it is a PrivateMemslotIdError, and the slot stays as it was', async () => {
    const vm = await Vm.create({ vcpus: 1 });
    const id = APIC_ACCESS_PAGE_PRIVATE_MEMSLOT;
    const before = vm.memslots.byId(id);
    expect(before?.kind).toBe(MemslotKind.apicAccess);
    const message = `memslot ${id} is KVM's private APIC-access slot: KVM_SET_USER_MEMORY_REGION takes user slots 0..${KVM_USER_MEM_SLOTS - 1} only (EINVAL)`;
    const attempts = [
      () => vm.moveMemoryRegion(id, 0x50000000),
      () => vm.deleteMemoryRegion(id),
      () => vm.setMemoryRegion({ id, guestPhysicalAddress: 0x40000000, size: 4096, hostOffset: 0 }),
    ];
    for (const attempt of attempts) {
      const error: unknown = await attempt().then(
        () => undefined,
        (rejected: unknown) => rejected,
      );
      expect(error).toBeInstanceOf(PrivateMemslotIdError);
      expect((error as Error).message).toBe(message);
    }
    expect(vm.memslots.byId(id)).toEqual(before);
    expect(vm.memslotStatistics.updates).toBe(2); // the RAM slot and the APIC-access page, nothing since
  });

  it('every user slot id is still accepted', async () => {
    const vm = await Vm.create({ vcpus: 1, memoryBytes: 16 << 20 });
    const last = memslotId(KVM_USER_MEM_SLOTS - 1);
    await vm.setMemoryRegion({ id: last, guestPhysicalAddress: 0x40000000, size: 4096, hostOffset: 8 << 20 });
    await vm.moveMemoryRegion(last, 0x50000000);
    expect(vm.memslots.byId(last)?.guestPhysicalAddress).toBe(0x50000000);
    await vm.deleteMemoryRegion(last);
    expect(vm.memslots.byId(last)).toBeUndefined();
  });
});
