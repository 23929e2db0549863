// APICv inhibits (spec §2.9; KVM enum kvm_apicv_inhibit, kvm_set_or_clear_apicv_inhibit in x86.c):
// the VM-wide bitmap of reasons why AVIC must not accelerate. While any bit is set, every ICR write
// is emulated by software (kvm_lapic_reg_write -> kvm_apic_send_ipi), which matches destinations
// against the APIC registers themselves, so an IPI to a relocated APIC ID or an aliased logical ID
// reaches the vCPU that holds it now (spec §4 items 11 and 12).
//
// The bitmap is VmHeader.apicvInhibitReasons. Writers (one bit at a time, atomically):
//   * a vCPU that traps an xAPIC ID write sets APIC_ID_MODIFIED (sticky, as in KVM: the AVIC tables
//     assume ID == vCPU index, and KVM never clears the reason once a guest broke that);
//   * the main thread sets or clears LOGICAL_ID_ALIASED at every APIC map rebuild (apic-map.ts), as
//     kvm_recalculate_apic_map does.
// Readers: each sender, with one Atomics.load per ICR write (local-apic-emulation.ts).
//
// Not modelled [I]: KVM_REQ_APICV_UPDATE (kicking every vCPU so it re-runs
// avic_refresh_apicv_exec_ctrl) and zapping the APIC-access page mapping. Here "deactivated" only
// means the send path changes; the IRR bits AVIC already set stay in the same page the software path
// uses, so nothing needs the irr_pending hand-over KVM does on deactivation.

import type { VmMemory } from './vm-memory.js';
import { KVM_LOCK_TIMEOUT_MS, type VcpuLocks } from './kvm-locks.js';

/**
 * The reasons this model sets, at their bit positions in KVM's enum kvm_apicv_inhibit (DISABLED is
 * bit 0, PHYSICAL_ID_ALIASED 4, APIC_BASE_MODIFIED 6, PHYSICAL_ID_TOO_BIG 12; spec §2.9).
 */
export const ApicvInhibitReason = {
  /** A guest wrote an xAPIC ID other than its vCPU index (kvm_lapic_xapic_id_updated). */
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
 * kvm_set_apicv_inhibit from a vCPU (inside its exit handling, an SRCU reader, as in KVM where the
 * lapic write handler runs under vcpu->srcu): down_write(apicv_update_lock), set the bit, up_write.
 * A bit already set is left alone without the lock (KVM would take it and find nothing to change).
 */
export function setApicvInhibitFromVcpu(memory: VmMemory, locks: VcpuLocks, reason: ApicvInhibitReason): void {
  const index = memory.headerIndex('apicvInhibitReasons');
  if ((Atomics.load(memory.control, index) & reason) !== 0) return;
  const lock = locks.apicvUpdateLock;
  lock.writeLock('kvm_set_or_clear_apicv_inhibit: down_write', KVM_LOCK_TIMEOUT_MS);
  try {
    Atomics.or(memory.control, index, reason);
  } finally {
    lock.writeUnlock();
  }
}

/**
 * The main thread's set-or-clear at an APIC map rebuild. It does not take apicv_update_lock: the
 * main thread never blocks (architecture.md), and its only reason bit has no other writer.
 */
export function setOrClearApicvInhibitFromMain(memory: VmMemory, reason: ApicvInhibitReason, set: boolean): void {
  const index = memory.headerIndex('apicvInhibitReasons');
  if (set) Atomics.or(memory.control, index, reason);
  else Atomics.and(memory.control, index, ~reason);
}
