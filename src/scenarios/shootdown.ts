// shootdown: the TLB-shootdown pattern with a rotating initiator (programs/shootdown.s).

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, everyVcpu, range, slot, slotSum } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

/** Rounds per initiator term (the program's ROTATE_EVERY). */
export const SHOOTDOWN_ROTATE_EVERY = 16;

/**
 * Who initiated how many shootdowns, given the total: terms of ROTATE_EVERY rounds go to vCPU 0, 1,
 * 2, ... in turn (wrapping), and only the last term may be short.
 */
export function expectedShootdowns(vcpus: number, total: number, rotateEvery: number): { shootdowns: number[]; terms: number[] } {
  const shootdowns = new Array<number>(vcpus).fill(0);
  const terms = new Array<number>(vcpus).fill(0);
  for (let term = 0, left = total; left > 0; term++, left -= rotateEvery) {
    shootdowns[term % vcpus]! += Math.min(rotateEvery, left);
    terms[term % vcpus]! += 1;
  }
  return { shootdowns, terms };
}

function shootdownChecks(report: VmReport): ScenarioCheck[] {
  const vcpus = range(0, report.vcpus);
  const total = slotSum(report, 2);
  const expected = expectedShootdowns(report.vcpus, total, SHOOTDOWN_ROTATE_EVERY);
  return [
    everyVcpu(
      'acks = IPIs per target',
      vcpus,
      (vcpu) => slot(report, vcpu, 3),
      (vcpu) => slot(report, vcpu, 4),
      'flushes acknowledged and shootdown IPIs sent',
    ),
    check(
      'every shootdown hit 1 to N-1 vCPUs',
      slotSum(report, 4) >= total && slotSum(report, 4) <= total * (report.vcpus - 1),
      `${slotSum(report, 4)} shootdown IPIs for ${total} shootdown(s) of ${report.vcpus} vCPUs`,
    ),
    everyVcpu(
      `initiator rotates every ${SHOOTDOWN_ROTATE_EVERY}`,
      vcpus,
      (vcpu) => slot(report, vcpu, 2),
      (vcpu) => expected.shootdowns[vcpu]!,
      'shootdowns initiated and the rotation',
    ),
    everyVcpu(
      'terms served',
      vcpus,
      (vcpu) => slot(report, vcpu, 6),
      (vcpu) => expected.terms[vcpu]!,
      'terms served and the rotation',
    ),
  ];
}

export const shootdown: ScenarioDefinition = {
  name: 'shootdown',
  summary: 'TLB-shootdown pattern: an initiator IPIs a seeded subset of vCPUs and spins until each acks in memory; the initiator rotates',
  minimumVcpus: 2,
  maximumVcpus: 255,
  program: 'shootdown.s',
  defaultIpis: 20_000,
  latency: "one shootdown: the initiator's first ICR write to its seeing the last target's ack of that generation",
  abortCodes: new Map([
    [1, 'the vCPU count differs from VCPUS (or is below 2)'],
    [2, 'not every vCPU came online within 4 s'],
    [3, 'a target did not acknowledge a shootdown within 4 s (a lost IPI or wake-up)'],
    [4, 'a vCPU did not finish within 4 s of its FINISH IPI'],
  ]),
  defines: () => new Map([['ROTATE_EVERY', SHOOTDOWN_ROTATE_EVERY]]),
  check: (report: VmReport, parameters: ScenarioParameters) => [...commonChecks(report, shootdown, parameters), ...shootdownChecks(report)],
};
