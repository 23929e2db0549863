// Deterministic runs of whole scenarios (docs/deterministic.md): ten runs of one seed print the same
// stress report, byte for byte, with the same schedule hash; two seeds make two schedules. The
// report is compared whole: every time in it is virtual in a deterministic run, so no field is left
// out (the wall-clock things of docs/deterministic.md are not in it).
//
// The guest's time moves with the instructions it retires (src/host/virtual-time-costs.ts): without
// it a vCPU spinning in guest code would never reach the end of its quantum in virtual time.
import { describe, expect, it } from 'vitest';
import { summarizeStress } from '../../src/cli/stress-summary.js';
import type { ScheduleOptions } from '../../src/host/deterministic/deterministic-schedule.js';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { runScenario } from '../../src/scenarios/run-scenario.js';

const RUNS = 10;

/** `avic-smp stress --pattern P --vcpus 2 --ipis N --json` with the schedule's options, as its JSON text. */
async function stressJson(pattern: string, ipis: number, deterministic: ScheduleOptions): Promise<string> {
  const definition = SCENARIOS.get(pattern)!;
  const { result, vm } = await runScenario(definition, { vcpus: 2, ipis, seed: 1 }, { vmConfig: { deterministic } });
  const summary = summarizeStress(result, {
    haltPolling: vm.config.haltPolling,
    ...(definition.latency === undefined ? {} : { latencyMeasures: definition.latency }),
  });
  expect(summary.ok, JSON.stringify(summary.exit)).toBe(true);
  return JSON.stringify(summary, null, 2);
}

const hashOf = (json: string): string => (JSON.parse(json) as { schedule: { scheduleHash: string } }).schedule.scheduleHash;

describe('deterministic scenario runs', () => {
  it.each([
    ['storm', 500, { seed: 7, strategy: 'pct', depth: 3 }],
    ['halter-sender', 50, { seed: 7, strategy: 'random' }],
  ] as const)(`%s: ${RUNS} runs of one seed give one report and one schedule hash`, async (pattern, ipis, options) => {
    const first = await stressJson(pattern, ipis, options);
    expect(hashOf(first)).toMatch(/^[0-9a-f]{16}$/);
    for (let run = 1; run < RUNS; run++) expect(await stressJson(pattern, ipis, options)).toBe(first);
  });

  it.each([
    ['storm', 500, 'pct'],
    ['halter-sender', 50, 'random'],
  ] as const)('%s: two seeds give two schedule hashes', async (pattern, ipis, strategy) => {
    const one = hashOf(await stressJson(pattern, ipis, { seed: 1, strategy }));
    const two = hashOf(await stressJson(pattern, ipis, { seed: 2, strategy }));
    expect(two).not.toBe(one);
  });
});
