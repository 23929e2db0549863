// Running guest programs for the benches. The shipped scenario library (src/scenarios) is used
// wherever it has the scenario (ack, ping-pong, sync-call, ack-halt, storm); bench/programs/*.s
// holds only what it lacks (a broadcast to receivers known to be asleep, after a gap; the ALU loop).
// For throughput, a VM is started, a steady-state window is counted from the vCPUs' own counters
// (start-up and teardown excluded), and the guest is then told to stop and finish normally.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, formatDiagnostic, Vm, type VmConfig, type VmReport } from '../../src/index.js';
import type { ProgramImage } from '../../src/guest/assembler.js';
import { VcpuRunState } from '../../src/kvm/control/vcpu-run-state.js';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { assembleScenario, runScenario, STOP_REQUESTED_SYMBOL } from '../../src/scenarios/run-scenario.js';
import { resolveParameters } from '../../src/scenarios/scenario-parameters.js';
import type { ScenarioDefinition, ScenarioParameters } from '../../src/scenarios/scenario.js';
import { REPO_ROOT } from './report.js';

// ---- bench/programs ----

export function assembleProgram(name: string, defines: Record<string, number> = {}): ProgramImage {
  const source = readFileSync(join(REPO_ROOT, 'bench', 'programs', `${name}.s`), 'utf8');
  const result = assemble(source, { fileName: `bench/programs/${name}.s`, defines: new Map(Object.entries(defines)) });
  if (!result.ok) throw new Error(result.errors.map(formatDiagnostic).join('\n'));
  return result.program;
}

async function createLoaded(program: ProgramImage, config: VmConfig): Promise<Vm> {
  const vm = await Vm.create(config);
  vm.loadProgram(program);
  return vm;
}

function describeFailure(name: string, report: VmReport, failedChecks: string[] = []): string {
  return (
    `${name}: the run failed: ${report.exit.reason} (${report.exit.detail}); lost IPIs ${report.ipis.lost}; lost wake-ups ${report.lostWakeups}; ` +
    `errors ${JSON.stringify(report.errors)}; faults ${report.faults.map((fault) => fault.description).join('; ')}; checks ${failedChecks.join('; ')}`
  );
}

/**
 * Warnings the benches record but do not stop on: a lost-wake-up count (a bounded wait that timed
 * out with an event pending, which the emulator reports as not ok) and failed scenario checks
 * about the guest's own bookkeeping. A lost IPI, a fault, an error or a timeout does stop the bench:
 * then the figure would not mean anything.
 */
export const warnings: string[] = [];

function judge(name: string, report: VmReport, expectedExit: string, failedChecks: string[]): void {
  const fatal = report.ipis.lost !== 0 || report.faults.length > 0 || report.errors.length > 0 || report.exit.reason !== expectedExit;
  if (fatal) throw new Error(describeFailure(name, report, failedChecks));
  const notes = [
    ...(report.lostWakeups === 0 ? [] : [`${report.lostWakeups} lost wake-up(s) counted`]),
    ...failedChecks.map((check) => `scenario check failed: ${check}`),
  ];
  for (const note of notes) {
    const text = `${name}: ${note}`;
    console.warn(`WARNING ${text}`);
    warnings.push(text);
  }
}

/** Runs a bench program that finishes by itself. */
export async function runProgramBench(
  name: string,
  defines: Record<string, number>,
  config: VmConfig,
  timeoutSeconds = 60,
): Promise<VmReport> {
  const vm = await createLoaded(assembleProgram(name, defines), config);
  const report = await vm.run({ timeoutSeconds });
  judge(name, report, 'all-done', []);
  return report;
}

// ---- the scenario library ----

export function scenario(name: string): ScenarioDefinition {
  const definition = SCENARIOS.get(name);
  if (definition === undefined) throw new Error(`the scenario library has no '${name}' (have: ${[...SCENARIOS.keys()].join(', ')})`);
  return definition;
}

/** Runs a shipped scenario (count-based) and insists that the report and every check are ok. */
export async function runScenarioBench(
  name: string,
  parameters: ScenarioParameters,
  options: { defines?: Record<string, number>; vmConfig?: Partial<VmConfig> } = {},
): Promise<VmReport> {
  const { result } = await runScenario(scenario(name), parameters, {
    ...(options.defines === undefined ? {} : { defines: new Map(Object.entries(options.defines)) }),
    ...(options.vmConfig === undefined ? {} : { vmConfig: options.vmConfig }),
  });
  judge(
    name,
    result.report,
    'all-done',
    result.checks.filter((entry) => !entry.ok).map((entry) => `${entry.name}: ${entry.detail}`),
  );
  return result.report;
}

/** The vCPU's latency summary (its guest's HC_LATENCY_SAMPLE histogram), or throws. */
export function vcpuLatency(report: VmReport, vcpu: number): NonNullable<VmReport['latencyNs']> {
  const latency = report.perVcpu[vcpu]?.latencyNs;
  if (latency === undefined) throw new Error(`vCPU ${vcpu} recorded no latency samples`);
  return latency;
}

// ---- steady state ----

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface SteadyStateResult {
  /** Vm.create + load + start until every vCPU's run loop has started (ms). */
  readonly startupMs: number;
  /** IPIs delivered (interrupts taken) per second over the window. */
  readonly deliveredPerSecond: number;
  /** IPI messages sent per second over the window. */
  readonly sentPerSecond: number;
  /** Guest instructions per second over the window (all vCPUs). */
  readonly instructionsPerSecond: number;
  /** From the stop request to the report (ms). */
  readonly stopMs: number;
  readonly report: VmReport;
  /** Names of failed scenario checks (empty when all passed). */
  readonly failedChecks: string[];
}

type Counter = 'interruptsDelivered' | 'ipisSent' | 'instructions';

function sumCounter(vm: Vm, name: Counter): number {
  let total = 0;
  for (let vcpu = 0; vcpu < vm.config.vcpus; vcpu++) total += vm.memory.controlFloat64[vm.memory.statisticIndex(vcpu, name)]!;
  return total;
}

/**
 * A shipped scenario, time-based: start it, wait until every vCPU runs, warm up, count over
 * `windowMs`, then set its stop_requested word and let it wind down and report; the scenario's
 * checks must pass. The main thread only sleeps in timers meanwhile.
 */
export async function runScenarioSteadyState(
  name: string,
  parameters: { vcpus: number; seed: number },
  warmupMs: number,
  windowMs: number,
  config: Partial<VmConfig> = {},
): Promise<SteadyStateResult> {
  const definition = scenario(name);
  const resolved = resolveParameters(definition, { ...parameters, seconds: 3600 });
  const began = performance.now();
  const program = assembleScenario(definition, resolved);
  const vm = await createLoaded(program, { ...definition.vmConfig?.(resolved), ...config, vcpus: resolved.vcpus });
  vm.start();
  let report: VmReport | undefined;
  try {
    const control = vm.memory.control;
    const runStates = Array.from({ length: vm.config.vcpus }, (_, vcpu) => vm.memory.controlBlockIndex(vcpu, 'runState'));
    // Generous: on this 2-core machine 255 workers take 10 s idle and over a minute beside a running storm.
    const startLimitMs = 30_000 + 1_000 * vm.config.vcpus;
    const startDeadline = performance.now() + startLimitMs;
    while (runStates.some((index) => Atomics.load(control, index) === VcpuRunState.Created)) {
      if (performance.now() > startDeadline) throw new Error(`${name}: not every vCPU started within ${startLimitMs / 1000} s`);
      await sleep(1);
    }
    const startupMs = performance.now() - began;
    await sleep(warmupMs);
    const before = {
      delivered: sumCounter(vm, 'interruptsDelivered'),
      sent: sumCounter(vm, 'ipisSent'),
      instructions: sumCounter(vm, 'instructions'),
      at: performance.now(),
    };
    await sleep(windowMs);
    const after = {
      delivered: sumCounter(vm, 'interruptsDelivered'),
      sent: sumCounter(vm, 'ipisSent'),
      instructions: sumCounter(vm, 'instructions'),
      at: performance.now(),
    };
    const seconds = (after.at - before.at) / 1000;
    const stopBegan = performance.now();
    const stopIndex = program.symbols.get(STOP_REQUESTED_SYMBOL)! >>> 2;
    Atomics.store(new Int32Array(vm.memory.buffers.ram), stopIndex, 1);
    report = await vm.wait({ timeoutSeconds: (performance.now() - began) / 1000 + 60, stopTimeoutSeconds: 30 });
    const stopMs = performance.now() - stopBegan;
    const failedChecks = definition
      .check(report, resolved)
      .filter((entry) => !entry.ok)
      .map((entry) => `${entry.name}: ${entry.detail}`);
    judge(name, report, 'all-done', failedChecks);
    return {
      startupMs,
      deliveredPerSecond: (after.delivered - before.delivered) / seconds,
      sentPerSecond: (after.sent - before.sent) / seconds,
      instructionsPerSecond: (after.instructions - before.instructions) / seconds,
      stopMs,
      report,
      failedChecks,
    };
  } catch (error) {
    // Tear the VM down (its workers would keep the process alive) and say what the vCPUs reported.
    if (report === undefined) {
      const torn = await vm.wait({ seconds: 0.001, stopTimeoutSeconds: 10 }).catch(() => undefined);
      const detail =
        torn === undefined
          ? ''
          : `; vCPU errors: ${JSON.stringify(torn.errors.slice(0, 3))}; states: ${[...new Set(torn.perVcpu.map((entry) => entry.runState))].join(', ')}`;
      throw new Error(`${error instanceof Error ? error.message : String(error)}${detail}`, { cause: error });
    }
    throw error;
  }
}
