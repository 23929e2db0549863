// What a vCPU takes, and what wakes it: interrupt and NMI injection at an instruction boundary
// (KVM's kvm_check_and_inject_events with process_nmi, as VMRUN's IRR scan does for AVIC), and the
// tests a sleeping vCPU makes (kvm_vcpu_check_block for "wake up", kvm_arch_vcpu_runnable for "HLT
// ends"). The run loop (vcpu.ts) reads the doorbell before it calls inject(), so a ring after that
// read is seen by the next poll (O2 in docs/architecture.md#orderings).
//
// NMIs: senders add to the target's nmiQueued, then set VcpuRequest.Nmi (apic-software-ipi.ts); the
// target clears the bit before it takes the queue (O4), latches at most two (one while an NMI is in
// service), and merges the rest, as KVM limits nmi_pending.

import { pendingDeliverableVector, acknowledgeInterrupt } from '../../hw/apic/apic-backing-page.js';
import type { GuestCpu } from '../../guest/guest-cpu.js';
import { FLAGS_INTERRUPT_ENABLE } from '../../guest/instruction-set.js';
import { VcpuRequest } from '../control/vcpu-run-state.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { VcpuSaveAreaView } from '../control/vcpu-save-area.js';
import { TraceEventKind, type TraceRecorder } from '../report/trace-recorder.js';
import type { ApicRegisterPage } from '../lapic/apic-register-page.js';

/** The NMI vector (its handler entry in the guest's vector table). */
const NMI_VECTOR = 2;

/**
 * Requests that end a halted or wait-for-SIPI vCPU's sleep whatever the interrupt state, so that the
 * run loop services them; a halted vCPU then halts again unless the request was INIT or a start-up
 * that started it (or Stop).
 */
export const WAKING_REQUESTS =
  VcpuRequest.Stop |
  VcpuRequest.Pause |
  VcpuRequest.Kick |
  VcpuRequest.MemslotsChanged |
  VcpuRequest.ApicPageReload |
  VcpuRequest.Init |
  VcpuRequest.StartUp;

/** The guest CPU state injection reads and changes. */
export type InterruptibleCpu = Pick<GuestCpu, 'flags' | 'nmiBlocked' | 'interruptsEnabled' | 'deliverInterrupt'>;

export interface VcpuInterruptsHost {
  readonly views: Pick<VmControlViews, 'control' | 'controlBlockIndex'>;
  readonly index: number;
  readonly page: ApicRegisterPage;
  readonly cpu: InterruptibleCpu;
  readonly counters: VcpuCounting;
  readonly trace: TraceRecorder | undefined;
  /** In wait-for-SIPI only INIT and start-up count (vcpu-boot.ts). */
  readonly boot: { readonly waiting: boolean };
}

export class VcpuInterrupts {
  readonly #host: VcpuInterruptsHost;
  readonly #cpu: InterruptibleCpu;
  readonly #page: ApicRegisterPage;
  readonly #control: Int32Array;
  readonly #requests: number;
  readonly #nmiQueued: number;
  readonly #nmiPending: number;
  /** NMIs latched (KVM nmi_pending), 0..2; owner only. */
  #nmisLatched = 0;

  constructor(host: VcpuInterruptsHost) {
    this.#host = host;
    this.#cpu = host.cpu;
    this.#page = host.page;
    this.#control = host.views.control;
    this.#requests = host.views.controlBlockIndex(host.index, 'requests');
    this.#nmiQueued = host.views.controlBlockIndex(host.index, 'nmiQueued');
    this.#nmiPending = host.views.controlBlockIndex(host.index, 'nmiPending');
  }

  /** Migration (vcpu-save-area.ts): the NMIs collected but not yet delivered. */
  save(area: VcpuSaveAreaView): void {
    area.set('nmisLatched', this.#nmisLatched);
  }

  restore(area: VcpuSaveAreaView): void {
    this.#nmisLatched = area.get('nmisLatched');
  }

  get nmisLatched(): number {
    return this.#nmisLatched;
  }

  /**
   * Delivers what the vCPU can take now: an NMI first (unless one is in service), else the highest
   * deliverable vector if IF is set. Returns true if an interrupt was delivered; a delivery that
   * faults returns false with the fault recorded in the CPU.
   */
  inject(): boolean {
    const cpu = this.#cpu;
    // Collected even while an NMI is in service (limit 1 then), as KVM processes KVM_REQ_NMI at
    // every entry: NMIs sent meanwhile merge into the one latch.
    // The common case (no NMI latched, none requested) costs one load.
    if (
      (this.#nmisLatched !== 0 || (Atomics.load(this.#control, this.#requests) & VcpuRequest.Nmi) !== 0) &&
      this.collectNmis() > 0 &&
      !cpu.nmiBlocked
    ) {
      this.#setNmisLatched(this.#nmisLatched - 1);
      cpu.nmiBlocked = true;
      this.#host.counters.count(VcpuStatistic.nmisDelivered);
      this.#host.counters.count(VcpuStatistic.interruptsDelivered);
      this.#host.trace?.record(TraceEventKind.InterruptDelivered, NMI_VECTOR);
      return cpu.deliverInterrupt(NMI_VECTOR);
    }
    if ((cpu.flags & FLAGS_INTERRUPT_ENABLE) === 0) return false;
    const { words, base } = this.#page;
    const vector = pendingDeliverableVector(words, base);
    if (vector < 0) return false;
    acknowledgeInterrupt(words, base, vector);
    this.#host.counters.count(VcpuStatistic.interruptsDelivered);
    this.#host.trace?.record(TraceEventKind.InterruptDelivered, vector);
    return cpu.deliverInterrupt(vector);
  }

  /**
   * process_nmi: take the NMIs senders queued and latch at most two (one while an NMI is in service,
   * as KVM limits them); the rest merge. The request bit is cleared before the queue is taken
   * (pairs with the sender's add-then-set). Returns the NMIs now pending.
   */
  collectNmis(): number {
    const control = this.#control;
    let pending = this.#nmisLatched;
    if ((Atomics.load(control, this.#requests) & VcpuRequest.Nmi) === 0) return pending;
    Atomics.and(control, this.#requests, ~VcpuRequest.Nmi);
    pending += Atomics.exchange(control, this.#nmiQueued, 0);
    const limit = this.#cpu.nmiBlocked ? 1 : 2;
    if (pending > limit) {
      this.#host.counters.count(VcpuStatistic.nmisMerged, pending - limit);
      pending = limit;
    }
    this.#setNmisLatched(pending);
    return pending;
  }

  /** INIT: drop the latched and queued NMIs (KVM clears nmi_pending and nmi_queued). Returns how many. */
  discardNmis(): number {
    Atomics.and(this.#control, this.#requests, ~VcpuRequest.Nmi);
    const discarded = this.#nmisLatched + Atomics.exchange(this.#control, this.#nmiQueued, 0);
    this.#setNmisLatched(0);
    return discarded;
  }

  /** The latch lives here; its shared copy (nmiPending) is for the main thread's report. */
  #setNmisLatched(count: number): void {
    this.#nmisLatched = count;
    Atomics.store(this.#control, this.#nmiPending, count);
  }

  /** An NMI can be taken now (one is latched or queued, and none is in service). */
  #nmiDeliverable(requests: number): boolean {
    return !this.#cpu.nmiBlocked && ((requests & VcpuRequest.Nmi) !== 0 || this.#nmisLatched > 0);
  }

  /**
   * kvm_vcpu_check_block, for a sleeping vCPU: something that ends the sleep (an interrupt or NMI it
   * can take, or a request the run loop must service). Whether HLT ends is canTakeInterrupt's answer.
   */
  hasEvents(): boolean {
    const requests = Atomics.load(this.#control, this.#requests);
    if ((requests & WAKING_REQUESTS) !== 0) return true;
    // In wait-for-SIPI only INIT and start-up (and the host's requests) count; interrupts wait in IRR.
    if (this.#host.boot.waiting) return false;
    if (this.#nmiDeliverable(requests)) return true;
    return this.#cpu.interruptsEnabled && pendingDeliverableVector(this.#page.words, this.#page.base) >= 0;
  }

  /** kvm_arch_vcpu_runnable for a halted vCPU: an interrupt (or NMI) can be taken now, so HLT ends. */
  canTakeInterrupt(): boolean {
    return (
      this.#nmiDeliverable(Atomics.load(this.#control, this.#requests)) ||
      (this.#cpu.interruptsEnabled && pendingDeliverableVector(this.#page.words, this.#page.base) >= 0)
    );
  }
}
