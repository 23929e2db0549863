// Issue 12: what a deterministic run (docs/deterministic.md) costs. Figure 1: the guest instruction
// rate (instructions retired, from the report's per-vCPU counters, per wall second of the run) of a
// compute-bound program (bench/programs/alu-loop.s, one vCPU) with one host CPU, deterministic mode
// (a seeded schedule, virtual time) against parallel mode, the two measured one after the other in
// each repetition, in alternating order. Goal: deterministic >= 0.8x parallel. Figure 2: explore's
// runs per second with --jobs 2 on a small passing scenario (storm, 2 vCPUs, 200 IPIs), from its
// own --json (child processes: Node start-up and worker start-up are in every run).
//
// Wall time is taken around vm.run(), start-up and teardown included (the same work in both modes);
// the loop runs long enough (30 M iterations, ~180 M instructions) that they are a small part.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { VmConfig } from '../src/kvm/vm/vm-config.js';
import { main, repeat } from './lib/harness.js';
import { runProgramBench } from './lib/guest.js';
import { finishBench, goalResult, QUICK, REPO_ROOT } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'deterministic';
const ITERATIONS = QUICK ? 3_000_000 : 30_000_000;
const EXPLORE_RUNS = QUICK ? 4 : 8;
const EXPLORE_ARGS = [
  'explore',
  '--pattern',
  'storm',
  '--vcpus',
  '2',
  '--ipis',
  '200',
  '--runs',
  String(EXPLORE_RUNS),
  '--jobs',
  '2',
  '--json',
];

/** Millions of guest instructions per wall second of one alu-loop run. */
async function instructionRate(config: Partial<VmConfig>): Promise<number> {
  const startedAt = performance.now();
  const report = await runProgramBench('alu-loop', { ITERATIONS: ITERATIONS }, { vcpus: 1, hostCpus: 1, ...config }, 300);
  const seconds = (performance.now() - startedAt) / 1000;
  const instructions = report.perVcpu.reduce((total, vcpu) => total + vcpu.counters.instructions, 0);
  if (instructions < 6 * ITERATIONS)
    throw new Error(`alu-loop retired ${instructions} instructions, fewer than the loop's ${6 * ITERATIONS}`);
  return instructions / seconds / 1e6;
}

/** explore's own runs per second (its --json), every seed passing. */
function exploreRunsPerSecond(): number {
  const output = execFileSync(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'cli', 'bin.js'), ...EXPLORE_ARGS], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const result = JSON.parse(output) as { ok: boolean; seedsRun: number; runsPerSecond: number };
  if (!result.ok || result.seedsRun !== EXPLORE_RUNS)
    throw new Error(`explore did not pass all ${EXPLORE_RUNS} seeds: ${output.slice(0, 400)}`);
  return result.runsPerSecond;
}

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(
    BENCH,
    async (repetition) => {
      // Alternate which mode goes first, so a slow start of the process or a burst of other load
      // does not always fall on the same one.
      const deterministic = { deterministic: { seed: repetition + 1, strategy: 'random' as const } };
      let parallel: number;
      let serialised: number;
      if (repetition % 2 === 0) {
        parallel = await instructionRate({});
        serialised = await instructionRate(deterministic);
      } else {
        serialised = await instructionRate(deterministic);
        parallel = await instructionRate({});
      }
      return { parallel, deterministic: serialised, explore: exploreRunsPerSecond() };
    },
    (row) => ({
      parallel: `${formatValue(row['parallel']!, 'MIPS')} MIPS`,
      deterministic: `${formatValue(row['deterministic']!, 'MIPS')} MIPS`,
      ratio: `${formatValue(row['deterministic']! / row['parallel']!, '×')}×`,
      explore: `${formatValue(row['explore']!, 'runs/s')} runs/s`,
    }),
  );
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'deterministic-instruction-rate',
        title: '12a. deterministic mode instruction rate, alu-loop, 1 vCPU, --host-cpus 1',
        figure: {
          label: 'deterministic mode (random strategy), wall time around vm.run()',
          unit: 'MIPS',
          values: reps.column('deterministic'),
        },
        baseline: { label: 'parallel mode, same program and host CPUs, same repetition', unit: 'MIPS', values: reps.column('parallel') },
        goal: { text: '≥ 0.8× the parallel mode (issue 12)', kind: 'ratio-at-least', threshold: 0.8 },
        notes: [`${ITERATIONS} loop iterations (6 instructions each) per run; the two modes alternate which runs first`],
      }),
      goalResult({
        id: 'explore-runs-per-second',
        title: '12b. explore runs per second, --jobs 2',
        figure: { label: `avic-smp ${EXPLORE_ARGS.join(' ')}: its runsPerSecond`, unit: 'runs/s', values: reps.column('explore') },
        goal: { text: 'recorded (issue 12); every seed passes', kind: 'clean-run', threshold: 0 },
        clean: true,
        notes: ['each run is a child process: Node start-up, VM creation and worker start-up are in it'],
      }),
    ],
    reps,
    startedAt,
  );
});
