// Time-based runs: the host sets stop_requested when time is up and the guest winds down by itself.
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { runScenario, type ScenarioProgress } from '../../src/scenarios/run-scenario.js';

describe('a seconds run stops by itself', () => {
  it.each([
    ['storm', 2],
    ['ping-pong-halt', 2],
    ['broadcast', 3],
    ['shootdown', 3],
  ] as const)('%s with %i vCPUs for 0.3 s', async (pattern, vcpus) => {
    const progress: ScenarioProgress[] = [];
    const started = performance.now();
    const { result } = await runScenario(
      SCENARIOS.get(pattern)!,
      { vcpus, seconds: 0.3, seed: 1 },
      { onProgress: (entry) => progress.push(entry) },
    );
    const elapsed = (performance.now() - started) / 1000;
    expect(result.ok, JSON.stringify(result.checks.filter((check) => !check.ok))).toBe(true);
    expect(result.report.exit.reason).toBe('all-done');
    expect(result.parameters).toEqual({ vcpus, seconds: 0.3, seed: 1 });
    expect(result.checks.some((check) => check.name === 'IPI budget sent')).toBe(false);
    expect(result.report.ipis.sent).toBeGreaterThan(0);
    expect(elapsed).toBeGreaterThanOrEqual(0.3);
    expect(elapsed).toBeLessThan(20);
    for (const entry of progress) expect(entry.fraction === undefined || (entry.fraction >= 0 && entry.fraction <= 1)).toBe(true);
  });

  it('a count run reports progress as the fraction of IPIs sent', async () => {
    const progress: ScenarioProgress[] = [];
    const { result } = await runScenario(
      SCENARIOS.get('ack-halt')!,
      { vcpus: 2, ipis: 300, seed: 1 },
      { onProgress: (entry) => progress.push(entry) },
    );
    expect(result.ok).toBe(true);
    for (const entry of progress) {
      expect(entry.fraction).toBeGreaterThanOrEqual(0);
      expect(entry.fraction).toBeLessThanOrEqual(1);
    }
  });
});
