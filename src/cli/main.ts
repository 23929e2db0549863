// avic-smp: the command line (run, stress, scale, lockdep, conformance, explore). Exit status: 0 success; 1 the run failed (an IPI
// lost, a scenario check failed, a guest fault, a timeout, the watchdog); 2 bad input (arguments, an
// unreadable file, assembler errors, a vCPU count the pattern cannot run).

import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { positiveInteger, positiveNumber } from './arguments.js';
import { formatRunReport } from './format-report.js';
import { AssemblyFailed, runProgram } from '../run-program.js';
import { VmConfigError } from '../kvm/vm/vm.js';
import { ScenarioParameterError } from '../scenarios/run-scenario.js';
import { BadInput } from './bad-input.js';
import { includeFilesRelativeTo } from '../host/include-files.js';
import { addConformanceCommand } from './conformance-command.js';
import { addScaleCommand } from './scale-command.js';
import { EFFICIENCY_DEFINITION, EXITS_PER_IPI_DEFINITION } from './scale-sweep.js';
import {
  erratum1235Config,
  erratum1235Options,
  hostCpusOption,
  hostIdlePollConfig,
  hostIdlePollOption,
  lockdepOption,
  patternsHelp,
  policyOption,
  x2avicExtOption,
  x2avicOption,
} from './scenario-options.js';
import type { BackingPagePolicyName } from '../kvm/control/backing-page-policy.js';
import { addStressCommand } from './stress-command.js';
import { addLockdepCommand } from './lockdep-command.js';
import { deterministicConfig, deterministicOptions, type DeterministicCommandOptions } from './deterministic-options.js';
import { addExploreCommand } from './explore-command.js';
import { addInjectOption, injectConfig } from './inject-option.js';

export const ExitStatus = { Success: 0, RunFailed: 1, BadInput: 2 } as const;

function readSource(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new BadInput(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

export function buildProgram(): Command {
  const program = new Command('avic-smp')
    .description('A multi-threaded SMP emulator that models AMD AVIC IPI delivery the way KVM drives it.')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(text) });

  const [erratumOption, erratumWindowOption] = erratum1235Options() as [Option, Option];
  const run = program
    .command('run')
    .description('assemble a guest program and run it on N vCPUs; print the IPI and exit report')
    .argument('<program.s>', 'guest assembly source (see docs/guest-isa.md)')
    .addOption(
      new Option(
        '--vcpus <n>',
        'number of vCPUs (1-4096; above 255 the guest must use x2APIC; AVIC addresses 4096 with x2AVIC and its 4K extension, 512 without the extension, 255 without x2AVIC, and a larger VM runs with AVIC inhibited)',
      )
        .argParser(positiveInteger('--vcpus', 4096))
        .default(2),
    )
    .addOption(
      new Option('--seconds <s>', 'run for this long, then stop (default: until every vCPU is done or halted)').argParser(
        positiveNumber('--seconds'),
      ),
    )
    .addOption(
      new Option('--timeout <s>', 'without --seconds, fail if the guest has not finished by then')
        .argParser(positiveNumber('--timeout'))
        .default(60),
    )
    .addOption(new Option('--memory <MiB>', 'guest RAM in MiB').argParser(positiveInteger('--memory', 1024)).default(16))
    .option('--no-ipiv', 'IPI virtualization off: IsRunning is never shown to hardware, every IPI exits (the erratum #1235 work-around)')
    .addOption(erratumOption)
    .addOption(erratumWindowOption)
    .option('--no-halt-poll', 'no halt-polling: a halted vCPU sleeps at once')
    .addOption(policyOption())
    .addOption(lockdepOption())
    .addOption(x2avicOption())
    .addOption(hostCpusOption())
    .addOption(hostIdlePollOption())
    .addOption(x2avicExtOption());
  for (const option of deterministicOptions()) run.addOption(option);
  run
    .option('--json', 'print the report as one JSON object')
    .action(
      async (
        file: string,
        options: {
          hostCpus?: number;
          hostIdlePoll?: number;
          vcpus: number;
          seconds?: number;
          timeout: number;
          memory: number;
          ipiv: boolean;
          erratum1235?: boolean;
          erratum1235Window?: number;
          haltPoll: boolean;
          policy: BackingPagePolicyName;
          lockdep?: boolean;
          x2avic: boolean;
          x2avicExt: boolean;
          json?: boolean;
          inject?: string;
        } & DeterministicCommandOptions,
      ) => {
        const source = readSource(file);
        const report = await runProgram({
          source,
          fileName: file,
          readInclude: includeFilesRelativeTo(file),
          vcpus: options.vcpus,
          memoryBytes: options.memory * 1024 * 1024,
          ipiVirtualization: options.ipiv,
          ...erratum1235Config(options),
          ...injectConfig(options.inject),
          haltPolling: options.haltPoll,
          policy: options.policy,
          lockdep: options.lockdep === true,
          x2avic: options.x2avic,
          ...(options.hostCpus === undefined ? {} : { hostCpus: options.hostCpus }),
          ...hostIdlePollConfig(options),
          ...(options.x2avicExt || !options.x2avic ? {} : { x2avicExtended: false }),
          ...deterministicConfig(options),
          timeoutSeconds: options.timeout,
          ...(options.seconds === undefined ? {} : { seconds: options.seconds }),
        });
        process.stdout.write(options.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${formatRunReport(report)}\n`);
        process.exitCode = report.ok ? ExitStatus.Success : ExitStatus.RunFailed;
      },
    );
  addInjectOption(run);
  const setExitCode = (status: number): void => {
    process.exitCode = status;
  };
  const stress = addStressCommand(program, setExitCode);
  const scale = addScaleCommand(program, setExitCode);
  const lockdep = addLockdepCommand(program, setExitCode);
  const conformance = addConformanceCommand(program, setExitCode);
  const explore = addExploreCommand(program, setExitCode);
  program.addHelpText('after', () =>
    [
      '',
      `Options of run:\n${run.helpInformation()}`,
      `Options of stress:\n${stress.helpInformation()}`,
      `Options of scale:\n${scale.helpInformation()}`,
      `Options of lockdep:\n${lockdep.helpInformation()}`,
      `Options of conformance:\n${conformance.helpInformation()}`,
      `Options of explore:\n${explore.helpInformation()}`,
      patternsHelp(),
      '',
      'Columns of scale:',
      `  ${EXITS_PER_IPI_DEFINITION}`,
      `  ${EFFICIENCY_DEFINITION}`,
      '',
      'Exit status: 0 success; 1 the run failed (an IPI lost, a check failed, a guest fault, a timeout); 2 bad input.',
      'Run `avic-smp help <command>` for the details of one command (scale defines its columns there).',
      'Examples:',
      '  avic-smp run examples/halter-sender.s --vcpus 2',
      '  avic-smp stress --pattern storm --vcpus 4 --seconds 3',
      '  avic-smp scale --pattern storm --vcpus 2,4,8 --seconds 1 --svg storm.svg',
      '  avic-smp lockdep --scenario s5 (lockdep: exit 0 clean, 1 a possible deadlock or a deadlock, 2 bad input)',
      '  avic-smp conformance --json',
      '  avic-smp explore --pattern halter-sender --vcpus 2 --erratum-1235 --runs 50',
      '  avic-smp stress --pattern halter-sender --vcpus 2 --inject blocking-no-recheck (docs/bug-zoo.md; --inject list)',
    ].join('\n'),
  );
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? ExitStatus.Success);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? ExitStatus.Success : ExitStatus.BadInput;
    }
    if (error instanceof AssemblyFailed) {
      process.stderr.write(`${error.diagnostics.join('\n')}\n`);
      return ExitStatus.BadInput;
    }
    if (error instanceof BadInput || error instanceof VmConfigError || error instanceof ScenarioParameterError) {
      process.stderr.write(`avic-smp: ${error.message}\n`);
      return ExitStatus.BadInput;
    }
    process.stderr.write(`avic-smp: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return ExitStatus.RunFailed;
  }
}
