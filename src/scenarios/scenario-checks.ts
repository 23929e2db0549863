// Checks shared by every scenario, and helpers for the scenario-specific ones.
//
// Every scenario program reports through the same first three HC_REPORT slots (docs/scenarios.md):
//   slot 0  ICR writes this vCPU made (each one an IPI command)
//   slot 1  interrupts this vCPU's handlers ran (every vector the program uses)
//   slot 2  measured operations this vCPU completed, one HC_LATENCY_SAMPLE each
// so the guest's own bookkeeping can be held against the emulator's counters: a check fails if the
// two disagree, whichever of them is wrong.

import type { VmReport } from '../kvm/report/vm-report.js';
import { ipiBudget, UNLIMITED_IPIS } from './scenario-parameters.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

export const ReportSlot = { IcrWrites: 0, InterruptsHandled: 1, MeasuredOperations: 2 } as const;

export function check(name: string, ok: boolean, detail: string): ScenarioCheck {
  return { name, ok, detail };
}

/** HC_REPORT slot `slot` of vCPU `vcpu` (0 if the vCPU or slot is missing). */
export function slot(report: VmReport, vcpu: number, slot: number): number {
  return report.perVcpu[vcpu]?.guest.reports[slot] ?? 0;
}

/** The sum of one slot over the vCPUs in `vcpus` (default: all). */
export function slotSum(report: VmReport, slotIndex: number, vcpus: readonly number[] = report.perVcpu.map((entry) => entry.vcpu)): number {
  return vcpus.reduce((total, vcpu) => total + slot(report, vcpu, slotIndex), 0);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, index) => from + index);
}

/**
 * Compares per-vCPU values; passes when every pair agrees. `describe` names the first mismatches.
 */
export function everyVcpu(
  name: string,
  vcpus: readonly number[],
  actual: (vcpu: number) => number,
  expected: (vcpu: number) => number,
  what: string,
): ScenarioCheck {
  const wrong = vcpus.filter((vcpu) => actual(vcpu) !== expected(vcpu));
  const shown = wrong
    .slice(0, 4)
    .map((vcpu) => `vCPU ${vcpu}: ${actual(vcpu)} != ${expected(vcpu)}`)
    .join('; ');
  return check(
    name,
    wrong.length === 0,
    wrong.length === 0
      ? `${what} agree on ${vcpus.length} vCPU(s)`
      : `${what}: ${shown}${wrong.length > 4 ? ` (and ${wrong.length - 4} more)` : ''}`,
  );
}

/** "guest assertion failed: code 3, value 7" -> "... (code 3: the IPI was not handled)". */
function nameAbort(description: string, codes: ReadonlyMap<number, string> | undefined): string {
  const match = /code (\d+)/.exec(description);
  const meaning = match === null ? undefined : codes?.get(Number(match[1]));
  return meaning === undefined ? description : `${description} [${meaning}]`;
}

/** The checks every scenario makes, before its own. */
export function commonChecks(report: VmReport, definition: ScenarioDefinition, parameters: ScenarioParameters): ScenarioCheck[] {
  const vcpus = report.perVcpu.map((entry) => entry.vcpu);
  const failures = [
    ...report.faults.map((fault) => `vCPU ${fault.vcpu}: ${nameAbort(fault.description, definition.abortCodes)}`),
    ...report.errors.map((error) => `vCPU ${error.vcpu}: ${error.message}`),
  ];
  const notDone = report.perVcpu.filter((entry) => !entry.guest.done || entry.guest.doneStatus !== 0).map((entry) => entry.vcpu);
  const checks = [
    check(
      'no IPI lost',
      report.ipis.lost === 0,
      `accepted ${report.ipis.accepted} = delivered ${report.ipis.delivered} + pending ${report.ipis.pending} + lost ${report.ipis.lost}`,
    ),
    check('no lost wake-up', report.lostWakeups === 0, `${report.lostWakeups} bounded wait(s) timed out with an event pending`),
    check(
      'every vCPU finished',
      report.exit.reason === 'all-done' && notDone.length === 0,
      report.exit.reason === 'all-done' && notDone.length === 0
        ? `${vcpus.length} vCPU(s) reported done`
        : [
            `exit ${report.exit.reason}: ${report.exit.detail}`,
            ...failures,
            ...(notDone.length > 0 ? [`not done: vCPU ${notDone.slice(0, 8).join(', ')}`] : []),
          ].join('; '),
    ),
    everyVcpu(
      'ICR writes match IPI commands',
      vcpus,
      (vcpu) => slot(report, vcpu, ReportSlot.IcrWrites),
      (vcpu) => report.perVcpu[vcpu]!.counters.ipiCommands,
      'guest ICR writes (slot 0) and emulator IPI commands',
    ),
    check(
      'handler runs match deliveries',
      slotSum(report, ReportSlot.InterruptsHandled) === report.ipis.delivered,
      `guest handler runs (slot 1) ${slotSum(report, ReportSlot.InterruptsHandled)}, emulator deliveries ${report.ipis.delivered}`,
    ),
    everyVcpu(
      'one latency sample per operation',
      vcpus,
      (vcpu) => report.perVcpu[vcpu]!.counters.latencySamples,
      (vcpu) => slot(report, vcpu, ReportSlot.MeasuredOperations),
      'latency samples and measured operations (slot 2)',
    ),
  ];
  const budget = ipiBudget(parameters);
  if (budget !== UNLIMITED_IPIS)
    checks.push(check('IPI budget sent', report.ipis.sent >= budget, `${report.ipis.sent} IPI messages sent for a budget of ${budget}`));
  return checks;
}
