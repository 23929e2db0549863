// What `avic-smp explore` runs for each seed: the subcommand and its arguments (the target), plus the
// deterministic-schedule flags of that seed (docs/explore.md). The same argument list, minus
// `--json`, is the replay command printed for a failure, so what is printed is what ran.

import type { ExploreSubcommand } from './classify-failure.js';

export const ScheduleStrategy = { Random: 'random', Pct: 'pct' } as const;
export type ScheduleStrategy = (typeof ScheduleStrategy)[keyof typeof ScheduleStrategy];
export const SCHEDULE_STRATEGIES: ReadonlyMap<string, ScheduleStrategy> = new Map(
  Object.values(ScheduleStrategy).map((strategy) => [strategy, strategy]),
);

export interface ExplorePlan {
  readonly subcommand: ExploreSubcommand;
  /** The subcommand's arguments, subcommand first: ['stress', '--pattern', 'storm', '--vcpus', '2']. */
  readonly target: readonly string[];
  readonly strategy: ScheduleStrategy;
  /** --depth, when the user gave it (otherwise the run's own default). */
  readonly depth?: number;
  /** PCT's k for every run: --expected-points, or measured by a first run (measure-points.ts). */
  readonly expectedPoints?: number;
  /** --max-switches the user gave for every run (shrinking goes below it). */
  readonly maxSwitches?: number;
}

/** The arguments of one seed's run: the target, then the schedule's flags (no --json). */
export function seedArguments(plan: ExplorePlan, seed: number, maxSwitches = plan.maxSwitches): string[] {
  return [
    ...plan.target,
    '--deterministic',
    '--schedule-seed',
    String(seed),
    '--strategy',
    plan.strategy,
    ...(plan.depth === undefined ? [] : ['--depth', String(plan.depth)]),
    ...(plan.expectedPoints === undefined ? [] : ['--expected-points', String(plan.expectedPoints)]),
    ...(maxSwitches === undefined ? [] : ['--max-switches', String(maxSwitches)]),
  ];
}

/** One word for a POSIX shell: as it is when it has no special characters, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command line that replays a run: `avic-smp` and the run's arguments, shell-quoted. */
export function replayCommand(args: readonly string[]): string {
  return ['avic-smp', ...args].map(shellQuote).join(' ');
}
