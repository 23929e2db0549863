// The main thread's side of a deterministic run (docs/deterministic.md): the schedule region, main as
// participant 0 (host CPU i is participant i + 1), its installation as the main thread's host for the
// run, and the summary the report carries. The VM calls begin() as it starts, leave() once it has
// asked the vCPUs to stop (main holds the baton then: its last supervise wait just ended), and
// endWithReport() after the last host CPU returned.

import { mainHostThread, parallelMainHostThread, setMainHostThread } from '../../host/host-thread.js';
import {
  DeterministicMainHostThread,
  DeterministicSchedule,
  ScheduleAborted,
  scheduleBytes,
  type ScheduleOptions,
  type ScheduleSummary,
  type SharedSchedule,
} from '../../host/deterministic/deterministic-schedule.js';
import { sharedBuffersOf } from '../../host/deterministic/shared-buffers.js';
import type { VmExit } from '../report/vm-report.js';
import { VmConfigError } from './vm-config.js';

/** The main thread's participant number; host CPU i is i + 1. */
export const MAIN_PARTICIPANT = 0;

/** The properties of a host CPU's startup whose buffers are not waited on (the schedule's own). */
export const UNWATCHED_STARTUP_KEYS: ReadonlySet<string> = new Set(['schedule']);

export class DeterministicRun {
  readonly schedule: DeterministicSchedule;
  readonly shared: SharedSchedule;
  readonly #main: DeterministicMainHostThread;

  private constructor(options: ScheduleOptions, hostCpus: number, startup: object) {
    const participants = hostCpus + 1;
    const buffer = new SharedArrayBuffer(scheduleBytes(participants));
    this.shared = { buffer, byteOffset: 0, participants };
    // The workers list the buffers of the startup they receive the same way (workers/vcpu-worker.ts).
    this.schedule = new DeterministicSchedule(buffer, 0, participants).watch(sharedBuffersOf(startup, UNWATCHED_STARTUP_KEYS));
    this.schedule.initialise(options);
    this.#main = this.schedule.mainThread(MAIN_PARTICIPANT);
  }

  /**
   * A deterministic run's schedule, installed as the main thread's host, main holding the baton
   * until its first wait; undefined for a parallel run. `startup`: what every host CPU is sent.
   */
  static begin(options: ScheduleOptions | undefined, hostCpus: number, startup: object): DeterministicRun | undefined {
    if (options === undefined) return undefined;
    // A finished or aborted run's main host may be left installed by a run that threw on its way out.
    const installed = mainHostThread();
    if (installed !== parallelMainHostThread && !(installed instanceof DeterministicMainHostThread && installed.done))
      throw new VmConfigError('another deterministic run is in progress on this thread; run deterministic VMs one at a time');
    const run = new DeterministicRun(options, hostCpus, startup);
    setMainHostThread(run.#main);
    void run.#main.start();
    return run;
  }

  /** Main leaves the schedule (the vCPUs were asked to stop): the workers run on, still one at a time. */
  leave(): void {
    void this.#main.finish();
  }

  summary(): ScheduleSummary {
    return this.schedule.summary();
  }

  /**
   * The run is over (every host CPU returned): the main thread's host is the parallel one again, and
   * the report carries the schedule's summary when the run was deterministic.
   */
  static endWithReport<R extends object>(report: R, run: DeterministicRun | undefined): R & { schedule?: ScheduleSummary } {
    if (run === undefined) return report;
    if (mainHostThread() === run.#main) setMainHostThread(parallelMainHostThread);
    return { ...report, schedule: run.summary() };
  }

  /** An aborted schedule ends the run as a fault naming it; anything else is rethrown. */
  static exitOf(error: unknown): VmExit {
    if (error instanceof ScheduleAborted) return { reason: 'fault', detail: error.message };
    throw error;
  }
}
