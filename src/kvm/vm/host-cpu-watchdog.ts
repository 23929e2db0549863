// The main thread's check on the host CPUs themselves: a host CPU whose scheduler loop makes no
// progress strands every vCPU queued on it, and those vCPUs, runnable but never loaded, accumulate
// no loaded time, so VcpuWatchdog never judges them (rightly: waiting for a host CPU is not a hang).
// This names the host CPU instead.
//
// Each host CPU beats its heartbeat word once per scheduler loop iteration (HostCpuState.heartbeat,
// host-cpu-loop.ts) and publishes its OS thread id at start (HostCpuState.threadId). A heartbeat that
// stands still proves nothing by itself: a host CPU running one vCPU alone goes on slice after slice
// without going round its loop (the vCPU's own heartbeat moves then), an idle one sleeps on its wake
// word, and on a busy machine the OS may not run its thread for seconds. So a host CPU is stuck only
// if its thread used the whole bound of CPU time (Linux /proc, vcpu-run-time.ts) while neither its
// heartbeat nor the heartbeat of the vCPU loaded there moved. Where thread times cannot be read,
// nothing is judged: a missed hang ends at the run's time limit, a false one would end a good run.
//
// This is also the judge of a loaded vCPU that stands still (VmWatchdogs leaves those to it): its
// host CPU stands still with it, and the host thread's CPU time, unlike the wall time it was loaded,
// does not grow while the OS leaves that thread off a core. The report names the host CPU, the
// vCPU loaded there with what it waits for and the locks it holds (as VcpuWatchdog's does), and the
// vCPUs queued behind it: runnable, waiting for a host CPU, not stuck themselves.

import type { VmControlViews } from '../control/vm-control-views.js';
import { type HostThreadTimes, hostThreadTimes } from './vcpu-run-time.js';
import { describeVcpu, type HeldLocksOf } from './vm-watchdog.js';

/** The watchdog looks at most this often (as VcpuWatchdog). */
const CHECK_INTERVAL_MS = 100;
/** A report lists at most this many queued vCPUs by number (a 4096-vCPU VM queues hundreds per host CPU). */
const LISTED_QUEUED_VCPUS = 16;

export interface HostCpuWatchdogOptions {
  /** A host CPU is stuck once its thread ran this long with nothing moving. */
  readonly boundMs: number;
  /** What OS thread `tid` did so far, or undefined when unknown (default: Linux /proc, hostThreadTimes). */
  readonly threadTimes?: (tid: number) => HostThreadTimes | undefined;
  /** The locks a thread holds and waits for (KvmLocks.locksHeldBy), for the loaded vCPU's description. */
  readonly heldLocks?: HeldLocksOf;
}

/** Per host CPU: the heartbeats last seen, when they moved, and what its thread had run when first seen still. */
interface Stillness {
  readonly beat: number;
  /** The vCPU loaded there (-1 none) and its heartbeat, seen with `beat`. */
  readonly vcpu: number;
  readonly vcpuBeat: number;
  readonly movedAt: number;
  ranAtStill: number | undefined;
  readAfter: number;
}

export class HostCpuWatchdog {
  readonly #memory: VmControlViews;
  readonly #boundMs: number;
  readonly #threadTimes: (tid: number) => HostThreadTimes | undefined;
  readonly #heldLocks: HeldLocksOf | undefined;
  readonly #interval: number;
  readonly #hosts: (Stillness | undefined)[] = [];
  #lastCheck = -Infinity;

  constructor(memory: VmControlViews, options: HostCpuWatchdogOptions) {
    this.#memory = memory;
    this.#boundMs = options.boundMs;
    this.#threadTimes = options.threadTimes ?? hostThreadTimes;
    this.#heldLocks = options.heldLocks;
    this.#interval = Math.min(CHECK_INTERVAL_MS, options.boundMs / 10);
  }

  /** The stuck host CPU's description, or undefined. `now` is the main host's clock, nowMs (tests pass a fake clock). */
  check(now: number): string | undefined {
    if (now - this.#lastCheck < this.#interval) return undefined;
    this.#lastCheck = now;
    const memory = this.#memory;
    const cpus = memory.hostCpus;
    const count = Atomics.load(memory.control, memory.headerIndex('hostCpus'));
    for (let host = 0; host < count; host++) {
      const beat = Atomics.load(cpus.words, cpus.index(host, 'heartbeat'));
      const vcpu = cpus.currentVcpu(host);
      const vcpuBeat = vcpu < 0 ? 0 : Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'heartbeat'));
      const previous = this.#hosts[host];
      if (previous === undefined || beat !== previous.beat || vcpu !== previous.vcpu || vcpuBeat !== previous.vcpuBeat) {
        this.#hosts[host] = { beat, vcpu, vcpuBeat, movedAt: now, ranAtStill: undefined, readAfter: now };
        continue;
      }
      if (now < previous.readAfter) continue;
      const tid = Atomics.load(cpus.words, cpus.index(host, 'threadId'));
      const ran = tid === 0 ? undefined : this.#threadTimes(tid)?.cpuMs;
      if (ran === undefined) continue;
      if (previous.ranAtStill === undefined) {
        // Taken a little after the last move: run time is undercounted by at most one interval.
        previous.ranAtStill = ran;
        previous.readAfter = now + this.#boundMs;
        continue;
      }
      const ranStill = ran - previous.ranAtStill;
      if (ranStill >= this.#boundMs) return this.#describe(host, vcpu, ranStill, now - previous.movedAt);
      // A thread runs at most as long as the wall clock: no need to read again before it could.
      previous.readAfter = now + (this.#boundMs - ranStill);
    }
    return undefined;
  }

  #describe(host: number, vcpu: number, ranMs: number, stillMs: number): string {
    const memory = this.#memory;
    const loaded = vcpu < 0 ? 'none' : `vCPU ${vcpu}, whose heartbeat stood still too (${describeVcpu(memory, vcpu, this.#heldLocks)})`;
    const queued = memory.runQueues.queuedTasks(host);
    const listed = queued.slice(0, LISTED_QUEUED_VCPUS).join(', ');
    const more = queued.length > LISTED_QUEUED_VCPUS ? ` and ${queued.length - LISTED_QUEUED_VCPUS} more` : '';
    const queue =
      queued.length === 0 ? 'empty' : `vCPU${queued.length === 1 ? '' : 's'} ${listed}${more} waiting for a host CPU (runnable, not stuck)`;
    return `host CPU ${host} made no progress for ${(this.#boundMs / 1000).toFixed(1)} s of its thread's run time (its scheduler loop's heartbeat stood still; loaded: ${loaded}; run queue: ${queue}; it ran ${(ranMs / 1000).toFixed(1)} s in ${(stillMs / 1000).toFixed(1)} s)`;
  }
}
