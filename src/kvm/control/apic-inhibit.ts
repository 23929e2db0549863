// APICv inhibits (AMD APM vol. 2, 15.29; KVM enum kvm_apicv_inhibit, kvm_set_or_clear_apicv_inhibit in x86.c):
// the VM-wide bitmap of reasons why AVIC must not accelerate. While any bit is set, every ICR write
// is emulated by software (kvm_lapic_reg_write -> kvm_apic_send_ipi), which matches destinations
// against the APIC registers themselves, so an IPI to a relocated APIC ID or an aliased logical ID
// reaches the vCPU that holds it now (docs/architecture.md#orderings, O8).
//
// The bitmap is VmHeader.apicvInhibitReasons. Its writer is the main thread: at every APIC map
// rebuild (apic-map.ts), as kvm_recalculate_apic_map sets or clears these two reasons,
//   * APIC_ID_MODIFIED while any xAPIC-mode vCPU's ID differs from its vCPU index (the AVIC tables
//     assume ID == vCPU index); a rebuild that finds every ID back in place clears it;
//   * LOGICAL_ID_ALIASED while the logical table cannot express the guest's logical IDs;
// and at vCPU creation (vcpu-creation.ts), as avic_init_backing_page sets
//   * PHYSICAL_ID_TOO_BIG for a vCPU ID beyond what the VM's AVIC addresses; never cleared.
// Readers: each vCPU, with one Atomics.load per APIC access (AvicVcpu.apicvStale) and
// under apicv_update_lock for read when it handles KVM_REQ_APICV_UPDATE.
//
// An activation change (the bitmap going from zero to non-zero or back) makes KVM_REQ_APICV_UPDATE
// on every vCPU, as __kvm_set_or_clear_apicv_inhibit does (kvm_make_all_cpus_request). Each vCPU
// then re-derives its own state (AvicVcpu.updateApicv in src/kvm/svm/avic.ts, kvm_vcpu_update_apicv).
// The IRR bits AVIC set stay in the page the software path uses, so KVM's irr_pending hand-over has
// nothing to do here. Not modelled: zapping the APIC-access page's mapping (there is no shadow
// mapping to zap).

import type { VmControlViews } from './vm-control-views.js';
import { VcpuMode, VcpuRequest } from './vcpu-run-state.js';

/**
 * The reasons this model sets, at their bit positions in KVM's enum kvm_apicv_inhibit (DISABLED is
 * bit 0, PHYSICAL_ID_ALIASED 4, APIC_BASE_MODIFIED 6, PHYSICAL_ID_TOO_BIG 12; kvm_host.h).
 */
export const ApicvInhibitReason = {
  /** An xAPIC-mode vCPU holds an ID other than its vCPU index (xapic_id_mismatch in kvm_recalculate_apic_map). */
  ApicIdModified: 1 << 5,
  /** Two vCPUs share a logical ID, a logical ID names several members, or DFR models are mixed. */
  LogicalIdAliased: 1 << 11,
  /** A vCPU ID is beyond what the VM's AVIC addresses (avic_init_backing_page); set at its creation, never cleared. */
  PhysicalIdTooBig: 1 << 12,
} as const;
export type ApicvInhibitReason = (typeof ApicvInhibitReason)[keyof typeof ApicvInhibitReason];

/** The reasons set now (for reports and tests). */
export function apicvInhibitReasons(memory: VmControlViews): number {
  return Atomics.load(memory.control, memory.headerIndex('apicvInhibitReasons'));
}

/**
 * The main thread's set-or-clear at an APIC map rebuild or a vCPU creation. It does not take
 * apicv_update_lock: the main thread never blocks (architecture.md), and the bitmap has no other writer.
 */
export function setOrClearApicvInhibitFromMain(memory: VmControlViews, reason: ApicvInhibitReason, set: boolean): void {
  const index = memory.headerIndex('apicvInhibitReasons');
  const before = set ? Atomics.or(memory.control, index, reason) : Atomics.and(memory.control, index, ~reason);
  const after = set ? before | reason : before & ~reason;
  if ((before === 0) !== (after === 0)) requestApicvUpdateOnEveryVcpu(memory);
}

/**
 * kvm_make_all_cpus_request(KVM_REQ_APICV_UPDATE), a request that wakes nobody (NO_WAKEUP): set the
 * bit on every vCPU, then ring only those in guest mode so they leave it. The bitmap store came
 * first, which pairs with the vCPU's "clear the request bit, then load the bitmap": a vCPU that
 * loaded the old bitmap cleared the bit before we set it, so it looks again.
 */
function requestApicvUpdateOnEveryVcpu(memory: VmControlViews): void {
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    memory.addRequest(vcpu, VcpuRequest.ApicvUpdate);
    if (Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'mode')) !== VcpuMode.InGuestMode) continue;
    const slot = Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'hostThreadSlot'));
    if (slot >= 0) memory.ringDoorbell(slot);
  }
}
