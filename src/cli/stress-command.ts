// `avic-smp stress`: one scenario run with a summary (or --json), an optional trace (Chrome JSON or
// ftrace text) and a progress bar on a terminal. Exit status 1 when anything is lost or a check fails.

import { type Command, Option } from 'commander';
import { runScenario } from '../scenarios/run-scenario.js';
import { oneOf, positiveInteger } from './arguments.js';
import { BadInput } from './bad-input.js';
import { checkOutputFile } from './output-file.js';
import { createRunProgress } from './progress.js';
import {
  patternOption,
  patternsHelp,
  runLengthOptions,
  vmConfigOverrides,
  vmSwitchOptions,
  type ScenarioCommandOptions,
} from './scenario-options.js';
import { formatStressSummary, summarizeStress } from './stress-summary.js';
import { addInjectOption } from './inject-option.js';
import { TRACE_FORMATS, TraceFormat, writeFtraceFile, writeTraceFile } from './trace-file.js';

interface StressOptions extends ScenarioCommandOptions {
  readonly vcpus: number;
  readonly hotAdd?: number;
  readonly trace?: string;
  readonly traceFormat?: TraceFormat;
}

async function stress(options: StressOptions): Promise<number> {
  if (options.traceFormat !== undefined && options.trace === undefined) throw new BadInput('--trace-format needs --trace FILE');
  if (options.trace !== undefined) checkOutputFile('--trace', options.trace);
  const definition = options.pattern;
  const vmConfig = vmConfigOverrides(options);
  const parameters = {
    vcpus: options.vcpus,
    seed: options.seed,
    ...(options.ipis === undefined ? {} : { ipis: options.ipis }),
    ...(options.seconds === undefined ? {} : { seconds: options.seconds }),
    ...(options.hotAdd === undefined ? {} : { hotAdd: options.hotAdd }),
  };
  const progress = createRunProgress({
    label: `${definition.name}, ${options.vcpus} vCPUs`,
    ...(options.seconds === undefined ? {} : { seconds: options.seconds }),
  });
  let outcome: Awaited<ReturnType<typeof runScenario>>;
  try {
    outcome = await runScenario(definition, parameters, {
      trace: options.trace !== undefined,
      onProgress: (sample) => progress.update(sample),
      vmConfig,
    });
  } finally {
    progress.stop();
  }
  const { result, vm } = outcome;
  const settings = {
    haltPolling: vm.config.haltPolling,
    ...(definition.latency === undefined ? {} : { latencyMeasures: definition.latency }),
  };
  let summary = summarizeStress(result, settings);
  let traceLine: string | undefined;
  // A trace that cannot be written must not cost the run's results: they are printed, then the error.
  let traceError: BadInput | undefined;
  if (options.trace !== undefined) {
    try {
      const written =
        options.traceFormat === TraceFormat.Ftrace
          ? writeFtraceFile(options.trace, vm.ftraceText())
          : writeTraceFile(options.trace, vm.chromeTrace(), { pattern: summary.pattern, vcpus: summary.vcpus, seed: summary.seed });
      summary = { ...summary, trace: written.path };
      traceLine =
        `trace: ${written.path} (${written.events.toLocaleString('en-US')} events` +
        `${written.droppedEvents > 0 ? `, ${written.droppedEvents.toLocaleString('en-US')} not recorded: buffers full` : ''}; open it in https://ui.perfetto.dev)`;
    } catch (error) {
      if (!(error instanceof BadInput)) throw error;
      traceError = error;
    }
  }
  if (options.json === true) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else process.stdout.write(`${formatStressSummary(summary)}\n${traceLine === undefined ? '' : `\n${traceLine}\n`}`);
  if (traceError !== undefined) throw traceError;
  return summary.ok ? 0 : 1;
}

export function addStressCommand(program: Command, setExitCode: (status: number) => void): Command {
  const command = program
    .command('stress')
    .description(
      "run one IPI scenario on N vCPUs and prove nothing is lost: IPI balance, rate, latency, exits by cause, doorbells, wake-ups, the scenario's checks and a per-vCPU table",
    )
    .addOption(patternOption())
    .addOption(
      new Option('--vcpus <n>', 'number of vCPUs, 1-255 (each pattern has its own range, listed below)')
        .argParser(positiveInteger('--vcpus', 255))
        .makeOptionMandatory(),
    );
  for (const option of runLengthOptions()) command.addOption(option);
  command.addOption(
    new Option('--hot-add <n>', 'hot-add N vCPUs at evenly spaced moments of a --seconds run (pattern hot-add; see --policy)').argParser(
      positiveInteger('--hot-add', 253),
    ),
  );
  command
    .option('--json', 'print one JSON object instead of the summary (latencies in ns; null when the pattern records none)')
    .addOption(new Option('--trace <file>', 'write a trace of the run (open it in Perfetto); --trace-format says which kind'))
    .addOption(
      new Option(
        '--trace-format <format>',
        'chrome (the default): Chrome trace-event JSON, one track per vCPU with its IPI sends, deliveries, ' +
          "exits, halts and wake-ups; ftrace: the text a KVM host's tracefs prints for the run (kvm_entry, kvm_exit, kvm_avic_*, " +
          "kvm_vcpu_wakeup, sched_switch per host CPU), to diff against a real host's trace",
      ).argParser(oneOf('trace format', TRACE_FORMATS)),
    );
  for (const option of vmSwitchOptions()) command.addOption(option);
  addInjectOption(command);
  command
    .addHelpText(
      'after',
      () => `
${patternsHelp()}

A progress bar appears on stderr when stderr is a terminal and the run lasts more than a second.
Exit status: 0 every IPI delivered and every check passed; 1 an IPI lost, a check failed or the
VM failed; 2 bad input.

Examples:
  avic-smp stress --pattern storm --vcpus 4 --seconds 3
  avic-smp stress --pattern hot-add --vcpus 4 --hot-add 4 --seconds 3 --policy rfc-v2`,
    )
    .action(async (options: StressOptions) => {
      setExitCode(await stress(options));
    });
  return command;
}
