// Every scenario program assembles at the edges of its vCPU range and declares what the runner needs.
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { assembleScenario, STOP_REQUESTED_SYMBOL } from '../../src/scenarios/run-scenario.js';
import { UNLIMITED_IPIS } from '../../src/scenarios/scenario-parameters.js';

const cases = [...SCENARIOS.values()].flatMap((definition) =>
  [definition.minimumVcpus, definition.maximumVcpus].flatMap((vcpus) => [
    { definition, vcpus, ipis: 1 },
    { definition, vcpus, ipis: UNLIMITED_IPIS - 1 },
  ]));

describe('scenario programs', () => {
  it.each(cases.map((entry) => [entry.definition.name, entry.vcpus, entry.ipis, entry] as const))('%s assembles for %i vCPUs, %i IPIs', (_name, vcpus, ipis, entry) => {
    const program = assembleScenario(entry.definition, { vcpus, ipis, seed: 0xffffffff });
    const stop = program.symbols.get(STOP_REQUESTED_SYMBOL);
    expect(stop).toBeDefined();
    expect(stop! % 4).toBe(0);
    expect(program.symbols.get('VCPUS')).toBe(vcpus);
    expect(program.symbols.get('IPI_COUNT')).toBe(ipis);
    // The image must leave room for the vCPU stacks at the top of the default 16 MiB of RAM.
    expect(program.origin + program.bytes.length).toBeLessThan((16 << 20) - vcpus * (16 << 10));
  });

  it('every scenario documents its latency and names its abort codes', () => {
    for (const definition of SCENARIOS.values()) {
      expect(definition.latency, definition.name).toMatch(/\w/);
      expect(definition.abortCodes?.size ?? 0, definition.name).toBeGreaterThan(0);
      expect(definition.summary.length, definition.name).toBeGreaterThan(20);
    }
  });
});
