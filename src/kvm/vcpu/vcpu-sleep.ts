// How a vCPU's thread stops running guest code without losing an event: kvm_vcpu_halt (halt-polling,
// then block), kvm_vcpu_block with the AVIC blocking hooks, the pause-loop yield and the main
// thread's pause (vcpu.ts runs the loop that calls these).
//
// Orderings that keep wake-ups from being lost (docs/architecture.md#orderings, O1-O3):
//  * blocking: read the doorbell, clear IsRunning (put), re-check for events, then Atomics.wait on
//    the doorbell value read first. A sender sets IRR before it reads IsRunning, so either it sees
//    IsRunning = 0 and wakes us through the incomplete-IPI exit, or we see its IRR bit.
//  * "sleeping = 1, then Atomics.wait(ring, seen)" pairs with the ringer's "add to ring, then read
//    sleeping and notify" (HostCpu.sleep and DoorbellLines.ring in src/host/host-cpu.ts).
// The vCPU sleeps on the doorbell line of the host CPU it is loaded on, which each call names.
//  * the vCPU is not an SRCU reader while it polls or sleeps (rule 6 of docs/lock-order.md; O6).
// Every wait is bounded (WAIT_SLICE_MS) and re-checks.

import { TaskSwitchState, TraceEventKind, type TraceRecorder } from '../report/trace-recorder.js';
import { VcpuRequest, VcpuRunState, VcpuWaitReason, transitionRunState } from '../control/vcpu-run-state.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { HostCpu } from '../../host/host-cpu.js';

/** Upper bound of one Atomics.wait; waits loop, re-checking, so no wait is unbounded. */
export const WAIT_SLICE_MS = 50;
/** KVM's halt_poll_ns default is 200 us; grow and shrink as kvm_vcpu_halt does. */
export const HALT_POLL_MAX_NS = 200_000;
export const HALT_POLL_START_NS = 10_000;
/** How long a sleeping vCPU that found an event without a ring waits for the ring before calling it lost. */
const LOST_WAKEUP_GRACE_MS = 1000;
/** A pause loop yields the host core for this long when vCPUs outnumber cores. */
const PAUSE_LOOP_YIELD_MS = 0.2;

/**
 * The halt-poll window (KVM's vcpu->halt_poll_ns) and when to poll at all. Pure policy: the sleeping
 * paths feed it how long each halt lasted.
 */
export class HaltPollWindow {
  readonly #enabled: boolean;
  readonly #hostCores: number;
  #ns = HALT_POLL_START_NS;

  constructor(enabled: boolean, hostCores: number) {
    this.#enabled = enabled;
    this.#hostCores = hostCores;
  }

  /** Nanoseconds the next halt polls before it blocks. */
  get ns(): number {
    return this.#ns;
  }

  /**
   * Poll only while runnable vCPUs fit the host cores: spinning on an oversubscribed host costs a
   * scheduler slice per round trip (BENCHMARKS.md, goal 4).
   */
  shouldPoll(runnableVcpus: number): boolean {
    return this.#enabled && this.#ns > 0 && runnableVcpus <= this.#hostCores;
  }

  /**
   * KVM's rule (kvm_vcpu_halt): a halt that ended within the window leaves it alone; one longer than
   * the maximum shrinks it (polling would not have helped); one shorter than the maximum but longer
   * than the window grows it (a slightly longer poll would have caught the event).
   */
  adapt(haltNs: number): void {
    if (!this.#enabled || haltNs <= this.#ns) return;
    if (haltNs > HALT_POLL_MAX_NS) this.#ns = Math.floor(this.#ns / 2);
    else if (this.#ns < HALT_POLL_MAX_NS) this.#ns = Math.min(HALT_POLL_MAX_NS, Math.max(HALT_POLL_START_NS, this.#ns * 2));
  }
}

/** What the run loop lends the sleeping paths. */
export interface VcpuSleepHost {
  readonly views: Pick<VmControlViews, 'control' | 'controlBlockIndex' | 'headerIndex'>;
  readonly index: number;
  readonly haltPolling: boolean;
  /** Host cores the halt-poll and pause-loop policies may assume. */
  readonly hostCores: number;
  readonly trace: TraceRecorder | undefined;
  readonly counters: VcpuCounting;
  /** The vCPU's kvm->srcu read side (vcpu-srcu.ts): dropped while polling or asleep. */
  readonly srcu: { readLock(site: string): void; readUnlock(): void; assertNotReader(): void };
  /** The vCPU's own event source: it fires while the vCPU waits, and bounds the wait. */
  readonly timer: { poll(): boolean; remainingNs(): number };
  /** kvm_vcpu_check_block and kvm_arch_vcpu_runnable (vcpu-interrupts.ts). */
  readonly events: { hasEvents(): boolean; canTakeInterrupt(): boolean };
  /** avic_vcpu_blocking / avic_vcpu_unblocking / avic_vcpu_put (svm/avic.ts). */
  readonly avic: { blocking(): void; unblocking(): void; put(): void };
}

export class VcpuSleep {
  readonly #host: VcpuSleepHost;
  readonly #control: Int32Array;
  readonly #requests: number;
  readonly #runState: number;
  readonly #waitReason: number;
  readonly #runnableVcpus: number;
  readonly #haltPoll: HaltPollWindow;

  constructor(host: VcpuSleepHost) {
    this.#host = host;
    this.#haltPoll = new HaltPollWindow(host.haltPolling, host.hostCores);
    const memory = host.views;
    this.#control = memory.control;
    this.#requests = memory.controlBlockIndex(host.index, 'requests');
    this.#runState = memory.controlBlockIndex(host.index, 'runState');
    this.#waitReason = memory.controlBlockIndex(host.index, 'waitReason');
    this.#runnableVcpus = memory.headerIndex('runnableVcpus');
  }

  /**
   * kvm_vcpu_halt: poll, then block; then adapt the polling window. Returns true if still halted.
   * Any event ends the wait (hasEvents: the host's requests too, so the run loop services them), but
   * only one the vCPU can take ends HLT (canTakeInterrupt): after a kick, a memslot change or a pause
   * the run loop handles the request and comes back here, as KVM's vcpu_run calls kvm_vcpu_halt again
   * while mp_state is still HALTED. INIT and start-up end HLT in the run loop (VcpuBoot), Stop there too.
   */
  halt(hostCpu: HostCpu): boolean {
    const host = this.#host;
    const events = host.events;
    if (events.hasEvents()) return !events.canTakeInterrupt();
    host.trace?.record(TraceEventKind.HaltBegin);
    const haltStarted = performance.now();
    if (this.#poll(hostCpu)) {
      host.counters.count(VcpuStatistic.haltPollSuccesses);
      host.trace?.record(TraceEventKind.HaltEnd, 0);
      return !events.canTakeInterrupt();
    }
    this.block(VcpuWaitReason.Halted, hostCpu);
    this.#haltPoll.adapt((performance.now() - haltStarted) * 1e6);
    host.trace?.record(TraceEventKind.HaltEnd, 1);
    return !events.canTakeInterrupt();
  }

  /**
   * Halt-polling: spin briefly with IsRunning still set (so senders ring the doorbell instead of
   * exiting), while the window's policy allows it (HaltPollWindow.shouldPoll). Returns true if an
   * event came.
   */
  #poll(hostCpu: HostCpu): boolean {
    const host = this.#host;
    const window = this.#haltPoll;
    if (!window.shouldPoll(Atomics.load(this.#control, this.#runnableVcpus))) return false;
    host.srcu.readUnlock();
    const deadline = performance.now() + window.ns / 1e6;
    let seen = hostCpu.ringValue();
    let success = false;
    for (let spins = 0; ; spins++) {
      const ring = hostCpu.ringValue();
      if (ring !== seen) {
        seen = ring;
        if (host.events.hasEvents()) { success = true; break; }
      }
      // Look at the IRR itself now and then too, and at the clock (performance.now costs ~40 ns).
      if ((spins & 255) === 255) {
        host.timer.poll();
        if (host.events.hasEvents()) { success = true; break; }
        if (performance.now() >= deadline) break;
      }
    }
    host.srcu.readLock('kvm_vcpu_halt: srcu_read_lock after polling');
    return success;
  }

  /** kvm_vcpu_block with the AVIC blocking hooks around it. Every wait is bounded and re-checks. */
  block(reason: number, hostCpu: HostCpu): void {
    const host = this.#host;
    // Doorbell first, then IsRunning clear (the AVIC ordering), then Blocked: whoever sees the vCPU
    // Blocked (the watchdog, a guest asking HC_VCPU_RUN_STATE) knows IsRunning is already clear.
    let seen = hostCpu.ringValue();
    host.avic.blocking();
    this.#leaveRunning(VcpuRunState.Blocked, reason);
    host.srcu.readUnlock();
    host.srcu.assertNotReader();
    host.counters.count(VcpuStatistic.blocks);
    for (;;) {
      // The timer is this vCPU's own event source: it fires here, and the wait ends by its deadline.
      host.timer.poll();
      if (host.events.hasEvents()) break;
      host.trace?.vcpuPut(TaskSwitchState.Sleeping);
      const result = hostCpu.sleep(seen, Math.min(WAIT_SLICE_MS, host.timer.remainingNs() / 1e6));
      if (result === 'timed-out') {
        // A timer deadline announces itself: fire it at the top of the loop, no ring is owed.
        if (host.timer.remainingNs() === 0) continue;
        // Nobody rang, yet an event is pending: the ring is late (its sender was preempted between
        // setting IRR and ringing) or lost (the protocol broke: it will never come).
        if (host.events.hasEvents()) {
          this.#classifyUnannouncedEvent(seen, hostCpu);
          break;
        }
      } else if (result === 'ok') {
        host.counters.count(VcpuStatistic.wakeups);
        host.trace?.record(TraceEventKind.WakeUp);
      }
      seen = hostCpu.ringValue();
    }
    host.srcu.readLock('vcpu_block: srcu_read_lock after waking');
    host.trace?.vcpuLoad(hostCpu.slot);
    this.#returnToRunning();
  }

  /**
   * Waits, bounded, for the ring that should announce a pending event. Every path that makes an event
   * for a sleeping vCPU rings afterwards (an IRR set then a doorbell or a kick; a request then a kick),
   * so a ring that never comes means a lost wake-up, which the report makes a failure.
   */
  #classifyUnannouncedEvent(seen: number, hostCpu: HostCpu): void {
    const deadline = performance.now() + LOST_WAKEUP_GRACE_MS;
    for (;;) {
      if (hostCpu.ringValue() !== seen) { this.#host.counters.count(VcpuStatistic.lateWakeups); return; }
      const remaining = deadline - performance.now();
      if (remaining <= 0) { this.#host.counters.count(VcpuStatistic.lostWakeups); return; }
      hostCpu.waitUnannounced(seen, Math.min(WAIT_SLICE_MS, remaining));
    }
  }

  /** Pause-loop exit (kvm_vcpu_on_spin): yield the core only when vCPUs outnumber cores. */
  pauseLoopYield(hostCpu: HostCpu): void {
    if (Atomics.load(this.#control, this.#runnableVcpus) <= this.#host.hostCores) return;
    Atomics.store(this.#control, this.#waitReason, VcpuWaitReason.PauseLoopYield);
    hostCpu.waitUnannounced(hostCpu.ringValue(), PAUSE_LOOP_YIELD_MS);
    Atomics.store(this.#control, this.#waitReason, VcpuWaitReason.None);
  }

  /** Paused by the main thread: put, park until the Pause bit is cleared. Returns true to stop. */
  park(hostCpu: HostCpu): boolean {
    const host = this.#host;
    // IsRunning clear and the SRCU read section left before Paused is published (IsRunning as in
    // block()): pause() resolves on seeing Paused, and promises a put vCPU that is no SRCU reader.
    host.avic.put();
    host.trace?.vcpuPut(TaskSwitchState.Sleeping);
    host.srcu.readUnlock();
    this.#leaveRunning(VcpuRunState.Paused, VcpuWaitReason.Paused);
    let stop = false;
    for (;;) {
      const requests = Atomics.load(this.#control, this.#requests);
      if ((requests & VcpuRequest.Stop) !== 0) { stop = true; break; }
      if ((requests & VcpuRequest.Pause) === 0) break;
      if ((requests & VcpuRequest.PauseAcknowledge) !== 0) {
        // Parked for this pause (put, out of SRCU, Paused published above): pause() may resolve.
        Atomics.and(this.#control, this.#requests, ~VcpuRequest.PauseAcknowledge);
        Atomics.notify(this.#control, this.#requests);
        continue;
      }
      const seen = hostCpu.ringValue();
      if (Atomics.load(this.#control, this.#requests) !== requests) continue;
      hostCpu.sleep(seen, WAIT_SLICE_MS);
    }
    host.srcu.readLock('vcpu_run: srcu_read_lock after a pause');
    if (stop) {
      Atomics.store(this.#control, this.#waitReason, VcpuWaitReason.None);
      return true;
    }
    host.trace?.vcpuLoad(hostCpu.slot);
    this.#returnToRunning();
    return false;
  }

  #leaveRunning(state: VcpuRunState, reason: number): void {
    transitionRunState(this.#control, this.#runState, state, this.#host.index);
    Atomics.sub(this.#control, this.#runnableVcpus, 1);
    Atomics.store(this.#control, this.#waitReason, reason);
  }

  /** Back to Running, then avic_vcpu_load (IsRunning) last: the vCPU is ready to take doorbells. */
  #returnToRunning(): void {
    Atomics.store(this.#control, this.#waitReason, VcpuWaitReason.None);
    Atomics.add(this.#control, this.#runnableVcpus, 1);
    transitionRunState(this.#control, this.#runState, VcpuRunState.Running, this.#host.index);
    this.#host.avic.unblocking();
  }
}
