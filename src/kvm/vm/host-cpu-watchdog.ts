// The main thread's check on the host CPUs themselves: a host CPU whose scheduler loop makes no
// progress strands every vCPU queued on it, and those vCPUs, runnable but never loaded, accumulate
// no loaded time, so VcpuWatchdog never judges them (rightly: waiting for a host CPU is not a hang).
// This names the host CPU instead.
//
// Each host CPU beats its heartbeat word once per scheduler loop iteration (HostCpuState.heartbeat,
// host-cpu-loop.ts) and publishes its OS thread id at start (HostCpuState.threadId). A heartbeat that
// stands still proves nothing by itself: a host CPU running one vCPU alone goes on slice after slice
// without going round its loop (the vCPU's own heartbeat moves then), and on a busy machine the OS
// may not run its thread for seconds. So a host CPU is judged only while neither its heartbeat nor
// the heartbeat of the vCPU loaded there moves, and by what its thread did meanwhile (Linux /proc,
// vcpu-run-time.ts: hostThreadTimes):
//   ran    it used the whole bound of CPU time: a loop with no way out (spinning);
//   slept  it did not wait for a core for the whole bound, and slept at least as long as it ran:
//          a wait whose wake-up never comes. Where Linux keeps schedstat, the time the thread waited
//          on a run queue (runnable, not running) is known, and that is the only time excused: wall
//          time less that wait is time the thread ran or slept of its own accord. A thread the OS
//          keeps off a core (descheduled) is slow, not stuck, and is never called hung. (A thread
//          that mostly ran is judged by its run time, as by the first rule, so spinning and
//          sleeping are told apart in the report; a mix of both is still named within twice the
//          bound.)
// Where schedstat is missing only the first rule holds, and where no thread time can be read nothing
// is judged: a missed hang ends at the run's time limit, a false one would end a good run.
//
// Where a host CPU's thread may sleep with nothing moving, and why none of it is a false report:
//   - idle (nothing loaded): it waits on its wake word at most IDLE_WAIT_MS, then beats;
//   - a vCPU that halts, blocks or is paused (parkIfPaused, park) is put first: the loop goes on and
//     beats; halt-polling spins with the vCPU loaded, bounded by its poll window;
//   - a vCPU in a lock or grace-period wait (KVM's mutexes, rw-semaphores, synchronize_srcu on a
//     worker): excused while its lockdep thread waits (waitsForLock). Each such wait has its own
//     timeout (LockWaitTimeout ends the vCPU with an error), and a cycle of them is VcpuWatchdog's
//     to name, with the cycle;
//   - a vCPU waiting for main to rebuild the APIC map (VcpuWaitReason.ApicMapRebuild, the only exit
//     that waits for main): excused. Main rebuilds at each turn before it checks, but a main thread
//     that did not run for a while would make the waiter look stuck; the wait is bounded on its own
//     (APIC_MAP_REBUILD_TIMEOUT_MS). Memslot updates, pause and vCPU creation make main wait for
//     vCPUs, never the reverse;
//   - a lock replay's handshakes (src/scenarios/lock-scenarios/): each side signals before its own
//     wait, so a handshake ends as soon as the other side runs;
//   - a deterministic run (judgeSleep false): its threads take turns on one baton, and one waiting
//     for its turn sleeps though no OS kept it off a core; its clock (the `now` given here) is
//     virtual, not the one schedstat counts in. Only the first rule holds there.
// Time in an excused wait does not count: the count starts again after it.
//
// This is also the judge of a loaded vCPU that stands still (VmWatchdogs leaves those to it): its
// host CPU stands still with it, and what the host thread did excludes, unlike the wall time it was
// loaded, the time the OS left that thread off a core. The report names the host CPU, the vCPU
// loaded there with what it waits for and the locks it holds (as VcpuWatchdog's does), the vCPUs
// queued behind it (runnable, waiting for a host CPU, not stuck themselves), and how its thread
// spent the time: ran, or slept, ran and waited for a core.

import { VcpuWaitReason } from '../control/vcpu-run-state.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { vcpuLockdepSlot } from '../control/kvm-locks.js';
import { type HostThreadTimes, hostThreadTimes } from './vcpu-run-time.js';
import { describeVcpu, type HeldLocksOf } from './vm-watchdog.js';

/** The watchdog looks at most this often (as VcpuWatchdog). */
const CHECK_INTERVAL_MS = 100;
/** A report lists at most this many queued vCPUs by number (a 4096-vCPU VM queues hundreds per host CPU). */
const LISTED_QUEUED_VCPUS = 16;

export interface HostCpuWatchdogOptions {
  /** A host CPU is stuck once its thread ran, or slept, this long with nothing moving. */
  readonly boundMs: number;
  /** What OS thread `tid` did so far, or undefined when unknown (default: Linux /proc, hostThreadTimes). */
  readonly threadTimes?: (tid: number) => HostThreadTimes | undefined;
  /** The locks a thread holds and waits for (KvmLocks.locksHeldBy), for the loaded vCPU's description. */
  readonly heldLocks?: HeldLocksOf;
  /** Whether lockdep thread `slot` is in a lock or grace-period wait now (each bounded by its own timeout). */
  readonly waitsForLock?: (lockdepThreadSlot: number) => boolean;
  /** Judge sleep as well as run time where the run-queue wait is known (default true; false in a deterministic run). */
  readonly judgeSleep?: boolean;
}

/** What a host CPU's thread had done when the count began: the clock, its CPU time and run-queue wait. */
interface CountStart {
  readonly now: number;
  readonly cpuMs: number;
  readonly runQueueWaitMs: number | undefined;
}

/** Per host CPU: the heartbeats last seen, when they moved, and where the count of its thread's time began. */
interface Stillness {
  readonly beat: number;
  /** The vCPU loaded there (-1 none) and its heartbeat, seen with `beat`. */
  readonly vcpu: number;
  readonly vcpuBeat: number;
  readonly movedAt: number;
  start: CountStart | undefined;
  readAfter: number;
}

/** How a stuck host CPU's thread spent the counted time, in ms. */
interface Spent {
  readonly ran: number;
  /** Undefined where the run-queue wait is unknown (then only `ran` is). */
  readonly slept?: number;
  readonly waited?: number;
  /** Since the count began (after the last move or excused wait), and since the heartbeats last moved. */
  readonly counted: number;
  readonly still: number;
}

export class HostCpuWatchdog {
  readonly #memory: VmControlViews;
  readonly #boundMs: number;
  readonly #threadTimes: (tid: number) => HostThreadTimes | undefined;
  readonly #heldLocks: HeldLocksOf | undefined;
  readonly #waitsForLock: (lockdepThreadSlot: number) => boolean;
  readonly #judgeSleep: boolean;
  readonly #interval: number;
  readonly #hosts: (Stillness | undefined)[] = [];
  #lastCheck = -Infinity;

  constructor(memory: VmControlViews, options: HostCpuWatchdogOptions) {
    this.#memory = memory;
    this.#boundMs = options.boundMs;
    this.#threadTimes = options.threadTimes ?? hostThreadTimes;
    this.#heldLocks = options.heldLocks;
    this.#waitsForLock = options.waitsForLock ?? (() => false);
    this.#judgeSleep = options.judgeSleep ?? true;
    this.#interval = Math.min(CHECK_INTERVAL_MS, options.boundMs / 10);
  }

  /** The stuck host CPU's description, or undefined. `now` is the main host's clock, nowMs (tests pass a fake clock). */
  check(now: number): string | undefined {
    if (now - this.#lastCheck < this.#interval) return undefined;
    this.#lastCheck = now;
    const memory = this.#memory;
    const cpus = memory.hostCpus;
    const bound = this.#boundMs;
    const count = Atomics.load(memory.control, memory.headerIndex('hostCpus'));
    for (let host = 0; host < count; host++) {
      const beat = Atomics.load(cpus.words, cpus.index(host, 'heartbeat'));
      const vcpu = cpus.currentVcpu(host);
      const vcpuBeat = vcpu < 0 ? 0 : Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'heartbeat'));
      const previous = this.#hosts[host];
      if (previous === undefined || beat !== previous.beat || vcpu !== previous.vcpu || vcpuBeat !== previous.vcpuBeat) {
        this.#hosts[host] = { beat, vcpu, vcpuBeat, movedAt: now, start: undefined, readAfter: now };
        continue;
      }
      // Looked at every check (two loads), so an excused wait's time is left out to within one interval.
      if (this.#inExcusedWait(vcpu)) {
        previous.start = undefined;
        previous.readAfter = now;
        continue;
      }
      if (now < previous.readAfter) continue;
      const tid = Atomics.load(cpus.words, cpus.index(host, 'threadId'));
      const times = tid === 0 ? undefined : this.#threadTimes(tid);
      if (times === undefined) continue;
      const start = previous.start;
      if (start === undefined) {
        // Taken a little after the last move: the thread's time is undercounted by at most one interval.
        previous.start = { now, cpuMs: times.cpuMs, runQueueWaitMs: times.runQueueWaitMs };
        previous.readAfter = now + bound;
        continue;
      }
      const ran = times.cpuMs - start.cpuMs;
      const counted = now - start.now;
      const still = now - previous.movedAt;
      if (ran >= bound) return this.#describe(host, vcpu, { ran, counted, still });
      if (!this.#judgeSleep || times.runQueueWaitMs === undefined || start.runQueueWaitMs === undefined) {
        // A thread runs at most as long as the wall clock: no need to read again before it could.
        previous.readAfter = now + (bound - ran);
        continue;
      }
      const waited = times.runQueueWaitMs - start.runQueueWaitMs;
      const slept = Math.max(0, counted - waited - ran);
      if (slept + ran >= bound && slept >= ran) return this.#describe(host, vcpu, { ran, slept, waited, counted, still });
      // Not waiting for a core grows at most as fast as the wall clock.
      previous.readAfter = now + Math.max(0, bound - (slept + ran));
    }
    return undefined;
  }

  /** The vCPU loaded on a still host CPU sleeps in a wait bounded and judged elsewhere (see the file comment). */
  #inExcusedWait(vcpu: number): boolean {
    if (vcpu < 0) return false;
    const memory = this.#memory;
    if (Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'waitReason')) === VcpuWaitReason.ApicMapRebuild) return true;
    return this.#waitsForLock(vcpuLockdepSlot(vcpu));
  }

  #describe(host: number, vcpu: number, spent: Spent): string {
    const memory = this.#memory;
    const loaded = vcpu < 0 ? 'none' : `vCPU ${vcpu}, whose heartbeat stood still too (${describeVcpu(memory, vcpu, this.#heldLocks)})`;
    const queued = memory.runQueues.queuedTasks(host);
    const listed = queued.slice(0, LISTED_QUEUED_VCPUS).join(', ');
    const more = queued.length > LISTED_QUEUED_VCPUS ? ` and ${queued.length - LISTED_QUEUED_VCPUS} more` : '';
    const queue =
      queued.length === 0 ? 'empty' : `vCPU${queued.length === 1 ? '' : 's'} ${listed}${more} waiting for a host CPU (runnable, not stuck)`;
    const seconds = (ms: number): string => (ms / 1000).toFixed(1);
    const what = `its scheduler loop's heartbeat stood still; loaded: ${loaded}; run queue: ${queue}`;
    if (spent.slept === undefined || spent.waited === undefined)
      return `host CPU ${host} made no progress for ${seconds(this.#boundMs)} s of its thread's run time (${what}; it ran ${seconds(spent.ran)} s in ${seconds(spent.still)} s)`;
    return `host CPU ${host} made no progress for ${seconds(this.#boundMs)} s while its thread slept or ran, not waiting for a core (${what}; in ${seconds(spent.counted)} s its thread slept ${seconds(spent.slept)} s, ran ${seconds(spent.ran)} s and waited for a core ${seconds(spent.waited)} s)`;
  }
}
