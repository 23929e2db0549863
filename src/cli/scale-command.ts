// `avic-smp scale`: the same scenario at each vCPU count in turn (never in parallel: the runs would
// only measure each other), a table, --json, and an SVG chart. Exit status 1 if any row failed.

import { type Command, Option } from 'commander';
import { runScenario } from '../scenarios/run-scenario.js';
import type { ScenarioDefinition } from '../scenarios/scenario.js';
import { positiveIntegerList } from './arguments.js';
import { BadInput } from './bad-input.js';
import { checkOutputFile, writeOutputFile } from './output-file.js';
import { createRunProgress } from './progress.js';
import { renderScaleChart } from './scale-chart.js';
import {
  EFFICIENCY_DEFINITION,
  EXITS_PER_IPI_DEFINITION,
  formatScaleTable,
  scaleRow,
  type ScaleResult,
  type ScaleRow,
  type SkippedCount,
} from './scale-sweep.js';
import {
  patternOption,
  patternsHelp,
  runLengthOptions,
  vmConfigOverrides,
  vmSwitchOptions,
  type ScenarioCommandOptions,
} from './scenario-options.js';
import { addInjectOption } from './inject-option.js';

const DEFAULT_COUNTS = '1,2,4,8,16';

interface ScaleOptions extends ScenarioCommandOptions {
  readonly vcpus: number[];
  readonly svg?: string;
}

function allowedCounts(definition: ScenarioDefinition, counts: readonly number[]): { run: number[]; skipped: SkippedCount[] } {
  const allowed = (vcpus: number): boolean => vcpus >= definition.minimumVcpus && vcpus <= definition.maximumVcpus;
  const range =
    definition.minimumVcpus === definition.maximumVcpus
      ? `exactly ${definition.minimumVcpus}`
      : `${definition.minimumVcpus} to ${definition.maximumVcpus}`;
  return {
    run: counts.filter(allowed),
    skipped: counts.filter((vcpus) => !allowed(vcpus)).map((vcpus) => ({ vcpus, reason: `${definition.name} runs on ${range} vCPUs` })),
  };
}

async function scale(options: ScaleOptions): Promise<number> {
  if (options.svg !== undefined) checkOutputFile('--svg', options.svg);
  const definition = options.pattern;
  const { run, skipped } = allowedCounts(definition, options.vcpus);
  const vmConfig = vmConfigOverrides(options);
  if (run.length === 0) throw new BadInput(`none of --vcpus ${options.vcpus.join(',')} can run: ${skipped[0]?.reason ?? definition.name}`);
  for (const skip of skipped)
    process.stderr.write(`avic-smp: note: skipping ${skip.vcpus} vCPU${skip.vcpus === 1 ? '' : 's'}: ${skip.reason}\n`);
  const rows: ScaleRow[] = [];
  for (const [index, vcpus] of run.entries()) {
    const progress = createRunProgress({
      label: `${definition.name}, ${vcpus} vCPUs (${index + 1}/${run.length})`,
      ...(options.seconds === undefined ? {} : { seconds: options.seconds }),
    });
    try {
      const { result } = await runScenario(
        definition,
        {
          vcpus,
          seed: options.seed,
          ...(options.ipis === undefined ? {} : { ipis: options.ipis }),
          ...(options.seconds === undefined ? {} : { seconds: options.seconds }),
        },
        { onProgress: (sample) => progress.update(sample), vmConfig },
      );
      rows.push(scaleRow(result, rows[0]));
    } finally {
      progress.stop();
    }
  }
  let result: ScaleResult = {
    pattern: definition.name,
    seed: options.seed,
    requested: { ipis: options.seconds === undefined ? (options.ipis ?? definition.defaultIpis) : null, seconds: options.seconds ?? null },
    skipped,
    inject: options.inject ?? null,
    rows,
    ok: rows.every((row) => row.ok),
  };
  // A chart that cannot be written must not cost the sweep's results: they are printed, then the error.
  let svgError: BadInput | undefined;
  if (options.svg !== undefined) {
    try {
      writeOutputFile('--svg', options.svg, await renderScaleChart(result));
      result = { ...result, svg: options.svg };
    } catch (error) {
      if (!(error instanceof BadInput)) throw error;
      svgError = error;
    }
  }
  if (options.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${formatScaleTable(result)}\n${result.svg === undefined ? '' : `\nchart: ${result.svg}\n`}`);
  if (svgError !== undefined) throw svgError;
  return result.ok ? 0 : 1;
}

export function addScaleCommand(program: Command, setExitCode: (status: number) => void): Command {
  const command = program
    .command('scale')
    .description('run one IPI scenario at each vCPU count in turn and show how throughput, latency and exits scale')
    .addOption(patternOption())
    .addOption(
      new Option(
        '--vcpus <list>',
        'comma-separated vCPU counts, each 1-255; run in ascending order, counts the pattern cannot run are skipped with a note',
      )
        .argParser(positiveIntegerList('--vcpus', 255))
        .default(DEFAULT_COUNTS.split(',').map(Number), DEFAULT_COUNTS),
    );
  for (const option of runLengthOptions()) command.addOption(option);
  command
    .option('--json', 'print one JSON object { pattern, seed, requested, skipped, rows: [...], ok } instead of the table')
    .addOption(
      new Option('--svg <file>', 'write an SVG chart: throughput (IPIs/s) and p50/p99 latency (µs) against the vCPU count, log2 x axis'),
    );
  for (const option of vmSwitchOptions()) command.addOption(option);
  addInjectOption(command);
  command
    .addHelpText(
      'after',
      () => `
Columns: vCPUs; IPIs/s (IPIs delivered per second); p50 and p99 guest-measured latency in µs;
exits/IPI; efficiency; ok (nothing lost and every check passed).
  ${EXITS_PER_IPI_DEFINITION}
  ${EFFICIENCY_DEFINITION}

${patternsHelp()}

Exit status: 0 every row passed; 1 a row lost an IPI or failed a check; 2 bad input.

Example: avic-smp scale --pattern storm --vcpus 2,4,8,16 --seconds 1 --svg storm-scaling.svg`,
    )
    .action(async (options: ScaleOptions) => {
      setExitCode(await scale(options));
    });
  return command;
}
