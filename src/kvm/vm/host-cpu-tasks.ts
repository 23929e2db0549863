// The VM's host CPUs as main sees them: one long-running piscina task per host CPU (its scheduler
// loop, host-cpu-loop.ts), what each returns (the exit reports of the vCPUs it ran, its traces, its
// errors), and the bounded stop at the end of a run.

import { Piscina } from 'piscina';
import { mainHostThread } from '../../host/host-thread.js';
import { workerEntryUrl } from '../../host/worker-entry.js';
import { VcpuFinish, VcpuRequest } from '../control/vcpu-run-state.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { VmExit } from '../report/vm-report.js';
import type { RecordedTrace } from '../report/ftrace-text.js';
import type { VcpuExitReport } from '../vcpu/vcpu.js';
import { mergeVcpuExitReports } from '../vcpu/vcpu-startup.js';
import type { HostCpuReport, HostCpuStartup } from '../vcpu/host-cpu-loop.js';

/** What every host CPU starts with; the host CPU index and the trace clock's origin are added here. */
export type HostCpuTaskSettings = Omit<HostCpuStartup, 'hostCpu' | 'clockOriginNs'>;

export class HostCpuTasks {
  /** Per vCPU: its exit report, or the error its host CPU caught; undefined until that host CPU returned. */
  readonly results: (VcpuExitReport | Error | undefined)[];
  /** Host CPU tasks that failed outside any vCPU (an emulator bug in the scheduler loop). */
  readonly errors: Error[] = [];
  readonly #memory: VmControlViews;
  readonly #hostCpus: number;
  readonly #tasks: Promise<void>[] = [];
  #pool: Piscina | undefined;
  #stopRequested: () => void = () => undefined;

  constructor(memory: VmControlViews, hostCpus: number, maxVcpus: number) {
    this.#memory = memory;
    this.#hostCpus = hostCpus;
    this.results = new Array<VcpuExitReport | Error | undefined>(maxVcpus).fill(undefined);
  }

  /**
   * Starts the pool's threads, then one task per host CPU. `stopRequested` runs in stopAll once the
   * stop is asked for, before it waits (a deterministic run's main thread leaves its schedule there).
   */
  start(settings: HostCpuTaskSettings, stopRequested: () => void = () => undefined): void {
    this.#stopRequested = stopRequested;
    const hostCpus = this.#hostCpus;
    this.#pool = new Piscina({
      filename: workerEntryUrl(),
      minThreads: hostCpus,
      maxThreads: hostCpus,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      maxQueue: hostCpus,
    });
    const clockOriginNs = Math.round(mainHostThread().nowMs() * 1e6).toString();
    for (let hostCpu = 0; hostCpu < hostCpus; hostCpu++) this.#startTask({ ...settings, hostCpu, clockOriginNs });
  }

  /** One long-running piscina task: host CPU `startup.hostCpu`'s scheduler loop until the VM stops. */
  #startTask(startup: HostCpuStartup): void {
    // Handlers are attached at once: a task rejected by destroy() must not become an unhandled rejection.
    this.#tasks.push(
      this.#pool!.run(startup)
        .then(
          (report: HostCpuReport) => {
            // A vCPU that moved between host CPUs is reported by each worker it ran in.
            for (const vcpu of report.vcpus) this.results[vcpu.vcpu] = mergeVcpuExitReports(this.results[vcpu.vcpu], vcpu);
            for (const error of report.errors) this.results[error.vcpu] = new Error(error.message);
          },
          (error: unknown) => {
            this.errors.push(error instanceof Error ? error : new Error(String(error)));
          },
        )
        .finally(() => this.#memory.ringMainDoorbell()),
    );
  }

  /**
   * Asks every vCPU to stop and waits, bounded; returns a watchdog exit naming the vCPUs that did not
   * (`describe` says what each is doing), their workers terminated.
   */
  async stopAll(createdVcpus: number, stopTimeoutSeconds: number, describe: (vcpu: number) => string): Promise<VmExit | undefined> {
    const memory = this.#memory;
    Atomics.store(memory.control, memory.headerIndex('stopRequested'), 1);
    for (let vcpu = 0; vcpu < createdVcpus; vcpu++) memory.kick(vcpu, VcpuRequest.Stop);
    // Host CPUs with nothing left to run see the stop word at their next look.
    for (let hostCpu = 0; hostCpu < this.#hostCpus; hostCpu++) memory.hostCpus.wake(hostCpu);
    this.#stopRequested();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), stopTimeoutSeconds * 1000);
    });
    const outcome = await Promise.race([Promise.all(this.#tasks).then(() => 'stopped' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'stopped') return undefined;
    const stuck = this.results
      .slice(0, createdVcpus)
      .map((_, vcpu) => (Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'finished')) === VcpuFinish.Running ? vcpu : -1))
      .filter((vcpu) => vcpu >= 0);
    await this.destroy();
    const states = stuck.map(describe).join('; ');
    return {
      reason: 'watchdog',
      detail: `vCPU ${stuck.join(', ')} did not stop within ${stopTimeoutSeconds} s (${states}); workers terminated`,
      stuckVcpus: stuck,
    };
  }

  /** Ends the pool's threads (terminating any still running). */
  async destroy(): Promise<void> {
    await this.#pool?.destroy().catch(() => undefined);
  }

  /** The traces the vCPUs recorded (start({ trace: true })), from their exit reports. */
  recordedTraces(): RecordedTrace[] {
    return this.results.flatMap((result, vcpu) =>
      result !== undefined && !(result instanceof Error) && result.trace !== undefined ? [{ vcpu, ...result.trace }] : [],
    );
  }
}
