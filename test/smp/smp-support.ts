// Setup only (no assertions here): assemble a guest program, create a VM, load it.
import { readFileSync } from 'node:fs';
import { assemble, formatDiagnostic, type ProgramImage } from '../../src/guest/assembler.js';
import { Vm, type RunOptions, type VmConfig } from '../../src/kvm/vm/vm.js';
import type { VmReport } from '../../src/kvm/report/vm-report.js';

export async function createGuestVm(source: string, config: VmConfig, fileName = 'test.s'): Promise<Vm> {
  return (await createGuest(source, config, fileName)).vm;
}

/** The VM and the assembled program (for its symbols). */
export async function createGuest(source: string, config: VmConfig, fileName = 'test.s'): Promise<{ vm: Vm; program: ProgramImage }> {
  const result = assemble(source, { fileName });
  if (!result.ok) throw new Error(result.errors.map(formatDiagnostic).join('\n'));
  const vm = await Vm.create(config);
  const { program } = result;
  vm.loadProgram(program);
  return { vm, program };
}

export async function runGuest(source: string, config: VmConfig, options: RunOptions = {}): Promise<VmReport> {
  const vm = await createGuestVm(source, config);
  return vm.run({ timeoutSeconds: 30, ...options });
}

export function example(name: string, overrides: Readonly<Record<string, number>> = {}): string {
  let source = readFileSync(new URL(`../../examples/${name}`, import.meta.url), 'utf8');
  for (const [constant, value] of Object.entries(overrides)) {
    const pattern = new RegExp(`(\\.equ\\s+${constant}\\s*,\\s*)[^;\\n]+`);
    if (!pattern.test(source)) throw new Error(`${name} has no .equ ${constant}`);
    source = source.replace(pattern, `$1${value}`);
  }
  return source;
}

/** A compact description of a report for assertion messages. */
export function summary(report: VmReport): string {
  return JSON.stringify({
    exit: report.exit,
    ipis: report.ipis,
    exits: report.exits,
    faults: report.faults.map((f) => f.description),
    errors: report.errors,
  });
}

/**
 * A guest in which each vCPU counts in its own 64-byte line (`counters`, room for `lines` vCPUs)
 * until the host sets `stop`, then reports done: the spinning workload of the scheduling tests.
 */
export function countingProgram(lines: number): string {
  return `
        .entry count
count:
        shl r5, r0, 6
        add r5, r5, counters
loop:
        ld32 r2, [r5]
        add r2, r2, 1
        st32 [r5], r2
        ld32 r3, [stop]
        beqz r3, loop
        li r1, 0
        hypercall HC_DONE
        .align 64
stop:     .word 0
        .align 64
counters: .zero 64 * ${lines}
`;
}
