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
// Readers: each vCPU, with one Atomics.load per APIC access (VcpuApicv.current) and
// under apicv_update_lock for read when it handles KVM_REQ_APICV_UPDATE.
//
// An activation change (the bitmap going from zero to non-zero or back) makes KVM_REQ_APICV_UPDATE
// on every vCPU, as __kvm_set_or_clear_apicv_inhibit does (kvm_make_all_cpus_request). Each vCPU
// then re-derives its own state (VcpuApicv.update, kvm_vcpu_update_apicv): inactive
// means IsRunning clear (avic_refresh_apicv_exec_ctrl -> __avic_vcpu_put), every APIC-page access an
// emulated MMIO exit (the APIC-access page is not mapped) and every x2APIC MSR intercepted; active
// again restores IsRunning and the accelerated paths. KVM's request waits until every vCPU has left
// guest mode, so no guest instruction runs with a stale state: here each APIC access compares the
// bitmap with the vCPU's state and updates it first when they differ (the same effect), and the
// request covers vCPUs that touch no APIC register (their IsRunning). The IRR bits AVIC set stay in
// the page the software path uses, so KVM's irr_pending hand-over has nothing to do here. Not
// modelled: zapping the APIC-access page's mapping (there is no shadow mapping to zap).

import type { VmMemory } from './vm-memory.js';
import { VcpuMode, VcpuRequest } from './vcpu-run-state.js';
import { KVM_LOCK_TIMEOUT_MS } from './kvm-locks.js';
import type { Vcpu } from '../vcpu/vcpu.js';

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
export function apicvInhibitReasons(memory: VmMemory): number {
  return Atomics.load(memory.control, memory.headerIndex('apicvInhibitReasons'));
}

/**
 * The main thread's set-or-clear at an APIC map rebuild or a vCPU creation. It does not take
 * apicv_update_lock: the main thread never blocks (architecture.md), and the bitmap has no other writer.
 */
export function setOrClearApicvInhibitFromMain(memory: VmMemory, reason: ApicvInhibitReason, set: boolean): void {
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
function requestApicvUpdateOnEveryVcpu(memory: VmMemory): void {
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    memory.addRequest(vcpu, VcpuRequest.ApicvUpdate);
    if (Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'mode')) !== VcpuMode.InGuestMode) continue;
    const slot = Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'hostThreadSlot'));
    if (slot >= 0) memory.ringDoorbell(slot);
  }
}

/** What VcpuApicv needs of its vCPU (Vcpu implements it). */
export type VcpuApicvHost = Pick<Vcpu, 'memory' | 'index' | 'locks' | 'vcpuLoad' | 'vcpuPut' | 'beginExitHandling' | 'endExitHandling'>;

/** One vCPU's AVIC state (KVM's apic->apicv_active), kept by the vCPU's own worker. */
export class VcpuApicv {
  readonly #host: VcpuApicvHost;
  readonly #control: Int32Array;
  readonly #inhibits: number;
  readonly #requests: number;
  #active: boolean;

  constructor(host: VcpuApicvHost) {
    this.#host = host;
    this.#control = host.memory.control;
    this.#inhibits = host.memory.headerIndex('apicvInhibitReasons');
    this.#requests = host.memory.controlBlockIndex(host.index, 'requests');
    this.#active = Atomics.load(this.#control, this.#inhibits) === 0;
  }

  get active(): boolean {
    return this.#active;
  }

  /**
   * Whether AVIC handles this vCPU's next APIC access, at that access (guest mode). KVM's
   * KVM_REQ_APICV_UPDATE waits until every vCPU has left guest mode, and each handles it before it
   * runs guest code again; so an access that finds the bitmap changed under it first does what that
   * request would have done (pairs with the main thread's "store the bitmap, then request": O4 in
   * docs/architecture.md#orderings).
   */
  current(): boolean {
    if ((Atomics.load(this.#control, this.#inhibits) === 0) !== this.#active) {
      this.#host.beginExitHandling();
      this.update();
      this.#host.endExitHandling();
    }
    return this.#active;
  }

  /**
   * KVM_REQ_APICV_UPDATE (kvm_vcpu_update_apicv): clear the request, then under apicv_update_lock
   * for read (__kvm_vcpu_update_apicv, inside the vCPU's SRCU read section) take the VM's state and,
   * if it changed, refresh this vCPU's (avic_refresh_apicv_exec_ctrl): IsRunning set again on
   * activation (__avic_vcpu_load), cleared on deactivation (__avic_vcpu_put).
   */
  update(): void {
    const host = this.#host;
    Atomics.and(this.#control, this.#requests, ~VcpuRequest.ApicvUpdate);
    const lock = host.locks.apicvUpdateLock;
    lock.readLock('__kvm_vcpu_update_apicv: down_read', KVM_LOCK_TIMEOUT_MS);
    try {
      const active = Atomics.load(this.#control, this.#inhibits) === 0;
      if (active === this.#active) return;
      this.#active = active;
      if (active) host.vcpuLoad();
      else host.vcpuPut();
    } finally {
      lock.readUnlock();
    }
  }
}
