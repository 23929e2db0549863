// How a bench reports: a human block on stdout (every repetition, then median and range of the
// figure, of the baseline measured in the same process, their ratio and the goal), and a JSON file
// bench/results/<bench>.json that run-all turns into the summary table.

import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { formatSpread, formatValue, spread, type Spread } from './stats.js';
import { machineNotes, type MachineNotes } from './machine.js';
import { warnings } from './guest.js';

/** The repository root (benches run from dist/bench/...). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

export const REPETITIONS = Math.max(1, Number(process.env['BENCH_REPS'] ?? 5));
/** BENCH_QUICK=1: fewer rounds, for a smoke run of the harness itself. */
export const QUICK = process.env['BENCH_QUICK'] === '1';

export type GoalKind =
  /** figure.median <= threshold (absolute, in the figure's unit) */
  | 'figure-at-most'
  /** figure.median / baseline.median <= threshold */
  | 'ratio-at-most'
  /** figure.median / baseline.median >= threshold */
  | 'ratio-at-least'
  /** a pass/fail run (the figure is informational) */
  | 'clean-run';

export interface Goal {
  readonly text: string;
  readonly kind: GoalKind;
  readonly threshold: number;
}

export interface Measured {
  readonly label: string;
  readonly unit: string;
  readonly values: number[];
}

export interface GoalResult {
  readonly id: string;
  readonly title: string;
  readonly figure: Measured & { readonly spread: Spread };
  readonly baseline?: Measured & { readonly spread: Spread };
  /** median(figure) / median(baseline), and the per-repetition ratios. */
  readonly ratio?: { readonly ofMedians: number; readonly perRepetition: Spread };
  readonly goal: Goal;
  readonly met: boolean;
  /** How far from the goal: figure / threshold (at-most goals) or threshold / ratio (at-least). */
  readonly missFactor?: number;
  readonly extras: { readonly label: string; readonly unit: string; readonly spread: Spread }[];
  readonly notes: string[];
  /** Why the goal was not measured in this tree (e.g. the VM refuses 4096 vCPUs); not a miss. */
  readonly skipped?: string;
}

export interface BenchResult {
  readonly bench: string;
  readonly command: string;
  readonly machine: MachineNotes;
  readonly repetitions: number;
  readonly otherLoad: number[];
  /** Cores the hypervisor stole per repetition (machine.ts), beside the other processes' load. */
  readonly steal: number[];
  readonly elapsedSeconds: number;
  /** Lost-wake-up counts and failed scenario checks seen during the runs (they do not stop a bench). */
  readonly warnings: string[];
  readonly goals: GoalResult[];
}

export function goalResult(options: {
  id: string;
  title: string;
  figure: Measured;
  baseline?: Measured;
  goal: Goal;
  extras?: Measured[];
  notes?: string[];
  /** For clean-run goals. */
  clean?: boolean;
  /** Not measured, and why: printed as SKIPPED, neither met nor missed. */
  skipped?: string;
}): GoalResult {
  const figureSpread = spread(options.figure.values);
  const baselineSpread = options.baseline === undefined ? undefined : spread(options.baseline.values);
  let ratio: GoalResult['ratio'];
  if (options.baseline !== undefined && baselineSpread !== undefined) {
    const perRep = options.figure.values.map((value, index) => value / options.baseline!.values[index]!);
    ratio = { ofMedians: figureSpread.median / baselineSpread.median, perRepetition: spread(perRep) };
  }
  const { kind, threshold } = options.goal;
  let met: boolean;
  let missFactor: number | undefined;
  switch (kind) {
    case 'figure-at-most':
      met = figureSpread.median <= threshold;
      missFactor = figureSpread.median / threshold;
      break;
    case 'ratio-at-most':
      met = ratio !== undefined && ratio.ofMedians <= threshold;
      missFactor = ratio === undefined ? undefined : ratio.ofMedians / threshold;
      break;
    case 'ratio-at-least':
      met = ratio !== undefined && ratio.ofMedians >= threshold;
      missFactor = ratio === undefined ? undefined : threshold / ratio.ofMedians;
      break;
    default:
      met = options.clean === true;
      missFactor = undefined;
  }
  return {
    id: options.id,
    title: options.title,
    figure: { ...options.figure, spread: figureSpread },
    ...(options.baseline === undefined ? {} : { baseline: { ...options.baseline, spread: baselineSpread! } }),
    ...(ratio === undefined ? {} : { ratio }),
    goal: options.goal,
    met,
    ...(missFactor === undefined ? {} : { missFactor }),
    extras: (options.extras ?? []).map((extra) => ({ label: extra.label, unit: extra.unit, spread: spread(extra.values) })),
    notes: options.notes ?? [],
    ...(options.skipped === undefined ? {} : { skipped: options.skipped }),
  };
}

export function printGoal(result: GoalResult): void {
  const lines: string[] = [];
  lines.push(`  ${result.title}`);
  lines.push(
    `    figure   ${result.figure.label}: ${formatSpread(result.figure.spread, result.figure.unit)}  [${result.figure.values.map((v) => formatValue(v, result.figure.unit)).join(', ')}]`,
  );
  if (result.baseline !== undefined) {
    lines.push(
      `    baseline ${result.baseline.label}: ${formatSpread(result.baseline.spread, result.baseline.unit)}  [${result.baseline.values.map((v) => formatValue(v, result.baseline!.unit)).join(', ')}]`,
    );
  }
  if (result.ratio !== undefined) {
    lines.push(
      `    ratio    ${formatValue(result.ratio.ofMedians, '×')}× of medians (per repetition ${formatValue(result.ratio.perRepetition.min, '×')}–${formatValue(result.ratio.perRepetition.max, '×')}×)`,
    );
  }
  for (const extra of result.extras) lines.push(`    also     ${extra.label}: ${formatSpread(extra.spread, extra.unit)}`);
  const miss = result.met || result.missFactor === undefined ? '' : ` (missed by ${formatValue(result.missFactor, '×')}×)`;
  lines.push(
    `    goal     ${result.goal.text}: ${result.skipped === undefined ? `${result.met ? 'MET' : 'MISSED'}${miss}` : `SKIPPED (${result.skipped})`}`,
  );
  for (const note of result.notes) lines.push(`    note     ${note}`);
  console.log(lines.join('\n'));
}

/** Per repetition: the other processes' load and the hypervisor's steal (cores), as the harness records them. */
export interface RepetitionLoad {
  readonly otherLoad: number[];
  readonly steal?: number[];
}

export function finishBench(
  bench: string,
  goals: GoalResult[],
  load: RepetitionLoad,
  startedAt: number,
  repetitions = REPETITIONS,
): BenchResult {
  const { otherLoad, steal = [] } = load;
  const result: BenchResult = {
    bench,
    command: `npm run build && node dist/bench/${bench}.bench.js`,
    machine: machineNotes(),
    repetitions,
    otherLoad,
    steal,
    elapsedSeconds: (performance.now() - startedAt) / 1000,
    warnings: [...warnings],
    goals,
  };
  console.log(
    `\n${bench}: ${repetitions} repetitions in ${result.elapsedSeconds.toFixed(1)} s; other processes' load per repetition (cores): ${otherLoad.map(cores).join(', ')}; steal: ${steal.map(cores).join(', ')}`,
  );
  for (const goal of goals) printGoal(goal);
  for (const warning of warnings) console.log(`  WARNING ${warning}`);
  // BENCH_STRICT=1: a missed goal makes the bench exit with status 2 (the measurements still succeeded).
  if (process.env['BENCH_STRICT'] === '1' && goals.some((goal) => !goal.met && goal.skipped === undefined)) process.exitCode = 2;
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${bench}.json`), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

const cores = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : '?');

/** One line per repetition while the bench runs, so a long bench shows progress. */
export function logRepetition(
  bench: string,
  repetition: number,
  parts: Record<string, string>,
  otherLoad: number,
  repetitions = REPETITIONS,
  stolen = Number.NaN,
): void {
  const text = Object.entries(parts)
    .map(([key, value]) => `${key} ${value}`)
    .join('  ');
  console.log(`[${bench}] rep ${repetition + 1}/${repetitions}: ${text}  (other load ${cores(otherLoad)} cores, steal ${cores(stolen)})`);
}

export const us = (ns: number): number => ns / 1000;
