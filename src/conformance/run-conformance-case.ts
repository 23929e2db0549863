// Runs one conformance case: program -> VM -> report -> verdict. Nothing a case does may crash the
// runner or hang it: a program that does not assemble, a VM that refuses the program (a feature not
// modelled yet, such as INIT-SIPI-SIPI bring-up), a guest fault (an MSR not implemented yet), a
// guest assertion, a timeout or a watchdog exit each become a failed case with a detail.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, formatDiagnostic, type ProgramImage } from '../guest/assembler.js';
import { packageRoot } from '../host/package-root.js';
import { Vm, type VmConfig } from '../kvm/vm/vm.js';
import type { VmReport } from '../kvm/report/vm-report.js';
import type { CaseVerdict, ConformanceCase } from './conformance-case.js';

export interface ConformanceResult {
  readonly name: string;
  readonly status: 'pass' | 'fail';
  readonly detail: string;
}

/** Directory of the conformance programs in the package (src/conformance/programs). */
export function conformanceProgramDirectory(): string {
  return join(packageRoot(), 'src', 'conformance', 'programs');
}

/** `.include "name"`: a file beside the program; no subdirectories, no '..'. */
function readInclude(name: string): string | undefined {
  if (name.includes('/') || name.includes('\\') || name.includes('..')) return undefined;
  const path = join(conformanceProgramDirectory(), name);
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

export type AssembledCase = { ok: true; program: ProgramImage } | { ok: false; detail: string };

/** Assembles a case's program with VCPUS and the case's own defines. */
export function assembleCase(testCase: ConformanceCase): AssembledCase {
  const path = join(conformanceProgramDirectory(), testCase.program);
  if (!existsSync(path)) return { ok: false, detail: `its program ${path} is missing` };
  const defines = new Map<string, number>([['VCPUS', testCase.vcpus], ...(testCase.defines ?? [])]);
  const result = assemble(readFileSync(path, 'utf8'), { fileName: testCase.program, defines, readInclude });
  if (!result.ok) return { ok: false, detail: `${testCase.program} does not assemble: ${result.errors.map(formatDiagnostic).join('; ')}` };
  return { ok: true, program: result.program };
}

/** "guest assertion failed: code 3, value 7" -> "... [code 3: the IPI was not handled]". */
function nameAbort(description: string, codes: ReadonlyMap<number, string>): string {
  const match = /guest assertion failed: code (\d+)/.exec(description);
  const meaning = match === null ? undefined : codes.get(Number(match[1]));
  return meaning === undefined ? description : `${description} [code ${match![1]}: ${meaning}]`;
}

/** Why a run did not end cleanly, or undefined when it did (every vCPU done with status 0, nothing lost). */
export function runFailure(report: VmReport, testCase: ConformanceCase): string | undefined {
  const problems = [
    ...report.faults.map((fault) => `vCPU ${fault.vcpu}: ${nameAbort(fault.description, testCase.abortCodes)}`),
    ...report.errors.map((error) => `vCPU ${error.vcpu}: ${error.message}`),
  ];
  if (report.exit.reason !== 'all-done') {
    const notDone = report.perVcpu.filter((entry) => !entry.guest.done).map((entry) => entry.vcpu);
    const exit = `run ended: ${report.exit.reason} (${report.exit.detail.split('\n')[0]})`;
    return [exit, ...problems, ...(notDone.length > 0 ? [`not done: vCPU ${notDone.slice(0, 8).join(', ')}`] : [])].join('; ');
  }
  if (problems.length > 0) return problems.join('; ');
  const badStatus = report.perVcpu.filter((entry) => entry.guest.doneStatus !== 0);
  if (badStatus.length > 0) return badStatus.map((entry) => `vCPU ${entry.vcpu} finished with status ${entry.guest.doneStatus}`).join('; ');
  if (report.ipis.lost !== 0)
    return `IPIs lost: accepted ${report.ipis.accepted} = delivered ${report.ipis.delivered} + pending ${report.ipis.pending} + lost ${report.ipis.lost}`;
  if (report.lostWakeups !== 0) return `${report.lostWakeups} lost wake-up(s)`;
  return undefined;
}

function verdictOf(testCase: ConformanceCase, report: VmReport): CaseVerdict {
  const failure = runFailure(report, testCase);
  return failure === undefined ? testCase.check(report) : { ok: false, detail: failure };
}

export interface ConformanceRunOptions {
  /**
   * Host CPUs to schedule the case's vCPUs onto (VmConfig.hostCpus); a case with fewer vCPUs gets
   * one host CPU per vCPU. Default: the VM's own default, min(vCPUs, cores).
   */
  readonly hostCpus?: number;
  /** A deterministic run's schedule (VmConfig.deterministic); default a parallel run. */
  readonly deterministic?: VmConfig['deterministic'];
  /** VmConfig.inject: a bug of the bug zoo (docs/bug-zoo.md) or its fixed twin, in every case's VM. */
  readonly inject?: string;
  /**
   * The host scheduler's knobs (VmConfig.quantumUs, VmConfig.pauseFilterCount) for every case's VM;
   * default the VM's own. A case's checks hold for any of them: they set only how often a spinning
   * vCPU gives way to another on its host CPU.
   */
  readonly scheduler?: Pick<VmConfig, 'quantumUs' | 'pauseFilterCount'>;
}

/** Runs one case; never throws for anything the case or the emulator does. */
export async function runConformanceCase(testCase: ConformanceCase, options: ConformanceRunOptions = {}): Promise<ConformanceResult> {
  const result = (verdict: CaseVerdict): ConformanceResult => ({
    name: testCase.name,
    status: verdict.ok ? 'pass' : 'fail',
    detail: verdict.detail,
  });
  const assembled = assembleCase(testCase);
  if (!assembled.ok) return result({ ok: false, detail: assembled.detail });
  const { program } = assembled;
  let vm: Vm;
  try {
    const hostCpus = options.hostCpus === undefined ? {} : { hostCpus: Math.min(options.hostCpus, testCase.vcpus) };
    const deterministic = options.deterministic === undefined ? {} : { deterministic: options.deterministic };
    const inject = options.inject === undefined ? {} : { inject: options.inject };
    vm = await Vm.create({ ...testCase.vmConfig, ...options.scheduler, vcpus: testCase.vcpus, ...hostCpus, ...inject, ...deterministic });
    vm.loadProgram(program);
  } catch (error) {
    return result({ ok: false, detail: `the VM refused the program: ${error instanceof Error ? error.message : String(error)}` });
  }
  try {
    const report = await vm.run({
      timeoutSeconds: testCase.timeoutSeconds,
      watchdogSeconds: Math.min(10, testCase.timeoutSeconds),
      stopTimeoutSeconds: 5,
    });
    return result(verdictOf(testCase, report));
  } catch (error) {
    return result({ ok: false, detail: `the run failed: ${error instanceof Error ? error.message : String(error)}` });
  }
}
