// How a vCPU stops running guest code without losing an event: kvm_vcpu_halt (halt-polling, then
// block), kvm_vcpu_block with the AVIC blocking hooks, and the main thread's pause (vcpu.ts runs the
// loop that calls these). Nothing here sleeps: a vCPU that blocks is put by its host CPU, which runs
// another (host-cpu-loop.ts), and only kvm_vcpu_wake_up makes it runnable again
// (control/vcpu-scheduling.ts). The only wait is halt-polling, bounded by the poll window.
//
// Orderings that keep wake-ups from being lost (docs/architecture.md#orderings, O1, O2, O10):
//  * blocking: state Blocking, clear IsRunning (avic_vcpu_blocking), re-check for events, then
//    compare-exchange Blocking -> Blocked. A sender sets IRR before it reads IsRunning, so either it
//    sees IsRunning = 0 and wakes us through the incomplete-IPI exit, or we see its IRR bit; a waker
//    stores its event before it reads our state, so either it sees Blocking / Blocked, or we see it.
//  * halt-polling keeps IsRunning set: senders ring the doorbell, the poll sees the ring move (O2).
//  * the vCPU is not an SRCU reader while it polls or is put (rule 6 of docs/lock-order.md; O6).

import { TraceEventKind, type TraceRecorder } from '../report/trace-recorder.js';
import { VcpuRequest, VcpuRunState, VcpuWaitReason, transitionRunState } from '../control/vcpu-run-state.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { VcpuSaveAreaView } from '../control/vcpu-save-area.js';
import type { VcpuScheduling } from '../control/vcpu-scheduling.js';
import type { HostCpu } from '../../host/host-cpu.js';
import { hostThread, SchedulingPoint } from '../../host/host-thread.js';
import { InjectedBugFlag, readInjectedBugs } from '../control/injected-bugs.js';
import { VirtualTimeCost } from '../../host/virtual-time-costs.js';

/** KVM's halt_poll_ns default is 200 us; grow and shrink as kvm_vcpu_halt does. */
export const HALT_POLL_MAX_NS = 200_000;
export const HALT_POLL_START_NS = 10_000;

/**
 * The halt-poll window (KVM's vcpu->halt_poll_ns) and when to poll at all. Pure policy: the sleeping
 * paths feed it how long each halt lasted. `maxNs` is KVM's halt_poll_ns module parameter, the most
 * the window grows to.
 */
export class HaltPollWindow {
  readonly #enabled: boolean;
  readonly #maxNs: number;
  #ns: number;

  constructor(enabled: boolean, maxNs = HALT_POLL_MAX_NS) {
    this.#enabled = enabled;
    this.#maxNs = maxNs;
    this.#ns = Math.min(HALT_POLL_START_NS, maxNs);
  }

  /** Nanoseconds the next halt polls before it blocks. */
  get ns(): number {
    return this.#ns;
  }

  set ns(ns: number) {
    this.#ns = ns;
  }

  /**
   * Poll only while nothing else is runnable on this host CPU (single_task_running): spinning while
   * another vCPU waits for the host CPU would only delay it.
   */
  shouldPoll(singleTaskRunning: boolean): boolean {
    return this.#enabled && this.#ns > 0 && singleTaskRunning;
  }

  /**
   * KVM's rule (kvm_vcpu_halt): a halt that ended within the window leaves it alone; one longer than
   * the maximum shrinks it (polling would not have helped); one shorter than the maximum but longer
   * than the window grows it (a slightly longer poll would have caught the event).
   */
  adapt(haltNs: number): void {
    if (!this.#enabled || haltNs <= this.#ns) return;
    const maxNs = this.#maxNs;
    if (haltNs > maxNs) this.#ns = Math.floor(this.#ns / 2);
    else if (this.#ns < maxNs) this.#ns = Math.min(maxNs, Math.max(HALT_POLL_START_NS, this.#ns * 2));
  }
}

/** The host CPU a vCPU is loaded on, as the sleeping paths see it. */
export interface LoadedHostCpu {
  readonly cpu: HostCpu;
  /** Nothing else is queued on this host CPU (single_task_running). */
  singleTaskRunning(): boolean;
}

/** What the run loop lends the sleeping paths. */
export interface VcpuSleepHost {
  readonly views: Pick<VmControlViews, 'control' | 'controlBlockIndex' | 'headerIndex'> & {
    readonly scheduling: Pick<VcpuScheduling, 'beginBlocking' | 'commitBlocking' | 'cancelBlocking'>;
  };
  readonly index: number;
  readonly haltPolling: boolean;
  readonly trace: TraceRecorder | undefined;
  readonly counters: VcpuCounting;
  /** The vCPU's kvm->srcu read side (vcpu-srcu.ts): dropped while polling and before it is put. */
  readonly srcu: { readLock(site: string): void; readUnlock(): void; readonly held: boolean };
  /** The vCPU's own event source: it fires when the vCPU looks. */
  readonly timer: { poll(): boolean };
  /** kvm_vcpu_check_block and kvm_arch_vcpu_runnable (vcpu-interrupts.ts). */
  readonly events: { hasEvents(): boolean; canTakeInterrupt(): boolean };
  /** avic_vcpu_blocking / avic_vcpu_unblocking / avic_vcpu_put (svm/avic.ts). */
  readonly avic: { blocking(): void; unblocking(): void; put(): void };
}

/** What halt() leaves the run loop with. */
export const HaltOutcome = {
  /** HLT is over: an interrupt (or NMI) can be taken. */
  Running: 0,
  /** Still halted: service a request, then halt again. */
  Halted: 1,
  /** Blocked: the host CPU puts the vCPU; halt() is called again after its wake-up. */
  Blocked: 2,
} as const;
export type HaltOutcome = (typeof HaltOutcome)[keyof typeof HaltOutcome];

/** What park() leaves the run loop with. */
export const ParkOutcome = { Running: 0, Paused: 1, Stop: 2 } as const;
export type ParkOutcome = (typeof ParkOutcome)[keyof typeof ParkOutcome];

export class VcpuSleep {
  readonly #host: VcpuSleepHost;
  readonly #control: Int32Array;
  readonly #requests: number;
  readonly #runState: number;
  readonly #waitReason: number;
  readonly #runnableVcpus: number;
  readonly #haltPoll: HaltPollWindow;
  /** When the current halt began (ms, this thread's clock), 0 when not halted: it spans puts. */
  #haltStartedMs = 0;
  /** Debug only, the bug zoo's blocking-no-recheck (docs/bug-zoo.md): block() skips its re-check. */
  readonly #skipRecheck: boolean;

  constructor(host: VcpuSleepHost) {
    this.#host = host;
    this.#haltPoll = new HaltPollWindow(host.haltPolling);
    const memory = host.views;
    this.#control = memory.control;
    this.#requests = memory.controlBlockIndex(host.index, 'requests');
    this.#runState = memory.controlBlockIndex(host.index, 'runState');
    this.#waitReason = memory.controlBlockIndex(host.index, 'waitReason');
    this.#runnableVcpus = memory.headerIndex('runnableVcpus');
    this.#skipRecheck = (readInjectedBugs(memory) & InjectedBugFlag.BlockingNoRecheck) !== 0;
  }

  /**
   * Migration (vcpu-save-area.ts): the halt-poll window, and when a halt in progress began, on the
   * host clock every worker shares (nowMs, src/host/host-thread.ts).
   */
  save(area: VcpuSaveAreaView): void {
    area.set('haltPollNs', this.#haltPoll.ns);
    area.set('haltStartedAtMs', this.#haltStartedMs);
  }

  restore(area: VcpuSaveAreaView): void {
    this.#haltPoll.ns = area.get('haltPollNs');
    this.#haltStartedMs = area.get('haltStartedAtMs');
  }

  /**
   * kvm_vcpu_halt: poll, then block; then adapt the polling window. Any event ends the wait
   * (hasEvents: the host's requests too, so the run loop services them), but only one the vCPU can
   * take ends HLT (canTakeInterrupt): after a kick, a memslot change or a pause the run loop handles
   * the request and comes back here, as KVM's vcpu_run calls kvm_vcpu_halt again while mp_state is
   * still HALTED. INIT and start-up end HLT in the run loop (VcpuBoot), Stop there too.
   */
  halt(loaded: LoadedHostCpu): HaltOutcome {
    // An IPI may land between the guest's HLT and KVM's first look for events.
    hostThread().point(SchedulingPoint.Halt);
    const host = this.#host;
    const events = host.events;
    if (this.#haltStartedMs === 0) {
      if (events.hasEvents()) return events.canTakeInterrupt() ? HaltOutcome.Running : HaltOutcome.Halted;
      host.trace?.record(TraceEventKind.HaltBegin);
      this.#haltStartedMs = hostThread().nowMs();
      if (this.#poll(loaded)) {
        host.counters.count(VcpuStatistic.haltPollSuccesses);
        return this.#endHalt(0);
      }
    } else if (events.hasEvents()) {
      // Back after a wake-up (or a serviced request found something else pending).
      return this.#endHalt(1);
    }
    if (this.block(VcpuWaitReason.Halted)) return HaltOutcome.Blocked;
    return this.#endHalt(1);
  }

  #endHalt(slept: number): HaltOutcome {
    this.#haltPoll.adapt((hostThread().nowMs() - this.#haltStartedMs) * 1e6);
    this.#haltStartedMs = 0;
    this.#host.trace?.record(TraceEventKind.HaltEnd, slept);
    return this.#host.events.canTakeInterrupt() ? HaltOutcome.Running : HaltOutcome.Halted;
  }

  /**
   * Halt-polling: spin briefly with IsRunning still set (so senders ring the doorbell instead of
   * exiting), only while nothing else is runnable here; stop as soon as something is (the host CPU's
   * wake word moved). Returns true if an event came.
   */
  #poll(loaded: LoadedHostCpu): boolean {
    const host = this.#host;
    const window = this.#haltPoll;
    if (!window.shouldPoll(loaded.singleTaskRunning())) return false;
    const cpu = loaded.cpu;
    host.srcu.readUnlock();
    const thread = hostThread();
    const started = thread.nowMs();
    const deadline = started + window.ns / 1e6;
    let seen = cpu.ringValue();
    const wake = cpu.wakeValue();
    let success = false;
    for (let spins = 0; ; spins++) {
      thread.point(SchedulingPoint.Spin); // a doorbell or a wake-up can only come from another thread
      thread.advance(VirtualTimeCost.haltPollIterationNs);
      const ring = cpu.ringValue();
      if (ring !== seen) {
        seen = ring;
        if (host.events.hasEvents()) {
          success = true;
          break;
        }
      }
      // Look at the IRR itself now and then too, at the wake word and at the clock (a clock read costs
      // ~40 ns); on every pass where a point may have run another thread (which moved the clock).
      if ((spins & 255) === 255 || thread.pointMaySwitch) {
        host.timer.poll();
        if (host.events.hasEvents()) {
          success = true;
          break;
        }
        if (cpu.wakeValue() !== wake || thread.nowMs() >= deadline) break;
      }
    }
    cpu.count('haltPollNs', (thread.nowMs() - started) * 1e6);
    host.srcu.readLock('kvm_vcpu_halt: srcu_read_lock after polling');
    return success;
  }

  /**
   * kvm_vcpu_block with the AVIC blocking hooks (the protocol in control/vcpu-scheduling.ts). Returns
   * true if the vCPU blocked (its host CPU puts it; runState stays Blocked until its next load), false
   * if an event came first (it is Running again, IsRunning set).
   */
  block(reason: number): boolean {
    const host = this.#host;
    const scheduling = host.views.scheduling;
    scheduling.beginBlocking(host.index);
    // IsRunning clear, then Blocked: whoever sees the vCPU Blocked (the watchdog, a guest asking
    // HC_VCPU_RUN_STATE) knows IsRunning is already clear.
    host.avic.blocking();
    this.#leaveRunning(VcpuRunState.Blocked, reason);
    // The timer is this vCPU's own event source: fire it now if due (its host CPU wakes it at the
    // deadline otherwise).
    host.timer.poll();
    // The re-check after the clear is what pairs with the sender's "IRR, then IsRunning" (O1): the
    // injected blocking-no-recheck leaves it out, so an IRR bit whose sender read IsRunning = 1
    // just before the clear (a doorbell, no exit) sleeps with the vCPU.
    if (this.#skipRecheck || !host.events.hasEvents()) {
      // A waker between the re-check and the commit must find Blocking and leave Woken (O10).
      hostThread().point(SchedulingPoint.BlockRecheck);
      if (scheduling.commitBlocking(host.index)) {
        host.counters.count(VcpuStatistic.blocks);
        return true;
      }
    }
    scheduling.cancelBlocking(host.index);
    this.returnToRunning();
    return false;
  }

  /**
   * Paused by the main thread: put (IsRunning clear), out of SRCU, Paused published, the pause
   * acknowledged, then blocked until resume() or stop() wakes it (the block protocol again, so the
   * wake-up of a resume that races with the park is not lost).
   */
  park(): ParkOutcome {
    const host = this.#host;
    const scheduling = host.views.scheduling;
    for (;;) {
      scheduling.beginBlocking(host.index);
      host.avic.put();
      if (host.srcu.held) host.srcu.readUnlock();
      if (Atomics.load(this.#control, this.#runState) !== VcpuRunState.Paused)
        this.#leaveRunning(VcpuRunState.Paused, VcpuWaitReason.Paused);
      const requests = Atomics.load(this.#control, this.#requests);
      if ((requests & VcpuRequest.Stop) !== 0) {
        scheduling.cancelBlocking(host.index);
        return ParkOutcome.Stop;
      }
      if ((requests & VcpuRequest.Pause) === 0) {
        scheduling.cancelBlocking(host.index);
        this.returnToRunning();
        host.srcu.readLock('vcpu_run: srcu_read_lock after a pause');
        return ParkOutcome.Running;
      }
      // A resume() between this look at the requests and the commit must find Blocking (O10).
      hostThread().point(SchedulingPoint.BlockRecheck);
      if (scheduling.commitBlocking(host.index)) {
        // Parked for this pause (put, out of SRCU, Paused published, blocked): pause() may resolve.
        // Still this host CPU's to finish: a wake-up only queues it here, behind this put.
        if ((requests & VcpuRequest.PauseAcknowledge) !== 0) {
          Atomics.and(this.#control, this.#requests, ~VcpuRequest.PauseAcknowledge);
          Atomics.notify(this.#control, this.#requests);
        }
        return ParkOutcome.Paused;
      }
      scheduling.cancelBlocking(host.index);
    }
  }

  /**
   * A vCPU loaded while still paused (a kick or a wake-up queued it behind its park) parks again
   * before vcpu_run enters kvm->srcu: a paused vCPU's thread is outside KVM_RUN, and pause() relies
   * on a vCPU that reads Paused holding no read section. This look serves a kick and moves the
   * vCPU's heartbeat (`heartbeat`, its word's index) as a pass of vcpu_run's loop does; resumed
   * meanwhile, it returns Running inside a read section, as park() does. Undefined: not paused.
   */
  parkIfPaused(heartbeat: number): ParkOutcome | undefined {
    if (Atomics.load(this.#control, this.#runState) !== VcpuRunState.Paused) return undefined;
    Atomics.add(this.#control, heartbeat, 1);
    Atomics.and(this.#control, this.#requests, ~VcpuRequest.Kick);
    return this.park();
  }

  #leaveRunning(state: VcpuRunState, reason: number): void {
    transitionRunState(this.#control, this.#runState, state, this.#host.index);
    Atomics.sub(this.#control, this.#runnableVcpus, 1);
    Atomics.store(this.#control, this.#waitReason, reason);
  }

  /** Back to Running, then avic_vcpu_load (IsRunning) last: the vCPU is ready to take doorbells. */
  returnToRunning(): void {
    Atomics.store(this.#control, this.#waitReason, VcpuWaitReason.None);
    Atomics.add(this.#control, this.#runnableVcpus, 1);
    transitionRunState(this.#control, this.#runState, VcpuRunState.Running, this.#host.index);
    this.#host.avic.unblocking();
  }
}
