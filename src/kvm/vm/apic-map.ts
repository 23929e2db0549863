// kvm_recalculate_apic_map for the AVIC logical APIC ID table, on the main thread, which owns the
// table (kvm_recalculate_apic_map, avic_handle_ldr_update). It is rebuilt from every vCPU's LDR and DFR as a whole: stale entries are
// invalidated first (an atomic clear of Valid, avic_invalidate_logical_id_entry), then the new ones are written. An
// IPI in the window sees an old or an invalid entry and exits with cause 2, and KVM's software path,
// which reads the registers themselves, delivers it.
//
// Entries name the vCPU index. KVM's avic_handle_ldr_update passes the xAPIC ID (kvm_xapic_id) to
// avic_ldr_write, but AVIC is active only while every xAPIC-mode vCPU's ID equals its (8-bit) vCPU
// index, so whenever the hardware reads the table the two are the same; a guest that rewrites its
// xAPIC ID inhibits AVIC instead of moving entries (apic-inhibit.ts; docs/architecture.md#orderings, O8).
//
// APIC_ID_MODIFIED is decided here too, as kvm_recalculate_apic_map decides it (xapic_id_mismatch):
// set if any xAPIC-mode vCPU's ID differs from (u8)vcpu_id, cleared by a rebuild that finds none, so
// a guest that writes its own index back (or switches to x2APIC, whose ID is the index) gets AVIC
// back.
//
// vCPUs in x2APIC mode have no entry: x2AVIC needs no logical table, and under hybrid AVIC their
// IPIs are emulated anyway. A configuration the table cannot express (two vCPUs on one entry, a
// logical ID with several member bits, flat and cluster models mixed) sets LOGICAL_ID_ALIASED, and
// a rebuild that finds none clears it, as KVM does (enum kvm_apicv_inhibit, kvm_recalculate_apic_map).

import { ApicRegister } from '../../hw/apic/apic-register.js';
import { destinationFormatModel } from '../../hw/apic/destination-format.js';
import { logicalApicIdTableIndex } from '../../hw/avic/logical-apic-id-table.js';
import { ApicvInhibitReason, setOrClearApicvInhibitFromMain } from '../control/apic-inhibit.js';
import { VcpuApicMode } from '../control/vcpu-run-state.js';
import type { VmControlViews } from '../control/vm-control-views.js';

export interface ApicMapRebuild {
  /** Logical table entries now valid. */
  readonly entries: number;
  /** vCPUs whose logical ID collides with another's or names several members (LOGICAL_ID_ALIASED). */
  readonly aliased: readonly number[];
  /** Whether this rebuild left LOGICAL_ID_ALIASED set. */
  readonly logicalIdAliased: boolean;
  /** Whether this rebuild left APIC_ID_MODIFIED set (an xAPIC ID other than its vCPU index). */
  readonly apicIdModified: boolean;
}

export function rebuildLogicalApicIdTable(
  memory: VmControlViews,
  previous: ReadonlyMap<number, number>,
): { rebuild: ApicMapRebuild; entries: Map<number, number> } {
  const words = memory.apicPageWords;
  const next = new Map<number, number>();
  const aliased: number[] = [];
  const models = new Set<number>();
  let apicIdModified = false;
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    if (Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'apicMode')) !== VcpuApicMode.Xapic) continue;
    const base = memory.apicPageBase(vcpu);
    // The vCPU ID truncated to 8 bits, as KVM compares it: vCPUs 255 and up hold (u8)index from reset.
    if (words[base + (ApicRegister.Id >> 2)]! >>> 24 !== (vcpu & 0xff)) apicIdModified = true;
    const ldr = words[base + (ApicRegister.LogicalDestination >> 2)]!;
    const dfr = words[base + (ApicRegister.DestinationFormat >> 2)]!;
    const index = logicalApicIdTableIndex(ldr, dfr);
    if (ldr >>> 24 !== 0) models.add(destinationFormatModel(dfr));
    if (index < 0) {
      // A logical ID of zero names nobody; a non-zero one the table cannot hold is an alias.
      if (ldr >>> 24 !== 0 && destinationFormatModel(dfr) !== -1) aliased.push(vcpu);
      continue;
    }
    if (next.has(index)) {
      aliased.push(vcpu);
      continue;
    }
    next.set(index, vcpu);
  }
  // Set the inhibits before the table changes and clear them after, so no sender uses a table that
  // cannot express the configuration while the bits say AVIC may be used.
  const logicalIdAliased = aliased.length > 0 || models.size > 1;
  if (logicalIdAliased) setOrClearApicvInhibitFromMain(memory, ApicvInhibitReason.LogicalIdAliased, true);
  if (apicIdModified) setOrClearApicvInhibitFromMain(memory, ApicvInhibitReason.ApicIdModified, true);
  const table = memory.logicalApicIdTable;
  for (const [index, physicalId] of previous) {
    if (next.get(index) !== physicalId) table.invalidate(index);
  }
  for (const [index, physicalId] of next) {
    if (previous.get(index) !== physicalId) table.storeEntry(index, physicalId);
  }
  if (!logicalIdAliased) setOrClearApicvInhibitFromMain(memory, ApicvInhibitReason.LogicalIdAliased, false);
  if (!apicIdModified) setOrClearApicvInhibitFromMain(memory, ApicvInhibitReason.ApicIdModified, false);
  return { rebuild: { entries: next.size, aliased, logicalIdAliased, apicIdModified }, entries: next };
}
