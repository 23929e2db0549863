// The hypervisor side of the local APIC for one vCPU: what happens on each kind of APIC-page access
// (AMD APM vol. 2, 15.29; avic_unaccelerated_access_interception), the incomplete-IPI exit handler
// (avic_incomplete_ipi_interception), the register side effects KVM applies in software (kvm_apic_write_nodecode,
// kvm_lapic_reg_write) for traps and for x2APIC MSR writes, and the xAPIC -> x2APIC switch. The
// software IPI path itself is apic-software-ipi.ts. Runs in the vCPU's own worker.
//
// ICR BUSY, as modelled (docs/amd-intel-differences.md): an IPI the AVIC hardware completes with no
// exit (or with cause 1) leaves ICR low as written, as AMD does; every path through KVM's software
// stores it with BUSY clear ("no delay").
//
// ESR: errors accumulate in the control block's pendingErrorStatus (senders OR receive errors into a
// target's word); an ESR write latches them into the register (SDM §11.5.3).

import { VcpuStatistic } from '../control/vm-layout.js';
import { isLevelTriggered, setTriggerMode, endOfInterrupt } from '../../hw/apic/apic-backing-page.js';
import { ApicAccessKind, isReadOnlyRegister } from '../../hw/apic/apic-register-table.js';
import { DestinationShorthand, ICR_DELIVERY_STATUS_BUSY, ICR_SHORTHAND_SHIFT } from '../../hw/apic/interrupt-command.js';
import { ErrorStatusBit } from '../../hw/apic/error-status.js';
import { apicId } from '../../hw/apic/apic-id.js';
import { x2apicStateOnEntry } from '../../hw/apic/apic-base.js';
import { AvicIncompleteIpiCause } from '../../hw/avic/avic-exit.js';
import { ApicRegister } from '../../hw/apic/apic-register.js';
import { VcpuRequest, VcpuWaitReason } from '../control/vcpu-run-state.js';
import { VcpuApicv } from '../control/apic-inhibit.js';
import { ApicImplementation, xapicInterruptCommandHighAfterWrite } from '../../hw/apic/interrupt-command-readback.js';
import { TraceEventKind } from '../report/trace-recorder.js';
import { SoftwareIpiPath } from './apic-software-ipi.js';
import { VcpuApicMode } from './x2apic-msr.js';
import { GuestFaultKind } from '../../guest/guest-fault.js';
import type { Vcpu } from '../vcpu/vcpu.js';

/** Bound on waiting for the main thread to rebuild the APIC map after an LDR/DFR/ID write. */
const APIC_MAP_REBUILD_TIMEOUT_MS = 10_000;

const isTimerRegister = (offset: number): boolean =>
  offset === ApicRegister.LvtTimer || offset === ApicRegister.TimerInitialCount || offset === ApicRegister.TimerDivideConfiguration;

export class LocalApicEmulation {
  readonly #vcpu: Vcpu;
  readonly #words: Int32Array;
  readonly #control: Int32Array;
  readonly #inhibits: number;
  readonly #pendingErrors: number;
  readonly #apicModeIndex: number;
  /** This vCPU's mode, cached: only this worker writes the control-block word. */
  #x2apic = false;
  /** KVM's apic->apicv_active and KVM_REQ_APICV_UPDATE for this vCPU (apic-inhibit.ts). */
  readonly #apicv: VcpuApicv;
  readonly #software: SoftwareIpiPath;

  constructor(vcpu: Vcpu) {
    this.#vcpu = vcpu;
    const memory = vcpu.memory;
    this.#words = memory.apicPageWords;
    this.#control = memory.control;
    this.#inhibits = memory.headerIndex('apicvInhibitReasons');
    this.#pendingErrors = memory.controlBlockIndex(vcpu.index, 'pendingErrorStatus');
    this.#apicModeIndex = memory.controlBlockIndex(vcpu.index, 'apicMode');
    this.#x2apic = Atomics.load(this.#control, this.#apicModeIndex) === VcpuApicMode.X2apic;
    this.#apicv = new VcpuApicv(vcpu);
    this.#software = new SoftwareIpiPath(vcpu);
    this.#software.x2apic = this.#x2apic;
  }

  /** The vCPU's current page (rfc-v2 moves it; see Vcpu.pageBase). */
  get #base(): number {
    return this.#vcpu.pageBase;
  }

  #register(offset: number): number {
    return this.#base + (offset >> 2);
  }

  get x2apicMode(): boolean {
    return this.#x2apic;
  }

  get apicvActive(): boolean {
    return this.#apicv.active;
  }

  /** KVM_REQ_APICV_UPDATE (kvm_vcpu_update_apicv): see VcpuApicv.update. */
  updateApicv(): void {
    this.#apicv.update();
  }

  read(offset: number): number {
    return this.#words[this.#register(offset)]!;
  }

  /** One guest access to the APIC page at `offset` (aligned, 32-bit). Returns the value read. */
  access(offset: number, isWrite: boolean, value: number): number {
    const vcpu = this.#vcpu;
    if (this.#x2apic) {
      // x2APIC mode disables the MMIO interface (SDM §11.12.1.2); KVM's MMIO handler declines it.
      vcpu.cpu.raiseFault(GuestFaultKind.InvalidApicAccess, `xAPIC MMIO ${isWrite ? 'write' : 'read'} of offset 0x${offset.toString(16)} in x2APIC mode: use the MSRs 0x800-0x8FF`);
      return 0;
    }
    if (!this.#apicv.current()) return this.#emulateMmioAccess(offset, isWrite, value);
    const kind = vcpu.classifyAccess(offset, isWrite);
    switch (kind) {
      case ApicAccessKind.Accelerated:
        if (!isWrite) return this.read(offset);
        this.#words[this.#register(offset)] = value;
        return 0;
      case ApicAccessKind.AcceleratedTaskPriority:
        this.#writeTaskPriority(value);
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
        const result = isWrite ? (this.#emulateWrite(offset, value), 0) : this.readRegister(offset);
        vcpu.endExitHandling();
        return result;
    }
  }

  // ---- IPIs ----

  /** An xAPIC ICR-low write with AVIC active: the hardware first. */
  #sendIpi(icrLow: number, icrHigh: number): void {
    const vcpu = this.#vcpu;
    vcpu.sendAcceleratedIpi(icrLow, icrHigh);
    this.#completeAcceleratedIpi(icrLow, icrHigh, (icrHigh >>> 24) & 0xff);
  }

  /**
   * What the hardware left to software (avic_incomplete_ipi_interception), for xAVIC and x2AVIC
   * alike: count what it delivered; on an exit, wake the not-running targets (cause 1) or emulate
   * the whole IPI (causes 0, 2, 4). `tracedDestination` is the destination the trace shows.
   */
  #completeAcceleratedIpi(icrLow: number, icrHigh: number, tracedDestination: number): void {
    const vcpu = this.#vcpu;
    const outcome = vcpu.outcome;
    vcpu.trace?.record(TraceEventKind.IpiSent, icrLow, (tracedDestination & 0xff) | ((outcome.exit + 1) << 8));
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
      case AvicIncompleteIpiCause.InvalidBackingPage:
        // KVM only warns; the IPI goes nowhere. Counted as dropped so the totals still add up.
        vcpu.count(VcpuStatistic.ipiCommands);
        vcpu.count(VcpuStatistic.ipisSent);
        vcpu.count(VcpuStatistic.ipisDroppedInvalidTarget);
        break;
      default:
        // Causes 0 and 2: full software emulation (kvm_apic_send_ipi), a stuck busy bit cleared first.
        // Cause 4 (vector < 16): KVM drops it silently; the emulation drops it too but latches the
        // architectural ESR bits on both sides (docs/amd-intel-differences.md).
        this.#emulateClearingBusy(icrLow, icrHigh);
        break;
    }
    vcpu.endExitHandling();
  }

  #emulateClearingBusy(icrLow: number, icrHigh: number): void {
    const low = icrLow & ~ICR_DELIVERY_STATUS_BUSY;
    this.#words[this.#register(ApicRegister.InterruptCommandLow)] = low;
    this.#software.emulateIpi(low, icrHigh);
  }

  /**
   * WRMSR 0x830 intercepted by KVM, after its #GP checks (x2apic-msr.ts): ICR stored as two page
   * slots, BUSY clear, then sent by software. This is every x2APIC ICR write under hybrid AVIC (no
   * x2AVIC) or while an inhibit is set: there is no hardware attempt first.
   */
  sendX2apicInterruptCommand(low: number, high: number): void {
    this.#words[this.#register(ApicRegister.InterruptCommandHigh)] = high;
    this.#emulateClearingBusy(low, high);
  }

  /**
   * Whether an x2APIC ICR or SELF IPI write goes to the x2AVIC hardware instead of a WRMSR exit:
   * the VM uses x2AVIC, this vCPU is in x2APIC mode (int_ctl bit 30) and no inhibit has turned
   * AVIC off (then KVM intercepts the x2APIC MSRs again and emulates them).
   */
  get x2avicAccelerates(): boolean {
    return this.#x2apic && this.#vcpu.startup.x2avic && this.#apicv.current();
  }

  /**
   * WRMSR 0x830 accelerated by x2AVIC, in guest mode: the ICR lands in the page as written (AMD
   * leaves BUSY as the guest wrote it, which the #GP checks already required to be 0), then the
   * hardware delivers; an exit is handled as for xAPIC (#sendIpi is the same flow), with the
   * software path reading ICR[63:32] as the destination.
   */
  sendAcceleratedX2apicInterruptCommand(low: number, high: number): void {
    this.#words[this.#register(ApicRegister.InterruptCommandLow)] = low;
    this.#words[this.#register(ApicRegister.InterruptCommandHigh)] = high;
    this.#vcpu.sendAcceleratedX2apicIpi(low, high);
    this.#completeAcceleratedIpi(low, high, high);
  }

  #kickTargets(icrLow: number, icrHigh: number): void {
    const vcpu = this.#vcpu;
    for (const target of this.#software.collectTargets(icrLow, icrHigh)) {
      if (target === vcpu.index) continue;
      vcpu.memory.kick(target, 0);
      vcpu.count(VcpuStatistic.kicksSent);
    }
  }

  /** An ESR write (any value in xAPIC, zero in x2APIC): publish the accumulated errors, start anew. */
  #latchErrorStatus(): void {
    this.#words[this.#register(ApicRegister.ErrorStatus)] = Atomics.exchange(this.#control, this.#pendingErrors, 0) & 0xff;
  }

  // ---- register writes with side effects (kvm_apic_write_nodecode, kvm_lapic_reg_write) ----

  #writeTaskPriority(value: number): void {
    this.#words[this.#register(ApicRegister.TaskPriority)] = value & 0xff;
    this.#vcpu.refreshProcessorPriority();
    this.#vcpu.cpu.requestInterruptEvaluation();
  }

  #softwareEndOfInterrupt(): void {
    const vector = endOfInterrupt(this.#words, this.#base);
    if (vector >= 0 && isLevelTriggered(this.#words, this.#base, vector)) setTriggerMode(this.#words, this.#base, vector, false);
    this.#vcpu.cpu.requestInterruptEvaluation();
  }


  #applyTrappedWrite(offset: number): void {
    switch (offset) {
      case ApicRegister.EndOfInterrupt:
        // Only level-triggered EOIs trap: hardware did not complete it, software does.
        this.#softwareEndOfInterrupt();
        break;
      case ApicRegister.Id:
        // KVM moves nothing: the map rebuild sets APIC_ID_MODIFIED while any xAPIC ID differs from
        // its vCPU index, and clears it once none does (kvm_recalculate_apic_map; apic-map.ts).
      case ApicRegister.LogicalDestination:
      case ApicRegister.DestinationFormat:
        this.#requestApicMapRebuild();
        break;
      case ApicRegister.ErrorStatus:
        this.#latchErrorStatus();
        break;
      case ApicRegister.SpuriousInterruptVector:
        this.#vcpu.cpu.requestInterruptEvaluation();
        break;
      default:
        if (isTimerRegister(offset)) this.#vcpu.apicTimer.write(offset, this.read(offset));
        // RRR is ignored; the other LVT entries keep the written value.
        break;
    }
  }

  /** A register read by software (a faulting xAPIC read, or RDMSR in x2APIC mode). */
  readRegister(offset: number): number {
    if (offset === ApicRegister.TimerCurrentCount) return this.#vcpu.apicTimer.readCurrentCount();
    return this.read(offset);
  }

  /**
   * WRMSR of an x2APIC register other than ICR and SELF IPI, after its #GP checks (x2apic-msr.ts):
   * kvm_lapic_reg_write for the register at page `offset`.
   */
  writeRegister(offset: number, value: number): void {
    switch (offset) {
      case ApicRegister.TaskPriority:
        this.#writeTaskPriority(value);
        return;
      case ApicRegister.EndOfInterrupt:
        this.#softwareEndOfInterrupt();
        return;
      case ApicRegister.ErrorStatus:
        this.#latchErrorStatus();
        return;
      default:
        if (isTimerRegister(offset)) {
          this.#words[this.#register(offset)] = value;
          this.#vcpu.apicTimer.write(offset, value);
          return;
        }
        this.#words[this.#register(offset)] = value;
        if (offset === ApicRegister.SpuriousInterruptVector) this.#vcpu.cpu.requestInterruptEvaluation();
    }
  }

  /** WRMSR 0x83F (SELF IPI) intercepted: KVM sends it as ICR = APIC_DEST_SELF | vector, through software. */
  sendSelfIpi(vector: number): void {
    this.#software.emulateIpi((DestinationShorthand.Self << ICR_SHORTHAND_SHIFT) | (vector & 0xff), 0);
  }

  /**
   * An APIC-page access with AVIC inactive: the APIC-access page is not mapped, so the access takes a
   * nested page fault and KVM emulates it as MMIO (kvm_emulate_instruction -> apic_mmio_read /
   * apic_mmio_write -> kvm_lapic_reg_read / kvm_lapic_reg_write), EOI and TPR included. The register
   * effects are the ones the AVIC paths apply, all in software; ICR high keeps bits 31:24 only.
   */
  #emulateMmioAccess(offset: number, isWrite: boolean, value: number): number {
    const vcpu = this.#vcpu;
    vcpu.count(VcpuStatistic.apicMmioEmulationExits);
    vcpu.trace?.record(TraceEventKind.UnacceleratedAccessExit, offset, 2);
    vcpu.beginExitHandling();
    let result = 0;
    if (!isWrite) result = this.readRegister(offset);
    else {
      switch (vcpu.classifyAccess(offset, true)) {
        case ApicAccessKind.AcceleratedTaskPriority:
          this.#writeTaskPriority(value);
          break;
        case ApicAccessKind.AcceleratedEndOfInterrupt:
          this.#softwareEndOfInterrupt();
          break;
        case ApicAccessKind.InterruptCommand:
          vcpu.count(VcpuStatistic.interruptCommandsWhileInhibited);
          this.#words[this.#register(ApicRegister.InterruptCommandLow)] = value;
          this.#emulateClearingBusy(value, this.read(ApicRegister.InterruptCommandHigh));
          break;
        case ApicAccessKind.Accelerated:
          this.#words[this.#register(offset)] = offset === ApicRegister.InterruptCommandHigh
            ? xapicInterruptCommandHighAfterWrite(value, ApicImplementation.KvmEmulated) | 0
            : value;
          break;
        case ApicAccessKind.Trap:
          this.#words[this.#register(offset)] = value;
          this.#applyTrappedWrite(offset);
          break;
        default:
          this.#emulateWrite(offset, value);
      }
    }
    vcpu.endExitHandling();
    return result;
  }

  #emulateWrite(offset: number, _value: number): void {
    // Writes that fault are to read-only or reserved registers: read-only ones are ignored, reserved
    // ones set "illegal register address" (SDM 11.5.3).
    if (!isReadOnlyRegister(offset)) this.#software.latchError(this.#vcpu.index, ErrorStatusBit.IllegalRegisterAddress);
  }

  // ---- xAPIC -> x2APIC (x2apic-msr.ts decides; this applies it to the page) ----

  /**
   * ApicBaseEffect.SetX2apicIdAndLogicalDestination: the 32-bit x2APIC ID is the vCPU index (the
   * initial APIC ID, even after an xAPIC ID rewrite) and the LDR is derived from it; DFR is left
   * alone. The ID and LDR are stored before the mode word, which software-path senders load first.
   * Then the logical table drops this vCPU (the main thread's rebuild skips x2APIC vCPUs), if it had
   * an entry at all.
   */
  enterX2apicMode(): void {
    const { id, logicalDestination } = x2apicStateOnEntry(apicId(this.#vcpu.index));
    // An xAPIC logical ID of 0 names nobody, so this vCPU has no logical table entry to drop and the
    // rebuild below would publish the same table: skip it. That keeps hundreds of vCPUs switching at
    // once (a 512-vCPU boot) from queueing behind the main thread on a 2-core host.
    const hadLogicalEntry = this.read(ApicRegister.LogicalDestination) >>> 24 !== 0;
    // A rewritten xAPIC ID set APIC_ID_MODIFIED; the x2APIC ID is the index, so a rebuild clears it.
    const hadModifiedId = this.read(ApicRegister.Id) >>> 24 !== (this.#vcpu.index & 0xff);
    this.#words[this.#register(ApicRegister.Id)] = id | 0;
    this.#words[this.#register(ApicRegister.LogicalDestination)] = logicalDestination | 0;
    this.#x2apic = true;
    this.#software.x2apic = true;
    Atomics.store(this.#control, this.#apicModeIndex, VcpuApicMode.X2apic);
    if (hadLogicalEntry || hadModifiedId) this.#requestApicMapRebuild();
  }

  /**
   * LDR, DFR and ID writes change the logical APIC ID table, which the main thread owns (it rebuilds
   * and publishes it whole, kvm_recalculate_apic_map). The vCPU does not re-enter the guest until that
   * is done, so no IPI sent after the write can see the old table (O8 in docs/architecture.md#orderings).
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
