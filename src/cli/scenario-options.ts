// Options and settings shared by `stress` and `scale`: the pattern, the run length, the seed and
// the VM switches, and how they become runScenario()'s parameters and VM configuration.

import { Option } from 'commander';
import type { VmConfig } from '../kvm/vm/vm.js';
import { DEFAULT_HOST_IDLE_POLL_US, ERRATUM_1235_DEFAULT_WINDOW_US } from '../kvm/vm/vm-config.js';
import { BACKING_PAGE_POLICY_NAMES, BackingPagePolicyName } from '../kvm/control/backing-page-policy.js';
import { SCENARIOS } from '../scenarios/catalogue.js';
import type { ScenarioDefinition } from '../scenarios/scenario.js';
import { nonNegativeInteger, oneOf, positiveInteger, positiveNumber } from './arguments.js';
import { deterministicConfig, deterministicOptions, type DeterministicCommandOptions } from './deterministic-options.js';
import { injectConfig } from './inject-option.js';

export const DEFAULT_SEED = 1;

export interface ScenarioCommandOptions extends DeterministicCommandOptions {
  readonly pattern: ScenarioDefinition;
  readonly ipis?: number;
  readonly seconds?: number;
  readonly seed: number;
  readonly json?: boolean;
  readonly ipiv: boolean;
  readonly erratum1235?: boolean;
  readonly erratum1235Window?: number;
  readonly haltPoll: boolean;
  readonly policy: BackingPagePolicyName;
  readonly lockdep?: boolean;
  readonly x2avic: boolean;
  readonly hostCpus?: number;
  readonly hostIdlePoll?: number;
  readonly x2avicExt: boolean;
  /** --inject: a bug of the bug zoo or its fixed twin (docs/bug-zoo.md). */
  readonly inject?: string;
}

export function patternOption(): Option {
  return new Option('--pattern <name>', `the IPI scenario to run: ${[...SCENARIOS.keys()].join(', ')} (listed below)`)
    .argParser(oneOf('pattern', SCENARIOS))
    .makeOptionMandatory();
}

export function runLengthOptions(): Option[] {
  return [
    new Option('--ipis <m>', "stop after about M IPIs in total (the pattern says how it splits them); default: the pattern's own count")
      .argParser(positiveInteger('--ipis'))
      .conflicts('seconds'),
    new Option('--seconds <s>', 'or run for S seconds (the guest is asked to stop when time is up)')
      .argParser(positiveNumber('--seconds'))
      .conflicts('ipis'),
    new Option(
      '--seed <x>',
      "seed for the guest's pseudo-random choices (storm targets, destination patterns), 0 to 4294967295 (a deterministic run's schedule has its own: --schedule-seed)",
    )
      .argParser(nonNegativeInteger('--seed'))
      .default(DEFAULT_SEED),
  ];
}

export function vmSwitchOptions(): Option[] {
  return [
    new Option(
      '--no-ipiv',
      'IPI virtualization off: IsRunning is never shown to the hardware, so every IPI exits (the erratum #1235 work-around)',
    ),
    ...erratum1235Options(),
    new Option('--no-halt-poll', 'no halt-polling: a halted vCPU sleeps at once, so every IPI to it is a real wake-up'),
    policyOption(),
    lockdepOption(),
    x2avicOption(),
    hostCpusOption(),
    hostIdlePollOption(),
    x2avicExtOption(),
    ...deterministicOptions(),
  ];
}

/** --erratum-1235 and its window (run, stress, scale: wherever --no-ipiv is). */
export function erratum1235Options(): Option[] {
  return [
    new Option(
      '--erratum-1235',
      "model AMD erratum #1235 (Zen1/Zen2): a sender may miss a recent IsRunning clear, ring a doorbell nobody hears and take no exit, so a halted target can lose its wake-up; with --no-ipiv, KVM's work-around, nothing is lost",
    ),
    new Option(
      '--erratum-1235-window <us>',
      `the erratum's window W: an IsRunning clear younger than this many microseconds is missed, 1 to 1000000 (default ${ERRATUM_1235_DEFAULT_WINDOW_US}); implies --erratum-1235`,
    )
      .argParser(positiveInteger('--erratum-1235-window', 1_000_000))
      .implies({ erratum1235: true }),
  ];
}

/** The erratum #1235 settings the user chose, as VmConfig fields. */
export function erratum1235Config(options: { readonly erratum1235?: boolean; readonly erratum1235Window?: number }): Partial<VmConfig> {
  return {
    ...(options.erratum1235 === true ? { erratum1235: true } : {}),
    ...(options.erratum1235Window === undefined ? {} : { erratum1235WindowUs: options.erratum1235Window }),
  };
}

export function hostCpusOption(): Option {
  return new Option(
    '--host-cpus <n>',
    'host CPUs (worker threads) the vCPUs are scheduled onto, 1 to the vCPU count; default min(vCPUs, cores)',
  ).argParser(positiveInteger('--host-cpus', 4096));
}

export function hostIdlePollOption(): Option {
  return new Option(
    '--host-idle-poll <us>',
    `the most a host CPU with nothing to run polls for a wake-up before its thread sleeps (the window adapts as KVM's halt-poll window), 0 to 100000 microseconds (0: sleep at once, every wake-up of it an OS thread wake-up); default ${DEFAULT_HOST_IDLE_POLL_US} when the host CPUs fit the cores, else 0; parallel runs only`,
  ).argParser(nonNegativeInteger('--host-idle-poll', 100_000));
}

/** --host-idle-poll as a VmConfig field, when given. */
export function hostIdlePollConfig(options: { readonly hostIdlePoll?: number }): Partial<VmConfig> {
  return options.hostIdlePoll === undefined ? {} : { hostIdlePollUs: options.hostIdlePoll };
}

export function x2avicOption(): Option {
  return new Option(
    '--no-x2avic',
    "no x2AVIC (hybrid AVIC): x2APIC IPIs all take KVM's software path, and AVIC addresses vCPUs 0-254 only (more inhibit it: PHYSICAL_ID_TOO_BIG)",
  );
}

export function x2avicExtOption(): Option {
  return new Option(
    '--no-x2avic-ext',
    'no x2AVIC 4K extension (X2AVIC_EXT): x2AVIC addresses vCPUs 0-511 only, so a VM of more runs with AVIC inhibited (PHYSICAL_ID_TOO_BIG, every IPI in software)',
  );
}

export function policyOption(): Option {
  return new Option(
    '--policy <name>',
    `backing-page policy: ${BACKING_PAGE_POLICY_NAMES.join(' or ')} (rfc-v2, the 2016 RFC: pages in a memslot resized and re-initialised for every new vCPU id)`,
  )
    .argParser(oneOf('policy', new Map(BACKING_PAGE_POLICY_NAMES.map((name) => [name, name])), 'policies'))
    .default(BackingPagePolicyName.Upstream);
}

export function lockdepOption(): Option {
  return new Option('--lockdep', "run the lock-order validator over the hypervisor's locks; a report fails the run (docs/lock-order.md)");
}

/** The VM settings the user changed; the pattern's own choices stand for the rest. */
export function vmConfigOverrides(options: ScenarioCommandOptions): Partial<VmConfig> {
  return {
    ...(options.ipiv ? {} : { ipiVirtualization: false }),
    ...erratum1235Config(options),
    ...injectConfig(options.inject),
    ...(options.haltPoll ? {} : { haltPolling: false }),
    ...(options.policy === BackingPagePolicyName.Upstream ? {} : { policy: options.policy }),
    ...(options.lockdep === true ? { lockdep: true } : {}),
    ...(options.x2avic ? {} : { x2avic: false }),
    ...(options.hostCpus === undefined ? {} : { hostCpus: options.hostCpus }),
    ...hostIdlePollConfig(options),
    // The extension widens x2AVIC: without x2AVIC the flag has nothing to turn off.
    ...(options.x2avicExt || !options.x2avic ? {} : { x2avicExtended: false }),
    ...deterministicConfig(options),
  };
}

export function patternsHelp(): string {
  const width = Math.max(...[...SCENARIOS.keys()].map((name) => name.length));
  const lines = [...SCENARIOS.values()].map(
    (definition) =>
      `  ${definition.name.padEnd(width)}  ${definition.summary} (${definition.minimumVcpus === definition.maximumVcpus ? `${definition.minimumVcpus}` : `${definition.minimumVcpus}-${definition.maximumVcpus}`} vCPUs; default ${definition.defaultIpis.toLocaleString('en-US')} IPIs)`,
  );
  return `Patterns:\n${lines.join('\n')}`;
}
