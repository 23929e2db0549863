// Debug only (VmConfig.stallHostCpu): one host CPU stops going round its scheduler loop while a vCPU
// is loaded on it, so the watchdog's judgement of host CPUs can be seen end to end in a running VM
// (test/smp/host-cpu-stall.test.ts). Two ways, which the watchdog must tell apart:
//   spin         the host CPU's thread runs on without returning to its loop (a scheduler or exit
//                handler bug: a hang, which HostCpuWatchdog names with what is loaded and queued);
//   descheduled  the thread sleeps, as a thread the OS does not run on a busy host looks from
//                outside (its heartbeats stand still but it uses no CPU time: slow, not stuck).
// The stall comes right after the load (avic_vcpu_load done, IsRunning set, the switch seqlock even)
// and before the vCPU's first guest entry, so neither heartbeat moves. Every stall is bounded: it
// ends after `seconds`, or as soon as the VM is asked to stop (the stop word), and the host CPU goes
// on as if nothing happened, so the run ends as the watchdog or the guest decides.

import { hostThread } from '../../host/host-thread.js';

export const HOST_CPU_STALL_KINDS = ['spin', 'descheduled'] as const;
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

/** The longest sleep of a descheduled stall between looks at the stop word (nobody notifies it). */
const STOP_LOOK_MS = 20;

/** Stalls the calling host CPU as `stall` says; `control[stopIndex]` is the VM's stopRequested word. */
export function stallHostCpu(stall: HostCpuStall, control: Int32Array, stopIndex: number): void {
  const host = hostThread();
  const deadline = host.nowMs() + stall.seconds * 1000;
  const nothing = new Int32Array(new SharedArrayBuffer(4));
  for (let now = host.nowMs(); now < deadline && Atomics.load(control, stopIndex) === 0; now = host.nowMs()) {
    // A descheduled thread uses no CPU time; a spinning one uses all it is given.
    if (stall.how === 'descheduled') host.wait(nothing, 0, 0, Math.min(STOP_LOOK_MS, deadline - now));
  }
}
