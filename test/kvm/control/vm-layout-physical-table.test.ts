// The physical APIC ID table region in whole pages (1 to 8: KVM avic_get_physical_id_table_order),
// always page-aligned in the control buffer; and the regions of APIC pages.
import { describe, expect, it } from 'vitest';
import { vmControlLayout, type VmControlRegion } from '../../../src/kvm/control/vm-layout.js';
import { allocateVmBuffers, VmMemory } from '../../../src/kvm/control/vm-memory.js';

describe('the physical APIC ID table region', () => {
  it.each([512, 1024, 2048, 4096])('%i entries: a page-aligned region of entries x 8 bytes, overlapping nothing', (entries) => {
    const layout = vmControlLayout(4096, entries);
    const names = Object.keys(layout.regions) as VmControlRegion[];
    const spans = names.map((name) => ({ name, start: layout.regionOffsets[name], end: layout.regionOffsets[name] + layout.regionBytes[name] })).sort((a, b) => a.start - b.start);
    expect(spans.slice(1).filter((span, index) => span.start < spans[index]!.end)).toEqual([]);
    expect(layout.regionBytes.physicalApicIdTable).toBe(entries * 8);
    expect(layout.regionOffsets.physicalApicIdTable % 4096).toBe(0);
    expect(layout.regionOffsets.logicalApicIdTable % 4096).toBe(0);
  });

  it('refuses a table that is not whole pages', () => {
    expect(() => vmControlLayout(4, 600)).toThrow(/whole pages of 512 entries, got 600/);
  });

  it('VmMemory maps the table with every entry of its region', () => {
    const memory = new VmMemory(allocateVmBuffers(4, 1 << 16, { physicalApicIdTableEntries: 4096 }));
    expect(memory.physicalApicIdTable.entryCount).toBe(4096);
    expect(memory.buffers.physicalApicIdTableEntries).toBe(4096);
  });
});

describe('APIC page regions', () => {
  it('one region when asked (upstream), two by default (rfc-v2 alternates them)', () => {
    expect(allocateVmBuffers(4, 1 << 16, { apicPageRegions: 1 }).apicPages.byteLength).toBe(4 * 4096);
    expect(allocateVmBuffers(4, 1 << 16).apicPages.byteLength).toBe(2 * 4 * 4096);
  });
});
