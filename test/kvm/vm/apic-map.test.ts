// The APIC map rebuild (kvm_recalculate_apic_map for the AVIC logical APIC ID table) alone, over a
// bare VmControlViews whose registers the test writes as the vCPUs' LDR, DFR and ID writes would: which
// entries become valid, which are invalidated, and when LOGICAL_ID_ALIASED and APIC_ID_MODIFIED are
// set and cleared (with KVM_REQ_APICV_UPDATE on every vCPU when the bitmap turns).
import { describe, expect, it } from 'vitest';
import { rebuildLogicalApicIdTable } from '../../../src/kvm/vm/apic-map.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { ApicvInhibitReason, apicvInhibitReasons } from '../../../src/kvm/control/apic-inhibit.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';
import { VcpuApicMode } from '../../../src/kvm/control/vcpu-run-state.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { DFR_CLUSTER, resetApicPage } from '../../../src/hw/apic/apic-backing-page.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { decodeLogicalApicIdTableEntry } from '../../../src/hw/avic/logical-apic-id-table.js';

/** `vcpus` created vCPUs, their pages reset as vCPU creation leaves them (flat DFR, LDR 0, ID = index). */
function vmMemory(vcpus: number): VmControlViews {
  const memory = new VmControlViews(allocateVmBuffers(vcpus, 1 << 16));
  for (let vcpu = 0; vcpu < vcpus; vcpu++) {
    Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'apicPageBase'), memory.apicPageRegionBase(0, vcpu));
    resetApicPage(memory.apicPageWords, memory.apicPageBase(vcpu), apicId(vcpu));
  }
  Atomics.store(memory.control, memory.headerIndex('createdVcpus'), vcpus);
  return memory;
}

const write = (memory: VmControlViews, vcpu: number, register: number, value: number): void => {
  memory.apicPageWords[memory.apicPageBase(vcpu) + (register >> 2)] = value;
};
const setLogicalId = (memory: VmControlViews, vcpu: number, logicalId: number): void =>
  write(memory, vcpu, ApicRegister.LogicalDestination, logicalId << 24);

/** Valid entries of the table: index -> vCPU. */
function validEntries(memory: VmControlViews): Map<number, number> {
  const entries = new Map<number, number>();
  for (let index = 0; index < 64; index++) {
    const entry = decodeLogicalApicIdTableEntry(memory.logicalApicIdTable.load(index));
    if (entry.isValid) entries.set(index, entry.guestPhysicalApicId);
  }
  return entries;
}

const apicvUpdateRequested = (memory: VmControlViews, vcpu: number): boolean =>
  (Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'requests')) & VcpuRequest.ApicvUpdate) !== 0;

const clearRequests = (memory: VmControlViews, vcpus: number): void => {
  for (let vcpu = 0; vcpu < vcpus; vcpu++) Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'requests'), 0);
};

describe('rebuildLogicalApicIdTable', () => {
  it('flat model: one entry per set bit of each LDR, naming the vCPU; LDR 0 names nobody', () => {
    const memory = vmMemory(4);
    setLogicalId(memory, 0, 0x01);
    setLogicalId(memory, 1, 0x02);
    setLogicalId(memory, 2, 0x80);
    const { rebuild, entries } = rebuildLogicalApicIdTable(memory, new Map());
    expect(rebuild).toEqual({ entries: 3, aliased: [], logicalIdAliased: false, apicIdModified: false });
    expect(validEntries(memory)).toEqual(
      new Map([
        [0, 0],
        [1, 1],
        [7, 2],
      ]),
    );
    expect(entries).toEqual(validEntries(memory));
    expect(apicvInhibitReasons(memory)).toBe(0);
  });

  it('cluster model: index = cluster * 4 + member', () => {
    const memory = vmMemory(2);
    for (const vcpu of [0, 1]) write(memory, vcpu, ApicRegister.DestinationFormat, DFR_CLUSTER);
    setLogicalId(memory, 0, 0x21); // cluster 2, member 0
    setLogicalId(memory, 1, 0x38); // cluster 3, member 3
    rebuildLogicalApicIdTable(memory, new Map());
    expect(validEntries(memory)).toEqual(
      new Map([
        [8, 0],
        [15, 1],
      ]),
    );
  });

  it('a second rebuild invalidates the entry a vCPU left and writes its new one; the others stay', () => {
    const memory = vmMemory(2);
    setLogicalId(memory, 0, 0x01);
    setLogicalId(memory, 1, 0x02);
    const first = rebuildLogicalApicIdTable(memory, new Map()).entries;
    setLogicalId(memory, 1, 0x10);
    const { rebuild, entries } = rebuildLogicalApicIdTable(memory, first);
    expect(rebuild.entries).toBe(2);
    expect(validEntries(memory)).toEqual(
      new Map([
        [0, 0],
        [4, 1],
      ]),
    );
    expect(entries).toEqual(validEntries(memory));
  });

  it('x2APIC-mode vCPUs have no entry (x2AVIC needs no logical table)', () => {
    const memory = vmMemory(2);
    setLogicalId(memory, 0, 0x01);
    setLogicalId(memory, 1, 0x02);
    Atomics.store(memory.control, memory.controlBlockIndex(1, 'apicMode'), VcpuApicMode.X2apic);
    rebuildLogicalApicIdTable(memory, new Map());
    expect(validEntries(memory)).toEqual(new Map([[0, 0]]));
  });

  it('two vCPUs on one logical ID set LOGICAL_ID_ALIASED (the first keeps the entry); a rebuild without the alias clears it', () => {
    const memory = vmMemory(3);
    setLogicalId(memory, 0, 0x01);
    setLogicalId(memory, 1, 0x01);
    const aliased = rebuildLogicalApicIdTable(memory, new Map());
    expect(aliased.rebuild).toMatchObject({ aliased: [1], logicalIdAliased: true });
    expect(apicvInhibitReasons(memory)).toBe(ApicvInhibitReason.LogicalIdAliased);
    expect(validEntries(memory)).toEqual(new Map([[0, 0]]));
    // The bitmap went from empty to non-empty: every vCPU is asked to update its AVIC state.
    expect([0, 1, 2].map((vcpu) => apicvUpdateRequested(memory, vcpu))).toEqual([true, true, true]);

    clearRequests(memory, 3);
    setLogicalId(memory, 1, 0x02);
    const fixed = rebuildLogicalApicIdTable(memory, aliased.entries);
    expect(fixed.rebuild).toMatchObject({ aliased: [], logicalIdAliased: false });
    expect(apicvInhibitReasons(memory)).toBe(0);
    expect([0, 1, 2].map((vcpu) => apicvUpdateRequested(memory, vcpu))).toEqual([true, true, true]);
  });

  it('a logical ID with several member bits, or flat and cluster models mixed, is aliased too', () => {
    const several = vmMemory(1);
    setLogicalId(several, 0, 0x03);
    expect(rebuildLogicalApicIdTable(several, new Map()).rebuild).toMatchObject({ entries: 0, aliased: [0], logicalIdAliased: true });

    const mixed = vmMemory(2);
    setLogicalId(mixed, 0, 0x01);
    write(mixed, 1, ApicRegister.DestinationFormat, DFR_CLUSTER);
    setLogicalId(mixed, 1, 0x12);
    expect(rebuildLogicalApicIdTable(mixed, new Map()).rebuild).toMatchObject({ entries: 2, aliased: [], logicalIdAliased: true });
    expect(apicvInhibitReasons(mixed)).toBe(ApicvInhibitReason.LogicalIdAliased);
  });

  it('an xAPIC ID other than the vCPU index sets APIC_ID_MODIFIED; writing the index back clears it', () => {
    const memory = vmMemory(2);
    write(memory, 1, ApicRegister.Id, 5 << 24);
    expect(rebuildLogicalApicIdTable(memory, new Map()).rebuild.apicIdModified).toBe(true);
    expect(apicvInhibitReasons(memory)).toBe(ApicvInhibitReason.ApicIdModified);
    // Requests turn with the bitmap only: setting a second reason asks nobody again.
    clearRequests(memory, 2);
    setLogicalId(memory, 0, 0x01);
    setLogicalId(memory, 1, 0x01);
    rebuildLogicalApicIdTable(memory, new Map());
    expect(apicvInhibitReasons(memory)).toBe(ApicvInhibitReason.ApicIdModified | ApicvInhibitReason.LogicalIdAliased);
    expect(apicvUpdateRequested(memory, 0)).toBe(false);

    write(memory, 1, ApicRegister.Id, 1 << 24);
    setLogicalId(memory, 1, 0x02);
    expect(rebuildLogicalApicIdTable(memory, new Map()).rebuild).toMatchObject({ apicIdModified: false, logicalIdAliased: false });
    expect(apicvInhibitReasons(memory)).toBe(0);
  });

  it('vCPUs 255 and up compare their 8-bit xAPIC ID with (u8)index, as KVM does', () => {
    const memory = vmMemory(257);
    // vCPU 256 holds ID 0 from reset ((u8)256): not modified.
    expect(rebuildLogicalApicIdTable(memory, new Map()).rebuild.apicIdModified).toBe(false);
  });
});
