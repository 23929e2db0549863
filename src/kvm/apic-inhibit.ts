// APICv inhibits (spec §2.9; KVM enum kvm_apicv_inhibit, kvm_set_or_clear_apicv_inhibit in x86.c):
// the VM-wide bitmap of reasons why AVIC must not accelerate. While any bit is set, every ICR write
// is emulated by software (kvm_lapic_reg_write -> kvm_apic_send_ipi), which matches destinations
// against the APIC registers themselves, so an IPI to a relocated APIC ID or an aliased logical ID
// reaches the vCPU that holds it now (spec §4 items 11 and 12).
//
// The bitmap is VmHeader.apicvInhibitReasons. Its writer is the main thread, at every APIC map
// rebuild (apic-map.ts), as kvm_recalculate_apic_map sets or clears both reasons this model knows:
//   * APIC_ID_MODIFIED while any xAPIC-mode vCPU's ID differs from its vCPU index (the AVIC tables
//     assume ID == vCPU index); a rebuild that finds every ID back in place clears it;
//   * LOGICAL_ID_ALIASED while the logical table cannot express the guest's logical IDs.
// Readers: each sender, with one Atomics.load per ICR write (local-apic-emulation.ts).
//
// Not modelled [I]: KVM_REQ_APICV_UPDATE (kicking every vCPU so it re-runs
// avic_refresh_apicv_exec_ctrl) and zapping the APIC-access page mapping. Here "deactivated" only
// means the send path changes; the IRR bits AVIC already set stay in the same page the software path
// uses, so nothing needs the irr_pending hand-over KVM does on deactivation.

import type { VmMemory } from './vm-memory.js';

/**
 * The reasons this model sets, at their bit positions in KVM's enum kvm_apicv_inhibit (DISABLED is
 * bit 0, PHYSICAL_ID_ALIASED 4, APIC_BASE_MODIFIED 6, PHYSICAL_ID_TOO_BIG 12; spec §2.9).
 */
export const ApicvInhibitReason = {
  /** An xAPIC-mode vCPU holds an ID other than its vCPU index (xapic_id_mismatch in kvm_recalculate_apic_map). */
  ApicIdModified: 1 << 5,
  /** Two vCPUs share a logical ID, a logical ID names several members, or DFR models are mixed. */
  LogicalIdAliased: 1 << 11,
} as const;
export type ApicvInhibitReason = (typeof ApicvInhibitReason)[keyof typeof ApicvInhibitReason];

/** The reasons set now (for reports and tests). */
export function apicvInhibitReasons(memory: VmMemory): number {
  return Atomics.load(memory.control, memory.headerIndex('apicvInhibitReasons'));
}

/**
 * The main thread's set-or-clear at an APIC map rebuild. It does not take apicv_update_lock: the
 * main thread never blocks (architecture.md), and the bitmap has no other writer.
 */
export function setOrClearApicvInhibitFromMain(memory: VmMemory, reason: ApicvInhibitReason, set: boolean): void {
  const index = memory.headerIndex('apicvInhibitReasons');
  if (set) Atomics.or(memory.control, index, reason);
  else Atomics.and(memory.control, index, ~reason);
}
