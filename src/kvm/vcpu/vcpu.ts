// One vCPU, in the worker of the host CPU it is loaded on: KVM's run loop (vcpu_run /
// vcpu_enter_guest, with kvm_vcpu_halt and kvm_vcpu_block in vcpu-sleep.ts; the exit dispatch,
// svm_handle_exit, in vcpu-exits.ts). The object holds the vCPU's state that is not in shared memory
// (moved between host CPUs through its save area: vcpu-state.ts) and its locks (vcpu->mutex, held
// from the first load to the end: KVM_RUN); its host CPU (host-cpu-loop.ts) loads it, runs it a
// slice at a time and puts it, and each slice returns why it ended (SliceEnd) instead of sleeping.
//
// An exit is a value: the AVIC hardware step (src/hw/avic/avic-apic-access.ts) completes what it
// accelerates and writes any #VMEXIT into the VMCB's exit fields; vcpu-exits.ts reads them and
// dispatches to the handler. An APIC access happens inside a guest instruction, so its exit is
// handled there: the trapping instruction has completed, the faulting one is emulated.
//
// Orderings that keep IPIs from being lost (docs/architecture.md#orderings, O1, O2, O5, O6):
//  * entry: store mode = InGuestMode, then read the doorbell, then scan the IRR. An IRR bit set before
//    the scan is delivered now; one set after it comes with a doorbell ring the block poll sees.
//  * blocking (vcpu-sleep.ts): state Blocking, clear IsRunning, re-check for events, then commit
//    (O1, O10); the host CPU puts it and only a wake-up makes it runnable.
//  * the vCPU is an SRCU reader only while it runs host code for itself (exit handling, requests),
//    never in guest mode, while halt-polling, put or paused (vcpu_enter_guest, vcpu_block; O6).

import { GuestCpu, GuestExit, type GuestCpuEnvironment } from '../../guest/guest-cpu.js';
import { STACK_POINTER } from '../../guest/instruction-set.js';
import { hostThreadSlot, vcpuIndex, type VcpuIndex } from '../../host/identifiers.js';
import { hostThread } from '../../host/host-thread.js';
import { pendingDeliverableVector } from '../../hw/apic/apic-backing-page.js';
import type { AvicVmcb } from '../../hw/avic/avic-apic-access.js';
import { SvmExitCode } from '../../hw/avic/avic-exit.js';
import { KVM_LOCK_TIMEOUT_MS, VcpuLocks } from '../control/kvm-locks.js';
import { VcpuCounters } from '../control/vcpu-counters.js';
import { VcpuFinish, VcpuMode, VcpuRequest, VcpuRunState, VcpuWaitReason, transitionRunState } from '../control/vcpu-run-state.js';
import type { VcpuSaveAreaView } from '../control/vcpu-save-area.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import { VmControlViews } from '../control/vm-control-views.js';
import { ApicRegisterPage } from '../lapic/apic-register-page.js';
import { ApicTimer } from '../lapic/apic-timer.js';
import { LocalApicEmulation } from '../lapic/local-apic-emulation.js';
import { createLatencyHistogram, type LatencyHistogram } from '../report/latency-histogram.js';
import { TaskSwitchState, TraceEventKind, TraceRecorder, traceSliceExit } from '../report/trace-recorder.js';
import { AvicVcpu, createAvicVmcb } from '../svm/avic.js';
import { handleHypercall, type HypercallHost } from './hypercalls.js';
import type { MsrHost } from './model-specific-registers.js';
import { VcpuApicAccess } from './vcpu-apic-access.js';
import { VcpuBoot } from './vcpu-boot.js';
import { VcpuExits } from './vcpu-exits.js';
import { VcpuInterrupts } from './vcpu-interrupts.js';
import { VcpuMemslots } from './vcpu-memslots.js';
import { HaltOutcome, ParkOutcome, VcpuSleep, type LoadedHostCpu } from './vcpu-sleep.js';
import { VcpuSrcu } from './vcpu-srcu.js';
import { restoreVcpuState, saveVcpuState, type VcpuStateParts } from './vcpu-state.js';
import { SliceEnd, vcpuExitReport, type VcpuExitReport, type VcpuFirstExitHook, type VcpuStartup } from './vcpu-startup.js';
import { taskSwitchStateAtPut } from './vcpu-startup.js';
import { endGuestSlice } from './guest-slice.js';

export type { VcpuExitReport, VcpuFirstExitContext, VcpuFirstExitHook, VcpuStartup } from './vcpu-startup.js';
export type { LoadedHostCpu } from './vcpu-sleep.js';
export { SliceEnd } from './vcpu-startup.js';

/** Instructions per guest entry (a "slice"); exits and polls end a slice early. */
export const SLICE_INSTRUCTIONS = 65536;

export class Vcpu implements GuestCpuEnvironment {
  readonly index: VcpuIndex;
  /** The VM's control views, as every worker maps them. */
  readonly views: VmControlViews;
  readonly #cpu: GuestCpu;
  readonly #control: Int32Array;
  readonly #page: ApicRegisterPage;
  readonly #vmcb: AvicVmcb;
  readonly #avic: AvicVcpu;
  readonly #timer: ApicTimer;
  readonly #boot: VcpuBoot;
  readonly #interrupts: VcpuInterrupts;
  readonly #sleep: VcpuSleep;
  readonly #srcu: VcpuSrcu;
  readonly #counters: VcpuCounters;
  readonly #latency: LatencyHistogram = createLatencyHistogram();
  /** Present only when tracing: every recording site checks it first. */
  readonly #trace: TraceRecorder | undefined;
  readonly #clockOriginNs: number;
  /** Its exit dispatch (vcpu-exits.ts). */
  readonly #exits: VcpuExits;
  /** What a migration saves and restores (vcpu-state.ts). */
  readonly #state: VcpuStateParts;
  readonly #hypercallHost: HypercallHost;
  readonly #requests: number;
  readonly #runState: number;
  readonly #mode: number;
  readonly #heartbeat: number;
  readonly #runnableVcpus: number;
  /** Its RAM windows and whether the APIC-access page is mapped (vcpu-memslots.ts). */
  readonly #memslots: VcpuMemslots;
  /** The APIC-access page and MSRs (vcpu-apic-access.ts). */
  readonly #apicAccess: VcpuApicAccess;
  readonly #hostThreadId: number;
  /** Its locks: vcpu->mutex and the SRCU read side, in the vCPU's own lockdep slot (vCPU index + 1). */
  readonly #locks: VcpuLocks;
  /** The host CPU it is loaded on (load to put). */
  #loaded: LoadedHostCpu | undefined;
  #halted = false;
  /** A pause-loop exit found another vCPU runnable here: end the slice (kvm_vcpu_on_spin). */
  #yieldRequested = false;
  #exitReport: VcpuExitReport | undefined;
  /** The current slice's quantum deadline (the host clock, nowMs): exits past it end the guest slice. */
  #quantumDeadlineMs = Infinity;
  #done = false;

  constructor(startup: VcpuStartup, onFirstExit?: VcpuFirstExitHook) {
    const views = startup.views ?? new VmControlViews(startup.buffers);
    this.views = views;
    const index = vcpuIndex(startup.vcpu);
    this.index = index;
    this.#control = views.control;
    this.#requests = views.controlBlockIndex(index, 'requests');
    this.#runState = views.controlBlockIndex(index, 'runState');
    this.#mode = views.controlBlockIndex(index, 'mode');
    this.#heartbeat = views.controlBlockIndex(index, 'heartbeat');
    this.#hostThreadId = views.controlBlockIndex(index, 'hostThreadId');
    this.#runnableVcpus = views.headerIndex('runnableVcpus');
    this.#clockOriginNs = Number(startup.clockOriginNs);
    const counters = new VcpuCounters(views, index);
    this.#counters = counters;
    const readClock = (): number => this.readClock();
    const trace = startup.trace ? new TraceRecorder(readClock, views) : undefined;
    this.#trace = trace;
    const page = new ApicRegisterPage(views.apicPageWords, views.apicPageBase(index));
    this.#page = page;
    this.#vmcb = createAvicVmcb(views, index, startup.policy, page.base, startup.x2avicExtended, readClock);
    const avic = new AvicVcpu(views, index, startup.ipiVirtualization, readClock);
    this.#avic = avic;
    const cpu = new GuestCpu({ ramBuffer: startup.buffers.ram, environment: this, pauseFilterCount: startup.pauseFilterCount });
    this.#cpu = cpu;
    this.#memslots = new VcpuMemslots(views, index, cpu);
    const timer = new ApicTimer({ views, index, page, readClock, counters, cpu });
    this.#timer = timer;
    const lapic = new LocalApicEmulation({ views, index, page, cpu, counters, trace, timer });
    const nmis = { discardNmis: (): number => interrupts.discardNmis() };
    const boot: VcpuBoot = new VcpuBoot(
      { views, index, page, cpu, timer, counters, stackTop: startup.stackTop, nmis },
      startup.waitForStartUp,
    );
    this.#boot = boot;
    const interrupts: VcpuInterrupts = new VcpuInterrupts({ views, index, page, cpu, counters, trace, boot });
    this.#interrupts = interrupts;
    const locks = new VcpuLocks(startup.locks, views, index);
    this.#locks = locks;
    const srcu = new VcpuSrcu(index);
    srcu.attach(locks);
    this.#srcu = srcu;
    this.#sleep = new VcpuSleep({ views, index, haltPolling: startup.haltPolling, trace, counters, srcu, timer, events: interrupts, avic });
    const msrHost: MsrHost = { readClock, lapic };
    this.#hypercallHost = { views, index, counters, latency: this.#latency, latencyEpoch: counters.latencyEpoch() };
    const memslots = this.#memslots;
    // biome-ignore format: the exit dispatch's parts, grouped as they are used
    const exits = new VcpuExits({
      index, control: views.control, modeIndex: this.#mode, cpu, vmcb: this.#vmcb, avic, lapic, locks, srcu, memslots, counters, trace,
      exitHost: { index, counters, trace, views, lapic }, msrHost,
      quantumDeadlineMs: () => this.#quantumDeadlineMs,
      halt: () => { this.#halted = true; },
      // kvm_vcpu_on_spin: yield to another runnable vCPU on this host CPU, if there is one.
      pauseLoop: () => { this.#yieldRequested = !this.#loaded!.singleTaskRunning(); },
    }, onFirstExit);
    this.#exits = exits;
    // biome-ignore format: the APIC-access parts, grouped as they are used
    this.#apicAccess = new VcpuApicAccess({
      vmcb: this.#vmcb, page, lapic, counters, trace, msrHost, x2avic: startup.x2avic,
      apicAccessSlotPresent: () => memslots.apicAccessSlotPresent,
      apicvActive: () => exits.apicvActive(),
      exitFromGuestInstruction: (operand, value, high) => exits.fromGuestInstruction(operand, value, high),
    });
    const vcpu = this;
    // biome-ignore format: the run loop's two flags as accessor pairs
    this.#state = {
      cpu, parts: [timer, boot, interrupts, this.#sleep, avic],
      get halted() { return vcpu.#halted; },
      set halted(halted) { vcpu.#halted = halted; },
      get firstExitDone() { return exits.firstExitDone; },
      set firstExitDone(done) { exits.firstExitDone = done; },
    };
    cpu.pc = startup.entryPoint >>> 0;
    cpu.registers[0] = index;
    cpu.registers[1] = views.createdVcpus();
    cpu.registers[STACK_POINTER] = startup.stackTop | 0;
  }

  // ---- load, run a slice, put (vcpu_load, vcpu_run, vcpu_put) ----

  /**
   * vcpu_load on `loaded`, the calling thread's host CPU: the guest polls that host CPU's doorbell
   * from now on, and avic_vcpu_load publishes its id, then IsRunning (unless the vCPU is blocked or
   * paused: avic_vcpu_load leaves IsRunning to avic_vcpu_unblocking). The first load is KVM_RUN's
   * start: the vCPU takes its vcpu->mutex and keeps it across every put until it finishes.
   */
  load(loaded: LoadedHostCpu, threadId: number): void {
    this.#loaded = loaded;
    const cpu = loaded.cpu;
    this.#cpu.attachDoorbell(cpu.words, cpu.ringIndex);
    Atomics.store(this.#control, this.#hostThreadId, threadId);
    this.#avic.setHostCpu(hostThreadSlot(cpu.index));
    const state = Atomics.load(this.#control, this.#runState);
    if (state === VcpuRunState.Created) {
      transitionRunState(this.#control, this.#runState, VcpuRunState.Running, this.index);
      Atomics.add(this.#control, this.#runnableVcpus, 1);
      this.#locks.vcpuMutex.lock('kvm_vcpu_ioctl: KVM_RUN', KVM_LOCK_TIMEOUT_MS);
      this.#memslots.reload();
      this.#avic.load(hostThreadSlot(cpu.index));
    } else if (state === VcpuRunState.Blocked) {
      // Woken (kvm_vcpu_wake_up made it runnable): back to Running, IsRunning last.
      this.#counters.count(VcpuStatistic.wakeups);
      this.#trace?.record(TraceEventKind.WakeUp);
      this.#sleep.returnToRunning();
    } else if (state === VcpuRunState.Paused) {
      // Woken by resume(): running again (IsRunning last). Still paused: runSlice parks it again.
      if ((Atomics.load(this.#control, this.#requests) & VcpuRequest.Pause) === 0) this.#sleep.returnToRunning();
    } else if (state === VcpuRunState.Running) {
      this.#avic.load(hostThreadSlot(cpu.index));
    }
    this.#trace?.vcpuLoad(cpu.index);
  }

  /**
   * vcpu_run until the slice ends (why: the value): its quantum (`deadlineMs`, nowMs) is over, it
   * blocked, paused, yielded after a pause loop or finished. A kvm->srcu reader inside but never
   * across the return, nor while still paused (parkIfPaused); it sleeps only to halt-poll (bounded).
   */
  runSlice(deadlineMs: number): SliceEnd {
    const loaded = this.#loaded!;
    this.#quantumDeadlineMs = deadlineMs;
    try {
      const parked = this.#sleep.parkIfPaused(this.#heartbeat);
      if (parked === undefined) this.#srcu.readLock('vcpu_run: srcu_read_lock');
      else if (parked !== ParkOutcome.Running) return parked === ParkOutcome.Stop ? this.#finish(VcpuFinish.Stopped) : SliceEnd.Paused;
      const end = this.#runUntil(loaded, deadlineMs);
      if (this.#srcu.held) this.#srcu.readUnlock();
      return end;
    } catch (error) {
      // An emulator bug: leave the VM in a state the main thread can report, then rethrow with the vCPU named.
      this.#release(VcpuFinish.Error);
      throw new Error(`vCPU ${this.index}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /** vcpu_put: IsRunning cleared, the host id kept (avic_vcpu_put). Outside guest mode already. */
  put(end: SliceEnd): void {
    this.#avic.put();
    this.#loaded = undefined;
    this.#trace?.vcpuPut(taskSwitchStateAtPut(end));
  }

  /** Migration: its state into its save area, at a put after which another host CPU may load it. */
  save(area: VcpuSaveAreaView): void {
    saveVcpuState(this.#state, area);
  }

  /** Migration: a fresh Vcpu takes the state another host CPU saved, and decodes the memslots. */
  restore(area: VcpuSaveAreaView): void {
    restoreVcpuState(this.#state, area);
    this.#memslots.reload();
  }

  /** Migration: what this worker recorded for the vCPU before it moved on (merged on main). */
  movedReport(): VcpuExitReport {
    return vcpuExitReport(this.index, 'moved', undefined, this.#latency, this.#hypercallHost.latencyEpoch, this.#trace);
  }

  /** The report of a finished vCPU (after runSlice returned Finished). */
  get exitReport(): VcpuExitReport | undefined {
    return this.#exitReport;
  }

  /** How long until this vCPU's APIC timer fires (Infinity when it does not count): its host CPU wakes it then. */
  timerRemainingNs(): number {
    return this.#timer.remainingNs();
  }

  /**
   * For a blocked vCPU, the event it would wake for (kvm_vcpu_check_block), without firing anything:
   * -1 none, 0..255 the deliverable vector, 256 another event (an NMI, INIT, start-up, a request).
   */
  pendingEvent(): number {
    if (!this.#interrupts.hasEvents()) return -1;
    const vector = this.#cpu.interruptsEnabled ? pendingDeliverableVector(this.#page.words, this.#page.base) : -1;
    return vector >= 0 ? vector : 256;
  }

  #runUntil(loaded: LoadedHostCpu, deadlineMs: number): SliceEnd {
    for (;;) {
      Atomics.add(this.#control, this.#heartbeat, 1);
      const requests = Atomics.load(this.#control, this.#requests);
      if (requests !== 0) {
        const end = this.#handleRequests(requests);
        if (end !== undefined) return end;
      }
      if (this.#boot.waiting) {
        if (this.#sleep.block(VcpuWaitReason.WaitForStartUp)) return SliceEnd.Blocked;
        continue;
      }
      // The timer's deadline is checked at every guest entry (a blocked vCPU's by its host CPU).
      this.#timer.poll();
      if (this.#halted) {
        const outcome = this.#sleep.halt(loaded);
        if (outcome === HaltOutcome.Blocked) return SliceEnd.Blocked;
        this.#halted = outcome === HaltOutcome.Halted;
        continue;
      }
      const exit = this.#enterGuest();
      if (exit === GuestExit.Fault) return this.#finish(VcpuFinish.Fault);
      if (this.#done) return this.#finish(VcpuFinish.Done);
      if (exit === GuestExit.Halt || exit === GuestExit.PauseLoop) {
        this.#vmcb.exit.set(exit === GuestExit.Halt ? SvmExitCode.Halt : SvmExitCode.Pause, 0, 0);
        this.#exits.handle(0, 0, 0);
        if (this.#yieldRequested) {
          this.#yieldRequested = false;
          return SliceEnd.Yielded;
        }
      }
      if (hostThread().nowMs() >= deadlineMs) return SliceEnd.QuantumEnd;
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
      endGuestSlice(cpu.instructionsRetired - before, this.#timer, this.#counters);
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
    this.#cpu.lastDoorbell = this.#loaded!.cpu.ringValue();
    return this.#interrupts.inject();
  }

  /** Services the requests; returns how the slice ends if it must (stopped, paused). */
  #handleRequests(requests: number): SliceEnd | undefined {
    if ((requests & VcpuRequest.Stop) !== 0) return this.#finish(VcpuFinish.Stopped);
    if ((requests & VcpuRequest.MemslotsChanged) !== 0) this.#memslots.reload();
    if ((requests & VcpuRequest.ApicPageReload) !== 0) this.#reloadApicPage();
    if ((requests & VcpuRequest.ApicvUpdate) !== 0) this.#avic.updateApicv(this.#locks.apicvUpdateLock);
    if ((requests & (VcpuRequest.Init | VcpuRequest.StartUp)) !== 0 && this.#boot.acceptEvents(requests)) this.#halted = false;
    if ((requests & VcpuRequest.Kick) !== 0) Atomics.and(this.#control, this.#requests, ~VcpuRequest.Kick);
    if ((requests & VcpuRequest.Pause) !== 0 || Atomics.load(this.#control, this.#runState) === VcpuRunState.Paused) {
      const outcome = this.#sleep.park();
      if (outcome === ParkOutcome.Stop) return this.#finish(VcpuFinish.Stopped);
      if (outcome === ParkOutcome.Paused) return SliceEnd.Paused;
    }
    return undefined;
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

  /** The vCPU's run is over: put, out of SRCU, vcpu->mutex released, why published. */
  #release(why: VcpuFinish): void {
    this.#avic.put();
    this.#trace?.vcpuPut(TaskSwitchState.Sleeping);
    if (this.#srcu.held) this.#srcu.readUnlock();
    const locks = this.#locks;
    if (locks.vcpuMutex.holder() === locks.lockdep.currentThreadSlot()) locks.vcpuMutex.unlock();
    const state = Atomics.load(this.#control, this.#runState);
    if (state === VcpuRunState.Running || state === VcpuRunState.Paused) {
      Atomics.sub(this.#control, this.#runnableVcpus, state === VcpuRunState.Running ? 1 : 0);
      transitionRunState(this.#control, this.#runState, VcpuRunState.Finished, this.index);
    }
    Atomics.store(this.#control, this.views.controlBlockIndex(this.index, 'finished'), why);
    this.views.ringMainDoorbell();
  }

  #finish(why: VcpuFinish): SliceEnd {
    this.#release(why);
    const reason = why === VcpuFinish.Done ? 'done' : why === VcpuFinish.Stopped ? 'stopped' : 'fault';
    this.#exitReport = vcpuExitReport(this.index, reason, this.#cpu.fault, this.#latency, this.#hypercallHost.latencyEpoch, this.#trace);
    return SliceEnd.Finished;
  }

  // ---- GuestCpuEnvironment: what the guest reaches outside RAM (vcpu-apic-access.ts) ----

  accessOutsideRam(cpu: GuestCpu, address: number, width: 1 | 2 | 4, isWrite: boolean, value: number): number {
    return this.#apicAccess.accessOutsideRam(cpu, address, width, isWrite, value);
  }

  readMsr(cpu: GuestCpu, index: number): number {
    return this.#apicAccess.readMsr(cpu, index);
  }

  writeMsr(cpu: GuestCpu, index: number, low: number, high: number): void {
    this.#apicAccess.writeMsr(cpu, index, low, high);
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
    return hostThread().nowMs() * 1e6 - this.#clockOriginNs;
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
