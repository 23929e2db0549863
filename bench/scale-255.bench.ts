// Goal 7: 255 vCPUs (the xAPIC maximum) start, run the scenario library's storm and stop cleanly
// on this 2-core machine. A script, not a ratio. Each repetition runs two fresh child processes
// (so each peak RSS, process.resourceUsage().maxRSS, is its own):
//   idle:  255 vCPUs that halt at once (bench/programs/idle.s): the start-up of the vCPUs alone,
//          Vm.create + load + start until every vCPU's run loop has started; then stop;
//   storm: the same with the storm running (vCPUs that started compete with the ones still
//          starting), the storm's delivered IPIs/s over a 1 s window, then stop_requested and the
//          scenario's clean finish and checks.
// BENCH_REPS_255 sets the repetitions (default 1: one takes one to two minutes here).

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Vm } from '../src/index.js';
import { VcpuRunState } from '../src/kvm/control/vcpu-run-state.js';
import { main } from './lib/harness.js';
import { assembleProgram, runScenarioSteadyState } from './lib/guest.js';
import { waitQuiet, withOtherLoad } from './lib/machine.js';
import { finishBench, goalResult, QUICK } from './lib/report.js';

const BENCH = 'scale-255';
const VCPUS = QUICK ? 64 : 255;
const REPS = Math.max(1, Number(process.env['BENCH_REPS_255'] ?? 1));

interface ChildResult {
  readonly mode: 'idle' | 'storm';
  readonly startupMs: number;
  readonly deliveredPerSecond: number;
  readonly stopMs: number;
  readonly maxRssMiB: number;
  readonly exit: string;
  readonly lost: number;
  readonly lostWakeups: number;
  readonly ok: boolean;
  readonly otherLoad: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function idleRun(): Promise<Omit<ChildResult, 'otherLoad' | 'maxRssMiB'>> {
  const began = performance.now();
  const program = assembleProgram('idle');
  const vm = await Vm.create({ vcpus: VCPUS });
  vm.loadProgram(program);
  vm.start();
  const runStates = Array.from({ length: VCPUS }, (_, vcpu) => vm.memory.controlBlockIndex(vcpu, 'runState'));
  while (runStates.some((index) => Atomics.load(vm.memory.control, index) === VcpuRunState.Created)) await sleep(2);
  const startupMs = performance.now() - began;
  const stopBegan = performance.now();
  const report = await vm.wait({ seconds: 0.001, stopTimeoutSeconds: 60 });
  return {
    mode: 'idle',
    startupMs,
    deliveredPerSecond: 0,
    stopMs: performance.now() - stopBegan,
    exit: report.exit.reason,
    lost: report.ipis.lost,
    lostWakeups: report.lostWakeups,
    ok: report.ok && report.exit.reason === 'time-limit',
  };
}

async function stormRun(): Promise<Omit<ChildResult, 'otherLoad' | 'maxRssMiB'>> {
  const run = await runScenarioSteadyState('storm', { vcpus: VCPUS, seed: 1 }, 300, 1000);
  return {
    mode: 'storm',
    startupMs: run.startupMs,
    deliveredPerSecond: run.deliveredPerSecond,
    stopMs: run.stopMs,
    exit: run.report.exit.reason,
    lost: run.report.ipis.lost,
    lostWakeups: run.report.lostWakeups,
    ok: run.report.ok,
  };
}

async function child(mode: string): Promise<void> {
  const { value, otherLoad } = await withOtherLoad(() => (mode === 'idle' ? idleRun() : stormRun()));
  const result: ChildResult = { ...value, otherLoad, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(mode: 'idle' | 'storm'): ChildResult {
  const output = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', mode], {
    encoding: 'utf8',
    env: process.env,
    timeout: 400_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(output.trim().split('\n').pop()!) as ChildResult;
}

main(async () => {
  const childAt = process.argv.indexOf('--child');
  if (childAt >= 0) return child(process.argv[childAt + 1] ?? 'storm');
  const startedAt = performance.now();
  const idle: ChildResult[] = [];
  const storm: ChildResult[] = [];
  const otherLoad: number[] = [];
  for (let repetition = 0; repetition < REPS; repetition++) {
    for (const mode of ['idle', 'storm'] as const) {
      await waitQuiet();
      const value = runChild(mode);
      (mode === 'idle' ? idle : storm).push(value);
      otherLoad.push(value.otherLoad);
      console.log(
        `[${BENCH}] rep ${repetition + 1}/${REPS} ${mode}: start-up ${value.startupMs.toFixed(0)} ms, ${mode === 'storm' ? `storm ${(value.deliveredPerSecond / 1e6).toFixed(3)} M/s, ` : ''}stop ${value.stopMs.toFixed(0)} ms, peak RSS ${value.maxRssMiB.toFixed(0)} MiB, exit ${value.exit}, lost IPIs ${value.lost}, lost wake-ups ${value.lostWakeups}, ok ${value.ok} (other load ${value.otherLoad.toFixed(2)} cores)`,
      );
    }
  }
  const all = [...idle, ...storm];
  const clean = all.every((result) => result.ok && result.lost === 0 && result.lostWakeups === 0);
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'scale-255',
        title: `7. ${VCPUS} vCPUs start, run the storm and stop cleanly`,
        figure: {
          label: 'start-up with the storm running: Vm.create → every vCPU running',
          unit: 'ms',
          values: storm.map((result) => result.startupMs),
        },
        goal: {
          text: `${VCPUS} vCPUs start, run a storm and stop cleanly (record start-up and peak memory)`,
          kind: 'clean-run',
          threshold: 0,
        },
        clean,
        extras: [
          { label: 'start-up of idle vCPUs (halted at once)', unit: 'ms', values: idle.map((result) => result.startupMs) },
          { label: 'peak RSS, storm run (maxRSS)', unit: 'MiB', values: storm.map((result) => result.maxRssMiB) },
          { label: 'peak RSS, idle run (maxRSS)', unit: 'MiB', values: idle.map((result) => result.maxRssMiB) },
          { label: 'storm delivered over a 1 s window', unit: 'M/s', values: storm.map((result) => result.deliveredPerSecond / 1e6) },
          { label: 'stop request → report, storm run', unit: 'ms', values: storm.map((result) => result.stopMs) },
          { label: 'stop request → report, idle run', unit: 'ms', values: idle.map((result) => result.stopMs) },
        ],
        notes: [
          `exits ${all.map((result) => `${result.mode} ${result.exit}${result.ok ? '' : ' NOT ok'}`).join(', ')}; lost IPIs ${all.map((result) => result.lost).join('/')}; lost wake-ups ${all.map((result) => result.lostWakeups).join('/')}`,
        ],
      }),
    ],
    { otherLoad },
    startedAt,
    REPS,
  );
});
