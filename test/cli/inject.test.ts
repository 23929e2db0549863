// `--inject` through the built CLI (dist/src/cli/bin.js): `--inject list` prints the bug zoo on
// every command that runs a VM and exits 0 (before the command's own mandatory options are
// checked); an unknown name is refused in one line that lists the names (exit 2); a fixed twin runs
// clean and the report names it (JSON `inject`, and a text line).

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { injectedBugNames } from '../../src/kvm/control/injected-bugs.js';
import { type CliResult, runCli } from '../support/cli.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/smp-boot.s', import.meta.url));

/** `avic-smp ...args`, killed after 60 s. */
function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(args, { timeoutMs: 60_000 });
}

describe('--inject', () => {
  it.concurrent.each(['run', 'stress', 'scale', 'conformance', 'lockdep'])(
    '%s --inject list prints every bug and its twin, exit 0',
    async (command) => {
      const result = await cli([command, '--inject', 'list']);
      expect(result.status, result.stderr).toBe(0);
      for (const name of injectedBugNames()) expect(result.stdout).toMatch(new RegExp(`^${name} `, 'm'));
      expect(result.stdout).toContain(
        'fix: Linux 6.3, 5aede752a839 KVM: SVM: Process ICR on AVIC IPI delivery failure due to invalid target',
      );
      expect(result.stderr).toBe('');
    },
  );

  it.concurrent.each([
    ['stress', '--pattern', 'storm', '--vcpus', '2'],
    ['run', EXAMPLE],
    ['conformance', '--case', 'apic/self-ipi-xapic'],
    ['lockdep', '--scenario', 's1'],
  ])('%s with an unknown name: one line that lists the names, exit 2, nothing run', async (...args) => {
    const result = await cli([...args, '--inject', 'no-such-bug']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`avic-smp: unknown injected bug "no-such-bug"; the bugs are: ${injectedBugNames().join(', ')}\n`);
  });

  it('stress with a fixed twin runs clean and names it (JSON inject)', async () => {
    const result = await cli([
      ...['stress', '--pattern', 'halter-sender', '--vcpus', '2', '--ipis', '300', '--host-cpus', '2'],
      ...['--inject', 'blocking-no-recheck-fixed', '--json'],
    ]);
    expect(result.status, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as { ok: boolean; inject: string | null; lostWakeups: number };
    expect(summary).toMatchObject({ ok: true, inject: 'blocking-no-recheck-fixed', lostWakeups: 0 });
  });

  it('run names the injected bug in a text line; without --inject the JSON field is null', async () => {
    const injected = await cli(['run', EXAMPLE, '--inject', 'invalid-target-ignored-fixed']);
    expect(injected.status, injected.stderr).toBe(0);
    expect(injected.stdout).toMatch(/^injected bug invalid-target-ignored-fixed: the fixed twin of invalid-target-ignored, /m);
    const plain = await cli(['run', EXAMPLE, '--json']);
    expect(plain.status, plain.stderr).toBe(0);
    expect((JSON.parse(plain.stdout) as { inject: string | null }).inject).toBeNull();
  });

  it.each([
    ['invalid-target-ignored', 'mixed-logical-mask.s'],
    ['x2avic-logical-kick', 'x2apic-logical-halter.s'],
  ])('%s: its example fails (the sender aborts), the fixed twin runs clean', async (bug, example) => {
    const program = fileURLToPath(new URL(`../../examples/${example}`, import.meta.url));
    const injected = await cli(['run', program, '--inject', bug]);
    expect(injected.status, injected.stdout).toBe(1);
    expect(injected.stdout).toMatch(/^FAILED: fault \(vCPU 0 stopped the VM\)/);
    const fixed = await cli(['run', program, '--inject', `${bug}-fixed`]);
    expect(fixed.status, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(/^OK: all-done/);
  });
});
