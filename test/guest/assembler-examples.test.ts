// The shipped example programs and the guest ISA reference must stay in step with the assembler:
// every example and every `asm` block of docs/guest-isa.md assembles, and the reference mentions
// every mnemonic, directive and predefined symbol.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PREDEFINED_SYMBOLS } from '../../src/guest/assembler-predefined-symbols.js';
import { Directive } from '../../src/guest/assembler-statements.js';
import { assemble, formatDiagnostic, type ProgramImage } from '../../src/guest/assembler.js';
import { Hypercall } from '../../src/guest/hypercall.js';
import { INSTRUCTIONS } from '../../src/guest/instruction-set.js';
import { ApicRegister } from '../../src/hw/apic/apic-register.js';

const EXAMPLES_DIRECTORY = new URL('../../examples/', import.meta.url);
const REFERENCE = readFileSync(new URL('../../docs/guest-isa.md', import.meta.url), 'utf8');

function assembleFile(source: string, fileName: string): ProgramImage {
  const result = assemble(source, { fileName });
  if (!result.ok) expect.fail(result.errors.map(formatDiagnostic).join('\n'));
  return result.program;
}

function example(name: string): ProgramImage {
  return assembleFile(readFileSync(new URL(name, EXAMPLES_DIRECTORY), 'utf8'), name);
}

function symbol(program: ProgramImage, name: string): number {
  const value = program.symbols.get(name);
  if (value === undefined) expect.fail(`${program.fileName} defines no '${name}'`);
  return value;
}

describe('examples/*.s', () => {
  const files = readdirSync(EXAMPLES_DIRECTORY).filter((name) => name.endsWith('.s'));

  it('includes the three shipped programs', () => {
    expect(files).toEqual(expect.arrayContaining(['halter-sender.s', 'spinlock-counter.s', 'all-to-all.s']));
  });

  it.each(files)('%s assembles', (name) => {
    const program = example(name);
    expect(program.instructionCount).toBeGreaterThan(0);
  });

  it('halter-sender.s: vCPU 0 halts, vCPU 1 sends IPI_COUNT IPIs of vector 0xA5', () => {
    const program = example('halter-sender.s');
    expect(program.entryPoints.perVcpu.get(0)).toBe(symbol(program, 'halter'));
    expect(program.entryPoints.perVcpu.get(1)).toBe(symbol(program, 'sender'));
    expect(program.entryPoints.default).toBe(symbol(program, 'idle'));
    expect(symbol(program, 'IPI_COUNT')).toBe(100000);
    const ivt = symbol(program, 'ivt');
    const view = new DataView(program.bytes.buffer, program.bytes.byteOffset);
    expect(view.getUint32(ivt - program.origin + 4 * 0xa5, true)).toBe(symbol(program, 'ipi_handler'));
    for (const counter of ['ipis_sent', 'ipis_rcvd', 'hlt_count', 'wake_count', 'stop', 'halter_done']) {
      expect(symbol(program, counter) % 4).toBe(0);
    }
  });

  it('spinlock-counter.s and all-to-all.s keep their shared words aligned for the atomics', () => {
    const spinlock = example('spinlock-counter.s');
    for (const name of ['lock', 'counter', 'finished']) expect(symbol(spinlock, name) % 4).toBe(0);
    const allToAll = example('all-to-all.s');
    for (const name of ['arrived', 'records']) expect(symbol(allToAll, name) % 64).toBe(0);
  });
});

describe('docs/guest-isa.md', () => {
  const blocks = [...REFERENCE.matchAll(/```asm\n([\s\S]*?)```/g)].map((match) => match[1] as string);

  it('holds two complete example programs', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });

  it.each(blocks.map((block, index) => [index + 1, block] as const))('asm block %i assembles', (index, block) => {
    assembleFile(block, `guest-isa.md block ${index}`);
  });

  it('documents every mnemonic, directive and predefined symbol', () => {
    const names = [...INSTRUCTIONS.map((definition) => definition.mnemonic), ...Object.values(Directive), ...PREDEFINED_SYMBOLS.keys()];
    // In code: `name` alone, or starting a longer example such as `.equ NAME, expr`.
    const missing = names.filter((name) => !REFERENCE.includes(`\`${name}\``) && !REFERENCE.includes(`\`${name} `));
    expect(missing).toEqual([]);
  });
});

describe('predefined symbols', () => {
  it('take the APIC offsets from the APIC model and the hypercall numbers from the host contract', () => {
    const expected: Record<string, number> = {
      APIC_BASE: 0xfee00000,
      APIC_ID: ApicRegister.Id,
      APIC_LVR: ApicRegister.Version,
      APIC_TASKPRI: 0x80,
      APIC_TPR: 0x80,
      APIC_ARBPRI: 0x90,
      APIC_PROCPRI: 0xa0,
      APIC_PPR: 0xa0,
      APIC_EOI: 0xb0,
      APIC_RRR: 0xc0,
      APIC_LDR: 0xd0,
      APIC_DFR: 0xe0,
      APIC_SPIV: 0xf0,
      APIC_SVR: 0xf0,
      APIC_ISR: 0x100,
      APIC_TMR: 0x180,
      APIC_IRR: 0x200,
      APIC_ESR: 0x280,
      APIC_ICR: 0x300,
      APIC_ICR2: 0x310,
      APIC_LVTT: 0x320,
      APIC_LVTTHMR: 0x330,
      APIC_LVTPC: 0x340,
      APIC_LVT0: 0x350,
      APIC_LVT1: 0x360,
      APIC_LVTERR: 0x370,
      APIC_TMICT: 0x380,
      APIC_TMCCT: 0x390,
      APIC_TDCR: 0x3e0,
      APIC_DM_FIXED: 0,
      APIC_DM_LOWEST: 0x100,
      APIC_DM_SMI: 0x200,
      APIC_DM_NMI: 0x400,
      APIC_DM_INIT: 0x500,
      APIC_DM_STARTUP: 0x600,
      APIC_DEST_PHYSICAL: 0,
      APIC_DEST_LOGICAL: 0x800,
      APIC_ICR_BUSY: 0x1000,
      APIC_INT_ASSERT: 0x4000,
      APIC_INT_LEVELTRIG: 0x8000,
      APIC_DEST_SELF: 0x40000,
      APIC_DEST_ALLINC: 0x80000,
      APIC_DEST_ALLBUT: 0xc0000,
      APIC_DEST_SHIFT: 24,
      APIC_SPIV_APIC_ENABLED: 0x100,
      APIC_DFR_FLAT: 0xffffffff,
      APIC_DFR_CLUSTER: 0x0fffffff,
      MSR_IA32_APICBASE: 0x1b,
      MSR_IA32_TSC: 0x10,
      MSR_IA32_APICBASE_BSP: 0x100,
      MSR_IA32_APICBASE_ENABLE: 0x800,
      X2APIC_ENABLE: 0x400,
      APIC_BASE_MSR: 0x800,
      APIC_SELF_IPI: 0x3f0,
      APIC_ESR_SENDILL: 0x20,
      APIC_ESR_RECVILL: 0x40,
      APIC_ESR_ILLREGA: 0x80,
      IF_FLAG: 0x200,
      HC_DONE: Hypercall.Done,
      HC_REPORT: Hypercall.Report,
      HC_COUNT: Hypercall.Count,
      HC_LATENCY_SAMPLE: Hypercall.LatencySample,
      HC_LATENCY_RESET: Hypercall.LatencyReset,
      HC_PRINT: Hypercall.Print,
      HC_ABORT: Hypercall.Abort,
      HC_VCPU_RUN_STATE: Hypercall.VcpuRunState,
      VCPU_STATE_RUNNING: 1,
      VCPU_STATE_BLOCKED: 2,
      VCPU_STATE_FINISHED: 4,
    };
    expect(Object.fromEntries(PREDEFINED_SYMBOLS)).toEqual(expected);
    expect(Hypercall).toEqual({ Done: 0, Report: 1, Count: 2, LatencySample: 3, Print: 4, Abort: 5, VcpuRunState: 6, LatencyReset: 7 });
  });

  it('can be used in any expression', () => {
    const program = assembleFile('li r1, APIC_BASE + APIC_ICR\nhypercall HC_LATENCY_SAMPLE', 'x.s');
    const view = new DataView(program.bytes.buffer, program.bytes.byteOffset);
    expect(view.getUint32(4, true)).toBe(0xfee00300);
    expect(view.getUint32(12, true)).toBe(3);
  });
});
