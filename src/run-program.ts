// One call from assembly source to a report: assemble, create the VM, load, run.

import { assemble, formatDiagnostic, type IncludeReader, type ProgramImage } from './guest/assembler.js';
import { Vm, type RunOptions, type StartOptions, type VmConfig } from './kvm/vm/vm.js';
import type { VmReport } from './kvm/report/vm-report.js';

export interface RunProgramOptions extends VmConfig, RunOptions, StartOptions {
  readonly source: string;
  readonly fileName: string;
  /** Supplies `.include` files (AssemblerOptions.readInclude); without it every .include is an error. */
  readonly readInclude?: IncludeReader;
}

export class AssemblyFailed extends Error {
  override readonly name = 'AssemblyFailed';
  readonly diagnostics: readonly string[];
  constructor(diagnostics: readonly string[]) {
    super(diagnostics.join('\n'));
    this.diagnostics = diagnostics;
  }
}

export function assembleOrThrow(source: string, fileName: string, readInclude?: IncludeReader): ProgramImage {
  const result = assemble(source, { fileName, ...(readInclude === undefined ? {} : { readInclude }) });
  if (!result.ok) throw new AssemblyFailed(result.errors.map(formatDiagnostic));
  return result.program;
}

export async function runProgram(options: RunProgramOptions): Promise<VmReport> {
  const program = assembleOrThrow(options.source, options.fileName, options.readInclude);
  const vm = await Vm.create(options);
  vm.loadProgram(program);
  return vm.run(options);
}
