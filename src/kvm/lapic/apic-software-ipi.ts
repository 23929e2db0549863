// KVM's software IPI path (kvm_apic_send_ipi -> kvm_irq_delivery_to_apic -> __apic_accept_irq), run
// in the sending vCPU's worker for every ICR form and both APIC modes: on incomplete-IPI causes 0, 2
// and 4 (avic_incomplete_ipi_interception, xAVIC and x2AVIC alike), for every xAPIC ICR write while an APICv inhibit is
// set (apic-inhibit.ts), for every x2APIC SELF IPI write (KVM intercepts it), and for every x2APIC
// ICR write under hybrid AVIC (VmConfig x2avic false: KVM intercepts them) or while an
// inhibit is set. The pure rules
// (which form, which targets, which ESR bit, who wins a lowest-priority arbitration) come from
// src/hw/apic; this file applies them to shared memory.
//
// Modelled behaviour (docs/amd-intel-differences.md):
//  * lowest priority: KVM's arbitration counter (apic_arb_prio), not TPR/PPR; to the physical
//    broadcast it is delivered as Fixed, as KVM does;
//  * SMI: dropped and counted (ipisDroppedUnsupported): the emulator has no SMM;
//  * INIT level de-assert, Fixed/LowestPriority level de-asserts and the reserved modes: ignored;
//  * ESR: architectural, unlike KVM (which never sets ESR bits): send illegal vector on the sender,
//    receive illegal vector on each destination, no IRR bit anywhere.
//
// IPI accounting (vm-report.ts): each message to each destination is counted once, by the sender, as
// accepted (it newly set an IRR bit or a request bit), coalesced (the bit was already set) or
// dropped. NMI, INIT and start-up are request bits (VcpuRequest.Nmi / Init / StartUp, KVM's
// pending_events): the TARGET counts them in interruptsDelivered when it consumes the bit (vcpu/:
// nmisDelivered, initsTaken, startUpsTaken, startUpsIgnored), and a bit still set at the end is
// pending. So "sent = accepted + coalesced + dropped" and "accepted = delivered + pending + lost"
// hold for every form.

import { hostThread, SchedulingPoint } from '../../host/host-thread.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import { isApicSoftwareEnabled, processorPriority, setIrrAtomic, setTriggerMode } from '../../hw/apic/apic-backing-page.js';
import { matchesDestination } from '../../hw/apic/apic-destination.js';
import { matchesX2apicDestination } from '../../hw/apic/x2apic-destination.js';
import {
  DestinationMode,
  DestinationShorthand,
  TriggerMode,
  interruptCommandDestination,
  interruptCommandDestinationMode,
  interruptCommandShorthand,
  interruptCommandTriggerMode,
  interruptCommandVector,
} from '../../hw/apic/interrupt-command.js';
import {
  InterruptCommandCheck,
  InterruptCommandForm,
  checkInterruptCommand,
  interruptCommandForm,
  x2apicInterruptCommandDestination,
} from '../../hw/apic/interrupt-command-form.js';
import {
  lowestPriorityBecomesFixed,
  selectLowestPriorityTarget,
  LowestPriorityPolicy,
  type LowestPriorityCandidate,
} from '../../hw/apic/lowest-priority.js';
import { ErrorStatusBit, errorStatusMask } from '../../hw/apic/error-status.js';
import { XAPIC_BROADCAST_ID, XAPIC_MAX_PHYSICAL_ID } from '../../hw/apic/apic-id.js';
import { X2APIC_BROADCAST_ID } from '../../hw/apic/x2apic-id.js';
import { ApicRegister } from '../../hw/apic/apic-register.js';
import { ApicImplementation } from '../../hw/apic/interrupt-command-readback.js';
import { VcpuApicMode, VcpuRequest } from '../control/vcpu-run-state.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { TraceRecorder } from '../report/trace-recorder.js';
import type { ApicRegisterPage } from './apic-register-page.js';

/** KVM's arbitration for lowest-priority IPIs (kvm_irq_delivery_to_apic with vector_hashing off). */
export const LOWEST_PRIORITY_POLICY: LowestPriorityPolicy = LowestPriorityPolicy.KvmArbitrationCounter;

/** What the software path needs from its sending vCPU. */
export interface SoftwareIpiHost {
  /** The VM's control views: every vCPU's page, control words and doorbell (kicks). */
  readonly views: VmControlViews;
  /** The sender. */
  readonly index: number;
  /** The sender's own register page (its ID, for logical matching). */
  readonly page: ApicRegisterPage;
  /** The sender's CPU: a self-IPI makes it re-evaluate after the writing instruction. */
  readonly cpu: { requestInterruptEvaluation(): void };
  readonly counters: VcpuCounting;
  /** Present only when tracing (--trace). */
  readonly trace?: TraceRecorder | undefined;
}

export class SoftwareIpiPath {
  readonly #host: SoftwareIpiHost;
  readonly #views: VmControlViews;
  readonly #counters: VcpuCounting;
  readonly #words: Int32Array;
  readonly #control: Int32Array;
  /** Reused target list (no allocation per IPI). */
  readonly #targets: number[] = [];
  /** The sender's APIC mode: x2APIC destinations are ICR[63:32], xAPIC ones ICR[63:56]. */
  x2apic = false;

  constructor(host: SoftwareIpiHost) {
    this.#host = host;
    this.#views = host.views;
    this.#counters = host.counters;
    this.#words = host.views.apicPageWords;
    this.#control = host.views.control;
  }

  /** The vCPU indices an ICR names, by KVM's matching rules (kvm_apic_match_dest); reused array. */
  collectTargets(icrLow: number, icrHigh: number): number[] {
    const targets = this.#targets;
    targets.length = 0;
    const memory = this.#views;
    const self = this.#host.index;
    const shorthand = interruptCommandShorthand(icrLow);
    // KVM walks the vCPUs that exist (kvm_for_each_vcpu); hot-add slots beyond them are not APICs.
    const created = memory.createdVcpus();
    if (shorthand === DestinationShorthand.Self) {
      targets.push(self);
      return targets;
    }
    if (shorthand !== DestinationShorthand.None) {
      // Shorthands compare APICs, not IDs (KVM: target == source), so duplicate IDs do not matter.
      for (let target = 0; target < created; target++)
        if (shorthand === DestinationShorthand.AllIncludingSelf || target !== self) targets.push(target);
      return targets;
    }
    const words = this.#words;
    const x2apic = this.x2apic;
    const destination = x2apic ? x2apicInterruptCommandDestination(icrHigh) : interruptCommandDestination(icrHigh);
    const mode = interruptCommandDestinationMode(icrLow);
    const senderIdWord = this.#host.page.read(ApicRegister.Id);
    const senderId = x2apic ? senderIdWord >>> 0 : senderIdWord >>> 24;
    for (let target = 0; target < created; target++) {
      // Mode first, then the ID: pairs with enterX2apicMode's "ID and LDR, then the mode word".
      const targetX2apic = Atomics.load(this.#control, memory.controlBlockIndex(target, 'apicMode')) === VcpuApicMode.X2apic;
      const base = memory.apicPageBase(target);
      const idWord = words[base + (ApicRegister.Id >> 2)]!;
      const matches = targetX2apic
        ? matchesX2apicDestination(idWord >>> 0, senderId, DestinationShorthand.None, mode, destination)
        : target > XAPIC_MAX_PHYSICAL_ID && mode === DestinationMode.Physical
          ? this.#matchesUnaddressableXapicTarget(target, destination)
          : matchesDestination(
              idWord >>> 24,
              words[base + (ApicRegister.LogicalDestination >> 2)]!,
              words[base + (ApicRegister.DestinationFormat >> 2)]!,
              senderId,
              DestinationShorthand.None,
              mode,
              destination,
            );
      if (matches) targets.push(target);
    }
    return targets;
  }

  /**
   * A physical destination and an xAPIC-mode vCPU whose index (its x2APIC ID) has no 8-bit xAPIC
   * ID: vCPUs 255..511, whose ID register holds the truncated (u8)index from reset, as KVM's
   * kvm_apic_set_xapic_id stores it. That value is vCPU (index & 0xff)'s ID too, and KVM's APIC
   * map leaves phys_map[xapic_id] to the vCPU that holds it first (x2APIC-format IDs, as QEMU asks
   * for), so the alias receives nothing through it: only the broadcast, or, from an x2APIC
   * sender, its x2APIC ID (lapic.c's "hotplug hack" in kvm_apic_match_physical_addr).
   */
  #matchesUnaddressableXapicTarget(target: number, destination: number): boolean {
    if (this.x2apic) return destination === X2APIC_BROADCAST_ID || destination === target;
    return destination === XAPIC_BROADCAST_ID;
  }

  /** kvm_apic_send_ipi -> kvm_irq_delivery_to_apic -> __apic_accept_irq, for every ICR form. */
  emulateIpi(icrLow: number, icrHigh: number): void {
    const counters = this.#counters;
    counters.count(VcpuStatistic.ipiCommands);
    const check = checkInterruptCommand(icrLow, ApicImplementation.KvmEmulated);
    if (check === InterruptCommandCheck.IgnoredLevelDeassert || check === InterruptCommandCheck.ReservedDeliveryMode) {
      // INIT level de-assert, Fixed/LowestPriority with level 0 and the reserved modes: KVM ignores them.
      counters.count(VcpuStatistic.ipisSent);
      counters.count(VcpuStatistic.ipisDroppedUnsupported);
      return;
    }
    const targets = this.collectTargets(icrLow, icrHigh);
    if (check === InterruptCommandCheck.SendIllegalVector) {
      // SDM §11.5.3: the sender latches "send illegal vector", each destination "receive illegal
      // vector", and no IRR bit is set anywhere.
      this.latchError(this.#host.index, ErrorStatusBit.SendIllegalVector);
      for (const target of targets) this.latchError(target, ErrorStatusBit.ReceivedIllegalVector);
      counters.count(VcpuStatistic.ipisSent, Math.max(1, targets.length));
      counters.count(VcpuStatistic.ipisDroppedIllegalVector, Math.max(1, targets.length));
      return;
    }
    if (targets.length === 0) {
      counters.count(VcpuStatistic.ipisSent);
      counters.count(VcpuStatistic.ipisDroppedInvalidTarget);
      return;
    }
    const vector = interruptCommandVector(icrLow);
    const level = interruptCommandTriggerMode(icrLow) === TriggerMode.Level;
    // One notify per host CPU, after every target is queued (ttwu_queue_wakelist; VcpuScheduling.beginWakeUps).
    this.#views.beginKicks();
    try {
      this.#deliver(icrLow, icrHigh, targets, vector, level);
    } finally {
      this.#views.endKicks();
    }
  }

  #deliver(icrLow: number, icrHigh: number, targets: readonly number[], vector: number, level: boolean): void {
    switch (interruptCommandForm(icrLow)) {
      case InterruptCommandForm.Fixed:
        for (const target of targets) this.#acceptFixed(target, vector, level);
        break;
      case InterruptCommandForm.LowestPriority:
        this.#acceptLowestPriority(targets, icrLow, icrHigh, vector, level);
        break;
      case InterruptCommandForm.Nmi:
        for (const target of targets) this.#queueNmi(target);
        break;
      case InterruptCommandForm.InitAssert:
        for (const target of targets) this.#latchRequest(target, VcpuRequest.Init);
        break;
      case InterruptCommandForm.StartUp:
        for (const target of targets) {
          // The vector first, then the request bit: pairs with the target's "see StartUp, then load
          // startUpVector" (vcpu-run-state.ts). A second SIPI before the target looks overwrites it, as
          // KVM's sipi_vector is overwritten.
          Atomics.store(this.#control, this.#views.controlBlockIndex(target, 'startUpVector'), vector);
          this.#latchRequest(target, VcpuRequest.StartUp);
        }
        break;
      default:
        // SMI: no SMM in this emulator, so no APIC accepts it (KVM without SMM support drops it too).
        this.#counters.count(VcpuStatistic.ipisSent, targets.length);
        this.#counters.count(VcpuStatistic.ipisDroppedUnsupported, targets.length);
        break;
    }
  }

  /** KVM's lowest-priority choice among software-enabled matches; the physical broadcast is Fixed. */
  #acceptLowestPriority(targets: readonly number[], icrLow: number, icrHigh: number, vector: number, level: boolean): void {
    const memory = this.#views;
    const counters = this.#counters;
    const physical = interruptCommandDestinationMode(icrLow) === DestinationMode.Physical;
    const destination = this.x2apic ? x2apicInterruptCommandDestination(icrHigh) : interruptCommandDestination(icrHigh);
    const broadcast =
      interruptCommandShorthand(icrLow) === DestinationShorthand.None &&
      destination === (this.x2apic ? X2APIC_BROADCAST_ID : XAPIC_BROADCAST_ID);
    if (lowestPriorityBecomesFixed(physical, broadcast)) {
      for (const target of targets) this.#acceptFixed(target, vector, level);
      return;
    }
    const candidates: LowestPriorityCandidate[] = [];
    for (const target of targets) {
      const base = memory.apicPageBase(target);
      if (!isApicSoftwareEnabled(this.#words, base)) continue;
      candidates.push({
        vcpuIndex: target,
        arbitrationCounter: Atomics.load(this.#control, memory.controlBlockIndex(target, 'arbitrationCounter')),
        processorPriority: processorPriority(this.#words, base),
        isFocus: false,
      });
    }
    const winner = selectLowestPriorityTarget(LOWEST_PRIORITY_POLICY, vector, candidates);
    if (winner < 0) {
      counters.count(VcpuStatistic.ipisSent);
      counters.count(VcpuStatistic.ipisDroppedInvalidTarget);
      return;
    }
    // __apic_accept_irq bumps apic_arb_prio of the vCPU that takes a LowestPriority message.
    Atomics.add(this.#control, memory.controlBlockIndex(winner, 'arbitrationCounter'), 1);
    this.#acceptFixed(winner, vector, level);
  }

  /** __apic_accept_irq for a vector: TMR to the trigger, atomic IRR set, then make the target look. */
  #acceptFixed(target: number, vector: number, level: boolean): void {
    const memory = this.#views;
    const counters = this.#counters;
    const base = memory.apicPageBase(target);
    counters.count(VcpuStatistic.ipisSent);
    // TMR before IRR (KVM does the same): once the target can see the IRR bit, its EOI must already
    // know whether to trap as level-triggered.
    setTriggerMode(memory.apicPageWords, base, vector, level);
    if (setIrrAtomic(memory.apicPageWords, base, vector)) counters.count(VcpuStatistic.ipisAccepted);
    else counters.count(VcpuStatistic.ipisCoalesced);
    // The target may block (clear IsRunning, re-check) between the IRR set and the kick's state read (O10).
    hostThread().point(SchedulingPoint.IrrSet);
    this.#host.trace?.interruptDelivery(target);
    this.#makeTargetLook(target);
  }

  /** INIT, start-up: a pending-event bit (KVM pending_events); a set bit merges. */
  #latchRequest(target: number, request: number): void {
    const counters = this.#counters;
    const previous = Atomics.or(this.#control, this.#views.controlBlockIndex(target, 'requests'), request);
    counters.count(VcpuStatistic.ipisSent);
    counters.count((previous & request) === 0 ? VcpuStatistic.ipisAccepted : VcpuStatistic.ipisCoalesced);
    this.#makeTargetLook(target);
  }

  /**
   * kvm_inject_nmi: count it in the target's nmi_queued, then KVM_REQ_NMI and a kick. Always accepted
   * here: the target folds the queue into at most two pending NMIs (one while an NMI is in service)
   * and counts the rest as merged (VcpuInterrupts.collectNmis), so two NMIs that arrive together are both taken.
   * The add comes before the request bit, which pairs with the target's "clear the bit, then take
   * the queue": an NMI queued after the take leaves the bit set for the next look.
   */
  #queueNmi(target: number): void {
    const counters = this.#counters;
    Atomics.add(this.#control, this.#views.controlBlockIndex(target, 'nmiQueued'), 1);
    Atomics.or(this.#control, this.#views.controlBlockIndex(target, 'requests'), VcpuRequest.Nmi);
    counters.count(VcpuStatistic.ipisSent);
    counters.count(VcpuStatistic.ipisAccepted);
    this.#makeTargetLook(target);
  }

  /** After the bit is set (the Atomics.or is the fence): re-evaluate ourselves, or kick the target. */
  #makeTargetLook(target: number): void {
    if (target === this.#host.index) {
      this.#host.cpu.requestInterruptEvaluation();
      return;
    }
    kickVcpu(this.#views, this.#counters, target);
  }

  /** ESR errors accumulate in the control block until the owner's next ESR write latches them. */
  latchError(target: number, bit: ErrorStatusBit): void {
    Atomics.or(this.#control, this.#views.controlBlockIndex(target, 'pendingErrorStatus'), errorStatusMask(bit));
  }
}

/**
 * kvm_vcpu_kick from a vCPU's worker: ring the host CPU `target` is loaded on, so that it leaves
 * guest mode or wakes and looks at what was just set for it (counted as a kick sent).
 */
export function kickVcpu(views: Pick<VmControlViews, 'kick'>, counters: VcpuCounting, target: number): void {
  views.kick(target, 0);
  counters.count(VcpuStatistic.kicksSent);
}
