// Every shipped scenario, run at a small size with real vCPU workers, passes its own checks.
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { runScenario } from '../../src/scenarios/run-scenario.js';
import type { ScenarioResult } from '../../src/scenarios/scenario.js';

// Small sizes keep the vCPUs near the host's cores: heavily oversubscribed runs on a loaded machine
// are the bench's business (and the emulator's lost-wake-up counter is a timing heuristic).

/** A compact account of a failed run for the assertion message. */
function explain(result: ScenarioResult): string {
  const failed = result.checks.filter((check) => !check.ok).map((check) => `${check.name}: ${check.detail}`);
  return JSON.stringify({ exit: result.report.exit, ipis: result.report.ipis, failed }, null, 1);
}

const SMALL: ReadonlyArray<readonly [pattern: string, vcpus: number, ipis: number]> = [
  ['ping-pong', 2, 400],
  ['ping-pong-halt', 2, 200],
  ['ack', 2, 400],
  ['ack-halt', 2, 40],
  ['sync-call', 2, 300],
  ['sync-call', 3, 300],
  ['halter-sender', 2, 300],
  ['halter-sender', 3, 200],
  ['storm', 2, 20_000],
  ['storm', 3, 20_000],
  ['broadcast', 2, 200],
  ['broadcast', 3, 300],
  ['shootdown', 2, 200],
  ['shootdown', 3, 300],
  ['logical', 3, 200],
  ['logical-flat', 3, 300],
  ['logical-cluster', 5, 300],
];

describe('scenarios at small sizes pass their checks', () => {
  it('covers every scenario in the catalogue (hot-add, which measures no latency, in test/smp/hot-add.test.ts)', () => {
    expect(new Set([...SMALL.map(([pattern]) => pattern), 'hot-add'])).toEqual(new Set(SCENARIOS.keys()));
  });

  it.each(SMALL)('%s with %i vCPUs and %i IPIs', async (pattern, vcpus, ipis) => {
    const { result } = await runScenario(SCENARIOS.get(pattern)!, { vcpus, ipis, seed: 7 });
    expect(result.ok, explain(result)).toBe(true);
    expect(result.report.exit.reason).toBe('all-done');
    expect(result.report.ipis.sent).toBeGreaterThanOrEqual(ipis);
    expect(result.report.latencyNs?.count ?? 0).toBeGreaterThan(0);
    const names = result.checks.map((check) => check.name);
    expect(names).toEqual(expect.arrayContaining(['no IPI lost', 'no lost wake-up', 'every vCPU finished']));
    expect(names.length).toBeGreaterThan(7);
  });

  it('a seeded storm is reproducible in what each vCPU sends', async () => {
    const storm = SCENARIOS.get('storm')!;
    const first = (await runScenario(storm, { vcpus: 3, ipis: 3000, seed: 99 })).result;
    const second = (await runScenario(storm, { vcpus: 3, ipis: 3000, seed: 99 })).result;
    expect(first.ok && second.ok, explain(first) + explain(second)).toBe(true);
    expect(first.report.perVcpu.map((entry) => entry.guest.reports[0])).toEqual([1000, 1000, 1000]);
    expect(second.report.perVcpu.map((entry) => entry.guest.reports[0])).toEqual([1000, 1000, 1000]);
  });

  it('the logical sweep starts where the seed says, and the host check follows it', async () => {
    const { result } = await runScenario(SCENARIOS.get('logical-flat')!, { vcpus: 3, ipis: 10, seed: 0x305 });
    expect(result.ok, explain(result)).toBe(true);
    // Seed 0x305: the sweep starts at destination 5 (vCPUs 0 and 2), then 6 (1, 2), 7 (all), 1 (0),
    // 2 (1), 3 (0, 1): 11 messages, the first count to reach 10. vCPU 0 got 5, 7, 1, 3; vCPU 2 got 5, 6, 7.
    expect(result.report.perVcpu.map((entry) => entry.guest.reports[3])).toEqual([4, 4, 3]);
    expect(result.report.perVcpu[0]!.guest.reports[2]).toBe(6);
  });
});
