// Setup only (no assertions here): the storm scenario's program on a VM built with these settings.
import { Vm, type VmConfig } from '../../src/kvm/vm/vm.js';
import { assembleScenario } from '../../src/scenarios/run-scenario.js';
import { resolveParameters } from '../../src/scenarios/scenario-parameters.js';
import { storm } from '../../src/scenarios/storm.js';
import type { ScenarioParameters } from '../../src/scenarios/scenario.js';

export async function createStormVm(config: VmConfig, ipis: number): Promise<{ vm: Vm; parameters: ScenarioParameters }> {
  const parameters = resolveParameters(storm, { vcpus: config.vcpus, ipis, seed: 1 });
  const program = assembleScenario(storm, parameters);
  const vm = await Vm.create(config);
  vm.loadProgram({
    origin: program.origin,
    bytes: program.bytes,
    ...(program.entryPoints.default === undefined ? {} : { entryPoint: program.entryPoints.default }),
    perVcpuEntryPoints: program.entryPoints.perVcpu,
  });
  return { vm, parameters };
}
