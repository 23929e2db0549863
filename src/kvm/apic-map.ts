// kvm_recalculate_apic_map for the AVIC logical APIC ID table, on the main thread, which owns the
// table (spec §2.7). It is rebuilt from every vCPU's LDR and DFR as a whole: stale entries are
// invalidated first (an atomic clear of Valid, spec §4 item 11), then the new ones are written. An
// IPI in the window sees an old or an invalid entry and exits with cause 2, and KVM's software path,
// which reads the registers themselves, delivers it.

import { ApicRegister } from '../hw/apic/apic-register.js';
import { logicalApicIdTableIndex } from '../hw/avic/logical-apic-id-table.js';
import type { VmMemory } from './vm-memory.js';

export interface ApicMapRebuild {
  /** Logical table entries now valid. */
  readonly entries: number;
  /** vCPUs whose logical ID collides with another's (KVM inhibits AVIC: LOGICAL_ID_ALIASED). */
  readonly aliased: readonly number[];
}

export function rebuildLogicalApicIdTable(memory: VmMemory, previous: ReadonlyMap<number, number>): { rebuild: ApicMapRebuild; entries: Map<number, number> } {
  const words = memory.apicPageWords;
  const next = new Map<number, number>();
  const aliased: number[] = [];
  for (let vcpu = 0; vcpu < memory.vcpuCount; vcpu++) {
    const base = memory.apicPageBase(vcpu);
    const ldr = words[base + (ApicRegister.LogicalDestination >> 2)]!;
    const dfr = words[base + (ApicRegister.DestinationFormat >> 2)]!;
    const index = logicalApicIdTableIndex(ldr, dfr);
    if (index < 0) continue;
    if (next.has(index)) {
      aliased.push(vcpu);
      continue;
    }
    next.set(index, words[base + (ApicRegister.Id >> 2)]! >>> 24);
  }
  const table = memory.logicalApicIdTable;
  for (const [index, physicalId] of previous) {
    if (next.get(index) !== physicalId) table.invalidate(index);
  }
  for (const [index, physicalId] of next) {
    if (previous.get(index) !== physicalId) table.storeEntry(index, physicalId);
  }
  return { rebuild: { entries: next.size, aliased }, entries: next };
}
