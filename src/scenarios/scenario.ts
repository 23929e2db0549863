// The shape of a shipped IPI scenario: a guest program (src/scenarios/programs/<name>.s) plus the
// host side: how the user's parameters become assembler constants and a VM configuration, and the
// checks that decide whether the run was right. The runner (run-scenario.ts) is shared.

import type { VmConfig } from '../kvm/vm/vm.js';
import type { VmReport } from '../kvm/report/vm-report.js';

export interface ScenarioParameters {
  readonly vcpus: number;
  /** Stop after this many IPIs in total (each scenario says how it splits them). */
  readonly ipis?: number;
  /** Or run for this long: the host sets the guest's `stop_requested` word when time is up. */
  readonly seconds?: number;
  /** Seed for the guest's pseudo-random choices (storm targets, destination patterns). */
  readonly seed: number;
  /** vCPUs to hot-add during a time-based run, evenly spaced (scenarios with supportsHotAdd only). */
  readonly hotAdd?: number;
}

export interface ScenarioCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ScenarioDefinition {
  readonly name: string;
  /** One line for --help and the scenario catalogue. */
  readonly summary: string;
  readonly minimumVcpus: number;
  readonly maximumVcpus: number;
  /** File name under src/scenarios/programs/. */
  readonly program: string;
  /** When neither --ipis nor --seconds is given. */
  readonly defaultIpis: number;
  /** Assembler constants overriding the program's own `.equ` defaults. */
  defines(parameters: ScenarioParameters): ReadonlyMap<string, number>;
  /** VM settings this scenario needs (halt-polling off to make a target truly sleep, and so on). */
  vmConfig?(parameters: ScenarioParameters): Partial<VmConfig>;
  /** Host-side checks over the report; the run fails if any check fails. */
  check(report: VmReport, parameters: ScenarioParameters): readonly ScenarioCheck[];
  /** What one latency sample (HC_LATENCY_SAMPLE) measures, from which event to which. */
  readonly latency?: string;
  /** Why maximumVcpus is what it is, when it is not the xAPIC limit (for the parameter error). */
  readonly vcpuLimitReason?: string;
  /** Whether the program copes with vCPUs hot-added while it runs (ScenarioParameters.hotAdd). */
  readonly supportsHotAdd?: boolean;
  /** The program's HC_ABORT codes (r1) and what each means, to name a failed guest assertion. */
  readonly abortCodes?: ReadonlyMap<number, string>;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly parameters: ScenarioParameters;
  readonly report: VmReport;
  readonly checks: readonly ScenarioCheck[];
  /** The VM report is ok and every check passed. */
  readonly ok: boolean;
}
