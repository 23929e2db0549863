// The `avic-smp run` command, end to end: spawns the built CLI (dist/src/cli/bin.js, built by the
// `pretest` script) on small guest programs in test/fixtures/cli and checks the exit status (0 success,
// 1 the run failed, 2 bad input), the messages and the report.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { VmReport } from '../../src/kvm/report/vm-report.js';
import { assertCliBuilt, type CliResult, runCli } from '../support/cli.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/cli/', import.meta.url));

/** Runs the CLI with `args` in `cwd` (default the fixtures). */
function cli(args: readonly string[], cwd: string = FIXTURES): Promise<CliResult> {
  return runCli(args, { cwd });
}

/** Runs the CLI with --json and parses the report; the exit status must be `status`. */
async function runJson(args: readonly string[], status: number): Promise<VmReport> {
  const result = await cli(['run', ...args, '--json']);
  expect(result.status, `exit status of avic-smp run ${args.join(' ')}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(status);
  expect(result.stderr).not.toContain('    at ');
  return JSON.parse(result.stdout) as VmReport;
}

const RUN_OPTIONS = [
  '--vcpus',
  '--seconds',
  '--timeout',
  '--memory',
  '--no-ipiv',
  '--no-halt-poll',
  '--no-x2avic',
  '--no-x2avic-ext',
  '--json',
];

beforeAll(assertCliBuilt);

describe.concurrent('avic-smp help', () => {
  it.each([['--help'], ['run --help'], ['help run']])('`avic-smp %s` exits 0 and mentions every option of run', async (command) => {
    const result = await cli(command.split(' '));
    expect(result.status).toBe(0);
    const help = result.stdout + result.stderr;
    for (const option of RUN_OPTIONS) expect(help, `help for \`${command}\` should mention ${option}`).toContain(option);
  });
});

describe.concurrent('avic-smp bad arguments exit 2 with a one-line message and no stack trace', () => {
  const program = 'report-index.s';
  const cases: ReadonlyArray<readonly [string, readonly string[], RegExp]> = [
    ['an unknown flag (--vcpu)', ['run', program, '--vcpu', '2'], /unknown option '--vcpu'/],
    ['--vcpus 0', ['run', program, '--vcpus', '0'], /--vcpus.*\b1\b.*\b4096\b.*got 0/],
    ['--vcpus abc', ['run', program, '--vcpus', 'abc'], /--vcpus must be a whole number.*"abc"/],
    ['--vcpus 4097', ['run', program, '--vcpus', '4097'], /--vcpus.*\b4096\b.*got 4097/],
    ['--vcpus 2.5', ['run', program, '--vcpus', '2.5'], /--vcpus must be a whole number.*"2\.5"/],
    ['--vcpus without a value', ['run', program, '--vcpus'], /--vcpus.*argument missing/],
    ['--seconds -1', ['run', program, '--seconds', '-1'], /--seconds must be a number above 0.*"-1"/],
    ['--seconds abc', ['run', program, '--seconds', 'abc'], /--seconds must be a number above 0.*"abc"/],
    ['--timeout 0', ['run', program, '--timeout', '0'], /--timeout must be a number above 0.*"0"/],
    ['--memory 0', ['run', program, '--memory', '0'], /--memory.*got 0/],
    ['a missing program argument', ['run'], /missing required argument 'program\.s'/],
    ['two program arguments', ['run', program, program], /too many arguments/],
    ['an unknown command', ['frobnicate', program], /unknown command 'frobnicate'/],
    ['a nonexistent file', ['run', 'no-such-program.s'], /cannot read no-such-program\.s/],
    ['a directory as the program', ['run', '.'], /cannot read \./],
  ];
  it.each(cases)('%s', async (_name, args, message) => {
    const result = await cli(args);
    expect(result.status, `stderr:\n${result.stderr}`).toBe(2);
    expect(result.stderr).not.toContain('    at ');
    expect(result.stderr.split('\n')[0]).toMatch(message);
    expect(result.stdout).toBe('');
  });

  it('a program that does not fit the VM (no stack room) is bad input, not an internal error', async () => {
    // The default stack shrinks to fit (down to 256 bytes): 4096 of those need half of 1 MiB.
    const result = await cli(['run', program, '--vcpus', '4096', '--memory', '1']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^avic-smp: .*stacks/);
    expect(result.stderr).not.toContain('internal error');
    expect(result.stderr).not.toContain('    at ');
  });
});

describe.concurrent('avic-smp assembler errors', () => {
  it('an unknown mnemonic exits 2 with file:line:column: error: and runs nothing', async () => {
    const result = await cli(['run', 'unknown-mnemonic.s']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe("unknown-mnemonic.s:4:9: error: unknown mnemonic 'frob': expected an instruction, a directive or a label\n");
  });

  it('an image past 16 MiB exits 2 with file:line:column: error:, not an internal error', async () => {
    const result = await cli(['run', 'image-too-large.s']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'image-too-large.s:3:9: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001008\n',
    );
  });
});

describe('avic-smp run with .include (docs/guest-isa.md 5.1)', () => {
  it('reads each included file relative to the file that includes it, whatever the working directory', async () => {
    for (const [cwd, path] of [
      [FIXTURES, 'include-main.s'],
      [fileURLToPath(new URL('../..', import.meta.url)), 'test/fixtures/cli/include-main.s'],
    ] as const) {
      const result = await cli(['run', path, '--vcpus', '2', '--json'], cwd);
      expect(result.status, `cwd ${cwd}\n${result.stderr}`).toBe(0);
      const report = JSON.parse(result.stdout) as VmReport;
      expect(report.perVcpu.map((vcpu) => vcpu.guest.reports[0])).toEqual([4242, 4242]);
    }
  });

  it('a fault in an included file names that file, line and column, in text and JSON', async () => {
    const text = await cli(['run', 'include-fault.s', '--vcpus', '1']);
    expect(text.status, text.stdout + text.stderr).toBe(1);
    expect(text.stdout).toContain('guest fault on vCPU 0: access-outside-memory at pc 0x');
    expect(text.stdout).toContain(' in include/load-far.s:3:9 (ld32 r1, [0x80000000])');

    const report = await runJson(['include-fault.s', '--vcpus', '1'], 1);
    expect(report.faults[0]!.source).toEqual({ fileName: 'include/load-far.s', line: 3, column: 9, text: 'ld32 r1, [0x80000000]' });
  });

  it('a missing include is an assembler error, exit 2', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'avic-smp-include-'));
    try {
      writeFileSync(join(directory, 'main.s'), '        .entry start\n        .include "nope.s"\nstart:  hlt\n');
      const result = await cli(['run', 'main.s'], directory);
      expect(result.status).toBe(2);
      expect(result.stderr).toBe("main.s:2:18: error: cannot include 'nope.s': no such file\n");
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('avic-smp guest faults exit 1', () => {
  it('a load outside every memslot names the vCPU, the address and the instruction (text report)', async () => {
    const result = await cli(['run', 'load-outside-memory.s', '--vcpus', '2']);
    expect(result.status, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(/^FAILED: fault/);
    const faultLine = result.stdout.split('\n').find((line) => line.startsWith('guest fault on vCPU'));
    expect(faultLine).toBeDefined();
    expect(faultLine).toContain('guest fault on vCPU 1:');
    expect(faultLine).toContain('access-outside-memory');
    expect(faultLine).toContain('address 0x80000000');
    expect(faultLine).toContain('ld32 r1, [0x80000000]');
    // The source line of the faulting instruction (docs/guest-isa.md §12): file:line:column.
    expect(faultLine).toContain('load-outside-memory.s:9:9');
  });

  it('a load outside every memslot is reported as an access-outside-memory fault in JSON', async () => {
    const report = await runJson(['load-outside-memory.s', '--vcpus', '2'], 1);
    expect(report.ok).toBe(false);
    expect(report.exit.reason).toBe('fault');
    expect(report.faults).toHaveLength(1);
    const [fault] = report.faults;
    expect(fault!.vcpu).toBe(1);
    expect(fault!.fault.kind).toBe('access-outside-memory');
    expect(fault!.fault.address).toBe(0x80000000);
    expect(fault!.fault.instruction).toBe('ld32 r1, [0x80000000]');
    expect(fault!.source).toEqual({ fileName: 'load-outside-memory.s', line: 9, column: 9, text: 'bad:    ld32 r1, [0x80000000]' });
    expect(fault!.description).toContain('load-outside-memory.s:9:9');
    expect(report.perVcpu[1]!.exit).toBe('fault');
    expect(report.perVcpu[1]!.fault).toContain('load-outside-memory.s:9:9');
  });

  it('a jump outside memory is a fetch-outside-memory fault at the target', async () => {
    const report = await runJson(['fetch-outside-memory.s', '--vcpus', '2'], 1);
    expect(report.ok).toBe(false);
    expect(report.exit.reason).toBe('fault');
    expect(report.faults.length).toBeGreaterThanOrEqual(1);
    for (const { fault, description } of report.faults) {
      expect(fault.kind).toBe('fetch-outside-memory');
      expect(fault.pc).toBe(0x80000000);
      expect(description).toContain('fetch-outside-memory');
    }
  });

  it('an instruction with opcode 0xff is an invalid-opcode fault at its address', async () => {
    const report = await runJson(['invalid-opcode.s', '--vcpus', '2'], 1);
    expect(report.ok).toBe(false);
    expect(report.exit.reason).toBe('fault');
    expect(report.faults.length).toBeGreaterThanOrEqual(1);
    for (const { fault } of report.faults) {
      expect(fault.kind).toBe('invalid-opcode');
      expect(fault.pc).toBe(0x1008); // origin 0x1000, after one nop
    }
  });

  it('hypercall HC_ABORT exits 1 with a guest-abort naming the code', async () => {
    const text = await cli(['run', 'guest-abort.s', '--vcpus', '2']);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(/guest fault on vCPU 0: guest-abort\b.*code 42/);

    const report = await runJson(['guest-abort.s', '--vcpus', '2'], 1);
    expect(report.ok).toBe(false);
    expect(report.exit.reason).toBe('fault');
    expect(
      report.faults,
      JSON.stringify(
        {
          exit: report.exit,
          faults: report.faults,
          errors: report.errors,
          perVcpu: report.perVcpu.map(({ counters: _, ...rest }) => rest),
        },
        null,
        1,
      ),
    ).toHaveLength(1);
    expect(report.faults[0]!.vcpu).toBe(0);
    expect(report.faults[0]!.fault.kind).toBe('guest-abort');
    expect(report.faults[0]!.description).toContain('code 42');
  });
});

describe('avic-smp successful runs', () => {
  it('every vCPU reports its index: --json exits 0 with a complete VmReport', async () => {
    const report = await runJson(['report-index.s', '--vcpus', '3'], 0);
    expect(report.ok).toBe(true);
    expect(report.exit.reason).toBe('all-done');
    expect(report.vcpus).toBe(3);
    expect(report.ipiVirtualization).toBe(true);
    expect(report.ipis).toMatchObject({ sent: 0, delivered: 0, lost: 0 });
    expect(report.exits.incompleteIpi).toEqual({
      invalidInterruptType: 0,
      targetNotRunning: 0,
      invalidTarget: 0,
      invalidBackingPage: 0,
      invalidIpiVector: 0,
    });
    expect(report.faults).toEqual([]);
    expect(report.errors).toEqual([]);
    expect(report.perVcpu).toHaveLength(3);
    report.perVcpu.forEach((vcpu, index) => {
      expect(vcpu.vcpu).toBe(index);
      expect(vcpu.guest.reports[0]).toBe(index);
      expect(vcpu.guest.reports[1]).toBe(index + 100);
      expect(vcpu.guest.done).toBe(true);
      expect(vcpu.guest.doneStatus).toBe(0);
      expect(vcpu.exit).toBe('done');
    });
  });

  it('the text report of a successful run starts with OK and exits 0', async () => {
    const result = await cli(['run', 'report-index.s', '--vcpus', '2']);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^OK: all-done/);
  });

  it('defaults to 2 vCPUs; --no-ipiv turns IPI virtualization off; --no-halt-poll is accepted', async () => {
    const byDefault = await runJson(['report-index.s'], 0);
    expect(byDefault.vcpus).toBe(2);
    expect(byDefault.ipiVirtualization).toBe(true);
    const noIpiv = await runJson(['report-index.s', '--no-ipiv', '--no-halt-poll', '--vcpus', '1', '--memory', '4'], 0);
    expect(noIpiv.vcpus).toBe(1);
    expect(noIpiv.ipiVirtualization).toBe(false);
    expect(noIpiv.perVcpu[0]!.guest.reports[1]).toBe(100);
  });

  it('--no-x2avic-ext is accepted alone and with --no-x2avic (where it has nothing to turn off)', async () => {
    expect((await runJson(['report-index.s', '--no-x2avic-ext'], 0)).ok).toBe(true);
    expect((await runJson(['report-index.s', '--no-x2avic', '--no-x2avic-ext'], 0)).ok).toBe(true);
  });
});

describe('avic-smp IPIs the architecture drops are not losses', () => {
  it('a fixed IPI with vector 5 is dropped as an illegal vector and sets ESR bit 5 on the sender', async () => {
    const report = await runJson(['illegal-vector-ipi.s', '--vcpus', '2'], 0);
    expect(report.ok).toBe(true);
    expect(report.exit.reason).toBe('all-done');
    expect(report.ipis.dropped.illegalVector).toBe(1);
    expect(report.ipis.dropped.invalidTarget).toBe(0);
    expect(report.exits.incompleteIpi.invalidIpiVector).toBe(1);
    expect(report.ipis.lost).toBe(0);
    expect(report.ipis.delivered).toBe(0);
    expect(report.perVcpu[1]!.pendingVectors).toEqual([]);
    const esr = report.perVcpu[0]!.guest.reports[0]!;
    expect(esr & 0x20, `ESR read back as 0x${esr.toString(16)}`).toBe(0x20); // Send Illegal Vector
    expect(esr).toBe(0x20);
  });

  it('a fixed IPI to physical APIC ID 7 on a 2-vCPU VM is dropped as an invalid target', async () => {
    const report = await runJson(['invalid-target-ipi.s', '--vcpus', '2'], 0);
    expect(report.ok).toBe(true);
    expect(report.exit.reason).toBe('all-done');
    expect(report.ipis.dropped.invalidTarget).toBe(1);
    expect(report.ipis.dropped.illegalVector).toBe(0);
    expect(report.exits.incompleteIpi.invalidTarget).toBe(1);
    expect(report.ipis.lost).toBe(0);
    expect(report.ipis.delivered).toBe(0);
  });
});

describe('avic-smp run length', () => {
  it('--seconds 0.5 stops vCPUs that never finish and exits 0 with reason time-limit', async () => {
    const report = await runJson(['spin-forever.s', '--vcpus', '2', '--seconds', '0.5'], 0);
    expect(report.ok).toBe(true);
    expect(report.exit.reason).toBe('time-limit');
    expect(report.durationSeconds).toBeGreaterThanOrEqual(0.45);
    expect(report.durationSeconds).toBeLessThan(30);
  });

  it('--timeout 0.5 without --seconds fails vCPUs that never finish: exit 1, reason timeout', async () => {
    const report = await runJson(['spin-forever.s', '--vcpus', '2', '--timeout', '0.5'], 1);
    expect(report.ok).toBe(false);
    expect(report.exit.reason).toBe('timeout');
    expect(report.durationSeconds).toBeGreaterThanOrEqual(0.45);
    expect(report.durationSeconds).toBeLessThan(30);
  });
});
