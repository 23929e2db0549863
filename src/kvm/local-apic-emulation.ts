// The hypervisor side of the local APIC for one vCPU: what happens on each kind of APIC-page access
// (spec §1.2, §2.6), the incomplete-IPI exit handler (avic_incomplete_ipi_interception, spec §1.7,
// §2.5) and KVM's software IPI path for everything AVIC does not accelerate (kvm_apic_send_ipi).
// Runs in the vCPU's own worker.

import { VcpuStatistic } from './vm-layout.js';
import { isLevelTriggered, setIrrAtomic, setTriggerMode, endOfInterrupt } from '../hw/apic/apic-backing-page.js';
import { ApicAccessKind } from '../hw/apic/apic-access.js';
import { matchesDestination } from '../hw/apic/apic-destination.js';
import { DeliveryMode, TriggerMode, decodeInterruptCommand } from '../hw/apic/interrupt-command.js';
import { ErrorStatusBit } from '../hw/apic/error-status.js';
import { AvicIncompleteIpiCause } from '../hw/avic/avic-exit.js';
import { ApicRegister } from '../hw/apic/apic-register.js';
import { VcpuRequest, VcpuWaitReason } from './vcpu-run-state.js';
import { TraceEventKind } from './trace-recorder.js';
import type { Vcpu } from './vcpu.js';

/** ICR delivery-status (busy) bit. AVIC hardware can leave it set; KVM clears it (spec §1.6 step 5). */
const INTERRUPT_COMMAND_BUSY = 1 << 12;
/** Bound on waiting for the main thread to rebuild the APIC map after an LDR/DFR write. */
const APIC_MAP_REBUILD_TIMEOUT_MS = 10_000;

export class LocalApicEmulation {
  readonly #vcpu: Vcpu;
  readonly #words: Int32Array;
  readonly #base: number;
  /** Errors noticed since the last ESR write; a write to ESR latches them into the register (SDM 11.5.3). */
  #pendingErrors = 0;

  constructor(vcpu: Vcpu) {
    this.#vcpu = vcpu;
    this.#words = vcpu.memory.apicPageWords;
    this.#base = vcpu.pageBase;
  }

  #register(offset: number): number {
    return this.#base + (offset >> 2);
  }

  read(offset: number): number {
    return this.#words[this.#register(offset)]!;
  }

  /** One guest access to the APIC page at `offset` (aligned, 32-bit). Returns the value read. */
  access(offset: number, isWrite: boolean, value: number): number {
    const vcpu = this.#vcpu;
    const kind = vcpu.classifyAccess(offset, isWrite);
    switch (kind) {
      case ApicAccessKind.Accelerated:
        if (!isWrite) return this.read(offset);
        this.#words[this.#register(offset)] = value;
        return 0;
      case ApicAccessKind.AcceleratedTaskPriority:
        this.#words[this.#register(ApicRegister.TaskPriority)] = value & 0xff;
        vcpu.refreshProcessorPriority();
        vcpu.cpu.requestInterruptEvaluation();
        return 0;
      case ApicAccessKind.AcceleratedEndOfInterrupt:
        vcpu.completeEndOfInterrupt();
        vcpu.cpu.requestInterruptEvaluation();
        return 0;
      case ApicAccessKind.InterruptCommand:
        this.#words[this.#register(ApicRegister.InterruptCommandLow)] = value;
        this.#sendIpi(value, this.read(ApicRegister.InterruptCommandHigh));
        return 0;
      case ApicAccessKind.Trap:
        // A trap: the write already reached the page; software applies its side effects.
        this.#words[this.#register(offset)] = value;
        vcpu.count(VcpuStatistic.unacceleratedAccessTrapExits);
        vcpu.trace?.record(TraceEventKind.UnacceleratedAccessExit, offset, 1);
        vcpu.beginExitHandling();
        this.#applyTrappedWrite(offset);
        vcpu.endExitHandling();
        return 0;
      default:
        // A fault: nothing happened yet; emulate the instruction's access.
        vcpu.count(VcpuStatistic.unacceleratedAccessFaultExits);
        vcpu.trace?.record(TraceEventKind.UnacceleratedAccessExit, offset, 0);
        vcpu.beginExitHandling();
        const result = isWrite ? (this.#emulateWrite(offset, value), 0) : this.#emulateRead(offset);
        vcpu.endExitHandling();
        return result;
    }
  }

  // ---- IPIs ----

  #sendIpi(icrLow: number, icrHigh: number): void {
    const vcpu = this.#vcpu;
    vcpu.sendAcceleratedIpi(icrLow, icrHigh);
    const outcome = vcpu.outcome;
    vcpu.trace?.record(TraceEventKind.IpiSent, icrLow, ((icrHigh >>> 24) & 0xff) | ((outcome.exit + 1) << 8));
    if (outcome.selfTargeted) vcpu.cpu.requestInterruptEvaluation();
    if (outcome.exit < 0 || outcome.exit === AvicIncompleteIpiCause.TargetNotRunning) {
      vcpu.count(VcpuStatistic.ipiCommands);
      vcpu.count(VcpuStatistic.ipisSent, outcome.targets);
      vcpu.count(VcpuStatistic.ipisAccepted, outcome.accepted);
      vcpu.count(VcpuStatistic.ipisCoalesced, outcome.coalesced);
      if (outcome.exit < 0) return;
    }
    vcpu.countIncompleteIpiExit(outcome.exit);
    vcpu.beginExitHandling();
    switch (outcome.exit) {
      case AvicIncompleteIpiCause.TargetNotRunning:
        // The IRR bits are already set: only wake the targets (avic_kick_target_vcpus).
        this.#kickTargets(icrLow, icrHigh);
        break;
      case AvicIncompleteIpiCause.InvalidInterruptType:
      case AvicIncompleteIpiCause.InvalidTarget:
        // Full software emulation (kvm_apic_send_ipi); a stuck busy bit is cleared first.
        this.#words[this.#register(ApicRegister.InterruptCommandLow)] = icrLow & ~INTERRUPT_COMMAND_BUSY;
        this.emulateIpi(icrLow & ~INTERRUPT_COMMAND_BUSY, icrHigh);
        break;
      case AvicIncompleteIpiCause.InvalidBackingPage:
        // KVM only warns; the IPI goes nowhere. Counted as dropped so the totals still add up.
        vcpu.count(VcpuStatistic.ipiCommands);
        vcpu.count(VcpuStatistic.ipisSent);
        vcpu.count(VcpuStatistic.ipisDroppedInvalidTarget);
        break;
      case AvicIncompleteIpiCause.InvalidIpiVector:
        // Vectors 0-15 are illegal: the IPI is dropped and ESR records "send illegal vector".
        vcpu.count(VcpuStatistic.ipiCommands);
        vcpu.count(VcpuStatistic.ipisSent);
        vcpu.count(VcpuStatistic.ipisDroppedIllegalVector);
        this.#pendingErrors |= 1 << ErrorStatusBit.SendIllegalVector;
        break;
    }
    vcpu.endExitHandling();
  }

  /** The vCPU indices an ICR names, by the software matching rules (kvm_apic_match_dest). */
  #forEachTarget(icrLow: number, icrHigh: number, visit: (target: number) => void): void {
    const command = decodeInterruptCommand(icrLow, icrHigh);
    const memory = this.#vcpu.memory;
    const words = memory.apicPageWords;
    const senderId = words[this.#register(ApicRegister.Id)]! >>> 24;
    for (let target = 0; target < memory.vcpuCount; target++) {
      const base = memory.apicPageBase(target);
      const id = words[base + (ApicRegister.Id >> 2)]! >>> 24;
      const ldr = words[base + (ApicRegister.LogicalDestination >> 2)]!;
      const dfr = words[base + (ApicRegister.DestinationFormat >> 2)]!;
      if (matchesDestination(id, ldr, dfr, senderId, command.shorthand, command.destinationMode, command.destination)) visit(target);
    }
  }

  #kickTargets(icrLow: number, icrHigh: number): void {
    const vcpu = this.#vcpu;
    this.#forEachTarget(icrLow, icrHigh, (target) => {
      if (target === vcpu.index) return;
      vcpu.memory.kick(target, 0);
      vcpu.count(VcpuStatistic.kicksSent);
    });
  }

  /** kvm_apic_send_ipi -> kvm_irq_delivery_to_apic -> __apic_accept_irq, for every delivery mode. */
  emulateIpi(icrLow: number, icrHigh: number): void {
    const vcpu = this.#vcpu;
    const command = decodeInterruptCommand(icrLow, icrHigh);
    vcpu.count(VcpuStatistic.ipiCommands);
    const targets: number[] = [];
    this.#forEachTarget(icrLow, icrHigh, (target) => targets.push(target));
    if (targets.length === 0) {
      vcpu.count(VcpuStatistic.ipisSent);
      vcpu.count(VcpuStatistic.ipisDroppedInvalidTarget);
      return;
    }
    const fixedLike = command.deliveryMode === DeliveryMode.Fixed || command.deliveryMode === DeliveryMode.LowestPriority;
    if (fixedLike && command.vector < 16) {
      vcpu.count(VcpuStatistic.ipisSent, targets.length);
      vcpu.count(VcpuStatistic.ipisDroppedIllegalVector, targets.length);
      this.#pendingErrors |= 1 << ErrorStatusBit.SendIllegalVector;
      return;
    }
    switch (command.deliveryMode) {
      case DeliveryMode.Fixed:
        for (const target of targets) this.#accept(target, command.vector, command.triggerMode === TriggerMode.Level);
        break;
      case DeliveryMode.LowestPriority:
        this.#accept(this.#lowestPriorityTarget(targets), command.vector, command.triggerMode === TriggerMode.Level);
        break;
      case DeliveryMode.Nmi:
        for (const target of targets) {
          vcpu.count(VcpuStatistic.ipisSent);
          vcpu.count(VcpuStatistic.ipisAccepted);
          if (target === vcpu.index) vcpu.memory.addRequest(target, VcpuRequest.Nmi), vcpu.cpu.requestInterruptEvaluation();
          else { vcpu.memory.kick(target, VcpuRequest.Nmi); vcpu.count(VcpuStatistic.kicksSent); }
        }
        break;
      default:
        // SMI, INIT, start-up and the reserved modes are not modelled yet (SMP bring-up comes later).
        vcpu.count(VcpuStatistic.ipisSent, targets.length);
        vcpu.count(VcpuStatistic.ipisDroppedUnsupported, targets.length);
        break;
    }
  }

  /** Lowest-priority arbitration: the target with the lowest TPR; ties go to the lowest index. */
  #lowestPriorityTarget(targets: readonly number[]): number {
    const memory = this.#vcpu.memory;
    let best = targets[0]!;
    let bestPriority = Infinity;
    for (const target of targets) {
      const priority = memory.apicPageWords[memory.apicPageBase(target) + (ApicRegister.TaskPriority >> 2)]! & 0xff;
      if (priority < bestPriority) { best = target; bestPriority = priority; }
    }
    return best;
  }

  /** __apic_accept_irq for a fixed vector: atomic IRR set, then make the target look. */
  #accept(target: number, vector: number, levelTriggered: boolean): void {
    const vcpu = this.#vcpu;
    const memory = vcpu.memory;
    const base = memory.apicPageBase(target);
    vcpu.count(VcpuStatistic.ipisSent);
    if (levelTriggered && target === vcpu.index) setTriggerMode(memory.apicPageWords, base, vector, true);
    if (setIrrAtomic(memory.apicPageWords, base, vector)) vcpu.count(VcpuStatistic.ipisAccepted);
    else vcpu.count(VcpuStatistic.ipisCoalesced);
    if (target === vcpu.index) vcpu.cpu.requestInterruptEvaluation();
    else {
      // IRR first, then the kick (svm_complete_interrupt_delivery): the Atomics.or above is the fence.
      memory.kick(target, 0);
      vcpu.count(VcpuStatistic.kicksSent);
    }
  }

  // ---- trapped and faulting register accesses (kvm_apic_write_nodecode, kvm_lapic_reg_read/write) ----

  #applyTrappedWrite(offset: number): void {
    switch (offset) {
      case ApicRegister.EndOfInterrupt: {
        // Only level-triggered EOIs trap: hardware did not complete it, software does.
        const vector = endOfInterrupt(this.#words, this.#base);
        if (vector >= 0 && isLevelTriggered(this.#words, this.#base, vector)) setTriggerMode(this.#words, this.#base, vector, false);
        this.#vcpu.cpu.requestInterruptEvaluation();
        break;
      }
      case ApicRegister.LogicalDestination:
      case ApicRegister.DestinationFormat:
      case ApicRegister.Id:
        this.#requestApicMapRebuild();
        break;
      case ApicRegister.ErrorStatus:
        this.#words[this.#register(ApicRegister.ErrorStatus)] = this.#pendingErrors;
        this.#pendingErrors = 0;
        break;
      case ApicRegister.SpuriousInterruptVector:
        this.#vcpu.cpu.requestInterruptEvaluation();
        break;
      default:
        // RRR is ignored; LVT and timer registers keep the written value (no timer model yet).
        break;
    }
  }

  #emulateRead(offset: number): number {
    if (offset === ApicRegister.TimerCurrentCount) return 0;
    return this.read(offset);
  }

  #emulateWrite(offset: number, _value: number): void {
    // Writes that fault are to read-only or reserved registers: read-only ones are ignored, reserved
    // ones set "illegal register address" (SDM 11.5.3).
    const readOnly = offset === ApicRegister.Version || offset === ApicRegister.ProcessorPriority || offset === ApicRegister.ArbitrationPriority
      || (offset >= ApicRegister.InService && offset < ApicRegister.ErrorStatus) || offset === ApicRegister.TimerCurrentCount;
    if (!readOnly) this.#pendingErrors |= 1 << ErrorStatusBit.IllegalRegisterAddress;
  }

  /**
   * LDR, DFR and ID writes change the logical APIC ID table, which the main thread owns (it rebuilds
   * and publishes it whole, spec §2.7). The vCPU does not re-enter the guest until that is done, so no
   * IPI sent after the write can see the old table (spec §4 item 11).
   */
  #requestApicMapRebuild(): void {
    const memory = this.#vcpu.memory;
    const control = memory.control;
    const generationIndex = memory.headerIndex('apicMapGeneration');
    const wanted = Atomics.add(control, memory.headerIndex('apicMapRequests'), 1) + 1;
    memory.ringMainDoorbell();
    const waitReason = memory.controlBlockIndex(this.#vcpu.index, 'waitReason');
    Atomics.store(control, waitReason, VcpuWaitReason.ApicMapRebuild);
    const deadline = performance.now() + APIC_MAP_REBUILD_TIMEOUT_MS;
    for (;;) {
      const generation = Atomics.load(control, generationIndex);
      if (generation - wanted >= 0) break;
      if ((Atomics.load(control, memory.controlBlockIndex(this.#vcpu.index, 'requests')) & VcpuRequest.Stop) !== 0) break;
      if (performance.now() > deadline) throw new Error('the main thread did not rebuild the APIC map within 10 s');
      Atomics.wait(control, generationIndex, generation, 20);
    }
    Atomics.store(control, waitReason, VcpuWaitReason.None);
  }
}
