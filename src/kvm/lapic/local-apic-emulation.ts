// The hypervisor's emulation of one vCPU's local APIC registers (KVM's lapic.c): the side effects
// software applies after an AVIC trap (kvm_apic_write_nodecode), the writes it emulates after a
// fault, the MMIO emulation while AVIC is inhibited (apic_mmio_read / apic_mmio_write ->
// kvm_lapic_reg_read / kvm_lapic_reg_write), the x2APIC register writes KVM intercepts, ESR, and
// the xAPIC -> x2APIC switch. The software IPI path itself is apic-software-ipi.ts. What the AVIC
// hardware does first is src/hw/avic/avic-apic-access.ts; the exits it takes reach this file
// through the handlers in src/kvm/svm/. Runs in the vCPU's own worker.
//
// ICR BUSY, as modelled (docs/amd-intel-differences.md): an IPI the AVIC hardware completes with no
// exit (or with cause 1) leaves ICR low as written, as AMD does; every path through KVM's software
// stores it with BUSY clear ("no delay").
//
// ESR: errors accumulate in the control block's pendingErrorStatus (senders OR receive errors into a
// target's word); an ESR write latches them into the register (SDM §11.5.3).

import { hostThread } from '../../host/host-thread.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import { isLevelTriggered, setTriggerMode, endOfInterrupt, updateProcessorPriority } from '../../hw/apic/apic-backing-page.js';
import { ApicAccessKind, classifyApicAccess } from '../../hw/apic/apic-access.js';
import { isReadOnlyRegister } from '../../hw/apic/apic-register-table.js';
import { DestinationShorthand, ICR_DELIVERY_STATUS_BUSY, ICR_SHORTHAND_SHIFT } from '../../hw/apic/interrupt-command.js';
import { ErrorStatusBit } from '../../hw/apic/error-status.js';
import { apicId } from '../../hw/apic/apic-id.js';
import { x2apicStateOnEntry } from '../../hw/apic/apic-base.js';
import { ApicRegister } from '../../hw/apic/apic-register.js';
import { VcpuApicMode, VcpuRequest, VcpuWaitReason } from '../control/vcpu-run-state.js';
import { ApicImplementation, xapicInterruptCommandHighAfterWrite } from '../../hw/apic/interrupt-command-readback.js';
import { TraceEventKind, type TraceRecorder } from '../report/trace-recorder.js';
import { SoftwareIpiPath, type SoftwareIpiHost } from './apic-software-ipi.js';

/** Bound on waiting for the main thread to rebuild the APIC map after an LDR/DFR/ID write. */
const APIC_MAP_REBUILD_TIMEOUT_MS = 10_000;

const isTimerRegister = (offset: number): boolean =>
  offset === ApicRegister.LvtTimer || offset === ApicRegister.TimerInitialCount || offset === ApicRegister.TimerDivideConfiguration;

/** What the register emulation needs from its vCPU: the software path's needs, its timer and its trace. */
export interface LocalApicHost extends SoftwareIpiHost {
  /** The LVT timer: the register handlers call write() and readCurrentCount(). */
  readonly timer: { write(offset: number, value: number): void; readCurrentCount(): number };
  readonly trace: TraceRecorder | undefined;
}

export class LocalApicEmulation {
  readonly index: number;
  readonly #host: LocalApicHost;
  readonly #control: Int32Array;
  readonly #pendingErrors: number;
  readonly #apicModeIndex: number;
  /** This vCPU's mode, cached: only this worker writes the control-block word. */
  #x2apic = false;
  readonly #software: SoftwareIpiPath;

  constructor(host: LocalApicHost) {
    this.#host = host;
    this.index = host.index;
    const views = host.views;
    this.#control = views.control;
    this.#pendingErrors = views.controlBlockIndex(host.index, 'pendingErrorStatus');
    this.#apicModeIndex = views.controlBlockIndex(host.index, 'apicMode');
    this.#x2apic = Atomics.load(this.#control, this.#apicModeIndex) === VcpuApicMode.X2apic;
    this.#software = new SoftwareIpiPath(host);
    this.#software.x2apic = this.#x2apic;
  }

  get x2apicMode(): boolean {
    return this.#x2apic;
  }

  read(offset: number): number {
    return this.#host.page.read(offset);
  }

  #write(offset: number, value: number): void {
    this.#host.page.write(offset, value);
  }

  // ---- IPIs ----

  /** The vCPU indices an ICR names, by KVM's matching rules (kvm_apic_match_dest); a reused array. */
  collectTargets(icrLow: number, icrHigh: number): readonly number[] {
    return this.#software.collectTargets(icrLow, icrHigh);
  }

  /** kvm_apic_send_ipi for an ICR software handles: stored with BUSY clear ("no delay"), then sent. */
  emulateIcrClearingBusy(icrLow: number, icrHigh: number): void {
    const low = icrLow & ~ICR_DELIVERY_STATUS_BUSY;
    this.#write(ApicRegister.InterruptCommandLow, low);
    this.#software.emulateIpi(low, icrHigh);
  }

  /**
   * WRMSR 0x830 intercepted by KVM, after its #GP checks (x2apic-msr.ts): ICR stored as two page
   * slots, BUSY clear, then sent by software. This is every x2APIC ICR write under hybrid AVIC (no
   * x2AVIC) or while an inhibit is set: there is no hardware attempt first.
   */
  sendX2apicInterruptCommand(low: number, high: number): void {
    this.#write(ApicRegister.InterruptCommandHigh, high);
    this.emulateIcrClearingBusy(low, high);
  }

  /** WRMSR 0x83F (SELF IPI) intercepted: KVM sends it as ICR = APIC_DEST_SELF | vector, through software. */
  sendSelfIpi(vector: number): void {
    this.#software.emulateIpi((DestinationShorthand.Self << ICR_SHORTHAND_SHIFT) | (vector & 0xff), 0);
  }

  /** An ESR write (any value in xAPIC, zero in x2APIC): publish the accumulated errors, start anew. */
  #latchErrorStatus(): void {
    this.#write(ApicRegister.ErrorStatus, Atomics.exchange(this.#control, this.#pendingErrors, 0) & 0xff);
  }

  // ---- register writes with side effects (kvm_apic_write_nodecode, kvm_lapic_reg_write) ----

  #writeTaskPriority(value: number): void {
    const page = this.#host.page;
    page.write(ApicRegister.TaskPriority, value & 0xff);
    updateProcessorPriority(page.words, page.base);
    this.#host.cpu.requestInterruptEvaluation();
  }

  #softwareEndOfInterrupt(): void {
    const { words, base } = this.#host.page;
    const vector = endOfInterrupt(words, base);
    if (vector >= 0 && isLevelTriggered(words, base, vector)) setTriggerMode(words, base, vector, false);
    this.#host.cpu.requestInterruptEvaluation();
  }

  /**
   * kvm_apic_write_nodecode: the side effects of a write that AVIC completed in the page and then
   * trapped (AVIC_NOACCEL, trap type). The value is already in the page.
   */
  applyTrappedWrite(offset: number): void {
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
        this.#host.cpu.requestInterruptEvaluation();
        break;
      default:
        if (isTimerRegister(offset)) this.#host.timer.write(offset, this.read(offset));
        // RRR is ignored; the other LVT entries keep the written value.
        break;
    }
  }

  /** A register read by software (a faulting xAPIC read, or RDMSR in x2APIC mode). */
  readRegister(offset: number): number {
    if (offset === ApicRegister.TimerCurrentCount) return this.#host.timer.readCurrentCount();
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
          this.#write(offset, value);
          this.#host.timer.write(offset, value);
          return;
        }
        this.#write(offset, value);
        if (offset === ApicRegister.SpuriousInterruptVector) this.#host.cpu.requestInterruptEvaluation();
    }
  }

  /**
   * A write AVIC faulted (AVIC_NOACCEL, fault type): nothing was written, and every such write is to
   * a read-only or reserved register; the instruction completes with no effect but the ESR bit for
   * a reserved one.
   */
  emulateFaultingWrite(offset: number, _value: number): void {
    // Writes that fault are to read-only or reserved registers: read-only ones are ignored, reserved
    // ones set "illegal register address" (SDM 11.5.3); the read-only set is the register table's.
    if (!isReadOnlyRegister(offset)) this.#software.latchError(this.index, ErrorStatusBit.IllegalRegisterAddress);
  }

  /**
   * An APIC-page access with AVIC inactive: the APIC-access page is not mapped, so the access takes a
   * nested page fault and KVM emulates it as MMIO (kvm_emulate_instruction -> apic_mmio_read /
   * apic_mmio_write -> kvm_lapic_reg_read / kvm_lapic_reg_write), EOI and TPR included. The register
   * effects are the ones the AVIC paths apply, all in software; ICR high keeps bits 31:24 only.
   * Returns the value read.
   */
  emulateMmioAccess(offset: number, isWrite: boolean, value: number): number {
    const host = this.#host;
    host.counters.count(VcpuStatistic.apicMmioEmulationExits);
    host.trace?.record(TraceEventKind.UnacceleratedAccessExit, offset, 2, isWrite ? 1 : 0);
    if (!isWrite) return this.readRegister(offset);
    const page = host.page;
    switch (classifyApicAccess(offset, true, page.words, page.base)) {
      case ApicAccessKind.AcceleratedTaskPriority:
        this.#writeTaskPriority(value);
        break;
      case ApicAccessKind.AcceleratedEndOfInterrupt:
        this.#softwareEndOfInterrupt();
        break;
      case ApicAccessKind.InterruptCommand:
        host.counters.count(VcpuStatistic.interruptCommandsWhileInhibited);
        this.#write(ApicRegister.InterruptCommandLow, value);
        this.emulateIcrClearingBusy(value, this.read(ApicRegister.InterruptCommandHigh));
        break;
      case ApicAccessKind.Accelerated:
        this.#write(
          offset,
          offset === ApicRegister.InterruptCommandHigh
            ? xapicInterruptCommandHighAfterWrite(value, ApicImplementation.KvmEmulated) | 0
            : value,
        );
        break;
      case ApicAccessKind.Trap:
        this.#write(offset, value);
        this.applyTrappedWrite(offset);
        break;
      default:
        this.emulateFaultingWrite(offset, value);
    }
    return 0;
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
    const { id, logicalDestination } = x2apicStateOnEntry(apicId(this.index));
    // An xAPIC logical ID of 0 names nobody, so this vCPU has no logical table entry to drop and the
    // rebuild below would publish the same table: skip it. That keeps hundreds of vCPUs switching at
    // once (a 512-vCPU boot) from queueing behind the main thread on a 2-core host.
    const hadLogicalEntry = this.read(ApicRegister.LogicalDestination) >>> 24 !== 0;
    // A rewritten xAPIC ID set APIC_ID_MODIFIED; the x2APIC ID is the index, so a rebuild clears it.
    const hadModifiedId = this.read(ApicRegister.Id) >>> 24 !== (this.index & 0xff);
    this.#write(ApicRegister.Id, id | 0);
    this.#write(ApicRegister.LogicalDestination, logicalDestination | 0);
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
    const memory = this.#host.views;
    const control = memory.control;
    const generationIndex = memory.headerIndex('apicMapGeneration');
    const wanted = Atomics.add(control, memory.headerIndex('apicMapRequests'), 1) + 1;
    memory.ringMainDoorbell();
    const waitReason = memory.controlBlockIndex(this.index, 'waitReason');
    Atomics.store(control, waitReason, VcpuWaitReason.ApicMapRebuild);
    const thread = hostThread();
    const deadline = thread.nowMs() + APIC_MAP_REBUILD_TIMEOUT_MS;
    for (;;) {
      const generation = Atomics.load(control, generationIndex);
      if (generation - wanted >= 0) break;
      if ((Atomics.load(control, memory.controlBlockIndex(this.index, 'requests')) & VcpuRequest.Stop) !== 0) break;
      if (thread.nowMs() > deadline) throw new Error('the main thread did not rebuild the APIC map within 10 s');
      thread.wait(control, generationIndex, generation, 20);
    }
    Atomics.store(control, waitReason, VcpuWaitReason.None);
  }
}
