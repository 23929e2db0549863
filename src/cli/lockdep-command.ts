// `avic-smp lockdep`: the lock-order replays of docs/lock-scenarios.md (--scenario NAME, --list) on a real VM, and
// user-defined lock scenarios (--file F, docs/lock-scenarios.md), with the validator on (default)
// or off (--no-validator: a real deadlock, caught by the watchdog). Text output: the splat or the
// wait-for graph, then a verdict line; --json: one object. Exit status: 0 clean, 1 a possible
// deadlock or a deadlock was found (or the run failed otherwise), 2 bad input.

import { type Command, Option } from 'commander';
import { LOCK_REPLAYS, findLockReplay, type LockReplayOutcome, type LockReplayWorkload } from '../scenarios/lock-scenarios/lock-replays.js';
import { loadLockScenarioFile, LockScenarioFileError } from '../lockdep/scenario-file.js';
import { runLockScenario } from '../scenarios/lock-scenarios/scenario-file-runner.js';
import { assembleScenario } from '../scenarios/run-scenario.js';
import { resolveParameters } from '../scenarios/scenario-parameters.js';
import { storm } from '../scenarios/storm.js';
import { hotAdd } from '../scenarios/hot-add.js';
import { positiveInteger, positiveNumber } from './arguments.js';
import { BadInput } from './bad-input.js';
import { formatIpiBalance, injectedBugText, scheduleText } from './format-report.js';
import type { ScheduleSummary } from '../host/deterministic/deterministic-schedule.js';
import { addInjectOption, injectConfig } from './inject-option.js';
import { deterministicConfig, deterministicOptions, type DeterministicCommandOptions } from './deterministic-options.js';

/** The storm scenario's program (every vCPU sends IPIs to the others) with a budget of `ipis`. */
/**
 * The replays' guest workload: the storm scenario's program, or, when the VM has room for hot-added
 * vCPUs (the rfc-v2 replays), the hot-add scenario's, whose senders cope with a growing vCPU count.
 */
export function stormWorkload(ipis = 20_000): LockReplayWorkload {
  return {
    load: (vm) => {
      const growing = vm.config.maxVcpus > vm.config.vcpus;
      const definition = growing ? hotAdd : storm;
      const parameters = resolveParameters(definition, { vcpus: vm.config.vcpus, ipis, seed: 1 });
      const program = assembleScenario(definition, parameters, growing ? new Map([['MAX_VCPUS', vm.config.maxVcpus]]) : undefined);
      vm.loadProgram(program);
    },
  };
}

interface LockdepOptions extends DeterministicCommandOptions {
  readonly list?: boolean;
  readonly scenario?: string;
  readonly file?: string;
  readonly validator: boolean;
  readonly json?: boolean;
  readonly vcpus: number;
  readonly watchdog: number;
  readonly ipis: number;
  readonly hostCpus?: number;
  readonly inject?: string;
}

/** What --json prints (and the text output is made of). */
export interface LockdepCommandResult {
  readonly scenario: string;
  readonly verdict: LockReplayOutcome['verdict'];
  readonly cycle: readonly string[];
  readonly report: string;
  readonly validator: boolean;
  readonly ipis?: LockReplayOutcome['ipis'];
  readonly problems: readonly string[];
  /** A deterministic replay's schedule (docs/deterministic.md), as run and stress report it: explore measures k and shrinks from it. */
  readonly schedule?: ScheduleSummary;
}

/**
 * 0 only for a clean verdict with no problems and nothing lost: a lost IPI fails the run whatever
 * else it shows (rfc-v2's replays, whose losses are the design's and not listed as problems, too).
 */
export function lockdepExitStatus(result: Pick<LockdepCommandResult, 'verdict' | 'problems' | 'ipis'>): number {
  return result.verdict === 'clean' && result.problems.length === 0 && (result.ipis?.lost ?? 0) === 0 ? 0 : 1;
}

/** `hostCpus`: the replay VM's host CPUs, named on the first line when the user chose them. */
export function formatLockdepResult(result: LockdepCommandResult, hostCpus?: number): string {
  const lines = [
    `lockdep ${result.scenario}: validator ${result.validator ? 'on' : 'off'}${hostCpus === undefined ? '' : `, ${hostCpus} host CPU(s)`}`,
  ];
  if (result.report !== '') lines.push('', result.report, '');
  if (result.ipis !== undefined) lines.push(formatIpiBalance(result.ipis));
  if (result.schedule !== undefined) lines.push(scheduleText(result.schedule));
  for (const problem of result.problems) lines.push(`problem: ${problem}`);
  const cycle = result.cycle.length === 0 ? '' : ` (${result.cycle.join(' -> ')})`;
  const meaning = {
    'possible-deadlock': 'the validator saw both orders of a cycle',
    deadlock: 'threads stayed blocked past the watchdog bound',
    clean: 'no possible deadlock, nothing stuck',
  };
  lines.push(`verdict: ${result.verdict}${cycle}: ${meaning[result.verdict]}`);
  return lines.join('\n');
}

function listText(): string {
  const width = Math.max(...LOCK_REPLAYS.map((replay) => replay.name.length));
  return LOCK_REPLAYS.map((replay) => `${replay.name.padEnd(width)}  ${replay.description}`).join('\n');
}

async function lockdep(options: LockdepOptions): Promise<number> {
  const chosen = [options.list === true, options.scenario !== undefined, options.file !== undefined].filter(Boolean).length;
  if (chosen !== 1) throw new BadInput('give exactly one of --list, --scenario NAME or --file F');
  if (options.list === true) {
    process.stdout.write(`${listText()}\n`);
    return 0;
  }
  if (options.hostCpus !== undefined && options.file !== undefined)
    throw new BadInput('--host-cpus applies to a replay (--scenario): a scenario file runs on threads, not vCPUs');
  if (options.deterministic === true && options.file !== undefined)
    throw new BadInput('--deterministic applies to a replay (--scenario): a scenario file runs on its own threads, not on a VM');
  if (options.hostCpus !== undefined && options.hostCpus > options.vcpus)
    throw new BadInput(`--host-cpus must be at most --vcpus (${options.vcpus}), got ${options.hostCpus}`);
  if (options.inject !== undefined && options.file !== undefined)
    throw new BadInput('--inject applies to a replay (--scenario): a scenario file runs on threads, not vCPUs');
  const inject = injectConfig(options.inject);
  let result: LockdepCommandResult;
  let hostCpus: number | undefined;
  if (options.scenario !== undefined) {
    const replay = findLockReplay(options.scenario);
    if (replay === undefined)
      throw new BadInput(
        `unknown lock scenario "${options.scenario}"; the scenarios are: ${LOCK_REPLAYS.map((each) => each.name).join(', ')}`,
      );
    const outcome = await replay.run({
      validator: options.validator,
      workload: stormWorkload(options.ipis),
      vcpus: options.vcpus,
      watchdogSeconds: options.watchdog,
      ...(options.hostCpus === undefined ? {} : { hostCpus: options.hostCpus }),
      ...deterministicConfig(options),
      ...inject,
    });
    if (options.hostCpus !== undefined) hostCpus = outcome.vmReport?.hostCpuCount;
    result = {
      scenario: outcome.scenario,
      verdict: outcome.verdict,
      cycle: outcome.cycle,
      report: outcome.report,
      validator: outcome.validator,
      ...(outcome.ipis === undefined ? {} : { ipis: outcome.ipis }),
      problems: outcome.problems,
      ...(outcome.vmReport?.schedule === undefined ? {} : { schedule: outcome.vmReport.schedule }),
    };
  } else {
    const file = options.file!;
    let scenario;
    try {
      scenario = loadLockScenarioFile(file);
    } catch (error) {
      if (error instanceof LockScenarioFileError) throw new BadInput(error.message);
      throw error;
    }
    result = await runLockScenario(scenario, { validator: options.validator, watchdogMs: options.watchdog * 1000 });
  }
  process.stdout.write(options.json === true ? `${JSON.stringify(result, null, 2)}\n` : `${formatLockdepResult(result, hostCpus)}\n`);
  if (options.json !== true && options.inject !== undefined) process.stdout.write(`injected bug ${injectedBugText(options.inject)}\n`);
  return lockdepExitStatus(result);
}

export function addLockdepCommand(program: Command, setExitCode: (status: number) => void): Command {
  const command = program
    .command('lockdep')
    .description(
      'reproduce lock-ordering problems: replays of real KVM slots_lock/SRCU bugs and their fixes on a running VM, or your own lock scenario file; report a possible deadlock (validator) or a real one (watchdog)',
    )
    .option('--list', 'list the built-in scenarios, one line each')
    .addOption(new Option('--scenario <name>', 'run a built-in replay (see --list)'))
    .addOption(new Option('--file <F>', 'run a lock scenario file, JSON or YAML (docs/lock-scenarios.md)'))
    .option(
      '--no-validator',
      'run without the lock-order validator: a buggy order then really deadlocks and the watchdog tears the run down',
    )
    .option('--json', 'print one JSON object: scenario, verdict, cycle, report, validator, ipis, problems (and schedule, deterministic)')
    .addOption(
      new Option('--vcpus <n>', "vCPUs of a replay's VM (at least what it needs)").argParser(positiveInteger('--vcpus', 254)).default(2),
    )
    .addOption(new Option('--ipis <n>', "IPI budget of the replay VM's storm program").argParser(positiveInteger('--ipis')).default(20_000))
    .addOption(
      new Option(
        '--host-cpus <n>',
        "host CPUs (worker threads) a replay's vCPUs are scheduled onto, 1 to --vcpus; default min(vCPUs, cores)",
      ).argParser(positiveInteger('--host-cpus', 254)),
    )
    .addOption(
      new Option('--watchdog <s>', 'seconds threads may stay blocked before the watchdog calls it a deadlock')
        .argParser(positiveNumber('--watchdog'))
        .default(2),
    );
  for (const option of deterministicOptions()) command.addOption(option);
  command
    .addHelpText(
      'after',
      `
Verdicts: possible-deadlock (the validator saw both orders of a cycle; buggy replays then back out),
deadlock (threads stayed blocked past the watchdog bound: the wait-for graph is printed and the run
torn down), clean.
Exit status: 0 clean; 1 a possible deadlock or a deadlock (or the run failed otherwise, or lost an
IPI); 2 bad input (an unknown scenario, a bad scenario file: its errors name the file, line and
step; --host-cpus above --vcpus or with --file).

Examples:
  avic-smp lockdep --list
  avic-smp lockdep --scenario s1
  avic-smp lockdep --scenario s5 --no-validator --watchdog 1
  avic-smp lockdep --scenario s1 --vcpus 3 --host-cpus 1
  avic-smp lockdep --file examples/locks/abba.yaml --json`,
    )
    .action(async (options: LockdepOptions) => {
      setExitCode(await lockdep(options));
    });
  return addInjectOption(command);
}
