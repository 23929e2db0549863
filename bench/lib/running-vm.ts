// A VM kept running while the main thread does something to it (memslot updates, churn): start it
// with its supervisor (vm.wait) already in progress, as the lockdep-clean test does, wait until every
// vCPU's run loop has started, read the vCPUs' own counters, then set the program's stop_requested
// word and let the guest finish normally. The memslot and lockdep benches use it; guest.ts's
// runScenarioSteadyState does the same for a window with nothing else going on.

import { assemble, formatDiagnostic, Vm, type VmConfig, type VmReport } from '../../src/index.js';
import type { ProgramImage } from '../../src/guest/assembler.js';
import { STOP_REQUESTED_SYMBOL } from '../../src/scenarios/run-scenario.js';
import { warnings } from './guest.js';

type Counter = 'interruptsDelivered' | 'ipisSent' | 'instructions';

export interface VmCounters {
  readonly delivered: number;
  readonly sent: number;
  readonly instructions: number;
  readonly at: number;
}

export interface RunningVm {
  readonly vm: Vm;
  /** Vm.create + load + start until every vCPU has left Created (ms). */
  readonly startupMs: number;
  /** The vCPUs' own counters, summed, now. */
  counters(): VmCounters;
  /**
   * Sets stop_requested and waits for the guest to finish. A lost IPI, a fault, an error or an exit
   * other than all-done throws (the figure would mean nothing); failed checks and lost-wake-up counts
   * are recorded as warnings, as guest.ts does.
   */
  stop(checks?: (report: VmReport) => string[]): Promise<VmReport>;
}

export function assembleSource(name: string, source: string, defines: Record<string, number>): ProgramImage {
  const result = assemble(source, { fileName: name, defines: new Map(Object.entries(defines)) });
  if (!result.ok) throw new Error(result.errors.map(formatDiagnostic).join('\n'));
  return result.program;
}

function sum(vm: Vm, name: Counter): number {
  let total = 0;
  for (let vcpu = 0; vcpu < vm.config.vcpus; vcpu++) total += vm.memory.controlFloat64[vm.memory.statisticIndex(vcpu, name)]!;
  return total;
}

/** Creates, loads and starts the VM; resolves once every vCPU runs (bounded). */
export async function startRunningVm(name: string, program: ProgramImage, config: VmConfig): Promise<RunningVm> {
  const began = performance.now();
  const stopAddress = program.symbols.get(STOP_REQUESTED_SYMBOL);
  if (stopAddress === undefined) throw new Error(`${name}: the program has no '${STOP_REQUESTED_SYMBOL}' word`);
  const vm = await Vm.create(config);
  vm.loadProgram(program);
  vm.start();
  // The supervisor (APIC map service, watchdog) runs for the whole run; the guest ends it.
  const ending = vm.wait({ timeoutSeconds: 600, stopTimeoutSeconds: 30 });
  const startLimitMs = 30_000 + 1_000 * config.vcpus;
  const started = await Promise.race([
    vm.whenAllRunning().then(() => 'running' as const),
    new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), startLimitMs).unref()),
  ]);
  if (started === 'late') {
    Atomics.store(new Int32Array(vm.memory.buffers.ram), stopAddress >>> 2, 1);
    await ending.catch(() => undefined);
    throw new Error(`${name}: not every vCPU started within ${startLimitMs / 1000} s`);
  }
  const startupMs = performance.now() - began;
  return {
    vm,
    startupMs,
    counters: () => ({
      delivered: sum(vm, 'interruptsDelivered'),
      sent: sum(vm, 'ipisSent'),
      instructions: sum(vm, 'instructions'),
      at: performance.now(),
    }),
    async stop(checks) {
      Atomics.store(new Int32Array(vm.memory.buffers.ram), stopAddress >>> 2, 1);
      const report = await ending;
      const failedChecks = checks?.(report) ?? [];
      if (report.ipis.lost !== 0 || report.faults.length > 0 || report.errors.length > 0 || report.exit.reason !== 'all-done') {
        throw new Error(
          `${name}: the run failed: ${report.exit.reason} (${report.exit.detail}); lost IPIs ${report.ipis.lost}; errors ${JSON.stringify(report.errors)}; ` +
            `faults ${report.faults.map((fault) => fault.description).join('; ')}; checks ${failedChecks.join('; ')}`,
        );
      }
      const notes = [
        ...(report.lostWakeups === 0 ? [] : [`${report.lostWakeups} lost wake-up(s) counted`]),
        ...failedChecks.map((check) => `scenario check failed: ${check}`),
      ];
      for (const note of notes) {
        console.warn(`WARNING ${name}: ${note}`);
        warnings.push(`${name}: ${note}`);
      }
      return report;
    },
  };
}

/** Seconds between two counter readings, and the rates over them (per second). */
export function ratesBetween(
  before: VmCounters,
  after: VmCounters,
): { seconds: number; deliveredPerSecond: number; sentPerSecond: number } {
  const seconds = (after.at - before.at) / 1000;
  return {
    seconds,
    deliveredPerSecond: (after.delivered - before.delivered) / seconds,
    sentPerSecond: (after.sent - before.sent) / seconds,
  };
}
