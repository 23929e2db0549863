// The deterministic-run flags (docs/deterministic.md), shared by run, stress, scale, lockdep and
// conformance. --deterministic turns it on; each of the others implies it.
//
// The seed flag is --schedule-seed, not --seed: on stress and scale --seed already seeds the guest
// program's own pseudo-random choices (storm targets, destination patterns). Keeping the two apart
// lets a schedule be varied under one program, and a failing run names both. The default strategy
// is random: PCT preempts only at its d - 1 change points, so a thread that waits for another in
// guest code (a flag polled without PAUSE, an exit in a loop) runs on until its quantum ends, a
// quantum of virtual time per hand-over: halter-sender's 1,000 IPIs took 53 s under PCT and 7 s
// under random, conformance's nmi-after-sti minutes against 2 s. PCT, with its bound on finding a
// bug of depth d (docs/deterministic.md), is --strategy pct.

import { Option } from 'commander';
import type { VmConfig } from '../kvm/vm/vm.js';
import {
  DEFAULT_DEPTH,
  DEFAULT_EXPECTED_POINTS,
  MAX_DEPTH,
  SCHEDULE_STRATEGIES,
  type ScheduleStrategyName,
} from '../host/deterministic/deterministic-schedule.js';
import { nonNegativeInteger, oneOf, positiveInteger } from './arguments.js';

export const DEFAULT_SCHEDULE_SEED = 1;
export const DEFAULT_STRATEGY: ScheduleStrategyName = 'random';

export interface DeterministicCommandOptions {
  readonly deterministic?: boolean;
  readonly scheduleSeed?: number;
  readonly strategy?: ScheduleStrategyName;
  readonly depth?: number;
  readonly maxSwitches?: number;
  readonly expectedPoints?: number;
}

export function deterministicOptions(): Option[] {
  const implies = { deterministic: true };
  return [
    new Option(
      '--deterministic',
      'run the threads one at a time on a seeded schedule, in virtual time: the same seed and options repeat the run (docs/deterministic.md)',
    ),
    new Option('--schedule-seed <n>', `the schedule's seed, 0 to 2^53-1 (default ${DEFAULT_SCHEDULE_SEED}); implies --deterministic`)
      .argParser(nonNegativeInteger('--schedule-seed', Number.MAX_SAFE_INTEGER))
      .implies(implies),
    new Option(
      '--strategy <name>',
      `how the schedule picks the next thread: random (any runnable thread at every scheduling point; the default) or pct (priorities with d - 1 change points, a bound on finding a bug of depth d); implies --deterministic`,
    )
      .argParser(oneOf('strategy', new Map(SCHEDULE_STRATEGIES.map((name) => [name, name])), 'strategies'))
      .implies(implies),
    new Option('--depth <d>', `PCT's depth d (d - 1 change points), 1 to ${MAX_DEPTH} (default ${DEFAULT_DEPTH}); implies --deterministic`)
      .argParser(positiveInteger('--depth', MAX_DEPTH))
      .implies(implies),
    new Option(
      '--max-switches <n>',
      'at most N preemptive switches; after them threads change only when one waits, spins or ends (to shrink a failing schedule); implies --deterministic',
    )
      .argParser(nonNegativeInteger('--max-switches', Number.MAX_SAFE_INTEGER))
      .implies(implies),
    new Option(
      '--expected-points <k>',
      `PCT's k: the scheduling points its change points are spread over (default ${DEFAULT_EXPECTED_POINTS}; a report's schedule shows the points a run saw); implies --deterministic`,
    )
      .argParser(positiveInteger('--expected-points'))
      .implies(implies),
  ];
}

/** VmConfig.deterministic from the flags, or nothing when the run is not deterministic. */
export function deterministicConfig(options: DeterministicCommandOptions): Partial<VmConfig> {
  if (options.deterministic !== true) return {};
  return {
    deterministic: {
      seed: options.scheduleSeed ?? DEFAULT_SCHEDULE_SEED,
      strategy: options.strategy ?? DEFAULT_STRATEGY,
      depth: options.depth ?? DEFAULT_DEPTH,
      ...(options.maxSwitches === undefined ? {} : { maxSwitches: options.maxSwitches }),
      ...(options.expectedPoints === undefined ? {} : { expectedPoints: options.expectedPoints }),
    },
  };
}
