// `avic-smp scale --deterministic`, end to end (the built CLI): one seed twice prints the same JSON,
// byte for byte (every time in a deterministic report is virtual: docs/deterministic.md lists
// nothing wall-clock in it), each row names its schedule, and two seeds make two schedules.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const SWEEP = ['scale', '--pattern', 'storm', '--vcpus', '2,3', '--ipis', '300', '--deterministic'];

function scaleJson(seed: number, extra: readonly string[] = []): string {
  const args = [BIN, ...SWEEP, '--schedule-seed', String(seed), ...extra, '--json'];
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error !== undefined) throw result.error;
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

interface Row {
  readonly vcpus: number;
  readonly schedule?: { readonly seed: number; readonly strategy: string; readonly scheduleHash: string };
}
const rowsOf = (json: string): Row[] => (JSON.parse(json) as { rows: Row[] }).rows;

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` (the pretest script does)`);
});

describe('avic-smp scale --deterministic', () => {
  it('one seed twice: the same JSON byte for byte, each row with its schedule', () => {
    const first = scaleJson(5);
    expect(scaleJson(5)).toBe(first);
    const rows = rowsOf(first);
    expect(rows.map((row) => row.vcpus)).toEqual([2, 3]);
    for (const row of rows) {
      expect(row.schedule).toMatchObject({ seed: 5, strategy: 'random' });
      expect(row.schedule?.scheduleHash).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('two seeds: each row has another schedule hash', () => {
    const one = rowsOf(scaleJson(5));
    const two = rowsOf(scaleJson(6));
    for (const [index, row] of one.entries()) expect(two[index]?.schedule?.scheduleHash).not.toBe(row.schedule?.scheduleHash);
  });

  it("the table names each row's schedule", () => {
    const args = [BIN, ...SWEEP, '--schedule-seed', '5', '--strategy', 'pct'];
    const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2 vCPUs: deterministic: schedule seed 5, pct depth 3, .* hash [0-9a-f]{16}$/m);
    expect(result.stdout).toMatch(/^3 vCPUs: deterministic: schedule seed 5, pct depth 3, .* hash [0-9a-f]{16}$/m);
  });
});
