// The VM control buffer layout (src/kvm/control/vm-layout.ts) for 1, 2 and 255 vCPUs: regions never overlap,
// every region starts on a cache line (the APIC ID tables on a page, as the hardware tables are),
// per-vCPU structs are whole cache lines so two vCPUs never share one, and every field names its writer.

import { describe, expect, it } from 'vitest';
import { CACHE_LINE_BYTES, type FieldSpec, type StructLayout } from '../../../src/host/shared-layout.js';
import {
  HostCpuState,
  HostCpuStatistics,
  HostRunQueue,
  HostTask,
  LOGICAL_APIC_ID_TABLE_ENTRIES,
  PHYSICAL_APIC_ID_TABLE_ENTRIES,
  VcpuControlBlock,
  VcpuGuestReport,
  VcpuStatistics,
  VmHeader,
  vmControlLayout,
  type VmControlRegion,
} from '../../../src/kvm/control/vm-layout.js';

const VCPU_COUNTS = [1, 2, 255] as const;
const PAGE_BYTES = 4096;

/** The per-vCPU struct arrays: one instance per vCPU (one doorbell line per host thread, one per vCPU). */
const PER_VCPU_REGIONS = [
  ['hostCpus', HostCpuState],
  ['hostCpuStatistics', HostCpuStatistics],
  ['runQueues', HostRunQueue],
  ['hostTasks', HostTask],
  ['vcpuControlBlocks', VcpuControlBlock],
  ['vcpuStatistics', VcpuStatistics],
  ['vcpuGuestReports', VcpuGuestReport],
] as const satisfies ReadonlyArray<readonly [VmControlRegion, StructLayout<string>]>;

const ALL_STRUCTS: readonly StructLayout<string>[] = [VmHeader, ...PER_VCPU_REGIONS.map(([, struct]) => struct)];

const FIELD_BYTES = { i32: 4, f64: 8 } as const;

function regionsOf(vcpuCount: number) {
  const layout = vmControlLayout(vcpuCount);
  const names = Object.keys(layout.regions) as VmControlRegion[];
  return { layout, names };
}

describe.each(VCPU_COUNTS)('vmControlLayout(%i)', (vcpuCount) => {
  it('places regions in order without overlap, all inside the buffer', () => {
    const { layout, names } = regionsOf(vcpuCount);
    const spans = names
      .map((name) => ({ name, start: layout.regionOffsets[name], end: layout.regionOffsets[name] + layout.regionBytes[name] }))
      .sort((left, right) => left.start - right.start);

    const overlaps = spans
      .slice(1)
      .filter((span, index) => span.start < spans[index]!.end)
      .map((span) => span.name);

    expect(overlaps).toEqual([]);
    expect(spans.at(-1)!.end).toBeLessThanOrEqual(layout.byteSize);
    expect(layout.byteSize % CACHE_LINE_BYTES).toBe(0);
  });

  it('starts every region on a cache line and the APIC ID tables on a page', () => {
    const { layout, names } = regionsOf(vcpuCount);

    const offLine = names.filter((name) => layout.regionOffsets[name] % CACHE_LINE_BYTES !== 0);

    expect(offLine).toEqual([]);
    expect(layout.regionOffsets.physicalApicIdTable % PAGE_BYTES).toBe(0);
    expect(layout.regionOffsets.logicalApicIdTable % PAGE_BYTES).toBe(0);
  });

  it('sizes the physical APIC ID table at 512 8-byte entries and the logical one at one page', () => {
    const { layout } = regionsOf(vcpuCount);

    expect(PHYSICAL_APIC_ID_TABLE_ENTRIES).toBe(512);
    expect(layout.regionBytes.physicalApicIdTable).toBe(512 * 8);
    expect(LOGICAL_APIC_ID_TABLE_ENTRIES * 4).toBe(PAGE_BYTES);
    expect(layout.regionBytes.logicalApicIdTable).toBe(4096);
  });

  it.each(PER_VCPU_REGIONS)('%s holds one whole-line struct per vCPU, and no two vCPUs share a line', (region, struct) => {
    const { layout } = regionsOf(vcpuCount);
    const lineOwner = new Map<number, number>();
    const shared: string[] = [];

    for (let vcpu = 0; vcpu < vcpuCount; vcpu++) {
      const start = layout.regionOffsets[region] + vcpu * struct.byteSize;
      for (let line = start / CACHE_LINE_BYTES; line < (start + struct.byteSize) / CACHE_LINE_BYTES; line++) {
        const owner = lineOwner.get(line);
        if (owner !== undefined && owner !== vcpu) shared.push(`line ${line}: vCPU ${owner} and vCPU ${vcpu}`);
        lineOwner.set(line, vcpu);
      }
    }

    expect(layout.regionBytes[region]).toBe(vcpuCount * struct.byteSize);
    expect(struct.byteSize % CACHE_LINE_BYTES).toBe(0);
    expect(shared).toEqual([]);
  });

  it('gives every region a non-empty writer', () => {
    const { layout, names } = regionsOf(vcpuCount);

    const withoutWriter = names.filter((name) => layout.regions[name].writer.trim() === '');

    expect(withoutWriter).toEqual([]);
  });
});

describe('vm-layout structs', () => {
  it.each(ALL_STRUCTS.map((struct) => [struct.name, struct] as const))(
    '%s: whole cache lines, every field inside it, aligned, disjoint, and naming a writer',
    (_name, struct) => {
      const fields = Object.entries(struct.fields) as [string, FieldSpec][];
      const spans = fields
        .map(([name, spec]) => {
          const start = struct.fieldOffsets[name]!;
          return { name, start, end: start + FIELD_BYTES[spec.type] * (spec.count ?? 1), elementBytes: FIELD_BYTES[spec.type] };
        })
        .sort((left, right) => left.start - right.start);

      expect(struct.byteSize % CACHE_LINE_BYTES).toBe(0);
      expect(struct.byteSize).toBeGreaterThan(0);
      expect(fields.filter(([, spec]) => typeof spec.writer !== 'string' || spec.writer.trim() === '').map(([name]) => name)).toEqual([]);
      expect(spans.filter((span) => span.start % span.elementBytes !== 0).map((span) => span.name)).toEqual([]);
      expect(
        spans
          .slice(1)
          .filter((span, index) => span.start < spans[index]!.end)
          .map((span) => span.name),
      ).toEqual([]);
      expect(spans.at(-1)!.end).toBeLessThanOrEqual(struct.byteSize);
    },
  );

  it('the layout grows with the vCPU count only in the per-vCPU regions and SRCU', () => {
    const one = vmControlLayout(1);
    const many = vmControlLayout(255);

    for (const region of ['header', 'physicalApicIdTable', 'logicalApicIdTable', 'memslots'] as const) {
      expect(many.regionBytes[region], region).toBe(one.regionBytes[region]);
    }
    expect(many.regionBytes.srcu).toBeGreaterThan(one.regionBytes.srcu);
    for (const [region, struct] of PER_VCPU_REGIONS) expect(many.regionBytes[region], region).toBe(255 * struct.byteSize);
  });
});
