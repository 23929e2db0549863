// How long a vCPU's host thread has run: the watchdog's measure of what the vCPU could have done.
// A vCPU whose run loop stood still is only stuck if it could have moved, that is if its thread ran
// on a host CPU for the watchdog's whole bound meanwhile. With more runnable vCPUs than host cores
// the OS leaves vCPU threads on its run queue for seconds at a time (255 vCPU threads, most of them
// still loading their worker, on 2 cores); wall time says nothing about those.
//
// Linux: each vCPU's worker publishes its own thread id (VcpuControlBlock.hostThreadId, read from
// /proc/thread-self before the vCPU runs) and the main thread reads that thread's CPU time (utime +
// stime) from /proc/self/task/<tid>/stat. This measures the very thread, whatever the OS scheduler
// does, and costs the main thread one small read per still vCPU now and then (the watchdog reads
// only vCPUs whose heartbeat stood still, and only once they could have used up the bound).
// Elsewhere (no /proc, or a thread id not yet known): a fair-share estimate from process.cpuUsage(),
// split evenly among the threads that want to run (vCPUs neither halted, paused nor finished, plus
// main). It assumes the OS shares the cores fairly, which is why /proc is preferred where it exists.
//
// A host CPU's thread is judged by the same reads (HostCpuWatchdog), plus, where Linux keeps it, the
// time the thread waited on a run queue for a core (/proc/self/task/<tid>/schedstat: runnable, not
// running). That time is the OS's doing; everything else a thread does while its heartbeat stands
// still (running, or sleeping in a wait that never ends) is its own (hostThreadTimes).
//
// The watchdog sees only VcpuRunTimeSource. The VM uses LoadedRunTime: the time each vCPU was loaded
// on a host CPU, from the scheduler's own words (src/host/run-queue.ts: loadedNs, loadedSinceMs). A
// vCPU runnable but not loaded is waiting for a host CPU and accumulates nothing, so it is never
// judged stuck for that.

import { readFileSync, readlinkSync } from 'node:fs';
import { VcpuRunState } from '../control/vcpu-run-state.js';
import { threadNowMs } from '../../host/host-thread.js';
import { TaskState } from '../../host/run-queue.js';
import type { VmControlViews } from '../control/vm-control-views.js';

/** What the watchdog asks: how much each vCPU could have run so far. */
export interface VcpuRunTimeSource {
  /** Called once per watchdog check, before ranMs (a source may sample shared state here). */
  refresh(): void;
  /** Milliseconds vCPU `vcpu` has run (non-decreasing while it lives), or undefined when unknown. */
  ranMs(vcpu: number): number | undefined;
}

/**
 * Linux's USER_HZ: /proc reports utime and stime in clock ticks of 1/100 s on every architecture
 * Node runs on (the kernel converts to USER_HZ for user space; sysconf(_SC_CLK_TCK) returns it).
 */
const USER_HZ = 100;
/** utime and stime are fields 14 and 15 of /proc/<pid>/task/<tid>/stat (proc(5)), 12 and 13 after the state. */
const UTIME_AFTER_STATE = 11;

/** The calling thread's OS thread id (Linux: /proc/thread-self -> "<pid>/task/<tid>"), or 0 when unknown. */
export function currentHostThreadId(): number {
  try {
    const match = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    return match === null ? 0 : Number(match[1]);
  } catch {
    return 0;
  }
}

/** CPU time (user + system) of thread `tid` of this process, in ms, or undefined if it cannot be read. */
export function hostThreadCpuMs(tid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[UTIME_AFTER_STATE]) + Number(fields[UTIME_AFTER_STATE + 1]);
  return Number.isFinite(ticks) ? (ticks * 1000) / USER_HZ : undefined;
}

/** What the OS says one thread of this process did so far. */
export interface HostThreadTimes {
  /** CPU time (user + system) in ms. */
  readonly cpuMs: number;
  /** Time it was runnable but waited on a run queue for a core, in ms; undefined where the OS does not say. */
  readonly runQueueWaitMs?: number | undefined;
}

/**
 * /proc/<pid>/task/<tid>/schedstat (the kernel's Documentation/scheduler/sched-stats.rst): ns spent
 * on a CPU (sum_exec_runtime), ns spent waiting on a run queue (sched_info.run_delay: runnable, not
 * running) and timeslices run (pcount). A kernel that keeps no such statistics (sched_info_on()
 * false) prints "0 0 0"; a thread that ever ran has run a timeslice, so none means "not kept".
 */
export function parseSchedStat(text: string): { readonly cpuMs: number; readonly runQueueWaitMs: number } | undefined {
  const [onCpuNs, runQueueNs, timeslices] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(onCpuNs) || !Number.isFinite(runQueueNs) || !(timeslices! > 0)) return undefined;
  return { cpuMs: onCpuNs! / 1e6, runQueueWaitMs: runQueueNs! / 1e6 };
}

/**
 * Thread `tid`'s times, or undefined if they cannot be read: from its schedstat where Linux keeps
 * one (CPU time in ns and the run-queue wait), else its CPU time alone from /proc/.../stat.
 */
export function hostThreadTimes(tid: number): HostThreadTimes | undefined {
  let schedStat: string | undefined;
  try {
    schedStat = readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1');
  } catch {
    schedStat = undefined;
  }
  const times = schedStat === undefined ? undefined : parseSchedStat(schedStat);
  if (times !== undefined) return times;
  const cpuMs = hostThreadCpuMs(tid);
  return cpuMs === undefined ? undefined : { cpuMs };
}

/** Whether this host says how long a thread waited for a core (Linux schedstat): HostCpuWatchdog then judges sleep too. */
export function hostThreadRunQueueWaitAvailable(): boolean {
  const tid = currentHostThreadId();
  return tid !== 0 && hostThreadTimes(tid)?.runQueueWaitMs !== undefined;
}

/** Whether this host has per-thread CPU times (/proc/self/task/<tid>/stat). */
export function hostThreadTimesAvailable(): boolean {
  const tid = currentHostThreadId();
  return tid !== 0 && hostThreadCpuMs(tid) !== undefined;
}

/** The process's CPU time split evenly among the threads that want to run (see the file comment). */
export class FairShareRunTime implements VcpuRunTimeSource {
  readonly #memory: VmControlViews;
  readonly #processCpuMs: () => number;
  #lastProcessMs: number;
  #shareMs = 0;

  constructor(memory: VmControlViews, processCpuMs: () => number = defaultProcessCpuMs) {
    this.#memory = memory;
    this.#processCpuMs = processCpuMs;
    this.#lastProcessMs = processCpuMs();
  }

  refresh(): void {
    const now = this.#processCpuMs();
    const used = now - this.#lastProcessMs;
    this.#lastProcessMs = now;
    this.#shareMs += used / (1 + this.#threadsWantingToRun());
  }

  ranMs(): number {
    return this.#shareMs;
  }

  #threadsWantingToRun(): number {
    const memory = this.#memory;
    let count = 0;
    for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
      const state = Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'runState'));
      if (state === VcpuRunState.Created || state === VcpuRunState.Running) count++;
    }
    return count;
  }
}

/** Linux: each vCPU thread's own CPU time; the fair share for a vCPU whose thread id is unknown. */
export class HostThreadRunTime implements VcpuRunTimeSource {
  readonly #memory: VmControlViews;
  readonly #fallback: FairShareRunTime;
  readonly #threadCpuMs: (tid: number) => number | undefined;

  constructor(
    memory: VmControlViews,
    threadCpuMs: (tid: number) => number | undefined = hostThreadCpuMs,
    fallback = new FairShareRunTime(memory),
  ) {
    this.#memory = memory;
    this.#threadCpuMs = threadCpuMs;
    this.#fallback = fallback;
  }

  refresh(): void {
    this.#fallback.refresh();
  }

  ranMs(vcpu: number): number | undefined {
    const tid = Atomics.load(this.#memory.control, this.#memory.controlBlockIndex(vcpu, 'hostThreadId'));
    return tid === 0 ? this.#fallback.ranMs() : this.#threadCpuMs(tid);
  }
}

/**
 * The scheduler's account: the time vCPU `vcpu` has been loaded on a host CPU (the total its host
 * CPU adds at each put, plus the current stretch while it is loaded).
 */
export class LoadedRunTime implements VcpuRunTimeSource {
  readonly #memory: VmControlViews;

  constructor(memory: VmControlViews) {
    this.#memory = memory;
  }

  refresh(): void {}

  ranMs(vcpu: number): number {
    const queues = this.#memory.runQueues;
    const total = queues.float64[queues.taskTimeIndex(vcpu, 'loadedNs')]! / 1e6;
    const state = queues.state(vcpu);
    if (state !== TaskState.Running && state !== TaskState.Blocking && state !== TaskState.Woken) return total;
    return total + Math.max(0, threadNowMs() - queues.float64[queues.taskTimeIndex(vcpu, 'loadedSinceMs')]!);
  }
}

/** The best source this host offers. */
export function hostRunTimeSource(memory: VmControlViews): VcpuRunTimeSource {
  return hostThreadTimesAvailable() ? new HostThreadRunTime(memory) : new FairShareRunTime(memory);
}

function defaultProcessCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}
