// The seed loop: seeds seedStart, seedStart + 1, ... run `jobs` at a time through the seed runner.
// At the first failure the loop stops handing out seeds and cancels the runs in flight (unless
// keepGoing, which runs every seed and collects the distinct failure signatures). A child that
// refuses its arguments (exit status 2) stops everything: every other seed would refuse them too.

import { classifyRun, type ExploreSubcommand, type Failure } from './classify-failure.js';
import { seedArguments, type ExplorePlan } from './explore-plan.js';
import type { SeedRunner } from './seed-runner.js';

export interface ExploreSeedsOptions {
  readonly plan: ExplorePlan;
  readonly runner: SeedRunner;
  readonly seedStart: number;
  readonly runs: number;
  readonly jobs: number;
  readonly keepGoing: boolean;
  readonly runTimeoutSeconds: number;
  /** Called after each seed's run ended (not for cancelled ones). */
  readonly onSeedDone?: (done: number, failures: number) => void;
}

export interface SeedFailure {
  readonly seed: number;
  readonly failure: Failure;
}

export interface SignatureCount {
  readonly signature: string;
  readonly kind: Failure['kind'];
  readonly count: number;
  /** The lowest seed that showed it. */
  readonly firstSeed: number;
}

export interface ExploreSeedsResult {
  /** Seeds whose run ended (passed or failed); cancelled runs are not counted. */
  readonly seedsRun: number;
  /** Every failure, in seed order. */
  readonly failures: readonly SeedFailure[];
  /** Distinct signatures, most frequent first. */
  readonly signatures: readonly SignatureCount[];
  /** Seeds left unrun or cancelled because exploring stopped at a failure. */
  readonly stoppedEarly: boolean;
}

/** The child refused its arguments (exit status 2): explore's own input is bad. */
export class RunRejectedArguments extends Error {
  override readonly name = 'RunRejectedArguments';
  readonly subcommand: ExploreSubcommand;
  readonly childMessage: string;
  constructor(subcommand: ExploreSubcommand, childMessage: string) {
    super(`${subcommand} refused the arguments: ${childMessage.replace(/^avic-smp: /, '')}`);
    this.subcommand = subcommand;
    this.childMessage = childMessage;
  }
}

export function countSignatures(failures: readonly SeedFailure[]): SignatureCount[] {
  const bySignature = new Map<string, { kind: Failure['kind']; count: number; firstSeed: number }>();
  for (const { seed, failure } of failures) {
    const entry = bySignature.get(failure.signature);
    if (entry === undefined) bySignature.set(failure.signature, { kind: failure.kind, count: 1, firstSeed: seed });
    else {
      entry.count++;
      entry.firstSeed = Math.min(entry.firstSeed, seed);
    }
  }
  return [...bySignature]
    .map(([signature, entry]) => ({ signature, ...entry }))
    .sort((a, b) => b.count - a.count || a.firstSeed - b.firstSeed);
}

export async function exploreSeeds(options: ExploreSeedsOptions): Promise<ExploreSeedsResult> {
  const stop = new AbortController();
  const failures: SeedFailure[] = [];
  let next = 0;
  let seedsRun = 0;
  let rejected: RunRejectedArguments | undefined;
  const worker = async (): Promise<void> => {
    while (!stop.signal.aborted && next < options.runs) {
      const seed = options.seedStart + next++;
      const outcome = await options.runner.run({ seed, args: seedArguments(options.plan, seed) }, stop.signal);
      const verdict = classifyRun(options.plan.subcommand, outcome, options.runTimeoutSeconds);
      if (verdict.verdict === 'cancelled') continue;
      if (verdict.verdict === 'bad-input') {
        rejected ??= new RunRejectedArguments(options.plan.subcommand, verdict.message);
        stop.abort();
        continue;
      }
      seedsRun++;
      if (verdict.verdict === 'fail') {
        failures.push({ seed, failure: verdict.failure });
        if (!options.keepGoing) stop.abort();
      }
      options.onSeedDone?.(seedsRun, failures.length);
    }
  };
  const workers = Math.max(1, Math.min(options.jobs, options.runs));
  await Promise.all(Array.from({ length: workers }, worker));
  if (rejected !== undefined) throw rejected;
  failures.sort((a, b) => a.seed - b.seed);
  return { seedsRun, failures, signatures: countSignatures(failures), stoppedEarly: seedsRun < options.runs };
}
