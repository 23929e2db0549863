// `avic-smp conformance`: runs the conformance cases (src/conformance, docs/conformance.md) one after
// another and prints pass or fail per case with a detail. --json prints exactly
// { "cases": [ { "name", "status", "detail" } ] }. Exit status: 0 every case passed, 1 any failed,
// 2 bad input (an unknown --case, a bad --host-cpus). --host-cpus N schedules each case's vCPUs onto
// at most N host CPUs.

import { type Command, Option } from 'commander';
import { CONFORMANCE_CASES, CONFORMANCE_CASES_BY_NAME } from '../conformance/catalogue.js';
import type { ConformanceCase } from '../conformance/conformance-case.js';
import { runConformanceCase, type ConformanceResult } from '../conformance/run-conformance-case.js';
import { positiveInteger } from './arguments.js';
import { BadInput } from './bad-input.js';
import { deterministicConfig, deterministicOptions, type DeterministicCommandOptions } from './deterministic-options.js';
import { addInjectOption, injectConfig } from './inject-option.js';
import { injectedBugText } from './format-report.js';

interface ConformanceOptions extends DeterministicCommandOptions {
  readonly json?: boolean;
  readonly case: readonly string[];
  readonly list?: boolean;
  readonly hostCpus?: number;
  readonly inject?: string;
}

function selectCases(names: readonly string[]): readonly ConformanceCase[] {
  if (names.length === 0) return CONFORMANCE_CASES;
  return names.map((name) => {
    const found = CONFORMANCE_CASES_BY_NAME.get(name);
    if (found === undefined)
      throw new BadInput(`unknown conformance case '${name}'; the cases are: ${CONFORMANCE_CASES.map((entry) => entry.name).join(', ')}`);
    return found;
  });
}

function listCases(cases: readonly ConformanceCase[]): string {
  const width = Math.max(...cases.map((entry) => entry.name.length));
  return cases
    .map(
      (entry) =>
        `${entry.name.padEnd(width)}  ${entry.vcpus} vCPU${entry.vcpus === 1 ? ' ' : 's'}  ${entry.summary}\n${' '.repeat(width + 11)}from ${entry.origin}`,
    )
    .join('\n');
}

async function conformance(options: ConformanceOptions): Promise<number> {
  const cases = selectCases(options.case);
  const inject = injectConfig(options.inject);
  if (options.list === true) {
    process.stdout.write(`${listCases(cases)}\n`);
    return 0;
  }
  const results: ConformanceResult[] = [];
  const width = Math.max(...cases.map((entry) => entry.name.length));
  for (const entry of cases) {
    const result = await runConformanceCase(entry, {
      ...(options.hostCpus === undefined ? {} : { hostCpus: options.hostCpus }),
      ...deterministicConfig(options),
      ...inject,
    });
    results.push(result);
    if (options.json !== true)
      process.stdout.write(`${result.status === 'pass' ? 'PASS' : 'FAIL'}  ${result.name.padEnd(width)}  ${result.detail}\n`);
  }
  const failed = results.filter((result) => result.status === 'fail').length;
  if (options.json === true) {
    const cases = results.map(({ name, status, detail }) => ({ name, status, detail }));
    process.stdout.write(`${JSON.stringify({ cases }, null, 2)}\n`);
  } else {
    const hostCpus = options.hostCpus === undefined ? '' : ` on at most ${options.hostCpus} host CPU(s) each`;
    process.stdout.write(
      `\n${results.length - failed} of ${results.length} case(s) passed${failed > 0 ? `, ${failed} failed` : ''}${hostCpus}\n`,
    );
    if (options.inject !== undefined) process.stdout.write(`injected bug ${injectedBugText(options.inject)}\n`);
  }
  return failed === 0 ? 0 : 1;
}

export function addConformanceCommand(program: Command, setExitCode: (status: number) => void): Command {
  const command = program
    .command('conformance')
    .description(
      'run the conformance suite (the scenarios of kvm-unit-tests apic.c and smptest, and the KVM selftests xapic_state_test and recalc_apic_map_test, as guest programs); print pass or fail per case',
    )
    .option('--json', 'print { "cases": [ { "name", "status": "pass" | "fail", "detail" } ] } instead of one line per case')
    .option(
      '--case <name>',
      'run only this case (repeatable; see --list)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--list', 'list the cases (name, vCPUs, what each checks, where it comes from) without running them')
    .addOption(
      new Option(
        '--host-cpus <n>',
        "schedule each case's vCPUs onto at most N host CPUs (worker threads; a case with fewer vCPUs gets one per vCPU), 1 to 4096; default min(vCPUs, cores)",
      ).argParser(positiveInteger('--host-cpus', 4096)),
    );
  for (const option of deterministicOptions()) command.addOption(option);
  command
    .addHelpText(
      'after',
      `
Exit status: 0 every case passed; 1 a case failed; 2 bad input (an unknown --case, a bad --host-cpus, an unknown --inject).
Cases for features the emulator does not model yet fail with a detail saying what went wrong.

Examples:
  avic-smp conformance --case apic/self-ipi-xapic --case apic/logical-flat
  avic-smp conformance --host-cpus 1`,
    )
    .action(async (options: ConformanceOptions) => {
      setExitCode(await conformance(options));
    });
  return addInjectOption(command);
}
