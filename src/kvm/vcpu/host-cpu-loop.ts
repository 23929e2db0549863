// One host CPU's scheduler loop, in its own worker for the VM's life (the host scheduler's
// __schedule as KVM's vCPU tasks see it): take the next runnable vCPU from this host CPU's run
// queue, load it (vcpu_load: kvm_sched_in -> avic_vcpu_load), run it until its quantum ends with
// another vCPU runnable here, it blocks, yields after a pause loop, is paused or finishes, then put
// it (vcpu_put: kvm_sched_out -> avic_vcpu_put; vcpu->preempted when still runnable) and pick again.
// With nothing runnable it waits on its wake word, bounded by the nearest APIC timer deadline of its
// blocked vCPUs (it wakes them then, as the hrtimer callback does: apic_timer_fn -> kvm_vcpu_kick).
//
// vCPU i starts queued on host CPU i mod P; its Vcpu object is built at its first load from the VM's
// HostCpuStartup and the vCPU's control-block words (entry point, wait-for-SIPI, stack top), so a
// hot-added vCPU needs only its words and an enqueue. A host CPU with nothing to run takes the
// longest-waiting vCPU from the longest other queue (VcpuScheduling.steal) and counts a migration.
// With more than one host CPU every put saves the vCPU's state to its save area (vcpu-save-area.ts)
// before it can be queued anywhere (onCpu is cleared after the save); a load in a worker whose
// object is not of the latest save builds a fresh Vcpu and restores it, and leaves the stale object's
// latency samples and trace events to the final report (reason 'moved', merged on main). avic_vcpu_load
// publishes the new host id at the load; a doorbell rung at the old host CPU meanwhile is a harmless
// stray (the vCPU scans its IRR at its next entry).
//
// Orderings (docs/architecture.md#orderings): the switch seqlock and `current` around IsRunning
// (O11); the idle wait against wakers (O9, HostCpus.wake in src/host/host-cpu.ts).

import type { HostCpu } from '../../host/host-cpu.js';
import { hostThread, SchedulingPoint } from '../../host/host-thread.js';
import { VirtualTimeCost } from '../../host/virtual-time-costs.js';
import { TaskState } from '../../host/run-queue.js';
import { VcpuFinish, VcpuRunState } from '../control/vcpu-run-state.js';
import { VmControlViews, type VmBuffers } from '../control/vm-control-views.js';
import type { KvmLocksShared } from '../control/kvm-locks.js';
import type { BackingPagePolicyName } from '../control/backing-page-policy.js';
import type { VcpuSaveAreaView } from '../control/vcpu-save-area.js';
import type { SharedSchedule } from '../../host/deterministic/deterministic-schedule.js';
import { type HostCpuStall, stallHostCpu } from './host-cpu-stall.js';
import { SliceEnd, type LoadedHostCpu, type Vcpu, type VcpuExitReport, type VcpuStartup } from './vcpu.js';
import { HaltPollWindow } from './vcpu-sleep.js';

/** Upper bound of one idle wait; the loop re-checks its queue, timers and the stop word after it. */
export const IDLE_WAIT_MS = 50;
/** A blocked vCPU with an event pending and no wake-up this long counts as a lost wake-up. */
export const LOST_WAKEUP_GRACE_MS = 1000;
/**
 * The same in a deterministic run, in virtual ms: no OS delays a waker there, only the other threads'
 * modelled work, so 20 ms (13 default quanta) is long past any wake-up path's cost and keeps a found
 * bug's run short (docs/deterministic.md).
 */
export const DETERMINISTIC_LOST_WAKEUP_GRACE_MS = 20;

/** What every host CPU worker is given (structured-cloneable). */
export interface HostCpuStartup {
  readonly buffers: VmBuffers;
  readonly hostCpu: number;
  readonly policy: BackingPagePolicyName;
  readonly ipiVirtualization: boolean;
  readonly x2avic: boolean;
  readonly x2avicExtended: boolean;
  readonly haltPolling: boolean;
  /** The most an idle host CPU polls its wake word before it waits, in ms; 0: it waits at once (VmConfig.hostIdlePollUs / 1000). */
  readonly idlePollMs: number;
  /** Pauses before a pause-loop exit (VmConfig.pauseFilterCount). */
  readonly pauseFilterCount: number;
  /** The scheduler's quantum in ms (VmConfig.quantumUs / 1000). */
  readonly quantumMs: number;
  readonly clockOriginNs: string;
  readonly trace: boolean;
  readonly locks: KvmLocksShared;
  /** A deterministic run's schedule (docs/deterministic.md): host CPU i is participant i + 1, main is 0. */
  readonly schedule?: SharedSchedule | undefined;
  /** Debug only (VmConfig.stallHostCpu): the host CPU that stalls with a vCPU loaded (host-cpu-stall.ts). */
  readonly stall?: HostCpuStall | undefined;
}

/** What a host CPU gives back when the VM stops: the reports of the vCPUs it ran, and their errors. */
export interface HostCpuReport {
  readonly hostCpu: number;
  readonly vcpus: readonly VcpuExitReport[];
  readonly errors: readonly { readonly vcpu: number; readonly message: string }[];
}

/** The startup of vCPU `vcpu`, from the VM's words (main stored them before it started the vCPU), on the host CPU's views. */
export function vcpuStartupFor(startup: HostCpuStartup, views: VmControlViews, vcpu: number): VcpuStartup {
  const word = (field: 'entryPoint' | 'waitForStartUp' | 'stackTop'): number =>
    Atomics.load(views.control, views.controlBlockIndex(vcpu, field));
  return {
    buffers: startup.buffers,
    vcpu,
    policy: startup.policy,
    ipiVirtualization: startup.ipiVirtualization,
    x2avic: startup.x2avic,
    x2avicExtended: startup.x2avicExtended,
    haltPolling: startup.haltPolling,
    pauseFilterCount: startup.pauseFilterCount,
    clockOriginNs: startup.clockOriginNs,
    entryPoint: word('entryPoint') >>> 0,
    waitForStartUp: word('waitForStartUp') !== 0,
    stackTop: word('stackTop'),
    trace: startup.trace,
    locks: startup.locks,
    views,
  };
}

/** Per vCPU this host CPU has built: the object, its save area, and what the lost-wake-up check saw. */
interface Resident {
  readonly vcpu: Vcpu;
  readonly area: VcpuSaveAreaView;
  /** The save-area generation the object's state is (it saved it, or restored it): another means stale. */
  generation: number;
  /** The host clock (nowMs) when it was first seen blocked with an event pending; 0 when not. */
  pendingSinceMs: number;
  lost: boolean;
}

export class HostCpuLoop implements LoadedHostCpu {
  readonly cpu: HostCpu;
  readonly #views: VmControlViews;
  readonly #startup: HostCpuStartup;
  readonly #createVcpu: (startup: VcpuStartup) => Vcpu;
  readonly #threadId: number;
  readonly #residents = new Map<number, Resident>();
  readonly #reports: VcpuExitReport[] = [];
  readonly #errors: { vcpu: number; message: string }[] = [];
  #lastLoaded = -1;
  /** Loads so far, counted only on the host CPU that VmConfig.stallHostCpu names. */
  #loadsBeforeStall = 0;
  #lastLostWakeupCheck = 0;
  /** LOST_WAKEUP_GRACE_MS, or its deterministic value; the loop looks a tenth of it apart. */
  readonly #lostWakeupGraceMs: number;
  /**
   * The host clock (nowMs) before which no blocked vCPU's timer here can be due, so #serviceBlocked
   * skips its scan of the residents (O(vCPUs) at every switch made big VMs quadratic). A blocked
   * vCPU's timer changes only while it runs, and a vCPU blocks here only after running here: each
   * full scan sets it from the blocked vCPUs' timers and each put folds in the put vCPU's timer.
   */
  #timerScanDueMs = 0;
  /** How long the next idle period polls before it sleeps (#idle). */
  readonly #idlePollWindow: HaltPollWindow;

  constructor(startup: HostCpuStartup, createVcpu: (startup: VcpuStartup) => Vcpu, threadId: number) {
    this.#lostWakeupGraceMs = startup.schedule === undefined ? LOST_WAKEUP_GRACE_MS : DETERMINISTIC_LOST_WAKEUP_GRACE_MS;
    this.#idlePollWindow = new HaltPollWindow(startup.idlePollMs > 0, startup.idlePollMs * 1e6);
    this.#startup = startup;
    this.#createVcpu = createVcpu;
    this.#threadId = threadId;
    this.#views = new VmControlViews(startup.buffers);
    this.cpu = this.#views.hostCpus.own(startup.hostCpu);
    this.cpu.setThreadId(threadId);
    this.cpu.setCurrent(-1);
  }

  singleTaskRunning(): boolean {
    return this.#views.runQueues.length(this.cpu.index) === 0;
  }

  /** The loop, until the VM stops and every vCPU has finished. */
  run(): HostCpuReport {
    const cpu = this.cpu;
    const queues = this.#views.runQueues;
    for (;;) {
      cpu.beat();
      if (this.#vmFinished()) break;
      this.#serviceBlocked();
      let vcpu = queues.dequeue(cpu.index);
      if (vcpu < 0) {
        vcpu = this.#views.scheduling.steal(cpu.index);
        if (vcpu < 0) {
          this.#idle();
          continue;
        }
        cpu.count('migrations');
      }
      this.#runVcpu(vcpu);
      const ran = this.#residents.get(vcpu);
      if (ran !== undefined)
        this.#timerScanDueMs = Math.min(this.#timerScanDueMs, hostThread().nowMs() + ran.vcpu.timerRemainingNs() / 1e6);
    }
    for (const [index, resident] of this.#residents) {
      if (Atomics.load(queues.words, queues.taskIndex(index, 'residentHost')) !== cpu.index + 1) this.#retire(index, resident);
    }
    return { hostCpu: cpu.index, vcpus: this.#reports, errors: this.#errors };
  }

  #runVcpu(index: number): void {
    const cpu = this.cpu;
    const views = this.#views;
    const queues = views.runQueues;
    const resident = this.#resident(index);
    if (resident.pendingSinceMs !== 0 && !resident.lost) views.controlFloat64[views.statisticIndex(index, 'lateWakeups')]! += 1;
    resident.pendingSinceMs = 0;
    const vcpu = resident.vcpu;
    // Load: the switch seqlock odd, then current, then the vCPU's own load (IsRunning last; O11).
    cpu.stepSwitchSequence();
    const loadedAt = hostThread().nowMs();
    const float64 = queues.float64;
    float64[queues.taskTimeIndex(index, 'runnableWaitNs')]! +=
      Math.max(0, loadedAt - float64[queues.taskTimeIndex(index, 'enqueuedAtMs')]!) * 1e6;
    float64[queues.taskTimeIndex(index, 'loadedSinceMs')] = loadedAt;
    Atomics.store(queues.words, queues.taskIndex(index, 'preempted'), 0);
    Atomics.store(queues.words, queues.taskIndex(index, 'onCpu'), 1);
    queues.setState(index, TaskState.Running);
    if (index !== this.#lastLoaded) cpu.count('vcpuSwitches');
    this.#lastLoaded = index;
    cpu.setCurrent(index);
    let end: SliceEnd;
    try {
      hostThread().advance(VirtualTimeCost.vcpuLoadNs);
      vcpu.load(this, this.#threadId);
      cpu.stepSwitchSequence();
      const stall = this.#startup.stall;
      if (stall?.hostCpu === cpu.index && ++this.#loadsBeforeStall === stall.atLoad)
        stallHostCpu(stall, cpu, views.control, views.headerIndex('stopRequested'));
      for (;;) {
        end = vcpu.runSlice(hostThread().nowMs() + this.#startup.quantumMs);
        if (end !== SliceEnd.QuantumEnd) break;
        // The tick: other threads act before this host CPU puts the vCPU or runs it on.
        hostThread().point(SchedulingPoint.QuantumEnd);
        if (!this.singleTaskRunning()) break;
        // Nothing else to run here: look after the blocked vCPUs, then go on without a put.
        this.#serviceBlocked();
        if (!this.singleTaskRunning() || this.#stopRequested()) break;
      }
    } catch (error) {
      // An emulator bug in this vCPU (runSlice released it: put, out of SRCU, finished word Error).
      this.#errors.push({ vcpu: index, message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      end = SliceEnd.Finished;
    }
    // Put: the switch seqlock odd, the vCPU's put (IsRunning clear), then current cleared (O11).
    cpu.stepSwitchSequence();
    hostThread().advance(VirtualTimeCost.vcpuPutNs);
    vcpu.put(end);
    cpu.setCurrent(-1);
    // Saved before it can be queued or taken anywhere (a blocked one may be queued here already; onCpu keeps it).
    if (end !== SliceEnd.Finished && views.scheduling.hostCpuCount > 1) {
      vcpu.save(resident.area);
      resident.generation = resident.area.commit(cpu.index);
    }
    Atomics.store(queues.words, queues.taskIndex(index, 'onCpu'), 0);
    const putAt = hostThread().nowMs();
    float64[queues.taskTimeIndex(index, 'loadedNs')]! += (putAt - loadedAt) * 1e6;
    cpu.count('busyNs', (putAt - loadedAt) * 1e6);
    switch (end) {
      case SliceEnd.QuantumEnd:
        cpu.count('preemptions');
        views.scheduling.preempt(cpu.index, index);
        break;
      case SliceEnd.Yielded:
        cpu.count('directedYields');
        views.scheduling.yieldOnSpin(cpu.index, index);
        break;
      case SliceEnd.Finished:
        queues.setState(index, TaskState.Finished);
        if (vcpu.exitReport !== undefined) this.#reports.push(vcpu.exitReport);
        // The last vCPU to finish lets the idle host CPUs see it (they leave only then, #vmFinished):
        // a wake-up without work, after the Finished store, as O9's waker (an idle one notified, one
        // about to wait sees its wake word moved).
        if (this.#vmFinished()) {
          for (let host = 0; host < views.scheduling.hostCpuCount; host++) if (host !== cpu.index) views.hostCpus.wake(host);
        }
        break;
      default:
        // Blocked or Paused: the vCPU committed Blocked itself; a waker may have queued it since.
        break;
    }
    cpu.stepSwitchSequence();
  }

  /**
   * The object of vCPU `index` for a load here: the one built here if its state is the latest save,
   * else a fresh one restored from the save area (a vCPU never saved starts from its startup words).
   */
  #resident(index: number): Resident {
    const views = this.#views;
    let resident = this.#residents.get(index);
    const area = resident?.area ?? views.saveArea(index);
    const generation = area.generation;
    if (resident !== undefined && resident.generation !== generation) {
      // It ran on another host CPU since: this object is stale.
      this.#retire(index, resident);
      resident = undefined;
    }
    if (resident === undefined) {
      const vcpu = this.#createVcpu(vcpuStartupFor(this.#startup, views, index));
      if (generation > 0) vcpu.restore(area);
      resident = { vcpu, area, generation, pendingSinceMs: 0, lost: false };
      this.#residents.set(index, resident);
    }
    // Wake-ups queue it here from now on (its state is freshest here).
    Atomics.store(views.runQueues.words, views.runQueues.taskIndex(index, 'residentHost'), this.cpu.index + 1);
    return resident;
  }

  /** A vCPU that moved to another host CPU: its object goes, what it recorded here is reported. */
  #retire(index: number, resident: Resident): void {
    this.#residents.delete(index);
    this.#reports.push(resident.vcpu.movedReport());
  }

  /**
   * Nothing runnable: poll for a wake-up for the idle-poll window, then wait for one; both bounded by
   * the nearest timer of a blocked vCPU here (O9). The window adapts to how long idle periods last,
   * by kvm_vcpu_halt's rule (HaltPollWindow), up to VmConfig.hostIdlePollUs: a host CPU whose idle
   * periods outlast the maximum soon stops polling, rather than burning a core before every sleep.
   */
  #idle(): void {
    const cpu = this.cpu;
    const seen = cpu.wakeValue();
    const window = this.#idlePollWindow;
    const polling = window.shouldPoll(true);
    cpu.beginIdle(polling);
    const started = hostThread().nowMs();
    if (this.singleTaskRunning() && !this.#vmFinished()) {
      const boundMs = Math.min(IDLE_WAIT_MS, this.#nearestTimerMs());
      const polled = polling && cpu.idlePoll(seen, started + Math.min(window.ns / 1e6, boundMs));
      if (!polled) cpu.idleWait(seen, Math.max(0, started + boundMs - hostThread().nowMs()));
    }
    cpu.endIdle();
    const idleNs = (hostThread().nowMs() - started) * 1e6;
    window.adapt(idleNs);
    cpu.count('idleNs', idleNs);
  }

  /** Wakes blocked vCPUs whose APIC timer is due; notes those with an event and no wake-up coming. */
  #serviceBlocked(): void {
    const queues = this.#views.runQueues;
    const now = hostThread().nowMs();
    const checkLost = now - this.#lastLostWakeupCheck >= this.#lostWakeupGraceMs / 10;
    if (!checkLost && now < this.#timerScanDueMs) return;
    if (checkLost) this.#lastLostWakeupCheck = now;
    let due = Infinity;
    for (const [index, resident] of this.#residents) {
      if (Atomics.load(queues.words, queues.taskIndex(index, 'residentHost')) !== this.cpu.index + 1) {
        // Loaded by another host CPU since (its state lives there now): not this host CPU's to wake.
        this.#retire(index, resident);
        continue;
      }
      if (queues.state(index) !== TaskState.Blocked) continue;
      const timerRemainingNs = resident.vcpu.timerRemainingNs();
      if (timerRemainingNs === 0) {
        this.#views.scheduling.wakeUp(index);
        // Look again at the next switch, as before: it runs (and folds its timer in) or is still here.
        due = now;
        continue;
      }
      due = Math.min(due, now + timerRemainingNs / 1e6);
      // A paused vCPU waits for resume(), with whatever IPIs came meanwhile in its IRR.
      const paused = Atomics.load(this.#views.control, this.#views.controlBlockIndex(index, 'runState')) === VcpuRunState.Paused;
      if (checkLost && !paused) this.#checkLostWakeup(index, resident, now);
    }
    this.#timerScanDueMs = due;
  }

  /**
   * Every path that makes an event for a blocked vCPU wakes it afterwards (an IRR bit, then the
   * incomplete-IPI exit's kick; a request, then a kick), so a blocked vCPU with an event pending for
   * the grace (LOST_WAKEUP_GRACE_MS) has lost its wake-up: count it and publish the vector for the watchdog. It
   * stays blocked, as it would under KVM; one woken late is counted late at its load.
   */
  #checkLostWakeup(index: number, resident: Resident, now: number): void {
    const pending = resident.vcpu.pendingEvent();
    if (pending < 0) {
      resident.pendingSinceMs = 0;
      return;
    }
    if (resident.pendingSinceMs === 0) resident.pendingSinceMs = now;
    if (resident.lost || now - resident.pendingSinceMs < this.#lostWakeupGraceMs) return;
    resident.lost = true;
    const views = this.#views;
    views.controlFloat64[views.statisticIndex(index, 'lostWakeups')]! += 1;
    Atomics.store(views.control, views.controlBlockIndex(index, 'lostWakeupVector'), pending + 1);
    views.ringMainDoorbell();
  }

  #nearestTimerMs(): number {
    let nearest = Infinity;
    const queues = this.#views.runQueues;
    for (const [index, resident] of this.#residents) {
      if (
        queues.state(index) === TaskState.Blocked &&
        Atomics.load(queues.words, queues.taskIndex(index, 'residentHost')) === this.cpu.index + 1
      )
        nearest = Math.min(nearest, resident.vcpu.timerRemainingNs() / 1e6);
    }
    return nearest;
  }

  #stopRequested(): boolean {
    return Atomics.load(this.#views.control, this.#views.headerIndex('stopRequested')) !== 0;
  }

  /**
   * The VM stopped and none of its vCPUs still runs, wherever it is homed. Not only the vCPUs homed
   * here: a wake-up may have queued another host CPU's vCPU here (#placement: an idle host CPU, as
   * select_idle_sibling picks one), and a host CPU that left with it queued would strand it (its home
   * does not steal a queue's only task). Nothing finished is ever queued again, so once every vCPU has
   * finished no queue can gain one. The scan stops at the first vCPU still running.
   */
  #vmFinished(): boolean {
    if (!this.#stopRequested()) return false;
    const views = this.#views;
    for (let vcpu = 0; vcpu < views.createdVcpus(); vcpu++) {
      const state = views.runQueues.state(vcpu);
      if (
        state !== TaskState.Finished &&
        state !== TaskState.Off &&
        Atomics.load(views.control, views.controlBlockIndex(vcpu, 'finished')) === VcpuFinish.Running
      )
        return false;
    }
    return true;
  }
}

/** The host CPU worker's task: runs the loop until the VM stops. */
export function runHostCpu(startup: HostCpuStartup, createVcpu: (startup: VcpuStartup) => Vcpu, threadId: number): HostCpuReport {
  return new HostCpuLoop(startup, createVcpu, threadId).run();
}
