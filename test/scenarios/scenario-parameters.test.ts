// Bad parameters are refused before any VM exists, with one clear message each.
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { runScenario, ScenarioParameterError } from '../../src/scenarios/run-scenario.js';
import { resolveParameters, scenarioDefines, UNLIMITED_IPIS } from '../../src/scenarios/scenario-parameters.js';
import type { ScenarioParameters } from '../../src/scenarios/scenario.js';

const scenario = (name: string) => SCENARIOS.get(name)!;

describe('scenario parameters', () => {
  it.each([
    ['storm', { vcpus: 0, seed: 1 }, 'pattern storm needs 2 to 255 vCPUs, got 0'],
    ['storm', { vcpus: 256, seed: 1 }, 'pattern storm needs 2 to 255 vCPUs, got 256'],
    ['storm', { vcpus: 2.5, seed: 1 }, 'pattern storm needs 2 to 255 vCPUs, got 2.5'],
    ['ping-pong', { vcpus: 3, seed: 1 }, 'pattern ping-pong needs exactly 2 vCPUs (one sender and one target), got 3'],
    ['logical-flat', { vcpus: 9, seed: 1 }, 'pattern logical-flat needs 2 to 8 vCPUs (the flat model has 8 logical ID bits), got 9'],
    ['logical', { vcpus: 61, seed: 1 }, 'pattern logical needs 2 to 60 vCPUs (the cluster model has 15 clusters of 4), got 61'],
    ['storm', { vcpus: 2, seed: 1.5 }, 'seed must be an integer from 0 to 4294967295, got 1.5'],
    ['storm', { vcpus: 2, seed: -1 }, 'seed must be an integer from 0 to 4294967295, got -1'],
    ['storm', { vcpus: 2, seed: 2 ** 32 }, 'seed must be an integer from 0 to 4294967295, got 4294967296'],
    ['storm', { vcpus: 2, seed: Number.NaN }, 'seed must be an integer from 0 to 4294967295, got NaN'],
    ['storm', { vcpus: 2, ipis: 0, seed: 1 }, 'ipis must be an integer from 1 to 4294967294, got 0'],
    ['storm', { vcpus: 2, ipis: 10.5, seed: 1 }, 'ipis must be an integer from 1 to 4294967294, got 10.5'],
    ['storm', { vcpus: 2, seconds: 0, seed: 1 }, 'seconds must be a number greater than 0, got 0'],
    ['storm', { vcpus: 2, seconds: Number.POSITIVE_INFINITY, seed: 1 }, 'seconds must be a number greater than 0, got Infinity'],
    ['storm', { vcpus: 2, ipis: 5, seconds: 1, seed: 1 }, 'give ipis or seconds, not both (got ipis 5 and seconds 1)'],
  ] as const)('%s %j -> %s', async (name, parameters, message) => {
    expect(() => resolveParameters(scenario(name), parameters as ScenarioParameters)).toThrow(new ScenarioParameterError(message));
    await expect(runScenario(scenario(name), parameters as ScenarioParameters)).rejects.toThrow(ScenarioParameterError);
  });

  it('without ipis or seconds the scenario default budget applies', () => {
    const storm = scenario('storm');
    expect(resolveParameters(storm, { vcpus: 4, seed: 3 })).toEqual({ vcpus: 4, ipis: storm.defaultIpis, seed: 3 });
  });

  it('a timed run gives the guest an unlimited budget; the defines carry the parameters', () => {
    const defines = scenarioDefines(scenario('logical'), { vcpus: 12, seconds: 2, seed: 0xdeadbeef });
    expect(defines.get('VCPUS')).toBe(12);
    expect(defines.get('IPI_COUNT')).toBe(UNLIMITED_IPIS);
    expect(defines.get('SEED')).toBe(0xdeadbeef);
    expect(defines.get('LOGICAL_MODE')).toBe(1);
    expect(scenarioDefines(scenario('logical'), { vcpus: 8, ipis: 5, seed: 0 }).get('LOGICAL_MODE')).toBe(0);
  });

  it('the error is typed and named', () => {
    const error = (() => {
      try {
        resolveParameters(scenario('ack'), { vcpus: 1, seed: 0 });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ScenarioParameterError);
    expect((error as Error).name).toBe('ScenarioParameterError');
  });
});
