// vCPU IDs beyond what the VM's AVIC addresses (avic_init_backing_page, APICV_INHIBIT_REASON_PHYSICAL_ID_TOO_BIG):
// the VM is created anyway, the vCPU gets no physical table entry and AVIC is inhibited for the VM
// (software delivery from then on), and the table is sized as KVM sizes it. Main thread only: no
// vCPU runs, so no worker starts.
import { describe, expect, it } from 'vitest';
import { Vm } from '../../../src/kvm/vm/vm.js';
import { ApicvInhibitReason, apicvInhibitReasons } from '../../../src/kvm/control/apic-inhibit.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';

const validEntries = (vm: Vm): number[] => {
  const table = vm.memory.physicalApicIdTable;
  const valid: number[] = [];
  for (let index = 0; index < table.entryCount; index++) if (table.isValid(apicId(index))) valid.push(index);
  return valid;
};
const tooBig = (vm: Vm): boolean => (apicvInhibitReasons(vm.memory) & ApicvInhibitReason.PhysicalIdTooBig) !== 0;
const range = (count: number): number[] => Array.from({ length: count }, (_, index) => index);

describe('PHYSICAL_ID_TOO_BIG at vCPU creation', () => {
  it('x2AVIC without the extension, 600 vCPUs: created, IDs 0..511 in the one-page table, AVIC inhibited', async () => {
    const vm = await Vm.create({ vcpus: 600, x2avicExtended: false });
    expect(vm.createdVcpus).toBe(600);
    expect(vm.memory.physicalApicIdTable.entryCount).toBe(512);
    expect(validEntries(vm)).toEqual(range(512));
    expect(tooBig(vm)).toBe(true);
    // Every vCPU still has its own reset APIC page (software delivery uses it).
    expect(vm.memory.apicPageBase(599)).toBe(599 * 1024);
  });

  it('with the extension, 600 vCPUs keep AVIC: a two-page table, every entry valid', async () => {
    const vm = await Vm.create({ vcpus: 600 });
    expect(vm.memory.physicalApicIdTable.entryCount).toBe(1024);
    expect(validEntries(vm)).toEqual(range(600));
    expect(tooBig(vm)).toBe(false);
    expect(apicvInhibitReasons(vm.memory)).toBe(0);
  });

  it('without x2AVIC, 255 vCPUs keep AVIC and 256 inhibit it (vCPU 255 has no entry)', async () => {
    const fits = await Vm.create({ vcpus: 255, x2avic: false });
    expect(tooBig(fits)).toBe(false);
    const over = await Vm.create({ vcpus: 256, x2avic: false });
    expect(tooBig(over)).toBe(true);
    expect(validEntries(over)).toEqual(range(255));
  });

  it('a hot-add past the limit sets the inhibit and asks every existing vCPU to update (KVM_REQ_APICV_UPDATE)', async () => {
    const vm = await Vm.create({ vcpus: 2, maxVcpus: 3 });
    // Test knob: avic_init_backing_page's max_id lowered to 1, so vCPU 2 is beyond it.
    vm.creation.avicMaxPhysicalId = 1;
    expect(tooBig(vm)).toBe(false);
    expect(await vm.hotAddVcpu()).toBe(2);
    expect(tooBig(vm)).toBe(true);
    expect(validEntries(vm)).toEqual([0, 1]);
    const requests = (vcpu: number): number => Atomics.load(vm.memory.control, vm.memory.controlBlockIndex(vcpu, 'requests'));
    expect([0, 1].map((vcpu) => (requests(vcpu) & VcpuRequest.ApicvUpdate) !== 0)).toEqual([true, true]);
  });
});
