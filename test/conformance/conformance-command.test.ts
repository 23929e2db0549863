// `avic-smp conformance`, end to end through the built CLI (dist/src/cli/bin.js, built by the
// `pretest` script): the --json shape, the exit status (0 all passed, 1 any failed, 2 bad input),
// --list and --case.

import { beforeAll, describe, expect, it } from 'vitest';
import { CONFORMANCE_CASES } from '../../src/conformance/catalogue.js';
import { type CliResult, assertCliBuilt, runCli } from '../support/cli.js';

/** `avic-smp conformance ...args`, killed after 60 s. */
function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(['conformance', ...args], { timeoutMs: 60_000 });
}

beforeAll(assertCliBuilt);

describe('avic-smp conformance', () => {
  it('--json prints exactly { cases: [ { name, status, detail } ] } and exits 0 when every case passed', async () => {
    const result = await cli(['--json', '--case', 'apic/self-ipi-xapic', '--case', 'selftest/xapic-state']);
    expect(result.status, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as unknown;
    expect(Object.keys(parsed as object)).toEqual(['cases']);
    const cases = (parsed as { cases: Record<string, unknown>[] }).cases;
    expect(cases.map((entry) => entry.name)).toEqual(['apic/self-ipi-xapic', 'selftest/xapic-state']);
    for (const entry of cases) {
      expect(Object.keys(entry).sort()).toEqual(['detail', 'name', 'status']);
      expect(entry.status).toBe('pass');
      expect(typeof entry.detail).toBe('string');
    }
  });

  it('exits 1 exactly when some case failed, and says which (a case that is not modelled yet, or one that is)', async () => {
    const result = await cli(['--json', '--case', 'apic/self-ipi-xapic', '--case', 'smptest/boot-8']);
    const cases = (JSON.parse(result.stdout) as { cases: { status: string; detail: string }[] }).cases;
    expect(cases).toHaveLength(2);
    for (const entry of cases) expect(['pass', 'fail']).toContain(entry.status);
    const failed = cases.filter((entry) => entry.status === 'fail');
    expect(result.status).toBe(failed.length > 0 ? 1 : 0);
    for (const entry of failed) expect(entry.detail.length).toBeGreaterThan(10);
  });

  it('prints one PASS/FAIL line per case and a total without --json', async () => {
    const result = await cli(['--case', 'apic/self-ipi-xapic']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^PASS {2}apic\/self-ipi-xapic {2}\S/m);
    expect(result.stdout).toMatch(/1 of 1 case\(s\) passed/);
  });

  it('--list names every case without running any', async () => {
    const result = await cli(['--list']);
    expect(result.status).toBe(0);
    for (const entry of CONFORMANCE_CASES) expect(result.stdout).toContain(entry.name);
  });

  it('an unknown --case exits 2 with a one-line message naming the cases', async () => {
    const result = await cli(['--case', 'apic/no-such-case']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/unknown conformance case 'apic\/no-such-case'.*apic\/self-ipi-xapic/);
  });

  it('--host-cpus N runs each case on at most N host CPUs and says so in the total', async () => {
    const result = await cli(['--host-cpus', '1', '--case', 'apic/physical-broadcast', '--case', 'apic/self-ipi-xapic']);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2 of 2 case\(s\) passed on at most 1 host CPU\(s\) each$/m);
  });

  it.concurrent.each([['0'], ['x'], ['1.5'], ['4097']])('--host-cpus %s exits 2 with one line, and runs nothing', async (value) => {
    const result = await cli(['--host-cpus', value, '--case', 'apic/self-ipi-xapic']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/--host-cpus must be (from 1 to 4096|a whole number)/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unknown option exits 2', async () => {
    expect((await cli(['--frobnicate'])).status).toBe(2);
  });
});
