// The shared scenario runner: parameters -> assembled program -> VM -> report -> checks.
//
// Count-based runs end when the guest has sent its IPI budget (IPI_COUNT) and every vCPU has called
// HC_DONE. Time-based runs end the same way, started by the host: when `seconds` are up it sets the
// program's `stop_requested` word, and the guest winds down (senders wake the halted vCPUs), reports
// and finishes. Either way the VM's own timeout stays as a backstop, so a broken guest cannot hang
// the caller.

import { mainHostThread } from '../host/host-thread.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, formatDiagnostic, type ProgramImage } from '../guest/assembler.js';
import { includeFilesRelativeTo } from '../host/include-files.js';
import { packageRoot } from '../host/package-root.js';
import { Vm, type VmConfig } from '../kvm/vm/vm.js';
import { resolveParameters, scenarioDefines } from './scenario-parameters.js';
import type { ScenarioDefinition, ScenarioParameters, ScenarioResult } from './scenario.js';

export { ScenarioParameterError } from './scenario-parameters.js';

/** The word every scenario program declares and polls; the host sets it when time is up. */
export const STOP_REQUESTED_SYMBOL = 'stop_requested';
/** A word a hot-add program may declare: the host stores the created vCPU count after each hot-add. */
export const ONLINE_VCPUS_SYMBOL = 'online_vcpus';
/** How long past `seconds` (or past the start, for a count-based run) the VM may take to finish. */
const DEFAULT_GRACE_SECONDS = 60;

export interface ScenarioProgress {
  readonly elapsedSeconds: number;
  /** 0..1: time used of `seconds`, or IPI messages sent of the budget. */
  readonly fraction?: number;
}

export interface RunScenarioOptions {
  /** Record trace events in every vCPU (vm.chromeTrace() or vm.ftraceText() afterwards). */
  readonly trace?: boolean;
  /** Called about every 100 ms while the VM runs. */
  readonly onProgress?: (progress: ScenarioProgress) => void;
  /** VM settings over the scenario's own (vcpus always comes from the parameters). */
  readonly vmConfig?: Partial<VmConfig>;
  /** Extra assembler constants over the scenario's (a benchmark's GAP_NS, say). */
  readonly defines?: ReadonlyMap<string, number>;
  /** The VM's backstop: give up this long after the start. Default seconds + 60. */
  readonly timeoutSeconds?: number;
}

/** Host misuse the runner cannot recover from: a scenario program that is missing or broken. */
export class ScenarioProgramError extends Error {
  override readonly name = 'ScenarioProgramError';
}

/** Absolute path of a scenario's guest program (src/scenarios/programs/<file> in the package). */
export function scenarioProgramPath(definition: ScenarioDefinition): string {
  return join(packageRoot(), 'src', 'scenarios', 'programs', definition.program);
}

/** Assembles a scenario's program for these (already validated) parameters. */
export function assembleScenario(
  definition: ScenarioDefinition,
  parameters: ScenarioParameters,
  extraDefines?: ReadonlyMap<string, number>,
): ProgramImage {
  const path = scenarioProgramPath(definition);
  if (!existsSync(path)) throw new ScenarioProgramError(`scenario ${definition.name}: its program ${path} is missing`);
  const result = assemble(readFileSync(path, 'utf8'), {
    fileName: definition.program,
    defines: scenarioDefines(definition, parameters, extraDefines),
    // `.include "name"`: a file beside the program; no subdirectories, no '..'.
    readInclude: includeFilesRelativeTo(path, { fileName: definition.program, sameDirectoryOnly: true }),
  });
  if (!result.ok)
    throw new ScenarioProgramError(
      `scenario ${definition.name}: ${definition.program} does not assemble:\n${result.errors.map(formatDiagnostic).join('\n')}`,
    );
  const stop = result.program.symbols.get(STOP_REQUESTED_SYMBOL);
  if (stop === undefined || stop % 4 !== 0)
    throw new ScenarioProgramError(
      `scenario ${definition.name}: ${definition.program} must declare a 4-aligned '${STOP_REQUESTED_SYMBOL}: .word 0'`,
    );
  return result.program;
}

export async function runScenario(
  definition: ScenarioDefinition,
  parameters: ScenarioParameters,
  options: RunScenarioOptions = {},
): Promise<{ result: ScenarioResult; vm: Vm }> {
  const resolved = resolveParameters(definition, parameters);
  const program = assembleScenario(definition, resolved, options.defines);
  const hotAdds = resolved.hotAdd ?? 0;
  const vm = await Vm.create({
    ...definition.vmConfig?.(resolved),
    ...options.vmConfig,
    vcpus: resolved.vcpus,
    maxVcpus: resolved.vcpus + hotAdds,
  });
  vm.loadProgram(program);
  const { seconds, ipis } = resolved;
  // RAM slot 0 maps guest-physical 0 at pool offset 0, so the symbol's address indexes the pool.
  const stopIndex = program.symbols.get(STOP_REQUESTED_SYMBOL)! >>> 2;
  const ram = new Int32Array(vm.memory.buffers.ram);
  const onlineAddress = program.symbols.get(ONLINE_VCPUS_SYMBOL);
  const onlineIndex = onlineAddress === undefined ? undefined : onlineAddress >>> 2;
  vm.start({ trace: options.trace ?? false });
  // `seconds` counts guest time: the clock starts once every worker has picked up its vCPU, which
  // takes a while for hundreds of vCPUs on a loaded host.
  const runEnded = new AbortController();
  let clockStartedAt: number | undefined;
  let ended = false;
  let hotAdding: Promise<string[]> = Promise.resolve([]);
  if (seconds !== undefined) {
    void vm.whenAllRunning().then(() => {
      if (ended) return;
      clockStartedAt = mainHostThread().nowMs();
      void mainHostThread()
        .sleep(seconds * 1000, runEnded.signal)
        .then(() => {
          if (!runEnded.signal.aborted) Atomics.store(ram, stopIndex, 1);
        });
      if (hotAdds > 0)
        hotAdding = hotAddDuring(
          vm,
          hotAdds,
          seconds,
          () => ended,
          onlineIndex === undefined ? undefined : (created) => Atomics.store(ram, onlineIndex, created),
        );
    });
  }
  const onProgress = options.onProgress;
  try {
    const report = await vm.wait({
      timeoutSeconds: options.timeoutSeconds ?? (seconds ?? 0) + DEFAULT_GRACE_SECONDS,
      ...(onProgress === undefined
        ? {}
        : {
            onProgress: (elapsedSeconds: number) => {
              const fraction =
                seconds !== undefined
                  ? clockStartedAt === undefined
                    ? 0
                    : (mainHostThread().nowMs() - clockStartedAt) / 1000 / seconds
                  : ipis !== undefined
                    ? vm.liveIpisSent() / ipis
                    : undefined;
              onProgress({ elapsedSeconds, ...(fraction === undefined ? {} : { fraction: Math.min(1, fraction) }) });
            },
          }),
    });
    ended = true;
    const hotAddErrors = await hotAdding;
    const checks = [
      ...definition.check(report, resolved),
      ...(hotAddErrors.length === 0 ? [] : [{ name: 'hot-add calls succeeded', ok: false, detail: hotAddErrors.join('; ') }]),
    ];
    return {
      result: { scenario: definition.name, parameters: resolved, report, checks, ok: report.ok && checks.every((entry) => entry.ok) },
      vm,
    };
  } finally {
    ended = true;
    runEnded.abort();
  }
}

/**
 * Hot-adds `count` vCPUs at evenly spaced moments of a `seconds`-long run (k / (count + 1) of it),
 * one after another, announcing each through `announce` (the program's online_vcpus). Returns the errors of calls that failed (the run still ends normally).
 */
async function hotAddDuring(
  vm: Vm,
  count: number,
  seconds: number,
  ended: () => boolean,
  announce?: (created: number) => void,
): Promise<string[]> {
  const errors: string[] = [];
  const host = mainHostThread();
  const startedAt = host.nowMs();
  for (let k = 1; k <= count; k++) {
    const due = startedAt + (seconds * 1000 * k) / (count + 1);
    const delay = due - host.nowMs();
    if (delay > 0) await host.sleep(delay);
    if (ended()) {
      errors.push(`${count - k + 1} hot-add(s) not made: the run ended first`);
      break;
    }
    try {
      await vm.hotAddVcpu();
      announce?.(vm.createdVcpus);
    } catch (error) {
      errors.push(error instanceof Error ? error.message : String(error));
      break;
    }
  }
  return errors;
}
