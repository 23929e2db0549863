// The host side of a run, for the report: per host CPU its utilisation and scheduler counters
// (src/host/host-cpu.ts HostCpuStatistics, written by each host CPU's loop), per vCPU how long it
// was loaded and how long it waited, runnable, for its host CPU (src/host/run-queue.ts HostTask).

import type { VmControlViews } from '../control/vm-control-views.js';

export interface HostCpuUsage {
  readonly hostCpu: number;
  /** Time with a vCPU loaded, as a share of the run (0..1). */
  readonly utilisation: number;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly vcpuSwitches: number;
  readonly preemptions: number;
  readonly directedYields: number;
  /** vCPUs loaded here that last ran elsewhere: 0 while vCPUs are pinned (vCPU i on host CPU i mod P). */
  readonly migrations: number;
  readonly haltPollMs: number;
  /** Time it polled for a wake-up with nothing to run (part of idleMs; VmConfig.hostIdlePollUs). */
  readonly idlePollMs: number;
  /** Idle periods ended by a wake-up its poll saw: no notify, no OS thread wake-up. */
  readonly idlePollWakeups: number;
}

export interface VcpuScheduling {
  /** The host CPU it runs on. */
  readonly hostCpu: number;
  readonly loadedMs: number;
  /** Time runnable but not loaded: waiting for its host CPU. */
  readonly runnableWaitMs: number;
}

export function hostCpuUsage(memory: VmControlViews, hostCpus: number, durationSeconds: number): HostCpuUsage[] {
  const cpus = memory.hostCpus;
  return Array.from({ length: hostCpus }, (_, hostCpu) => {
    const busyMs = cpus.statistic(hostCpu, 'busyNs') / 1e6;
    return {
      hostCpu,
      utilisation: durationSeconds > 0 ? Math.min(1, busyMs / (durationSeconds * 1000)) : 0,
      busyMs,
      idleMs: cpus.statistic(hostCpu, 'idleNs') / 1e6,
      vcpuSwitches: cpus.statistic(hostCpu, 'vcpuSwitches'),
      preemptions: cpus.statistic(hostCpu, 'preemptions'),
      directedYields: cpus.statistic(hostCpu, 'directedYields'),
      migrations: cpus.statistic(hostCpu, 'migrations'),
      haltPollMs: cpus.statistic(hostCpu, 'haltPollNs') / 1e6,
      idlePollMs: cpus.statistic(hostCpu, 'idlePollNs') / 1e6,
      idlePollWakeups: cpus.statistic(hostCpu, 'idlePollWakeups'),
    };
  });
}

export function vcpuScheduling(memory: VmControlViews, vcpu: number): VcpuScheduling {
  const queues = memory.runQueues;
  return {
    hostCpu: memory.scheduling.homeHostCpu(vcpu),
    loadedMs: queues.float64[queues.taskTimeIndex(vcpu, 'loadedNs')]! / 1e6,
    runnableWaitMs: queues.float64[queues.taskTimeIndex(vcpu, 'runnableWaitNs')]! / 1e6,
  };
}
