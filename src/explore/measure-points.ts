// PCT's k for an exploration (docs/explore.md, docs/deterministic.md "PCT's bound"). PCT draws its
// d - 1 change points uniformly over the k scheduling points it expects a run to pass; its bound,
// 1 / (n k^(d-1)), holds when k is the run's own number of points. With a fixed k a run that passes
// fewer points never reaches most change points (halter-sender's 200 IPIs pass ~4,000, the default
// k is 10,000), and one that passes many more gets them all near its start (the x2APIC example
// passes ~96,000). So, unless --expected-points is given, explore measures k first: the points one
// run of the first seed passes with the runs' default k, as Coyote's PCT takes the schedule length
// from earlier iterations. Every seed then runs with --expected-points k, so each replay command
// stands alone.

import { seedArguments, type ExplorePlan } from './explore-plan.js';
import type { SeedRunner } from './seed-runner.js';

export const ExpectedPointsFrom = { Option: 'option', Measured: 'measured', Default: 'default' } as const;
export type ExpectedPointsFrom = (typeof ExpectedPointsFrom)[keyof typeof ExpectedPointsFrom];

export interface ExpectedPoints {
  /** k, or undefined when the runs keep their own default (the measuring run gave no schedule). */
  readonly k?: number;
  readonly from: ExpectedPointsFrom;
  /** Why k could not be measured (from = default). */
  readonly why?: string;
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

/** Runs the first seed once with the runs' default k and returns the points it passed (at least 1). */
export async function measureExpectedPoints(plan: ExplorePlan, runner: SeedRunner, seed: number): Promise<ExpectedPoints> {
  const outcome = await runner.run({ seed, args: seedArguments(plan, seed) }, new AbortController().signal);
  if (outcome.timedOut) return { from: ExpectedPointsFrom.Default, why: `seed ${seed}'s measuring run timed out` };
  const total = pointsTotal(outcome.stdout);
  if (total === undefined) return { from: ExpectedPointsFrom.Default, why: `seed ${seed}'s measuring run gave no schedule in its report` };
  return { k: Math.max(1, total), from: ExpectedPointsFrom.Measured };
}
