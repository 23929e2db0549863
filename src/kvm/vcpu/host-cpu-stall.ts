// Debug only (VmConfig.stallHostCpu): one host CPU stops going round its scheduler loop while a vCPU
// is loaded on it, so the watchdog's judgement of host CPUs can be seen end to end in a running VM
// (test/smp/host-cpu-stall.test.ts). Three ways, which the watchdog must tell apart:
//   spin         the host CPU's thread runs on without returning to its loop (a scheduler or exit
//                handler bug: a hang, which HostCpuWatchdog names with what is loaded and queued);
//   sleep        the thread sleeps in waits that each end and never lead anywhere (a host-side wait
//                whose wake-up never comes: a hang too, though the thread uses no CPU time);
//   descheduled  the thread is kept off every core by a busy host's OS: runnable, waiting on a run
//                queue (slow, not stuck). An unprivileged process cannot make the OS do that to one
//                of its threads, so the stall sleeps as 'sleep' does and publishes how long it has
//                been at it (HostCpuState.stallDescheduledMs); the VM's thread-time reader adds that
//                to the thread's run-queue wait (descheduledStallTimes), which is what Linux's
//                schedstat shows of a thread the OS does not run. Without schedstat the watchdog
//                judges by CPU time alone, and a stall that uses none is not judged either way.
// The stall comes right after the load (avic_vcpu_load done, IsRunning set, the switch seqlock even)
// and before the vCPU's first guest entry, so neither heartbeat moves. Every stall is bounded: it
// ends after `seconds`, or as soon as the VM is asked to stop (the stop word), and the host CPU goes
// on as if nothing happened, so the run ends as the watchdog or the guest decides.

import type { HostCpu, HostCpus } from '../../host/host-cpu.js';
import { hostThread } from '../../host/host-thread.js';

export const HOST_CPU_STALL_KINDS = ['spin', 'sleep', 'descheduled'] as const;
export type HostCpuStallKind = (typeof HOST_CPU_STALL_KINDS)[number];

/** VmConfig.stallHostCpu: which host CPU stalls, at which of its loads, how, and for how long at most. */
export interface HostCpuStall {
  readonly hostCpu: number;
  /** Its load number (1 = the first vCPU it loads) at which it stalls. */
  readonly atLoad: number;
  readonly how: HostCpuStallKind;
  /** The bound of the stall in seconds (it ends earlier when the VM is asked to stop). */
  readonly seconds: number;
}

/** The longest sleep of a sleeping stall between looks at the stop word (nobody notifies it). */
const STOP_LOOK_MS = 20;

/** Stalls the calling host CPU (`cpu`) as `stall` says; `control[stopIndex]` is the VM's stopRequested word. */
export function stallHostCpu(stall: HostCpuStall, cpu: HostCpu, control: Int32Array, stopIndex: number): void {
  const host = hostThread();
  const started = host.nowMs();
  const deadline = started + stall.seconds * 1000;
  const nothing = new Int32Array(new SharedArrayBuffer(4));
  for (let now = started; now < deadline && Atomics.load(control, stopIndex) === 0; now = host.nowMs()) {
    // A spinning thread uses all the CPU time it is given; a sleeping or descheduled one uses none.
    if (stall.how === 'spin') continue;
    host.wait(nothing, 0, 0, Math.min(STOP_LOOK_MS, deadline - now));
    // The whole stall so far, not a sum of slices: the reader's error stays within one slice.
    if (stall.how === 'descheduled') cpu.setStallDescheduledMs(Math.floor(host.nowMs() - started));
  }
}

/**
 * The VM's thread-time reader with a 'descheduled' stall of host CPU `hostCpu` seen as the OS would
 * show it: the stall's time so far added to that thread's run-queue wait (where the reader has one).
 */
export function descheduledStallTimes<T extends { readonly runQueueWaitMs?: number | undefined }>(
  cpus: HostCpus,
  hostCpu: number,
  read: (tid: number) => T | undefined,
): (tid: number) => T | undefined {
  const threadId = cpus.index(hostCpu, 'threadId');
  const stalled = cpus.index(hostCpu, 'stallDescheduledMs');
  return (tid) => {
    const times = read(tid);
    if (times?.runQueueWaitMs === undefined || tid !== Atomics.load(cpus.words, threadId)) return times;
    return { ...times, runQueueWaitMs: times.runQueueWaitMs + Atomics.load(cpus.words, stalled) };
  };
}
