// The vCPU run loop, inside its worker (KVM's vcpu_run / vcpu_enter_guest / vcpu_block, and the
// AVIC hooks avic_vcpu_load / _put / _blocking / _unblocking from svm/avic.c).
//
// Orderings that keep IPIs from being lost (docs/architecture.md#orderings, O1, O2, O5, O6):
//  * entry: store mode = InGuestMode, then read the doorbell, then scan the IRR. An IRR bit set before
//    the scan is delivered now; one set after it comes with a doorbell ring the block poll sees.
//  * blocking (vcpu-sleep.ts): read the doorbell, clear IsRunning, re-check for events, then
//    Atomics.wait on the doorbell value read first.
//  * the vCPU is an SRCU reader only while it runs host code for itself (exit handling, requests),
//    never while in guest mode or asleep (vcpu_enter_guest, vcpu_block; O6).

import { GuestCpu, GuestExit, type GuestCpuEnvironment } from '../../guest/guest-cpu.js';
import { GuestFaultKind, type GuestFault } from '../../guest/guest-fault.js';
import type { SrcuIndex } from '../../host/srcu.js';
import { FLAGS_INTERRUPT_ENABLE, STACK_POINTER } from '../../guest/instruction-set.js';
import { acknowledgeInterrupt, endOfInterrupt, pendingDeliverableVector, updateProcessorPriority } from '../../hw/apic/apic-backing-page.js';
import { classifyApicAccess } from '../../hw/apic/apic-access.js';
import { AvicIpiOutcome, deliverAvicIpi, type AvicHardware } from '../../hw/avic/avic-ipi-delivery.js';
import { deliverX2avicIpi } from '../../hw/avic/x2avic-ipi-delivery.js';
import { AvicMode, avicMaxPhysicalIndex } from '../../hw/avic/x2avic.js';
import { apicId, hostPhysicalApicId } from '../../hw/apic/apic-id.js';
import { APIC_DEFAULT_PHYSICAL_BASE, APIC_PAGE_BYTES } from '../../hw/apic/apic-register.js';
import { MemslotKind } from '../../memory/memslot.js';
import type { MemslotTranslation } from '../../memory/memslot-snapshot.js';
import { backingPagePolicy, type BackingPagePolicyName } from '../control/backing-page-policy.js';
import { LocalApicEmulation } from '../lapic/local-apic-emulation.js';
import { VcpuMode, VcpuRequest, VcpuRunState, VcpuWaitReason, transitionRunState } from '../control/vcpu-run-state.js';
import { VmMemory, type VmBuffers } from '../control/vm-memory.js';
import { handleHypercall } from './hypercalls.js';
import { readModelSpecificRegister, writeModelSpecificRegister } from './model-specific-registers.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import { createLatencyHistogram, encodeLatencyHistogram, type LatencyHistogram } from '../report/latency-histogram.js';
import { TraceEventKind, TraceRecorder } from '../report/trace-recorder.js';
import { KVM_LOCK_TIMEOUT_MS, VcpuLocks, type KvmLocksShared } from '../control/kvm-locks.js';
import { vcpuLockReplay, type VcpuLockReplay } from '../lock-replays-vcpu.js';
import { ApicTimer } from '../lapic/apic-timer.js';
import { VcpuBoot } from './vcpu-boot.js';
import { VcpuSleep } from './vcpu-sleep.js';

/** Instructions per guest entry (a "slice"); exits and polls end a slice early. */
export const SLICE_INSTRUCTIONS = 65536;
/**
 * Requests that end a halted or wait-for-SIPI vCPU's sleep whatever the interrupt state, so that the
 * run loop services them; a halted vCPU then halts again unless the request was INIT or a start-up
 * that started it (or Stop).
 */
const WAKING_REQUESTS = VcpuRequest.Stop | VcpuRequest.Pause | VcpuRequest.Kick | VcpuRequest.MemslotsChanged
  | VcpuRequest.ApicPageReload | VcpuRequest.Init | VcpuRequest.StartUp;

export interface VcpuStartup {
  readonly buffers: VmBuffers;
  readonly vcpu: number;
  readonly policy: BackingPagePolicyName;
  /** enable_ipiv: false models KVM's erratum #1235 work-around (IsRunning never shown to hardware). */
  readonly ipiVirtualization: boolean;
  /** KVM uses x2AVIC (VmConfig.x2avic): the x2APIC MSRs it passes through go to the hardware first. */
  readonly x2avic: boolean;
  /** The CPU has the x2AVIC 4K extension (VmConfig.x2avicExtended): the x2AVIC max index reaches 0xFFF. */
  readonly x2avicExtended: boolean;
  readonly haltPolling: boolean;
  /** Host cores the halt-poll and pause-loop policies may assume. */
  readonly hostCores: number;
  /** process.hrtime origin of the VM clock, in nanoseconds, as a decimal string (bigint is not cloneable everywhere). */
  readonly clockOriginNs: string;
  readonly entryPoint: number;
  /** No entry point: an application processor in wait-for-SIPI until INIT and a start-up IPI (vcpu-boot.ts). */
  readonly waitForStartUp: boolean;
  readonly stackTop: number;
  /** Record trace events (--trace). */
  readonly trace: boolean;
  /** The VM's instrumented locks (lockdep region and instance ids). */
  readonly locks: KvmLocksShared;
}

export interface VcpuExitReport {
  readonly vcpu: number;
  readonly reason: 'done' | 'stopped' | 'fault';
  readonly fault?: GuestFault;
  /** This vCPU's latency samples (HDR histogram, compressed). */
  readonly latencyHistogram: string;
  readonly trace?: { readonly events: Float64Array; readonly dropped: number };
}


export class Vcpu implements GuestCpuEnvironment {
  readonly memory: VmMemory;
  readonly index: number;
  /** Word index of this vCPU's APIC page; moves only under rfc-v2 (#reloadApicPage). */
  #pageBase: number;
  readonly cpu: GuestCpu;
  readonly apic: LocalApicEmulation;
  /** The LVT timer; the APIC register handlers call write() and readCurrentCount(). */
  readonly apicTimer: ApicTimer;
  /** INIT and start-up IPIs, wait-for-SIPI. */
  readonly boot: VcpuBoot;
  /** Present only when tracing: every recording site checks it first. */
  readonly trace: TraceRecorder | undefined;
  readonly #latency: LatencyHistogram = createLatencyHistogram();
  /** Float64 index of this vCPU's VcpuStatistics struct (counters are bumped on every IPI). */
  readonly #statisticsBase: number;
  readonly startup: VcpuStartup;
  readonly hostThreadSlot: number;
  /** vcpu->mutex, kvm->srcu (read side) and the validator, attached in this worker. */
  readonly locks: VcpuLocks;
  /** Debug only: this vCPU's part of an injected lock replay, run once at its first exit. */
  #lockReplay: VcpuLockReplay | undefined;
  readonly #control: Int32Array;
  readonly #statistics: Float64Array;
  readonly #doorbell: number;
  readonly #requests: number;
  readonly #runState: number;
  readonly #mode: number;
  readonly #heartbeat: number;
  readonly #nmiQueued: number;
  readonly #nmiPending: number;
  /** NMIs latched (KVM nmi_pending), 0..2; owner only. */
  #nmisLatched = 0;
  readonly #srcuSlot: number;
  readonly #runnableVcpus: number;
  readonly #clockOffsetNs: number;
  readonly #hardware: AvicHardware;
  /** The same hardware as the VMCB shows it while this vCPU is in x2APIC mode (x2AVIC max index). */
  readonly #x2avicHardware: AvicHardware;
  readonly #outcome = new AvicIpiOutcome();
  #ramWindows: MemslotTranslation[] = [];
  #srcuIndex: SrcuIndex | -1 = -1;
  #halted = false;
  #done = false;
  /** Halt-polling, blocking, the pause-loop yield and parking (vcpu-sleep.ts). */
  readonly #sleep: VcpuSleep;

  constructor(startup: VcpuStartup) {
    this.startup = startup;
    this.memory = new VmMemory(startup.buffers);
    this.index = startup.vcpu;
    this.#pageBase = this.memory.apicPageBase(this.index);
    this.#control = this.memory.control;
    this.#statistics = this.memory.controlFloat64;
    this.#statisticsBase = this.memory.statisticIndex(this.index, 'ipiCommands') - VcpuStatistic.ipiCommands;
    this.hostThreadSlot = this.#claimHostThreadSlot();
    this.locks = new VcpuLocks(startup.locks, this.memory, this.hostThreadSlot, this.index);
    this.#lockReplay = vcpuLockReplay(startup.locks.injectLockBug, startup.locks.replayHandshake, this.index);
    this.#doorbell = this.memory.doorbellIndex(this.hostThreadSlot, 'ring');
    this.#requests = this.memory.controlBlockIndex(this.index, 'requests');
    this.#runState = this.memory.controlBlockIndex(this.index, 'runState');
    this.#mode = this.memory.controlBlockIndex(this.index, 'mode');
    this.#heartbeat = this.memory.controlBlockIndex(this.index, 'heartbeat');
    this.#nmiQueued = this.memory.controlBlockIndex(this.index, 'nmiQueued');
    this.#nmiPending = this.memory.controlBlockIndex(this.index, 'nmiPending');
    this.#runnableVcpus = this.memory.headerIndex('runnableVcpus');
    this.#srcuSlot = this.index + 1;
    this.#clockOffsetNs = Number(process.hrtime.bigint() - BigInt(startup.clockOriginNs)) - performance.now() * 1e6;
    const policy = backingPagePolicy(startup.policy, this.memory.vcpuCount);
    this.#hardware = {
      physicalTable: this.memory.physicalApicIdTable,
      logicalTable: this.memory.logicalApicIdTable,
      // avic_get_max_physical_id: the VMCB max index depends on this vCPU's mode (xAVIC 0xFE at most).
      maxPhysicalIndex: avicMaxPhysicalIndex(AvicMode.Xavic, this.memory.vcpuCount),
      pageWords: this.memory.apicPageWords,
      resolveBackingPage: policy.resolveBackingPage,
      ringDoorbell: (host) => {
        this.memory.ringDoorbell(host);
        this.count(VcpuStatistic.doorbellsRung);
      },
    };
    // x2AVIC: up to 0x1FF; re-derived per mode, as KVM does when the vCPU enters x2APIC mode.
    this.#x2avicHardware = { ...this.#hardware, maxPhysicalIndex: avicMaxPhysicalIndex(AvicMode.X2avic, this.memory.vcpuCount, startup.x2avicExtended) };
    this.cpu = new GuestCpu({ ramBuffer: startup.buffers.ram, environment: this, doorbells: this.#control, doorbellIndex: this.#doorbell });
    this.apic = new LocalApicEmulation(this);
    this.apicTimer = new ApicTimer(this);
    this.boot = new VcpuBoot(this, startup.waitForStartUp);
    this.#sleep = new VcpuSleep(this);
    this.trace = startup.trace ? new TraceRecorder(() => this.readClock()) : undefined;
    this.cpu.pc = startup.entryPoint >>> 0;
    this.cpu.registers[0] = this.index;
    this.cpu.registers[1] = this.memory.createdVcpus();
    this.cpu.registers[STACK_POINTER] = startup.stackTop | 0;
  }

  #claimHostThreadSlot(): number {
    // One task per thread for the VM's life: claim the first free doorbell line (compare-and-swap),
    // starting at our own index so the usual case takes one step.
    const count = this.memory.vcpuCount;
    for (let step = 0; step < count; step++) {
      const slot = (this.index + step) % count;
      if (Atomics.compareExchange(this.#control, this.memory.doorbellIndex(slot, 'claimed'), 0, 1) === 0) return slot;
    }
    throw new Error(`vCPU ${this.index}: no free host thread slot`);
  }

  /** Adds to one of this vCPU's counters; `offset` is a VcpuStatistic member. */
  count(offset: number, amount = 1): void {
    this.#statistics[this.#statisticsBase + offset]! += amount;
  }

  countIncompleteIpiExit(cause: number): void {
    this.#statistics[this.#statisticsBase + VcpuStatistic.incompleteIpiExits + cause]! += 1;
  }

  get hardware(): AvicHardware {
    return this.#hardware;
  }

  get outcome(): AvicIpiOutcome {
    return this.#outcome;
  }

  /**
   * An exit handled inside the current instruction (an APIC trap or fault, an incomplete-IPI exit): the
   * vCPU leaves guest mode and becomes an SRCU reader for the handler, as vcpu_run does.
   */
  beginExitHandling(): void {
    Atomics.store(this.#control, this.#mode, VcpuMode.OutsideGuestMode);
    this.srcuReadLock('vcpu_run: exit handling: srcu_read_lock');
    const replay = this.#lockReplay;
    if (replay !== undefined) {
      this.#lockReplay = undefined;
      replay({ locks: this.locks, vcpu: this.index, dropSrcu: () => this.srcuReadUnlock(), retakeSrcu: (site) => this.srcuReadLock(site) });
    }
  }

  /** srcu_read_lock(&kvm->srcu) into vcpu->srcu_idx, through the validator. */
  srcuReadLock(site: string): void {
    this.#srcuIndex = this.locks.srcu.readLock(this.#srcuSlot, site);
  }

  /** srcu_read_unlock; rule 6 of docs/lock-order.md: the vCPU is no reader in guest mode or asleep. */
  srcuReadUnlock(): void {
    this.locks.srcu.readUnlock(this.#srcuSlot, this.#srcuIndex as SrcuIndex);
    this.#srcuIndex = -1;
  }

  /** Back to guest mode: mode first, then the memslot generation check, then drop SRCU (as #enterGuest). */
  endExitHandling(): void {
    Atomics.store(this.#control, this.#mode, VcpuMode.InGuestMode);
    if (this.memory.memslots.generation() !== Atomics.load(this.#control, this.memory.controlBlockIndex(this.index, 'observedMemslotGeneration'))) {
      this.#reloadRamWindows();
    }
    this.srcuReadUnlock();
  }

  recordLatencySample(nanoseconds: number): void {
    const samples = this.memory.statisticIndex(this.index, 'latencySamples');
    const statistics = this.#statistics;
    const first = statistics[samples] === 0;
    statistics[samples]! += 1;
    statistics[this.memory.statisticIndex(this.index, 'latencySumNs')]! += nanoseconds;
    const min = this.memory.statisticIndex(this.index, 'latencyMinNs');
    const max = this.memory.statisticIndex(this.index, 'latencyMaxNs');
    if (first || nanoseconds < statistics[min]!) statistics[min] = nanoseconds;
    if (nanoseconds > statistics[max]!) statistics[max] = nanoseconds;
    this.#latency.recordValue(nanoseconds);
  }

  markDone(): void {
    this.#done = true;
    this.cpu.requestExit();
  }

  // ---- the run loop (vcpu_run) ----

  run(): VcpuExitReport {
    transitionRunState(this.#control, this.#runState, VcpuRunState.Running, this.index);
    Atomics.add(this.#control, this.#runnableVcpus, 1);
    this.locks.vcpuMutex.lock('kvm_vcpu_ioctl: KVM_RUN', KVM_LOCK_TIMEOUT_MS);
    this.srcuReadLock('vcpu_run: srcu_read_lock');
    this.vcpuLoad();
    this.#reloadRamWindows();
    try {
      for (;;) {
        Atomics.add(this.#control, this.#heartbeat, 1);
        const requests = Atomics.load(this.#control, this.#requests);
        if (requests !== 0 && this.#handleRequests(requests)) return this.#finish('stopped');
        if (this.boot.waiting) {
          this.#sleep.block(VcpuWaitReason.WaitForStartUp);
          continue;
        }
        // The timer's deadline is checked at every guest entry (and by halted vCPUs as they wait).
        this.apicTimer.poll();
        if (this.#halted) {
          this.#halted = this.#sleep.halt();
          continue;
        }
        const exit = this.#enterGuest();
        if (exit === GuestExit.Fault) return this.#finish('fault');
        if (this.#done) return this.#finish('done');
        if (exit === GuestExit.Halt) {
          this.count(VcpuStatistic.haltExits);
          this.#halted = true;
        } else if (exit === GuestExit.PauseLoop) {
          this.count(VcpuStatistic.pauseLoopExits);
          this.#sleep.pauseLoopYield();
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
    if (this.memory.memslots.generation() !== Atomics.load(this.#control, this.memory.controlBlockIndex(this.index, 'observedMemslotGeneration'))) {
      Atomics.store(this.#control, this.#mode, VcpuMode.OutsideGuestMode);
      this.#reloadRamWindows();
      return GuestExit.InterruptWindow;
    }
    this.srcuReadUnlock();
    this.locks.lockdep.assertNotHeld(this.locks.srcu.lockClass);
    this.count(VcpuStatistic.slices);
    let exit: GuestExit;
    // A delivery that faults (no handler, a frame pushed outside memory) returns false with the fault
    // recorded: the vCPU stops here, as a failed event injection ends KVM_RUN.
    this.evaluateInterrupts();
    if (this.cpu.fault !== undefined) exit = GuestExit.Fault;
    else {
      const before = this.cpu.instructionsRetired;
      exit = this.cpu.run(this.apicTimer.beginSlice(SLICE_INSTRUCTIONS));
      this.apicTimer.endSlice(this.cpu.instructionsRetired - before);
      this.count(VcpuStatistic.instructions, this.cpu.instructionsRetired - before);
    }
    this.srcuReadLock('vcpu_enter_guest: srcu_read_lock after the guest');
    Atomics.store(this.#control, this.#mode, VcpuMode.OutsideGuestMode);
    return exit;
  }

  /**
   * Interrupt evaluation at an instruction boundary (VMRUN's IRR scan, and after a doorbell): read the
   * doorbell first, then scan, so a ring after the read is seen by the next block poll. Returns true
   * if an interrupt was delivered.
   */
  evaluateInterrupts(): boolean {
    this.cpu.lastDoorbell = Atomics.load(this.#control, this.#doorbell);
    const cpu = this.cpu;
    // Collected even while an NMI is in service (limit 1 then), as KVM processes KVM_REQ_NMI at
    // every entry: NMIs sent meanwhile merge into the one latch.
    // The common case (no NMI latched, none requested) costs one load, as before NMIs were queued.
    if ((this.#nmisLatched !== 0 || (Atomics.load(this.#control, this.#requests) & VcpuRequest.Nmi) !== 0) && this.collectNmis() > 0 && !cpu.nmiBlocked) {
      this.#setNmisLatched(this.#nmisLatched - 1);
      cpu.nmiBlocked = true;
      this.count(VcpuStatistic.nmisDelivered);
      this.count(VcpuStatistic.interruptsDelivered);
      this.trace?.record(TraceEventKind.InterruptDelivered, 2);
      return cpu.deliverInterrupt(2);
    }
    if ((cpu.flags & FLAGS_INTERRUPT_ENABLE) === 0) return false;
    const words = this.memory.apicPageWords;
    const vector = pendingDeliverableVector(words, this.pageBase);
    if (vector < 0) return false;
    acknowledgeInterrupt(words, this.pageBase, vector);
    this.count(VcpuStatistic.interruptsDelivered);
    this.trace?.record(TraceEventKind.InterruptDelivered, vector);
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
    const limit = this.cpu.nmiBlocked ? 1 : 2;
    if (pending > limit) {
      this.count(VcpuStatistic.nmisMerged, pending - limit);
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
    return !this.cpu.nmiBlocked && ((requests & VcpuRequest.Nmi) !== 0 || this.#nmisLatched > 0);
  }

  /**
   * An interrupt window in guest mode: requests end the slice; otherwise evaluate and go on. A
   * delivery that faults ends the slice too (the interpreter then returns GuestExit.Fault).
   */
  interruptWindow(cpu: GuestCpu): boolean {
    if (Atomics.load(this.#control, this.#requests) & ~VcpuRequest.Nmi) return true;
    this.evaluateInterrupts();
    return cpu.fault !== undefined;
  }

  /**
   * kvm_vcpu_check_block, for a sleeping vCPU: something that ends the sleep (an interrupt or NMI it
   * can take, or a request the run loop must service). Whether HLT ends is canTakeInterrupt's answer.
   */
  hasEvents(): boolean {
    const requests = Atomics.load(this.#control, this.#requests);
    if ((requests & WAKING_REQUESTS) !== 0) return true;
    // In wait-for-SIPI only INIT and start-up (and the host's requests) count; interrupts wait in IRR.
    if (this.boot.waiting) return false;
    if (this.#nmiDeliverable(requests)) return true;
    return this.cpu.interruptsEnabled && pendingDeliverableVector(this.memory.apicPageWords, this.pageBase) >= 0;
  }

  /** kvm_arch_vcpu_runnable for a halted vCPU: an interrupt (or NMI) can be taken now, so HLT ends. */
  canTakeInterrupt(): boolean {
    return this.#nmiDeliverable(Atomics.load(this.#control, this.#requests))
      || (this.cpu.interruptsEnabled && pendingDeliverableVector(this.memory.apicPageWords, this.pageBase) >= 0);
  }

  /** Returns true if the vCPU must stop. */
  #handleRequests(requests: number): boolean {
    if ((requests & VcpuRequest.Stop) !== 0) return true;
    if ((requests & VcpuRequest.MemslotsChanged) !== 0) this.#reloadRamWindows();
    if ((requests & VcpuRequest.ApicPageReload) !== 0) this.#reloadApicPage();
    if ((requests & VcpuRequest.ApicvUpdate) !== 0) this.apic.updateApicv();
    if ((requests & (VcpuRequest.Init | VcpuRequest.StartUp)) !== 0 && this.boot.acceptEvents(requests)) this.#halted = false;
    if ((requests & VcpuRequest.Kick) !== 0) Atomics.and(this.#control, this.#requests, ~VcpuRequest.Kick);
    if ((requests & VcpuRequest.Pause) !== 0) return this.#sleep.park();
    return false;
  }

  #reloadRamWindows(): void {
    Atomics.and(this.#control, this.#requests, ~VcpuRequest.MemslotsChanged);
    const generation = this.memory.memslots.readActive(this.#ramWindows);
    this.cpu.setRamWindows(this.#ramWindows.filter((slot) => slot.kind === MemslotKind.ram));
    this.#apicAccessSlotPresent = this.#ramWindows.some((slot) => slot.kind === MemslotKind.apicAccess && slot.guestPhysicalAddress === APIC_DEFAULT_PHYSICAL_BASE);
    const observed = this.memory.controlBlockIndex(this.index, 'observedMemslotGeneration');
    Atomics.store(this.#control, observed, generation);
    // The memslot writer may be waiting for this acknowledgement (its grace period).
    Atomics.notify(this.#control, observed);
  }

  #apicAccessSlotPresent = false;

  get pageBase(): number {
    return this.#pageBase;
  }

  /**
   * KVM_REQ_APIC_PAGE_RELOAD (rfc-v2): the main thread re-initialised this vCPU's backing page in new
   * memory and re-pointed the physical table entry; from the next guest entry on, this vCPU uses it.
   * Whatever senders still post to the old page is stranded there (the main thread counts it).
   */
  #reloadApicPage(): void {
    Atomics.and(this.#control, this.#requests, ~VcpuRequest.ApicPageReload);
    const base = this.memory.apicPageBase(this.index);
    if (base === this.#pageBase) return;
    this.#pageBase = base;
    this.count(VcpuStatistic.backingPageReloads);
  }

  // ---- AVIC load / put / blocking (svm/avic.c) ----

  /** avic_vcpu_load: publish the host thread and, unless IPI virtualization or AVIC is off, IsRunning. */
  vcpuLoad(): void {
    Atomics.store(this.#control, this.memory.controlBlockIndex(this.index, 'hostThreadSlot'), this.hostThreadSlot);
    this.memory.physicalApicIdTable.setIsRunning(apicId(this.index), this.startup.ipiVirtualization && this.apic.apicvActive, hostPhysicalApicId(this.hostThreadSlot));
  }

  /** avic_vcpu_put / avic_vcpu_blocking: clear IsRunning, keep the host id (__avic_vcpu_put). */
  vcpuPut(): void {
    this.memory.physicalApicIdTable.setIsRunning(apicId(this.index), false, hostPhysicalApicId(this.hostThreadSlot));
  }

  #releaseForExit(): void {
    this.vcpuPut();
    if (this.#srcuIndex !== -1) this.srcuReadUnlock();
    if (this.locks.vcpuMutex.holder() === this.locks.lockdep.currentThreadSlot()) this.locks.vcpuMutex.unlock();
    Atomics.store(this.#control, this.memory.controlBlockIndex(this.index, 'finished'), 1);
  }

  #finish(reason: VcpuExitReport['reason']): VcpuExitReport {
    this.#releaseForExit();
    const state = Atomics.load(this.#control, this.#runState);
    if (state === VcpuRunState.Running || state === VcpuRunState.Paused) {
      Atomics.sub(this.#control, this.#runnableVcpus, state === VcpuRunState.Running ? 1 : 0);
      transitionRunState(this.#control, this.#runState, VcpuRunState.Finished, this.index);
    }
    this.memory.ringMainDoorbell();
    const fault = this.cpu.fault;
    const common = {
      vcpu: this.index,
      latencyHistogram: encodeLatencyHistogram(this.#latency),
      ...(this.trace === undefined ? {} : { trace: { events: this.trace.take(), dropped: this.trace.dropped } }),
    };
    return fault === undefined ? { ...common, reason } : { ...common, reason: 'fault', fault };
  }

  // ---- GuestCpuEnvironment: the exits ----

  accessOutsideRam(cpu: GuestCpu, address: number, width: 1 | 2 | 4, isWrite: boolean, value: number): number {
    const offset = address - APIC_DEFAULT_PHYSICAL_BASE;
    if (!this.#apicAccessSlotPresent || offset < 0 || offset >= APIC_PAGE_BYTES) {
      cpu.raiseFault(GuestFaultKind.AccessOutsideMemory, `${isWrite ? 'write' : 'read'} of ${width} byte(s) outside every memslot`, address);
      return 0;
    }
    if (width !== 4 || (offset & 3) !== 0) {
      cpu.raiseFault(GuestFaultKind.InvalidApicAccess, 'local APIC registers take aligned 32-bit accesses only', address);
      return 0;
    }
    return this.apic.access(offset, isWrite, value);
  }

  hypercall(cpu: GuestCpu, number: number): void {
    this.count(VcpuStatistic.hypercalls);
    handleHypercall(this, cpu, number);
  }

  /** RDMSR; an intercepted one counts as an MSR exit (model-specific-registers.ts). */
  readMsr(cpu: GuestCpu, index: number): number {
    return readModelSpecificRegister(this, cpu, index);
  }

  writeMsr(cpu: GuestCpu, index: number, low: number, high: number): void {
    writeModelSpecificRegister(this, cpu, index, low, high);
  }

  readClock(): number {
    return performance.now() * 1e6 + this.#clockOffsetNs;
  }

  /** The accelerated register accesses that need no exit still need the page's PPR kept current. */
  refreshProcessorPriority(): void {
    updateProcessorPriority(this.memory.apicPageWords, this.pageBase);
  }

  classifyAccess(offset: number, isWrite: boolean): number {
    return classifyApicAccess(offset, isWrite, this.memory.apicPageWords, this.pageBase);
  }

  completeEndOfInterrupt(): number {
    return endOfInterrupt(this.memory.apicPageWords, this.pageBase);
  }

  sendAcceleratedIpi(icrLow: number, icrHigh: number): void {
    this.#outcome.reset();
    deliverAvicIpi(icrLow, icrHigh, apicId(this.index), this.pageBase, this.#hardware, this.#outcome);
  }

  /** An x2APIC ICR write (EAX, EDX) that x2AVIC hardware handles first; the outcome is in `outcome`. */
  sendAcceleratedX2apicIpi(icrLow: number, icrHigh: number): void {
    deliverX2avicIpi(icrLow, icrHigh, apicId(this.index), this.pageBase, this.#x2avicHardware, this.#outcome);
  }
}
