// Vm.loadProgram takes the assembled ProgramImage as assemble() returns it: every entry point (the
// default one and each ".entry label, N"), so a program written for per-vCPU roles runs as written.
// A VM in which no vCPU has anything to run is an error, not a successful run of nothing.

import { describe, expect, it } from 'vitest';
import { assemble, type ProgramImage } from '../../src/guest/assembler.js';
import { Vm, VmConfigError } from '../../src/kvm/vm/vm.js';
import { example, summary } from './smp-support.js';

function assembled(source: string, fileName = 'test.s', files: Readonly<Record<string, string>> = {}): ProgramImage {
  const result = assemble(source, { fileName, readInclude: (name) => files[name] });
  if (!result.ok) throw new Error(result.errors.map(String).join('\n'));
  return result.program;
}

describe('Vm.loadProgram(program image)', () => {
  it('starts each vCPU at its own .entry: the halter halts, the sender sends every IPI', async () => {
    const program = assembled(example('halter-sender.s', { IPI_COUNT: 2000 }), 'halter-sender.s');
    const vm = await Vm.create({ vcpus: 2 });
    vm.loadProgram(program);
    const report = await vm.run({ timeoutSeconds: 60 });

    expect(report.ok, summary(report)).toBe(true);
    expect(report.exit.reason, summary(report)).toBe('all-done');
    // vCPU 1 (".entry sender, SENDER") sent IPI_COUNT + 1 (the last one wakes the halter to stop).
    expect(report.perVcpu[1]!.counters.ipisSent).toBe(2001);
    expect(report.ipis.delivered).toBe(2001);
    expect(report.perVcpu[0]!.counters.haltExits).toBeGreaterThan(0);
  });

  it('refuses to start when no created vCPU has an entry point (the only one is for a vCPU not yet hot-added)', async () => {
    const vm = await Vm.create({ vcpus: 2, maxVcpus: 4 });
    vm.loadProgram(
      assembled(`
        .entry only, 3
only:   hlt
`),
    );
    expect(() => vm.start()).toThrow(VmConfigError);
    expect(() => vm.start()).toThrow(/none of the 2 vCPUs has an entry point/);
  });

  it('a guest fault names the source line of the faulting instruction, in the included file it came from', async () => {
    const program = assembled(
      `        .entry start
        .include "lib.s"
start:  call load_far
`,
      'main.s',
      {
        'lib.s': `; lib.s
load_far:
        ld32 r1, [0x80000000]
        ret
`,
      },
    );
    const vm = await Vm.create({ vcpus: 1 });
    vm.loadProgram(program);
    const report = await vm.run({ timeoutSeconds: 30 });

    expect(report.exit.reason, summary(report)).toBe('fault');
    const [fault] = report.faults;
    expect(fault!.source).toEqual({ fileName: 'lib.s', line: 3, column: 9, text: 'ld32 r1, [0x80000000]' });
    expect(fault!.description).toMatch(/^access-outside-memory at pc 0x[0-9a-f]{8} in lib\.s:3:9 \(ld32 r1, \[0x80000000\]\)/);
    expect(report.perVcpu[0]!.fault).toBe(fault!.description);
  });
});
