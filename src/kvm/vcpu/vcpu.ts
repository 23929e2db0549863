// One vCPU, in the worker of the host CPU it is loaded on: KVM's run loop (vcpu_run /
// vcpu_enter_guest, with kvm_vcpu_halt and kvm_vcpu_block in vcpu-sleep.ts) and its exit dispatch
// (svm_handle_exit: one switch on the #VMEXIT code, as svm_exit_handlers). The object holds all of
// the vCPU's state; the host CPU (its doorbell line and lock identity) is given to run().
//
// An exit is a value: the AVIC hardware step (src/hw/avic/avic-apic-access.ts) completes what it
// accelerates and writes any #VMEXIT into the VMCB's exit fields; this file reads them and
// dispatches to the handler (src/kvm/svm/ for the AVIC exits, lapic/ and this folder for the
// others). No handler calls back into the vCPU: each takes the narrow host it declares. An APIC
// access happens inside a guest instruction, so its exit is handled there (exitFromGuestInstruction):
// the trapping instruction has completed, the faulting one is emulated.
//
// Orderings that keep IPIs from being lost (docs/architecture.md#orderings, O1, O2, O5, O6):
//  * entry: store mode = InGuestMode, then read the doorbell, then scan the IRR. An IRR bit set before
//    the scan is delivered now; one set after it comes with a doorbell ring the block poll sees.
//  * blocking (vcpu-sleep.ts): read the doorbell, clear IsRunning, re-check for events, then
//    Atomics.wait on the doorbell value read first.
//  * the vCPU is an SRCU reader only while it runs host code for itself (exit handling, requests),
//    never while in guest mode or asleep (vcpu_enter_guest, vcpu_block; O6).

import { GuestCpu, GuestExit, type GuestCpuEnvironment } from '../../guest/guest-cpu.js';
import { GuestFaultKind } from '../../guest/guest-fault.js';
import { STACK_POINTER } from '../../guest/instruction-set.js';
import type { HostCpu } from '../../host/host-cpu.js';
import { vcpuIndex, type VcpuIndex } from '../../host/identifiers.js';
import { ApicAccessKind } from '../../hw/apic/apic-access.js';
import { APIC_DEFAULT_PHYSICAL_BASE, APIC_PAGE_BYTES, ApicRegister } from '../../hw/apic/apic-register.js';
import { isX2apicMsr, X2apicMsr, xapicOffsetForX2apicMsr } from '../../hw/apic/x2apic-register.js';
import { avicApicRead, avicApicWrite, x2avicMsrWrite, type AvicVmcb } from '../../hw/avic/avic-apic-access.js';
import { NPF_ERROR_CODE_WRITE, SvmExitCode } from '../../hw/avic/avic-exit.js';
import { KVM_LOCK_TIMEOUT_MS, VcpuLocks } from '../control/kvm-locks.js';
import { VcpuCounters } from '../control/vcpu-counters.js';
import { VcpuMode, VcpuRequest, VcpuRunState, VcpuWaitReason, transitionRunState } from '../control/vcpu-run-state.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import { VmControlViews } from '../control/vm-control-views.js';
import { ApicRegisterPage } from '../lapic/apic-register-page.js';
import { ApicTimer } from '../lapic/apic-timer.js';
import { LocalApicEmulation } from '../lapic/local-apic-emulation.js';
import { X2AVIC_PASSTHROUGH_MSRS, x2avicMsrReadFaults, x2avicMsrWriteFaults } from '../lapic/x2apic-msr.js';
import { createLatencyHistogram, type LatencyHistogram } from '../report/latency-histogram.js';
import { TaskSwitchState, TraceEventKind, TraceRecorder, traceSliceExit } from '../report/trace-recorder.js';
import { AvicVcpu, createAvicVmcb } from '../svm/avic.js';
import { accountAvicIpi, avicIncompleteIpiInterception, type IncompleteIpiHost } from '../svm/avic-incomplete-ipi.js';
import { avicUnacceleratedAccessInterception, type UnacceleratedAccessHost } from '../svm/avic-unaccelerated-access.js';
import { handleHypercall, type HypercallHost } from './hypercalls.js';
import { checkModelSpecificRegisterWrite, readModelSpecificRegister, writeModelSpecificRegister, type MsrHost } from './model-specific-registers.js';
import { VcpuBoot } from './vcpu-boot.js';
import { VcpuInterrupts } from './vcpu-interrupts.js';
import { VcpuMemslots } from './vcpu-memslots.js';
import { VcpuSleep } from './vcpu-sleep.js';
import { VcpuSrcu } from './vcpu-srcu.js';
import { vcpuExitReport, type VcpuExitReport, type VcpuFirstExitHook, type VcpuStartup } from './vcpu-startup.js';

export type { VcpuExitReport, VcpuFirstExitContext, VcpuFirstExitHook, VcpuStartup } from './vcpu-startup.js';

/** Instructions per guest entry (a "slice"); exits and polls end a slice early. */
export const SLICE_INSTRUCTIONS = 65536;

export class Vcpu implements GuestCpuEnvironment {
  readonly index: VcpuIndex;
  /** The VM's control views, as every worker maps them. */
  readonly views: VmControlViews;

  readonly #startup: VcpuStartup;
  readonly #cpu: GuestCpu;
  readonly #control: Int32Array;
  readonly #page: ApicRegisterPage;
  readonly #vmcb: AvicVmcb;
  readonly #avic: AvicVcpu;
  readonly #lapic: LocalApicEmulation;
  readonly #timer: ApicTimer;
  readonly #boot: VcpuBoot;
  readonly #interrupts: VcpuInterrupts;
  readonly #sleep: VcpuSleep;
  readonly #srcu: VcpuSrcu;
  readonly #counters: VcpuCounters;
  readonly #latency: LatencyHistogram = createLatencyHistogram();
  /** Present only when tracing: every recording site checks it first. */
  readonly #trace: TraceRecorder | undefined;
  readonly #clockOffsetNs: number;
  /** What the exit handlers are given (narrow hosts; no handler sees the vCPU). */
  readonly #exitHost: IncompleteIpiHost & UnacceleratedAccessHost;
  readonly #msrHost: MsrHost;
  readonly #hypercallHost: HypercallHost;
  readonly #requests: number;
  readonly #runState: number;
  readonly #mode: number;
  readonly #heartbeat: number;
  readonly #runnableVcpus: number;
  /** Its RAM windows and whether the APIC-access page is mapped (vcpu-memslots.ts). */
  readonly #memslots: VcpuMemslots;
  /** The host CPU the vCPU is loaded on, and that thread's locks: given to run(). */
  #hostCpu: HostCpu | undefined;
  #locks: VcpuLocks | undefined;
  #halted = false;
  #done = false;
  /** Debug only: the worker's first-exit hook (VcpuFirstExitHook), until it has run. */
  #onFirstExit: VcpuFirstExitHook | undefined;

  constructor(startup: VcpuStartup, onFirstExit?: VcpuFirstExitHook) {
    this.#startup = startup;
    this.#onFirstExit = onFirstExit;
    const views = new VmControlViews(startup.buffers);
    this.views = views;
    const index = vcpuIndex(startup.vcpu);
    this.index = index;
    this.#control = views.control;
    this.#requests = views.controlBlockIndex(index, 'requests');
    this.#runState = views.controlBlockIndex(index, 'runState');
    this.#mode = views.controlBlockIndex(index, 'mode');
    this.#heartbeat = views.controlBlockIndex(index, 'heartbeat');
    this.#runnableVcpus = views.headerIndex('runnableVcpus');
    this.#clockOffsetNs = Number(process.hrtime.bigint() - BigInt(startup.clockOriginNs)) - performance.now() * 1e6;
    const counters = new VcpuCounters(views, index);
    this.#counters = counters;
    const readClock = (): number => this.readClock();
    const trace = startup.trace ? new TraceRecorder(readClock, views) : undefined;
    this.#trace = trace;
    const page = new ApicRegisterPage(views.apicPageWords, views.apicPageBase(index));
    this.#page = page;
    this.#vmcb = createAvicVmcb(views, index, startup.policy, page.base);
    const avic = new AvicVcpu(views, index, startup.ipiVirtualization);
    this.#avic = avic;
    const cpu = new GuestCpu({ ramBuffer: startup.buffers.ram, environment: this });
    this.#cpu = cpu;
    this.#memslots = new VcpuMemslots(views, index, cpu);
    const timer = new ApicTimer({ views, index, page, readClock, counters, cpu });
    this.#timer = timer;
    const lapic = new LocalApicEmulation({ views, index, page, cpu, counters, trace, timer });
    this.#lapic = lapic;
    const nmis = { discardNmis: (): number => interrupts.discardNmis() };
    const boot: VcpuBoot = new VcpuBoot({ views, index, page, cpu, timer, counters, stackTop: startup.stackTop, nmis }, startup.waitForStartUp);
    this.#boot = boot;
    const interrupts: VcpuInterrupts = new VcpuInterrupts({ views, index, page, cpu, counters, trace, boot });
    this.#interrupts = interrupts;
    const srcu = new VcpuSrcu(index);
    this.#srcu = srcu;
    this.#sleep = new VcpuSleep({
      views, index, haltPolling: startup.haltPolling, hostCores: startup.hostCores, trace, counters, srcu, timer, events: interrupts, avic,
    });
    this.#exitHost = { index, counters, trace, views, lapic };
    this.#msrHost = { readClock, lapic };
    this.#hypercallHost = { views, index, counters, latency: this.#latency };
    cpu.pc = startup.entryPoint >>> 0;
    cpu.registers[0] = index;
    cpu.registers[1] = views.createdVcpus();
    cpu.registers[STACK_POINTER] = startup.stackTop | 0;
  }

  // ---- the run loop (vcpu_run) ----

  /**
   * KVM_RUN on `hostCpu`, the calling thread's host CPU: the vCPU takes that thread's lock identity
   * and doorbell line (the guest polls it, senders ring it), then avic_vcpu_load publishes its id.
   */
  run(hostCpu: HostCpu): VcpuExitReport {
    const locks = new VcpuLocks(this.#startup.locks, this.views, hostCpu.slot, this.index);
    this.#locks = locks;
    this.#hostCpu = hostCpu;
    this.#srcu.attach(locks);
    this.#cpu.attachDoorbell(hostCpu.words, hostCpu.ringIndex);
    transitionRunState(this.#control, this.#runState, VcpuRunState.Running, this.index);
    Atomics.add(this.#control, this.#runnableVcpus, 1);
    locks.vcpuMutex.lock('kvm_vcpu_ioctl: KVM_RUN', KVM_LOCK_TIMEOUT_MS);
    this.#srcu.readLock('vcpu_run: srcu_read_lock');
    this.#avic.load(hostCpu.slot);
    this.#trace?.vcpuLoad(hostCpu.slot);
    this.#memslots.reload();
    try {
      for (;;) {
        Atomics.add(this.#control, this.#heartbeat, 1);
        const requests = Atomics.load(this.#control, this.#requests);
        if (requests !== 0 && this.#handleRequests(requests, hostCpu)) return this.#finish('stopped');
        if (this.#boot.waiting) {
          this.#sleep.block(VcpuWaitReason.WaitForStartUp, hostCpu);
          continue;
        }
        // The timer's deadline is checked at every guest entry (and by halted vCPUs as they wait).
        this.#timer.poll();
        if (this.#halted) {
          this.#halted = this.#sleep.halt(hostCpu);
          continue;
        }
        const exit = this.#enterGuest();
        if (exit === GuestExit.Fault) return this.#finish('fault');
        if (this.#done) return this.#finish('done');
        if (exit === GuestExit.Halt || exit === GuestExit.PauseLoop) {
          this.#vmcb.exit.set(exit === GuestExit.Halt ? SvmExitCode.Halt : SvmExitCode.Pause, 0, 0);
          this.#handleExit(0, 0, 0);
        }
      }
    } catch (error) {
      // An emulator bug: leave the VM in a state the main thread can report, then rethrow with the vCPU named.
      this.#releaseForExit();
      throw new Error(`vCPU ${this.index}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /** vcpu_enter_guest: mode, SRCU drop, entry scan, one slice, SRCU re-take. */
  #enterGuest(): GuestExit {
    Atomics.store(this.#control, this.#mode, VcpuMode.InGuestMode);
    // Pairs with the memslot writer's "publish generation, then read each vCPU's mode": if it saw us
    // outside guest mode, we see its new generation here and reload before running.
    if (this.#memslots.stale()) {
      Atomics.store(this.#control, this.#mode, VcpuMode.OutsideGuestMode);
      this.#memslots.reload();
      return GuestExit.InterruptWindow;
    }
    this.#srcu.readUnlock();
    this.#srcu.assertNotReader();
    this.#counters.count(VcpuStatistic.slices);
    let exit: GuestExit;
    // A delivery that faults (no handler, a frame pushed outside memory) returns false with the fault
    // recorded: the vCPU stops here, as a failed event injection ends KVM_RUN.
    const cpu = this.#cpu;
    this.#trace?.record(TraceEventKind.GuestEntry, cpu.pc);
    this.#evaluateInterrupts();
    if (cpu.fault !== undefined) exit = GuestExit.Fault;
    else {
      const before = cpu.instructionsRetired;
      exit = cpu.run(this.#timer.beginSlice(SLICE_INSTRUCTIONS));
      this.#timer.endSlice(cpu.instructionsRetired - before);
      this.#counters.count(VcpuStatistic.instructions, cpu.instructionsRetired - before);
    }
    if (this.#trace !== undefined) traceSliceExit(this.#trace, exit, cpu.pc);
    this.#srcu.readLock('vcpu_enter_guest: srcu_read_lock after the guest');
    Atomics.store(this.#control, this.#mode, VcpuMode.OutsideGuestMode);
    return exit;
  }

  /**
   * Interrupt evaluation at an instruction boundary (VMRUN's IRR scan, and after a doorbell): read the
   * doorbell first, then scan (vcpu-interrupts.ts), so a ring after the read is seen by the next poll.
   */
  #evaluateInterrupts(): boolean {
    this.#cpu.lastDoorbell = this.#hostCpu!.ringValue();
    return this.#interrupts.inject();
  }

  /** Returns true if the vCPU must stop. */
  #handleRequests(requests: number, hostCpu: HostCpu): boolean {
    if ((requests & VcpuRequest.Stop) !== 0) return true;
    if ((requests & VcpuRequest.MemslotsChanged) !== 0) this.#memslots.reload();
    if ((requests & VcpuRequest.ApicPageReload) !== 0) this.#reloadApicPage();
    if ((requests & VcpuRequest.ApicvUpdate) !== 0) this.#avic.updateApicv(this.#locks!.apicvUpdateLock);
    if ((requests & (VcpuRequest.Init | VcpuRequest.StartUp)) !== 0 && this.#boot.acceptEvents(requests)) this.#halted = false;
    if ((requests & VcpuRequest.Kick) !== 0) Atomics.and(this.#control, this.#requests, ~VcpuRequest.Kick);
    if ((requests & VcpuRequest.Pause) !== 0) return this.#sleep.park(hostCpu);
    return false;
  }

  /**
   * KVM_REQ_APIC_PAGE_RELOAD (rfc-v2): the main thread re-initialised this vCPU's backing page in new
   * memory and re-pointed the physical table entry; from the next guest entry on, this vCPU uses it
   * (apic->regs and the VMCB's backing page pointer alike). Whatever senders still post to the old
   * page is stranded there (the main thread counts it).
   */
  #reloadApicPage(): void {
    Atomics.and(this.#control, this.#requests, ~VcpuRequest.ApicPageReload);
    const base = this.views.apicPageBase(this.index);
    if (base === this.#page.base) return;
    this.#page.base = base;
    this.#vmcb.backingPage = base;
    this.#counters.count(VcpuStatistic.backingPageReloads);
  }

  #releaseForExit(): void {
    this.#avic.put();
    this.#trace?.vcpuPut(TaskSwitchState.Sleeping);
    if (this.#srcu.held) this.#srcu.readUnlock();
    const locks = this.#locks!;
    if (locks.vcpuMutex.holder() === locks.lockdep.currentThreadSlot()) locks.vcpuMutex.unlock();
    Atomics.store(this.#control, this.views.controlBlockIndex(this.index, 'finished'), 1);
  }

  #finish(reason: VcpuExitReport['reason']): VcpuExitReport {
    this.#releaseForExit();
    const state = Atomics.load(this.#control, this.#runState);
    if (state === VcpuRunState.Running || state === VcpuRunState.Paused) {
      Atomics.sub(this.#control, this.#runnableVcpus, state === VcpuRunState.Running ? 1 : 0);
      transitionRunState(this.#control, this.#runState, VcpuRunState.Finished, this.index);
    }
    this.views.ringMainDoorbell();
    return vcpuExitReport(this.index, reason, this.#cpu.fault, this.#latency, this.#trace);
  }

  // ---- exits (svm_handle_exit) ----

  /**
   * The handler of the #VMEXIT in the VMCB's exit fields (svm_exit_handlers), outside guest mode and
   * an SRCU reader. `operand`, `value`, `high` are what the exiting instruction named (the APIC
   * offset or MSR index and the value written), as KVM's handlers read them from the guest's
   * registers or its instruction emulator. Returns the value an emulated read produces.
   */
  #handleExit(operand: number, value: number, high: number): number {
    const exit = this.#vmcb.exit;
    this.#trace?.record(TraceEventKind.VmExit, exit.exitCode, this.#cpu.pc, exit.exitInfo1Low, exit.exitInfo1High, exit.exitInfo2Low, exit.exitInfo2High);
    switch (exit.exitCode) {
      case SvmExitCode.AvicIncompleteIpi:
        avicIncompleteIpiInterception(exit, this.#exitHost);
        return 0;
      case SvmExitCode.AvicUnacceleratedAccess:
        return avicUnacceleratedAccessInterception(exit, operand, value, this.#exitHost);
      case SvmExitCode.NestedPageFault:
        // The APIC-access page is not mapped while AVIC is inhibited: KVM emulates the access as MMIO.
        return this.#lapic.emulateMmioAccess(operand, (exit.exitInfo1Low & NPF_ERROR_CODE_WRITE) !== 0, value);
      case SvmExitCode.Msr:
        writeModelSpecificRegister(this.#msrHost, this.#cpu, operand, value, high);
        return 0;
      case SvmExitCode.Interrupt:
        // A kick for KVM_REQ_APICV_UPDATE, seen at an APIC access: re-derive AVIC before it is used.
        this.#avic.updateApicv(this.#locks!.apicvUpdateLock);
        return 0;
      case SvmExitCode.Halt:
        this.#counters.count(VcpuStatistic.haltExits);
        this.#halted = true;
        return 0;
      case SvmExitCode.Pause:
        this.#counters.count(VcpuStatistic.pauseLoopExits);
        this.#sleep.pauseLoopYield(this.#hostCpu!);
        return 0;
      default:
        throw new Error(`no handler for #VMEXIT 0x${exit.exitCode.toString(16)}`);
    }
  }

  /**
   * An exit inside a guest instruction (an APIC access, an APIC MSR write): leave guest mode and
   * become an SRCU reader (vcpu_run), handle it, then return to guest mode: mode first, then the
   * memslot generation check, then drop SRCU (as #enterGuest).
   */
  #exitFromGuestInstruction(operand: number, value: number, high: number): number {
    Atomics.store(this.#control, this.#mode, VcpuMode.OutsideGuestMode);
    this.#srcu.readLock('vcpu_run: exit handling: srcu_read_lock');
    const hook = this.#onFirstExit;
    if (hook !== undefined) {
      this.#onFirstExit = undefined;
      const srcu = this.#srcu;
      hook({ locks: this.#locks!, vcpu: this.index, dropSrcu: () => srcu.readUnlock(), retakeSrcu: (site) => srcu.readLock(site) });
    }
    const result = this.#handleExit(operand, value, high);
    this.#trace?.record(TraceEventKind.GuestEntry, this.#cpu.pc);
    Atomics.store(this.#control, this.#mode, VcpuMode.InGuestMode);
    if (this.#memslots.stale()) this.#memslots.reload();
    this.#srcu.readUnlock();
    return result;
  }

  /**
   * Whether AVIC handles this vCPU's next APIC access. An APICv update not yet handled was a kick out
   * of guest mode before this instruction (SVM_EXIT_INTR): handle it first (svm/avic.ts).
   */
  #apicvActive(): boolean {
    if (this.#avic.apicvStale()) {
      this.#vmcb.exit.set(SvmExitCode.Interrupt, 0, 0);
      this.#exitFromGuestInstruction(0, 0, 0);
    }
    return this.#avic.apicvActive;
  }

  // ---- GuestCpuEnvironment: what the guest reaches outside RAM ----

  accessOutsideRam(cpu: GuestCpu, address: number, width: 1 | 2 | 4, isWrite: boolean, value: number): number {
    const offset = address - APIC_DEFAULT_PHYSICAL_BASE;
    if (!this.#memslots.apicAccessSlotPresent || offset < 0 || offset >= APIC_PAGE_BYTES) {
      cpu.raiseFault(GuestFaultKind.AccessOutsideMemory, `${isWrite ? 'write' : 'read'} of ${width} byte(s) outside every memslot`, address);
      return 0;
    }
    if (width !== 4 || (offset & 3) !== 0) {
      cpu.raiseFault(GuestFaultKind.InvalidApicAccess, 'local APIC registers take aligned 32-bit accesses only', address);
      return 0;
    }
    if (this.#lapic.x2apicMode) {
      // x2APIC mode disables the MMIO interface (SDM §11.12.1.2); KVM's MMIO handler declines it.
      cpu.raiseFault(GuestFaultKind.InvalidApicAccess, `xAPIC MMIO ${isWrite ? 'write' : 'read'} of offset 0x${offset.toString(16)} in x2APIC mode: use the MSRs 0x800-0x8FF`);
      return 0;
    }
    const vmcb = this.#vmcb;
    if (!this.#apicvActive()) {
      vmcb.exit.set(SvmExitCode.NestedPageFault, isWrite ? NPF_ERROR_CODE_WRITE : 0, address);
      return this.#exitFromGuestInstruction(offset, value, 0);
    }
    let result = 0;
    if (!isWrite) result = avicApicRead(vmcb, offset);
    else if (avicApicWrite(vmcb, cpu, offset, value) === ApicAccessKind.InterruptCommand) {
      accountAvicIpi(vmcb.ipi, value, (this.#page.read(ApicRegister.InterruptCommandHigh) >>> 24) & 0xff, this.#counters, this.#trace);
    }
    return vmcb.exit.exitCode === 0 ? result : this.#exitFromGuestInstruction(offset, value, 0);
  }

  /**
   * Whether an RDMSR/WRMSR of `index` goes to the x2AVIC hardware instead of exiting: one of KVM's
   * x2avic_passthrough_msrs, with this vCPU in x2APIC mode, the VM using x2AVIC (int_ctl bit 30) and
   * no inhibit (else KVM intercepts the x2APIC MSRs again and emulates them).
   */
  #x2avicPassesThrough(index: number): boolean {
    return isX2apicMsr(index) && X2AVIC_PASSTHROUGH_MSRS.has(index) && this.#lapic.x2apicMode && this.#startup.x2avic && this.#apicvActive();
  }

  /** RDMSR: x2AVIC's accelerated read, or an intercepted one (an MSR exit, model-specific-registers.ts). */
  readMsr(cpu: GuestCpu, index: number): number {
    if (this.#x2avicPassesThrough(index)) {
      if (x2avicMsrReadFaults(cpu, index)) return 0;
      const offset = xapicOffsetForX2apicMsr(index);
      const vmcb = this.#vmcb;
      let value = avicApicRead(vmcb, offset);
      if (vmcb.exit.exitCode !== 0) value = this.#exitFromGuestInstruction(offset, 0, 0);
      cpu.msrHighWord = index === X2apicMsr.InterruptCommand ? this.#page.read(ApicRegister.InterruptCommandHigh) : 0;
      return value;
    }
    this.#counters.count(VcpuStatistic.msrAccesses);
    return readModelSpecificRegister(this.#msrHost, cpu, index);
  }

  /** WRMSR: x2AVIC's hardware path (src/hw/avic/avic-apic-access.ts), or an MSR exit. */
  writeMsr(cpu: GuestCpu, index: number, low: number, high: number): void {
    if (this.#x2avicPassesThrough(index)) {
      if (x2avicMsrWriteFaults(cpu, index, low, high)) return;
      const offset = xapicOffsetForX2apicMsr(index);
      const vmcb = this.#vmcb;
      if (x2avicMsrWrite(vmcb, cpu, offset, low | 0, high | 0) === ApicAccessKind.InterruptCommand) {
        accountAvicIpi(vmcb.ipi, low, high, this.#counters, this.#trace);
      }
      if (vmcb.exit.exitCode !== 0) this.#exitFromGuestInstruction(offset, low | 0, high | 0);
      return;
    }
    this.#counters.count(VcpuStatistic.msrAccesses);
    if (!checkModelSpecificRegisterWrite(cpu, index, low, high)) return;
    this.#vmcb.exit.set(SvmExitCode.Msr, 1, 0);
    this.#exitFromGuestInstruction(index, low, high);
  }

  /** The emulator's instrumentation calls (hypercalls.ts), handled in place: no exit handling. */
  hypercall(cpu: GuestCpu, number: number): void {
    this.#counters.count(VcpuStatistic.hypercalls);
    if (handleHypercall(this.#hypercallHost, cpu, number)) {
      this.#done = true;
      cpu.requestExit();
    }
  }

  readClock(): number {
    return performance.now() * 1e6 + this.#clockOffsetNs;
  }

  /**
   * An interrupt window in guest mode: requests end the slice; otherwise evaluate and go on. A
   * delivery that faults ends the slice too (the interpreter then returns GuestExit.Fault).
   */
  interruptWindow(cpu: GuestCpu): boolean {
    if (Atomics.load(this.#control, this.#requests) & ~VcpuRequest.Nmi) return true;
    this.#evaluateInterrupts();
    return cpu.fault !== undefined;
  }
}
