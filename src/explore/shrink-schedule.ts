// Shrinking a failing schedule: the same seed re-run with `--max-switches m` (after m preemptive
// thread switches the deterministic scheduler makes no more: only a wait or a finish hands the CPU
// on), searching for the smallest m that still fails with the same signature. The failing run's own
// count (its report's schedule.preemptions, or schedule.switches) is the upper bound: capped there,
// the run makes the same choices and fails the same way.
//
// The search is a bisection, so it costs about log2(switches) runs. Failing is not monotone in m in
// general (a cap can steer a run into another bug, or past the bug), so what it finds is 1-minimal:
// m fails with the signature and m - 1 does not (or m is 0). That is the useful property for a
// replay: every one of the m switches is needed.

import { classifyRun } from './classify-failure.js';
import { seedArguments, type ExplorePlan } from './explore-plan.js';
import { RunRejectedArguments } from './explore-seeds.js';
import type { SeedRunner } from './seed-runner.js';

export interface ShrinkOptions {
  readonly plan: ExplorePlan;
  readonly runner: SeedRunner;
  readonly seed: number;
  readonly signature: string;
  /** The failing run's switch count (Failure.switches). */
  readonly switches: number;
  readonly runTimeoutSeconds: number;
  /** Called before each re-run, with the bounds still open. */
  readonly onStep?: (low: number, high: number) => void;
}

export interface ShrinkResult {
  readonly fromSwitches: number;
  readonly toSwitches: number;
  /** Re-runs the search made. */
  readonly runs: number;
  /** The shrunk run's arguments (seedArguments with --max-switches toSwitches). */
  readonly args: readonly string[];
}

/** The 1-minimal failing --max-switches; throws RunRejectedArguments if a re-run refuses its arguments. */
export async function shrinkSchedule(options: ShrinkOptions): Promise<ShrinkResult> {
  const never = new AbortController().signal;
  let runs = 0;
  const failsAt = async (maxSwitches: number): Promise<boolean> => {
    runs++;
    const args = seedArguments(options.plan, options.seed, maxSwitches);
    const outcome = await options.runner.run({ seed: options.seed, maxSwitches, args }, never);
    const verdict = classifyRun(options.plan.subcommand, outcome, options.runTimeoutSeconds);
    // A refusal (a subcommand without --max-switches) is no verdict on m: the search cannot go on.
    if (verdict.verdict === 'bad-input') throw new RunRejectedArguments(options.plan.subcommand, verdict.message);
    return verdict.verdict === 'fail' && verdict.failure.signature === options.signature;
  };
  // Invariant: `high` fails with the signature; every m below `low` that was tried did not.
  let low = 0;
  let high = options.switches;
  while (low < high) {
    options.onStep?.(low, high);
    const middle = Math.floor((low + high) / 2);
    if (await failsAt(middle)) high = middle;
    else low = middle + 1;
  }
  return { fromSwitches: options.switches, toSwitches: high, runs, args: seedArguments(options.plan, options.seed, high) };
}
