// `avic-smp explore`: runs one program (`run`), pattern (`stress`) or lock replay (`lockdep`) on many
// deterministic schedules, one seed per child process, J at a time; stops at the first failure (or
// runs them all with --keep-going), prints it with the exact command that replays it, shrinks that
// schedule to the fewest thread switches that still fail the same way, and sums up the seeds run,
// the failures and the distinct failure signatures (docs/explore.md). Exit status: 0 no run failed,
// 1 one did, 2 bad input (explore's own, or a subcommand's refusal of the arguments it passes on).

import { accessSync, constants, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import type { ExploreSubcommand } from '../explore/classify-failure.js';
import { SCHEDULE_STRATEGIES, ScheduleStrategy, seedArguments, type ExplorePlan } from '../explore/explore-plan.js';
import { exploreSeeds, RunRejectedArguments } from '../explore/explore-seeds.js';
import { childProcessRunner, type SeedRunner } from '../explore/seed-runner.js';
import { ExpectedPointsFrom, measureExpectedPoints, type ExpectedPoints } from '../explore/measure-points.js';
import { shrinkSchedule, type ShrinkResult } from '../explore/shrink-schedule.js';
import { findLockReplay, LOCK_REPLAYS } from '../scenarios/lock-scenarios/lock-replays.js';
import { SCENARIOS } from '../scenarios/catalogue.js';
import { nonNegativeInteger, oneOf, positiveInteger, positiveNumber } from './arguments.js';
import { BadInput } from './bad-input.js';
import { exploreJson, formatExplore } from './explore-output.js';
import { createRunProgress } from './progress.js';
import { wallClockMs } from '../host/host-thread.js';
import { erratum1235Options, hostCpusOption, lockdepOption, policyOption, x2avicExtOption, x2avicOption } from './scenario-options.js';

const RUN: readonly ExploreSubcommand[] = ['run'];
const RUN_STRESS: readonly ExploreSubcommand[] = ['run', 'stress'];
const STRESS_LOCKDEP: readonly ExploreSubcommand[] = ['stress', 'lockdep'];
const ALL: readonly ExploreSubcommand[] = ['run', 'stress', 'lockdep'];

/** An option explore hands on to the subcommand, and the subcommands that take it. */
interface PassThrough {
  readonly option: Option;
  readonly subcommands: readonly ExploreSubcommand[];
}

/** The subcommands' own options that explore passes on when given (their parsers check them early). */
function passThroughOptions(): PassThrough[] {
  const [erratum, erratumWindow] = erratum1235Options() as [Option, Option];
  return [
    { option: new Option('--vcpus <n>', 'vCPUs (run, stress, lockdep)').argParser(positiveInteger('--vcpus', 4096)), subcommands: ALL },
    { option: hostCpusOption(), subcommands: ALL },
    { option: new Option('--ipis <m>', 'IPI budget (stress, lockdep)').argParser(positiveInteger('--ipis')), subcommands: STRESS_LOCKDEP },
    { option: new Option('--seconds <s>', 'run length (run, stress)').argParser(positiveNumber('--seconds')), subcommands: RUN_STRESS },
    { option: new Option('--timeout <s>', "the guest's time limit (run)").argParser(positiveNumber('--timeout')), subcommands: RUN },
    { option: new Option('--memory <MiB>', 'guest RAM (run)').argParser(positiveInteger('--memory', 1024)), subcommands: RUN },
    {
      option: new Option('--hot-add <n>', 'vCPUs to hot-add (stress)').argParser(positiveInteger('--hot-add', 253)),
      subcommands: ['stress'],
    },
    {
      option: new Option('--watchdog <s>', "the replay's deadlock bound (lockdep)").argParser(positiveNumber('--watchdog')),
      subcommands: ['lockdep'],
    },
    { option: new Option('--no-validator', 'lock-order validator off (lockdep)'), subcommands: ['lockdep'] },
    { option: new Option('--inject <name>', 'a bug to inject (the subcommand checks the name)'), subcommands: ALL },
    { option: new Option('--no-ipiv', 'IPI virtualization off (run, stress)'), subcommands: RUN_STRESS },
    { option: erratum, subcommands: RUN_STRESS },
    { option: erratumWindow, subcommands: RUN_STRESS },
    { option: new Option('--no-halt-poll', 'no halt-polling (run, stress)'), subcommands: RUN_STRESS },
    { option: policyOption(), subcommands: RUN_STRESS },
    { option: lockdepOption(), subcommands: RUN_STRESS },
    { option: x2avicOption(), subcommands: RUN_STRESS },
    { option: x2avicExtOption(), subcommands: RUN_STRESS },
  ];
}

interface ExploreOptions {
  readonly pattern?: string;
  readonly lockScenario?: string;
  readonly runs: number;
  readonly seedStart: number;
  readonly jobs: number;
  readonly strategy: ScheduleStrategy;
  readonly depth?: number;
  readonly expectedPoints?: number;
  readonly maxSwitches?: number;
  readonly runTimeout: number;
  readonly keepGoing?: boolean;
  readonly shrink: boolean;
  readonly json?: boolean;
  readonly [passThrough: string]: unknown;
}

export interface ExploreDependencies {
  /** The seed runner for a run timeout (default: a child process per seed, this CLI's own bin). */
  readonly runner: (runTimeoutSeconds: number) => SeedRunner;
  readonly write: (text: string) => void;
  /** Where the progress bar goes (only if it is a terminal). Default process.stderr. */
  readonly progressStream?: NodeJS.WriteStream;
  /** The bar appears once exploring has lasted this long (progress.ts; default 1 s). */
  readonly progressAfterSeconds?: number;
}

const CLI_BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

export const REAL_EXPLORE_DEPENDENCIES: ExploreDependencies = {
  runner: (runTimeoutSeconds) => childProcessRunner({ bin: CLI_BIN, runTimeoutSeconds }),
  write: (text) => process.stdout.write(text),
};

function checkReadable(path: string): void {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) throw new BadInput(`cannot read ${path}: ENOENT`);
  if (stat.isDirectory()) throw new BadInput(`cannot read ${path}: EISDIR`);
  try {
    accessSync(path, constants.R_OK);
  } catch (error) {
    throw new BadInput(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** The subcommand and its leading arguments, from exactly one of <program.s>, --pattern, --lock-scenario. */
function targetOf(program: string | undefined, options: ExploreOptions): { subcommand: ExploreSubcommand; head: string[] } {
  const given = [program !== undefined, options.pattern !== undefined, options.lockScenario !== undefined].filter(Boolean).length;
  if (given !== 1) throw new BadInput('give exactly one of <program.s>, --pattern P or --lock-scenario F');
  if (program !== undefined) {
    checkReadable(program);
    return { subcommand: 'run', head: ['run', program] };
  }
  if (options.pattern !== undefined) return { subcommand: 'stress', head: ['stress', '--pattern', options.pattern] };
  const scenario = options.lockScenario!;
  if (findLockReplay(scenario) !== undefined) return { subcommand: 'lockdep', head: ['lockdep', '--scenario', scenario] };
  if (statSync(scenario, { throwIfNoEntry: false }) === undefined)
    throw new BadInput(
      `--lock-scenario ${scenario}: neither a built-in replay (${LOCK_REPLAYS.map((each) => each.name).join(', ')}) nor a file`,
    );
  checkReadable(scenario);
  return { subcommand: 'lockdep', head: ['lockdep', '--file', scenario] };
}

/** The subcommand's arguments: its head, then every pass-through option given on the command line. */
function planOf(command: Command, program: string | undefined, options: ExploreOptions): ExplorePlan {
  const { subcommand, head } = targetOf(program, options);
  const target = [...head];
  const given = (option: Option): boolean => command.getOptionValueSource(option.attributeName()) === 'cli';
  const subcommandFlag = { run: '<program.s>', stress: '--pattern', lockdep: '--lock-scenario' }[subcommand];
  for (const { option, subcommands } of passThroughOptions()) {
    if (!given(option)) continue;
    if (!subcommands.includes(subcommand))
      throw new BadInput(`${option.long} does not apply to ${subcommandFlag} (avic-smp ${subcommand} has no such option)`);
    const value = options[option.attributeName()];
    // A switch (--lockdep) or a negation (--no-ipiv) takes no value; commander's isBoolean() is false for a negation.
    target.push(option.long!, ...(option.isBoolean() || option.negate ? [] : [String(value)]));
  }
  // `--inject list` prints the catalogue and runs nothing: as a seed's run it would have no report.
  if (options['inject'] === 'list') throw new BadInput('explore runs one bug at a time: list them with `avic-smp run --inject list`');
  if (subcommand === 'stress' && options['vcpus'] === undefined) throw new BadInput('--pattern needs --vcpus N (as stress does)');
  if (options.expectedPoints !== undefined && options.strategy !== ScheduleStrategy.Pct)
    throw new BadInput("--expected-points is PCT's k: it needs --strategy pct");
  if (options.seedStart + options.runs - 1 > 0xffff_ffff)
    throw new BadInput(`--seed-start ${options.seedStart} with --runs ${options.runs} goes past the last seed, 4294967295`);
  return {
    subcommand,
    target,
    strategy: options.strategy,
    ...(options.depth === undefined ? {} : { depth: options.depth }),
    ...(options.expectedPoints === undefined ? {} : { expectedPoints: options.expectedPoints }),
    ...(options.maxSwitches === undefined ? {} : { maxSwitches: options.maxSwitches }),
  };
}

/** The progress bar (progress.ts: a terminal only), refreshed every 250 ms so the elapsed time moves between seeds. */
function tickingProgress(
  label: string,
  dependencies: ExploreDependencies,
  started: number,
): { done(fraction: number): void; stop(): void } {
  const bar = createRunProgress({
    label,
    ...(dependencies.progressStream === undefined ? {} : { stream: dependencies.progressStream }),
    ...(dependencies.progressAfterSeconds === undefined ? {} : { afterSeconds: dependencies.progressAfterSeconds }),
  });
  let fraction: number | undefined;
  const update = (): void =>
    bar.update({ elapsedSeconds: (wallClockMs() - started) / 1000, ...(fraction === undefined ? {} : { fraction }) });
  const timer = setInterval(update, 250);
  timer.unref();
  return {
    done(value) {
      fraction = value;
      update();
    },
    stop() {
      clearInterval(timer);
      bar.stop();
    },
  };
}

async function explore(
  command: Command,
  program: string | undefined,
  options: ExploreOptions,
  dependencies: ExploreDependencies,
): Promise<number> {
  let plan = planOf(command, program, options);
  const runner = dependencies.runner(options.runTimeout);
  const started = wallClockMs();
  // PCT's k: given, or the points one run of the first seed passes (measure-points.ts).
  let expectedPoints: ExpectedPoints | undefined;
  if (plan.strategy === ScheduleStrategy.Pct) {
    expectedPoints =
      plan.expectedPoints === undefined
        ? await measureExpectedPoints(
            plan,
            runner,
            { firstSeed: options.seedStart, seeds: options.runs, jobs: options.jobs },
            options.runTimeout,
          )
        : { k: plan.expectedPoints, from: ExpectedPointsFrom.Option };
    if (expectedPoints.k !== undefined) plan = { ...plan, expectedPoints: expectedPoints.k };
  }
  const settings = { plan, seedStart: options.seedStart, runs: options.runs, jobs: options.jobs, keepGoing: options.keepGoing === true };
  const progress = tickingProgress(`explore ${plan.subcommand}, ${options.runs} seeds`, dependencies, started);
  let result;
  try {
    result = await exploreSeeds({
      ...settings,
      runner,
      runTimeoutSeconds: options.runTimeout,
      onSeedDone: (done) => progress.done(done / options.runs),
    });
  } catch (error) {
    if (error instanceof RunRejectedArguments) throw new BadInput(error.message);
    throw error;
  } finally {
    progress.stop();
  }
  const durationSeconds = (wallClockMs() - started) / 1000;
  const first = result.failures[0];
  let shrink: ShrinkResult | string | undefined;
  if (first !== undefined && options.shrink) {
    const switches = first.failure.switches;
    if (switches === undefined) shrink = 'the failing run has no schedule in its report (a run timeout or a crash): nothing to shrink';
    else if (switches === 0) shrink = 'the failing run made no thread switch';
    else {
      const shrinking = tickingProgress(`shrinking seed ${first.seed} (${switches} switches)`, dependencies, wallClockMs());
      try {
        shrink = await shrinkSchedule({
          plan,
          runner,
          seed: first.seed,
          signature: first.failure.signature,
          switches,
          runTimeoutSeconds: options.runTimeout,
        });
      } catch (error) {
        // The failure found stands; only its shrinking failed.
        if (!(error instanceof RunRejectedArguments)) throw error;
        shrink = `the re-runs refused their arguments: ${error.childMessage.replace(/^avic-smp: /, '')}`;
      } finally {
        shrinking.stop();
      }
    }
  }
  const json = exploreJson(
    { ...settings, expectedPoints },
    result,
    durationSeconds,
    first === undefined ? undefined : seedArguments(plan, first.seed),
    shrink,
  );
  dependencies.write(options.json === true ? `${JSON.stringify(json, null, 2)}\n` : `${formatExplore(json)}\n`);
  return json.ok ? 0 : 1;
}

export function addExploreCommand(
  program: Command,
  setExitCode: (status: number) => void,
  dependencies: ExploreDependencies = REAL_EXPLORE_DEPENDENCIES,
): Command {
  const command = program
    .command('explore')
    .description(
      'run a program, a pattern or a lock replay on many deterministic schedules (one seed each, in parallel processes); stop at the first failure and print the command that replays it, shrunk to the fewest thread switches',
    )
    .argument('[program.s]', 'a guest program to explore (as `avic-smp run`)')
    .addOption(
      new Option('--pattern <name>', 'explore an IPI scenario (as `avic-smp stress --pattern`)').argParser(
        (text) => oneOf('pattern', SCENARIOS)(text).name,
      ),
    )
    .addOption(
      new Option('--lock-scenario <F>', 'explore a lock replay (as `avic-smp lockdep --scenario F`) or a lock scenario file (`--file F`)'),
    )
    .addOption(new Option('--runs <n>', 'seeds to run').argParser(positiveInteger('--runs')).default(100))
    .addOption(new Option('--seed-start <s>', 'the first seed').argParser(nonNegativeInteger('--seed-start')).default(1))
    .addOption(
      new Option('--jobs <j>', 'runs at a time (child processes)')
        .argParser(positiveInteger('--jobs', 256))
        .default(availableParallelism(), 'the cores'),
    )
    .addOption(
      new Option('--strategy <name>', 'schedule strategy: random (a random thread at each point) or pct (priority change points)')
        .argParser(oneOf('strategy', SCHEDULE_STRATEGIES, 'strategies'))
        .default(ScheduleStrategy.Random),
    )
    .addOption(new Option('--depth <d>', "pct's bug depth: priority change points per run").argParser(positiveInteger('--depth', 1000)))
    .addOption(
      new Option(
        '--expected-points <k>',
        "pct's k: the scheduling points its change points are spread over (default: the points one run of the first seed passes)",
      ).argParser(positiveInteger('--expected-points')),
    )
    .addOption(new Option('--max-switches <n>', 'at most N thread switches per run').argParser(nonNegativeInteger('--max-switches')))
    .addOption(
      new Option('--run-timeout <s>', 'a run that has not ended after S seconds is killed and counted as a hang')
        .argParser(positiveNumber('--run-timeout'))
        .default(60),
    )
    .option('--keep-going', 'run every seed, collecting the distinct failure signatures, instead of stopping at the first failure')
    .option('--no-shrink', 'print the failing schedule as found, without shrinking it')
    .option('--json', 'print one JSON object (docs/json.md)');
  for (const { option } of passThroughOptions()) command.addOption(option);
  command
    .addHelpText(
      'after',
      `
Every seed runs \`avic-smp <run|stress|lockdep> ... --deterministic --schedule-seed S --strategy X [--depth d]
[--expected-points k] [--max-switches n] --json\` in its own process. With --strategy pct and no
--expected-points, one run of the first seed measures k (the scheduling points it passes) first.
A run fails on a lost IPI, a lost wake-up, a hang (the watchdog, a timeout, or no result within
--run-timeout), a lockdep report or deadlock, a guest fault or failure status, a failed scenario
check, or a crash. The options after --json are handed
on to the subcommand that takes them.
A progress bar appears on stderr when it is a terminal.
Exit status: 0 no run failed; 1 a run failed; 2 bad input.

Examples:
  avic-smp explore examples/halter-sender.s --vcpus 2 --runs 200
  avic-smp explore --pattern halter-sender --vcpus 2 --erratum-1235 --runs 50 --strategy pct --depth 3
  avic-smp explore --lock-scenario s1 --runs 20 --keep-going --json`,
    )
    .action(async (file: string | undefined, options: ExploreOptions) => {
      setExitCode(await explore(command, file, options, dependencies));
    });
  return command;
}
