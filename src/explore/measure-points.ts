// PCT's k for an exploration (docs/explore.md, docs/deterministic.md "PCT's bound"). PCT draws its
// d - 1 change points uniformly over the k scheduling points it expects a run to pass; its bound,
// 1 / (n k^(d-1)), holds when k is the run's own number of points. With a fixed k a run that passes
// fewer points never reaches most change points (halter-sender's 200 IPIs pass ~4,000, the default
// k is 10,000), and one that passes many more gets them all near its start (the x2APIC example
// passes ~96,000). So, unless --expected-points is given, explore measures k first: the points a
// run of the first seed passes with the runs' default k (as PCT implementations such as Coyote's
// take the schedule length from earlier iterations). A run that fails is no measure: it goes on
// until the watchdog finds the loss (halter-sender: ~25,000 points instead of ~4,000), so the next
// seed is tried, up to MEASURING_RUNS; if every one fails, the fewest points seen. Every seed then
// runs with --expected-points k, so each replay command stands alone.

import { classifyRun } from './classify-failure.js';
import { seedArguments, type ExplorePlan } from './explore-plan.js';
import type { SeedRunner } from './seed-runner.js';

/** Runs tried to measure k: the first seeds, until one passes. */
export const MEASURING_RUNS = 3;

/** Where k came from: --expected-points, a passing measuring run, the fewest points of failing ones, or nowhere (the runs' default). */
export const ExpectedPointsFrom = {
  Option: 'option',
  Measured: 'measured',
  MeasuredFailing: 'measured-failing',
  Default: 'default',
} as const;
export type ExpectedPointsFrom = (typeof ExpectedPointsFrom)[keyof typeof ExpectedPointsFrom];

export interface ExpectedPoints {
  /** k, or undefined when the runs keep their own default (the measuring run gave no schedule). */
  readonly k?: number;
  readonly from: ExpectedPointsFrom;
  /** Why k could not be measured (from = default). */
  readonly why?: string;
  /** The seed whose run gave k (measured, measured-failing). */
  readonly seed?: number;
}

/** The sum of a report's schedule.pointsSeen, or undefined when the report has none. */
export function pointsTotal(stdout: string): number | undefined {
  let report: unknown;
  try {
    report = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  const schedule = (report as { schedule?: { pointsSeen?: unknown } } | null)?.schedule;
  const seen = schedule?.pointsSeen;
  if (seen === null || typeof seen !== 'object') return undefined;
  const counts = Object.values(seen);
  if (!counts.every((count) => typeof count === 'number' && Number.isFinite(count))) return undefined;
  return (counts as number[]).reduce((total, count) => total + count, 0);
}

/**
 * Runs the first seeds (at most `seeds`, MEASURING_RUNS; `jobs` at a time) with the runs' default k
 * until one passes, and returns the points the first passing one passed; if every one failed, the
 * fewest points any of them passed.
 */
export async function measureExpectedPoints(
  plan: ExplorePlan,
  runner: SeedRunner,
  range: { readonly firstSeed: number; readonly seeds: number; readonly jobs: number },
  runTimeoutSeconds: number,
): Promise<ExpectedPoints> {
  let fewest: { k: number; seed: number } | undefined;
  let why = '';
  const end = range.firstSeed + Math.min(range.seeds, MEASURING_RUNS);
  for (let batch = range.firstSeed; batch < end; batch += range.jobs) {
    const seeds = Array.from({ length: Math.min(range.jobs, end - batch) }, (_, index) => batch + index);
    const signal = new AbortController().signal;
    const outcomes = await Promise.all(seeds.map((seed) => runner.run({ seed, args: seedArguments(plan, seed) }, signal)));
    for (const [index, outcome] of outcomes.entries()) {
      const seed = seeds[index]!;
      // Refused arguments: every seed will refuse them too, and exploring says so.
      if (outcome.exitCode === 2) return { from: ExpectedPointsFrom.Default, why: `seed ${seed}'s measuring run refused its arguments` };
      const total = pointsTotal(outcome.stdout);
      if (total === undefined) {
        why = outcome.timedOut ? `seed ${seed}'s measuring run timed out` : `seed ${seed}'s measuring run gave no schedule in its report`;
        continue;
      }
      const k = Math.max(1, total);
      if (classifyRun(plan.subcommand, outcome, runTimeoutSeconds).verdict === 'pass')
        return { k, from: ExpectedPointsFrom.Measured, seed };
      if (fewest === undefined || k < fewest.k) fewest = { k, seed };
    }
  }
  if (fewest !== undefined) return { k: fewest.k, from: ExpectedPointsFrom.MeasuredFailing, seed: fewest.seed };
  return { from: ExpectedPointsFrom.Default, why };
}
