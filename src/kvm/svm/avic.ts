// One vCPU's AVIC state, as KVM's svm/avic.c keeps it: where the vCPU runs (avic_vcpu_load /
// avic_vcpu_put, avic_vcpu_blocking / avic_vcpu_unblocking: IsRunning and the host physical APIC ID
// in its physical APIC ID table entry, AMD APM vol. 2, 15.29) and whether AVIC is active for it
// (apic->apicv_active, refreshed by KVM_REQ_APICV_UPDATE: kvm_vcpu_update_apicv ->
// avic_refresh_apicv_exec_ctrl).
//
// The VM-wide inhibit bitmap this follows, and who writes it, are in control/apic-inhibit.ts. Each
// vCPU re-derives its own state from it: inactive means IsRunning clear (__avic_vcpu_put), every
// APIC-page access an emulated MMIO exit (the APIC-access page is not mapped) and every x2APIC MSR
// intercepted; active again restores IsRunning and the accelerated paths. KVM's request waits until
// every vCPU has left guest mode, so no guest instruction runs with a stale state: here each APIC
// access asks apicvStale() first and, if so, leaves guest mode to update (the same effect; O4 in
// docs/architecture.md#orderings), and the request covers vCPUs that touch no APIC register (their
// IsRunning).
//
// Writers: the host CPU the vCPU is loaded on (its owner) is the only writer of its IsRunning bit,
// its host id and its control-block hostThreadSlot word (O7: low word, then high word, in PhysicalApicIdTable),
// and, with the AMD erratum #1235 model on, of the time of its last IsRunning clear beside the table.

import { apicId, hostPhysicalApicId, type ApicId, type HostPhysicalApicId } from '../../hw/apic/apic-id.js';
import type { PhysicalApicIdTable } from '../../hw/avic/physical-apic-id-table.js';
import type { AvicHardware } from '../../hw/avic/avic-ipi-delivery.js';
import type { AvicRacePoints } from '../../hw/avic/avic-ipi-target.js';
import type { Erratum1235 } from '../../hw/avic/erratum-1235.js';
import { AvicVmcb } from '../../hw/avic/avic-apic-access.js';
import { AvicMode, avicMaxPhysicalIndex } from '../../hw/avic/x2avic.js';
import type { HostThreadSlot, VcpuIndex } from '../../host/identifiers.js';
import { hostThread, SchedulingPoint } from '../../host/host-thread.js';
import { VirtualTimeCost } from '../../host/virtual-time-costs.js';
import { VcpuRequest } from '../control/vcpu-run-state.js';
import { KVM_LOCK_TIMEOUT_MS } from '../control/kvm-locks.js';
import { InjectedBugFlag, readInjectedBugs } from '../control/injected-bugs.js';
import { backingPagePolicy, type BackingPagePolicyName } from '../control/backing-page-policy.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { VcpuSaveAreaView } from '../control/vcpu-save-area.js';

/**
 * The AMD erratum #1235 model's window (VmHeader.erratum1235WindowNs, 0 when off) with the VM clock
 * `readClockNs`, as the sending hardware sees it; undefined on a correct part or without a clock.
 */
export function erratum1235Of(
  views: { readonly control: Int32Array; headerIndex(field: 'erratum1235WindowNs'): number },
  readClockNs: (() => number) | undefined,
): Erratum1235 | undefined {
  const windowNs = Atomics.load(views.control, views.headerIndex('erratum1235WindowNs'));
  return windowNs > 0 && readClockNs !== undefined ? { windowNs, readClockNs } : undefined;
}

/** The sender hardware's scheduling points (AvicRacePoints): the calling thread's host decides. */
const AVIC_RACE_POINTS: AvicRacePoints = {
  irrSet: () => hostThread().point(SchedulingPoint.IrrSet),
  isRunningRead: () => hostThread().point(SchedulingPoint.IsRunningRead),
};

/**
 * A vCPU's VMCB as AVIC uses it (avic_init_vmcb): its backing page, the VM's physical and logical
 * APIC ID tables with the max index of each mode (avic_get_max_physical_id: xAVIC 0xFE at most,
 * x2AVIC 0x1FF, or 0xFFF with the 4K extension, re-derived per mode as KVM does when the vCPU enters x2APIC mode), and the doorbell
 * the hardware rings for a running target (avic_ring_doorbell: that host CPU re-scans its guest's
 * IRR; here its doorbell line in src/host/host-cpu.ts). `readClockNs` (the VM clock) lets the
 * sending hardware have AMD erratum #1235 when the VM models it.
 */
export function createAvicVmcb(
  views: VmControlViews,
  index: VcpuIndex,
  policy: BackingPagePolicyName,
  backingPage: number,
  x2avicExtended: boolean,
  readClockNs?: () => number,
): AvicVmcb {
  const hostCpus = views.hostCpus;
  const xavic: AvicHardware = {
    physicalTable: views.physicalApicIdTable,
    logicalTable: views.logicalApicIdTable,
    maxPhysicalIndex: avicMaxPhysicalIndex(AvicMode.Xavic, views.vcpuCount),
    pageWords: views.apicPageWords,
    resolveBackingPage: backingPagePolicy(policy, views.vcpuCount).resolveBackingPage,
    ringDoorbell: (host) => {
      hostCpus.ring(host);
      hostThread().advance(VirtualTimeCost.doorbellNs);
      // The target's host CPU may notice the ring (or leave guest mode without it) before the sender goes on.
      hostThread().point(SchedulingPoint.Doorbell);
    },
    erratum1235: erratum1235Of(views, readClockNs),
    isRunningBeforeIrr: (readInjectedBugs(views) & InjectedBugFlag.IsRunningBeforeIrr) !== 0,
    racePoints: AVIC_RACE_POINTS,
  };
  const x2avic: AvicHardware = { ...xavic, maxPhysicalIndex: avicMaxPhysicalIndex(AvicMode.X2avic, views.vcpuCount, x2avicExtended) };
  return new AvicVmcb(apicId(index), backingPage, xavic, x2avic);
}

/** The control words and the table one vCPU's AVIC state reads and writes. */
export interface AvicVcpuWords {
  readonly control: Int32Array;
  readonly physicalApicIdTable: PhysicalApicIdTable;
  headerIndex(field: 'apicvInhibitReasons' | 'erratum1235WindowNs'): number;
  controlBlockIndex(vcpu: number, field: 'hostThreadSlot' | 'requests'): number;
}

/** kvm->arch.apicv_update_lock, the read side a vCPU takes (an InstrumentedRwSemaphore). */
export interface ApicvUpdateLock {
  readLock(site: string, timeoutMs: number): void;
  readUnlock(): void;
}

export class AvicVcpu {
  readonly #control: Int32Array;
  readonly #table: PhysicalApicIdTable;
  readonly #id: ApicId;
  readonly #hostThreadSlotWord: number;
  readonly #requests: number;
  readonly #inhibits: number;
  /** enable_ipiv: false models KVM's erratum #1235 work-around (IsRunning never shown to hardware). */
  readonly #ipiVirtualization: boolean;
  /** The host CPU of the last load (vcpu->cpu); its id stays in the entry while put. */
  #hostId: HostPhysicalApicId = hostPhysicalApicId(0);
  #slot = -1;
  /** apic->apicv_active. */
  #active: boolean;
  /** The VM clock, when the erratum #1235 model is on: each IsRunning clear is stamped with it. */
  readonly #clearClock: (() => number) | undefined;

  /** `readClockNs`: the VM clock, needed only to stamp IsRunning clears for the erratum #1235 model. */
  constructor(words: AvicVcpuWords, index: VcpuIndex, ipiVirtualization: boolean, readClockNs?: () => number) {
    this.#control = words.control;
    this.#table = words.physicalApicIdTable;
    this.#id = apicId(index);
    this.#hostThreadSlotWord = words.controlBlockIndex(index, 'hostThreadSlot');
    this.#requests = words.controlBlockIndex(index, 'requests');
    this.#inhibits = words.headerIndex('apicvInhibitReasons');
    this.#ipiVirtualization = ipiVirtualization;
    this.#active = Atomics.load(this.#control, this.#inhibits) === 0;
    this.#clearClock = erratum1235Of(words, readClockNs)?.readClockNs;
  }

  get apicvActive(): boolean {
    return this.#active;
  }

  /** Migration (vcpu-save-area.ts): apic->apicv_active as this vCPU last handled it (the host id is published at load). */
  save(area: VcpuSaveAreaView): void {
    area.set('apicvActive', this.#active ? 1 : 0);
  }

  restore(area: VcpuSaveAreaView): void {
    this.#active = area.get('apicvActive') !== 0;
  }

  /**
   * vcpu->cpu = cpu at vcpu_load: the host CPU kicks ring and the host id the entry keeps, without
   * IsRunning (a blocked or paused vCPU's IsRunning is left to avic_vcpu_unblocking or its resume).
   */
  setHostCpu(slot: HostThreadSlot): void {
    this.#slot = slot;
    this.#hostId = hostPhysicalApicId(slot);
    Atomics.store(this.#control, this.#hostThreadSlotWord, slot);
  }

  /**
   * avic_vcpu_load(vcpu, cpu): publish the host CPU (the control-block word kicks read) and, unless
   * IPI virtualization or AVIC is off, IsRunning with that CPU's id, so senders ring its doorbell.
   */
  load(slot: HostThreadSlot): void {
    this.setHostCpu(slot);
    this.#table.setIsRunning(this.#id, this.#ipiVirtualization && this.#active, this.#hostId);
    // A sender may read the new IsRunning before this vCPU enters the guest and looks at its IRR.
    hostThread().point(SchedulingPoint.IsRunningWrite);
  }

  /**
   * avic_vcpu_put (__avic_vcpu_put): clear IsRunning, keep the host id; with the erratum #1235 model,
   * stamped with the time of the clear so the model's senders can miss it.
   */
  put(): void {
    this.#table.setIsRunning(this.#id, false, this.#hostId, this.#clearClock === undefined ? 0 : this.#clearClock());
    // A sender between its IRR set and its IsRunning read (O1): it now exits to kick, or its bit is re-checked.
    hostThread().point(SchedulingPoint.IsRunningWrite);
  }

  /** avic_vcpu_blocking: IsRunning clear before the vCPU re-checks for events and sleeps (O1). */
  blocking(): void {
    // An IPI after the vCPU's last look for events and before this clear finds IsRunning = 1 (a
    // doorbell, no exit): only the re-check after the clear catches it (O1).
    hostThread().point(SchedulingPoint.IsRunningWrite);
    this.put();
  }

  /** avic_vcpu_unblocking: avic_vcpu_load again on the host CPU it is loaded on. */
  unblocking(): void {
    this.load(this.#slot as HostThreadSlot);
  }

  /**
   * Whether the VM's inhibit bitmap disagrees with this vCPU's state: an APICv update it has not
   * handled yet (pairs with the main thread's "store the bitmap, then request": O4).
   */
  apicvStale(): boolean {
    return (Atomics.load(this.#control, this.#inhibits) === 0) !== this.#active;
  }

  /**
   * KVM_REQ_APICV_UPDATE (kvm_vcpu_update_apicv): clear the request, then under apicv_update_lock
   * for read (__kvm_vcpu_update_apicv, inside the vCPU's SRCU read section) take the VM's state and,
   * if it changed, refresh this vCPU's (avic_refresh_apicv_exec_ctrl): IsRunning set again on
   * activation (__avic_vcpu_load), cleared on deactivation (__avic_vcpu_put).
   */
  updateApicv(lock: ApicvUpdateLock): void {
    Atomics.and(this.#control, this.#requests, ~VcpuRequest.ApicvUpdate);
    lock.readLock('__kvm_vcpu_update_apicv: down_read', KVM_LOCK_TIMEOUT_MS);
    try {
      const active = Atomics.load(this.#control, this.#inhibits) === 0;
      if (active === this.#active) return;
      this.#active = active;
      if (active) this.load(this.#slot as HostThreadSlot);
      else this.put();
    } finally {
      lock.readUnlock();
    }
  }
}
