// The physical APIC ID table region sized by the VM (KVM avic_get_physical_id_table_order for
// max_vcpu_ids = maxVcpus): one page up to 512 vCPUs and without the x2AVIC 4K extension, up to 8
// contiguous pages (32 KiB, 4096 entries) with it, always page-aligned in the control buffer; and
// one region of APIC pages under the upstream policy, two under rfc-v2.
import { describe, expect, it } from 'vitest';
import { vmControlLayout, type VmControlRegion } from '../../../src/kvm/control/vm-layout.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { validateConfig, vmBufferSizes, type VmConfig } from '../../../src/kvm/vm/vm-config.js';

const sizes = (config: VmConfig) => vmBufferSizes(validateConfig(config));

describe('the physical APIC ID table region', () => {
  it('is sized by the VM: 512 entries (one page) up to 512 vCPUs or without the extension, up to 4096 with it', () => {
    expect(sizes({ vcpus: 4096 }).physicalApicIdTableEntries).toBe(4096);
    expect(sizes({ vcpus: 2, maxVcpus: 1500 }).physicalApicIdTableEntries).toBe(2048);
    expect(sizes({ vcpus: 600 }).physicalApicIdTableEntries).toBe(1024);
    expect(sizes({ vcpus: 512 }).physicalApicIdTableEntries).toBe(512);
    expect(sizes({ vcpus: 600, x2avicExtended: false }).physicalApicIdTableEntries).toBe(512);
    expect(sizes({ vcpus: 300, x2avic: false }).physicalApicIdTableEntries).toBe(512);
    expect(sizes({ vcpus: 2 }).physicalApicIdTableEntries).toBe(512);
  });

  it.each([512, 1024, 2048, 4096])('%i entries: a page-aligned region of entries x 8 bytes, overlapping nothing', (entries) => {
    const layout = vmControlLayout(4096, entries);
    const names = Object.keys(layout.regions) as VmControlRegion[];
    const spans = names
      .map((name) => ({ name, start: layout.regionOffsets[name], end: layout.regionOffsets[name] + layout.regionBytes[name] }))
      .sort((a, b) => a.start - b.start);
    expect(spans.slice(1).filter((span, index) => span.start < spans[index]!.end)).toEqual([]);
    expect(layout.regionBytes.physicalApicIdTable).toBe(entries * 8);
    expect(layout.regionOffsets.physicalApicIdTable % 4096).toBe(0);
    expect(layout.regionOffsets.logicalApicIdTable % 4096).toBe(0);
  });

  it('refuses a table that is not whole pages', () => {
    expect(() => vmControlLayout(4, 600)).toThrow(/whole pages of 512 entries, got 600/);
  });

  it('VmControlViews maps the table with every entry of its region', () => {
    const memory = new VmControlViews(allocateVmBuffers(4, 1 << 16, { physicalApicIdTableEntries: 4096 }));
    expect(memory.physicalApicIdTable.entryCount).toBe(4096);
    expect(memory.buffers.physicalApicIdTableEntries).toBe(4096);
  });
});

describe('APIC page regions', () => {
  it('one region when asked (upstream), two by default (rfc-v2 alternates them)', () => {
    expect(allocateVmBuffers(4, 1 << 16, { apicPageRegions: 1 }).apicPages.byteLength).toBe(4 * 4096);
    expect(allocateVmBuffers(4, 1 << 16).apicPages.byteLength).toBe(2 * 4 * 4096);
  });

  it('a VM asks for one under upstream (its pages never move) and two under rfc-v2', () => {
    expect(sizes({ vcpus: 4 }).apicPageRegions).toBe(1);
    expect(sizes({ vcpus: 4, policy: 'rfc-v2' }).apicPageRegions).toBe(2);
  });
});
