// vCPU creation under both backing-page policies, on the main thread only (no vCPU runs): where each
// vCPU's backing page lives, what the physical APIC ID table points at, how the APIC-access memslot
// grows, and what the 2016 RFC's re-initialisation leaves behind in released pages.
import { describe, expect, it } from 'vitest';
import { Vm, VmConfigError } from '../../../src/kvm/vm/vm.js';
import { LAPIC_PAGES_HOST_PHYSICAL_BASE } from '../../../src/kvm/control/backing-page-policy.js';
import { APIC_ACCESS_PAGE_PRIVATE_MEMSLOT } from '../../../src/memory/memslot.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { setIrrAtomic } from '../../../src/hw/apic/apic-backing-page.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';

const apicAccessSlotPages = (vm: Vm): number | undefined => {
  const slot = vm.memslots.slots.find((entry) => entry.id === APIC_ACCESS_PAGE_PRIVATE_MEMSLOT);
  return slot === undefined ? undefined : slot.size / 4096;
};

/** The page the hardware would use for vCPU `vcpu`, from its physical table entry. */
const hardwarePage = (vm: Vm, vcpu: number): number =>
  vm.policy.resolveBackingPage(vm.memory.physicalApicIdTable.backingPagePointer(apicId(vcpu)));

describe('vCPU creation, upstream policy', () => {
  it('creates vcpus of maxVcpus; a hot-add makes the next id a valid target with a fixed page, and the APIC-access slot stays one page', async () => {
    const vm = await Vm.create({ vcpus: 2, maxVcpus: 4 });
    const table = vm.memory.physicalApicIdTable;
    expect(vm.createdVcpus).toBe(2);
    expect([0, 1, 2, 3].map((vcpu) => table.isValid(apicId(vcpu)))).toEqual([true, true, false, false]);
    expect(await vm.hotAddVcpu()).toBe(2);
    expect(vm.createdVcpus).toBe(3);
    expect(table.isValid(apicId(2))).toBe(true);
    expect(table.backingPagePointer(apicId(2))).toBe(LAPIC_PAGES_HOST_PHYSICAL_BASE + 2 * 4096);
    expect(hardwarePage(vm, 2)).toBe(vm.memory.apicPageBase(2));
    expect(apicAccessSlotPages(vm)).toBe(1);
    expect(vm.creation.statistics).toMatchObject({ apicAccessMemslotResizes: 0, backingPagesReinitialised: 0, strandedIrrBits: 0 });
  });

  it('refuses a hot-add past maxVcpus, and a maxVcpus below vcpus', async () => {
    const vm = await Vm.create({ vcpus: 2 });
    await expect(vm.hotAddVcpu()).rejects.toThrow(/all 2 \(maxVcpus\) exist/);
    await expect(Vm.create({ vcpus: 3, maxVcpus: 2 })).rejects.toBeInstanceOf(VmConfigError);
  });
});

describe('vCPU creation, rfc-v2 policy (the 2016 RFC)', () => {
  it('grows the APIC-access memslot to (id + 1) pages and moves every existing page at each higher id', async () => {
    const vm = await Vm.create({ vcpus: 2, maxVcpus: 4, policy: 'rfc-v2' });
    expect(apicAccessSlotPages(vm)).toBe(2);
    // vCPU 1's creation resized once and re-initialised vCPU 0's page.
    expect(vm.creation.statistics).toMatchObject({ apicAccessMemslotResizes: 1, backingPagesReinitialised: 1 });
    await vm.hotAddVcpu();
    await vm.hotAddVcpu();
    expect(apicAccessSlotPages(vm)).toBe(4);
    expect(vm.creation.statistics).toMatchObject({ apicAccessMemslotResizes: 3, backingPagesReinitialised: 1 + 2 + 3 });
    for (let vcpu = 0; vcpu < 4; vcpu++) {
      // Software (the control word) and hardware (the table entry) agree on the current page.
      expect(hardwarePage(vm, vcpu)).toBe(vm.memory.apicPageBase(vcpu));
      expect(vm.memory.physicalApicIdTable.isValid(apicId(vcpu))).toBe(true);
    }
    // Every owner was asked to reload (KVM_REQ_APIC_PAGE_RELOAD) for its moved page.
    const requests = (vcpu: number): number => Atomics.load(vm.memory.control, vm.memory.controlBlockIndex(vcpu, 'requests'));
    expect([0, 1, 2].map((vcpu) => (requests(vcpu) & VcpuRequest.ApicPageReload) !== 0)).toEqual([true, true, true]);
    expect(requests(3) & VcpuRequest.ApicPageReload).toBe(0);
  });

  it('re-initialises a page from the registers (LDR kept) without its IRR, and counts the stranded IRR bit when the released memory is reused', async () => {
    const vm = await Vm.create({ vcpus: 2, maxVcpus: 4, policy: 'rfc-v2' });
    const words = vm.memory.apicPageWords;
    const before = vm.memory.apicPageBase(0);
    words[before + (ApicRegister.LogicalDestination >> 2)] = 0x0100_0000;
    expect(setIrrAtomic(words, before, 0x40)).toBe(true); // a pending IPI in the page about to be released
    await vm.hotAddVcpu();
    const after = vm.memory.apicPageBase(0);
    expect(after).not.toBe(before);
    expect(words[after + (ApicRegister.LogicalDestination >> 2)]).toBe(0x0100_0000);
    expect(words[after + (ApicRegister.InterruptRequest >> 2) + 2]).toBe(0); // vector 0x40: IRR word 2
    expect(vm.creation.statistics.strandedIrrBits).toBe(0);
    await vm.hotAddVcpu(); // reuses the released memory: the bit left there is counted
    expect(vm.creation.statistics.strandedIrrBits).toBe(1);
  });
});
