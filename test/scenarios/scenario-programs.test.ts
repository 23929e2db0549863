// Every scenario program assembles at the edges of its vCPU range and declares what the runner needs.
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { readFileSync } from 'node:fs';
import { assembleScenario, scenarioProgramPath, STOP_REQUESTED_SYMBOL } from '../../src/scenarios/run-scenario.js';
import { UNLIMITED_IPIS } from '../../src/scenarios/scenario-parameters.js';

const cases = [...SCENARIOS.values()].flatMap((definition) =>
  [definition.minimumVcpus, definition.maximumVcpus].flatMap((vcpus) => [
    { definition, vcpus, ipis: 1 },
    { definition, vcpus, ipis: UNLIMITED_IPIS - 1 },
  ]),
);

describe('scenario programs', () => {
  it.each(cases.map((entry) => [entry.definition.name, entry.vcpus, entry.ipis, entry] as const))(
    '%s assembles for %i vCPUs, %i IPIs',
    (_name, vcpus, ipis, entry) => {
      const program = assembleScenario(entry.definition, { vcpus, ipis, seed: 0xffffffff });
      const stop = program.symbols.get(STOP_REQUESTED_SYMBOL);
      expect(stop).toBeDefined();
      expect(stop! % 4).toBe(0);
      expect(program.symbols.get('VCPUS')).toBe(vcpus);
      expect(program.symbols.get('IPI_COUNT')).toBe(ipis);
      // The image must leave room for the vCPU stacks at the top of the default 16 MiB of RAM.
      expect(program.origin + program.bytes.length).toBeLessThan((16 << 20) - vcpus * (16 << 10));
    },
  );

  it('every scenario that times its IPIs says what one sample is, and names every abort code its program raises', () => {
    for (const definition of SCENARIOS.values()) {
      const source = readFileSync(scenarioProgramPath(definition), 'utf8');
      // HC_LATENCY_SAMPLE in the program <=> a documented meaning (hot-add only counts).
      expect(definition.latency !== undefined, definition.name).toBe(source.includes('HC_LATENCY_SAMPLE'));
      if (definition.latency !== undefined) expect(definition.latency, definition.name).toMatch(/\w/);
      // Every ABORT_* code the program loads into r1 (besides the shared vCPU-count check) is named.
      const raised = [...source.matchAll(/li r1, (ABORT_\w+)/g)].map((match) => match[1]!).filter((name) => name !== 'ABORT_VCPU_COUNT');
      for (const name of raised) {
        const code = new RegExp(`\\.equ ${name}, (\\d+)`).exec(source);
        expect(code, `${definition.name}: ${name}`).not.toBeNull();
        expect(definition.abortCodes?.has(Number(code![1])), `${definition.name}: ${name}`).toBe(true);
      }
      expect(definition.summary.length, definition.name).toBeGreaterThan(20);
    }
  });
});
