// The user's scenario parameters, checked once before any VM exists, and the assembler constants
// every scenario program receives from them (VCPUS, IPI_COUNT, SEED). A bad parameter is host misuse:
// a typed ScenarioParameterError whose message names the parameter, the allowed range and the value.

import type { ScenarioDefinition, ScenarioParameters } from './scenario.js';

export class ScenarioParameterError extends Error {
  override readonly name = 'ScenarioParameterError';
}

/** xAPIC physical IDs 0..0xFE: one vCPU each. */
export const MAX_SCENARIO_VCPUS = 255;
/** IPI_COUNT for a time-based run: no budget, the guest runs until `stop_requested`. */
export const UNLIMITED_IPIS = 0xffff_ffff;
const MAX_IPIS = UNLIMITED_IPIS - 1;
const MAX_SEED = 0xffff_ffff;

/**
 * Validates `parameters` for `definition` and fills in the default budget (defaultIpis when neither
 * ipis nor seconds is given). Throws ScenarioParameterError.
 */
export function resolveParameters(definition: ScenarioDefinition, parameters: ScenarioParameters): ScenarioParameters {
  const { vcpus, ipis, seconds, seed, hotAdd } = parameters;
  const minimum = definition.minimumVcpus;
  const maximum = Math.min(definition.maximumVcpus, MAX_SCENARIO_VCPUS);
  if (!Number.isInteger(vcpus) || vcpus < minimum || vcpus > maximum) {
    const range = minimum === maximum ? `exactly ${minimum}` : `${minimum} to ${maximum}`;
    const reason =
      definition.vcpuLimitReason === undefined || vcpus <= maximum || !Number.isInteger(vcpus) ? '' : ` (${definition.vcpuLimitReason})`;
    throw new ScenarioParameterError(`pattern ${definition.name} needs ${range} vCPUs${reason}, got ${vcpus}`);
  }
  if (ipis !== undefined && seconds !== undefined)
    throw new ScenarioParameterError(`give ipis or seconds, not both (got ipis ${ipis} and seconds ${seconds})`);
  if (ipis !== undefined && (!Number.isInteger(ipis) || ipis < 1 || ipis > MAX_IPIS)) {
    throw new ScenarioParameterError(`ipis must be an integer from 1 to ${MAX_IPIS}, got ${ipis}`);
  }
  if (seconds !== undefined && !(Number.isFinite(seconds) && seconds > 0)) {
    throw new ScenarioParameterError(`seconds must be a number greater than 0, got ${seconds}`);
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new ScenarioParameterError(`seed must be an integer from 0 to ${MAX_SEED}, got ${seed}`);
  }
  if (hotAdd !== undefined && hotAdd !== 0) {
    if (definition.supportsHotAdd !== true) {
      throw new ScenarioParameterError(`pattern ${definition.name} does not support hot-add (pattern hot-add does)`);
    }
    if (!Number.isInteger(hotAdd) || hotAdd < 0 || vcpus + hotAdd > maximum) {
      throw new ScenarioParameterError(
        `hot-add must be an integer from 0 to ${maximum - vcpus} (${vcpus} vCPUs, at most ${maximum}), got ${hotAdd}`,
      );
    }
    if (seconds === undefined)
      throw new ScenarioParameterError('hot-add needs a time-based run (seconds): the vCPUs are added at evenly spaced moments of it');
    return { vcpus, seconds, seed, hotAdd };
  }
  return seconds !== undefined ? { vcpus, seconds, seed } : { vcpus, ipis: ipis ?? definition.defaultIpis, seed };
}

/** The guest's IPI budget: total IPI messages to send, or UNLIMITED_IPIS for a time-based run. */
export function ipiBudget(parameters: ScenarioParameters): number {
  return parameters.seconds !== undefined ? UNLIMITED_IPIS : (parameters.ipis ?? UNLIMITED_IPIS);
}

/**
 * Every constant a scenario program is assembled with: the common three, then the scenario's own,
 * then the caller's extra ones (a benchmark's GAP_NS, say), later ones winning.
 */
export function scenarioDefines(
  definition: ScenarioDefinition,
  parameters: ScenarioParameters,
  extra: ReadonlyMap<string, number> = new Map(),
): ReadonlyMap<string, number> {
  return new Map([
    ['VCPUS', parameters.vcpus],
    ['IPI_COUNT', ipiBudget(parameters)],
    ['SEED', parameters.seed],
    ...definition.defines(parameters),
    ...extra,
  ]);
}
