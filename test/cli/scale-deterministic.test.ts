// `avic-smp scale --deterministic`, end to end (the built CLI): one seed twice prints the same JSON,
// byte for byte (every time in a deterministic report is virtual: docs/deterministic.md lists
// nothing wall-clock in it), each row names its schedule, and two seeds make two schedules. The
// runs a test compares are started side by side: no load can change a deterministic run.

import { beforeAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, runCli } from '../support/cli.js';

const SWEEP = ['scale', '--pattern', 'storm', '--vcpus', '2,3', '--ipis', '300', '--deterministic'];

async function scaleJson(seed: number, extra: readonly string[] = []): Promise<string> {
  const result = await runCli([...SWEEP, '--schedule-seed', String(seed), ...extra, '--json']);
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

interface Row {
  readonly vcpus: number;
  readonly schedule?: { readonly seed: number; readonly strategy: string; readonly scheduleHash: string };
}
const rowsOf = (json: string): Row[] => (JSON.parse(json) as { rows: Row[] }).rows;

beforeAll(assertCliBuilt);

describe('avic-smp scale --deterministic', () => {
  it('one seed twice: the same JSON byte for byte, each row with its schedule', async () => {
    const [first, second] = await Promise.all([scaleJson(5), scaleJson(5)]);
    expect(second).toBe(first);
    const rows = rowsOf(first);
    expect(rows.map((row) => row.vcpus)).toEqual([2, 3]);
    for (const row of rows) {
      expect(row.schedule).toMatchObject({ seed: 5, strategy: 'random' });
      expect(row.schedule?.scheduleHash).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('two seeds: each row has another schedule hash', async () => {
    const [one, two] = (await Promise.all([scaleJson(5), scaleJson(6)])).map(rowsOf) as [Row[], Row[]];
    for (const [index, row] of one.entries()) expect(two[index]?.schedule?.scheduleHash).not.toBe(row.schedule?.scheduleHash);
  });

  it("the table names each row's schedule", async () => {
    const result = await runCli([...SWEEP, '--schedule-seed', '5', '--strategy', 'pct']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2 vCPUs: deterministic: schedule seed 5, pct depth 3, .* hash [0-9a-f]{16}$/m);
    expect(result.stdout).toMatch(/^3 vCPUs: deterministic: schedule seed 5, pct depth 3, .* hash [0-9a-f]{16}$/m);
  });
});
