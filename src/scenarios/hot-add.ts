// hot-add: vCPUs hot-added while every vCPU sends IPIs (programs/hot-add.s). Under the upstream
// backing-page policy nothing may be lost; under rfc-v2 each addition re-initialises every backing
// page under running senders, and the report's IPI balance and vcpuCreation section show the cost.

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, everyVcpu, range, slot, slotSum } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

function hotAddChecks(report: VmReport, parameters: ScenarioParameters): ScenarioCheck[] {
  const vcpus = range(0, report.vcpus);
  const sent = slotSum(report, 0);
  const wanted = parameters.vcpus + (parameters.hotAdd ?? 0);
  const creation = report.vcpuCreation;
  return [
    check(
      'every hot-add happened',
      report.vcpus === wanted && creation.hotAdds === (parameters.hotAdd ?? 0),
      `${report.vcpus} vCPUs at the end (${parameters.vcpus} + ${creation.hotAdds} hot-added) of ${wanted}`,
    ),
    everyVcpu(
      'each vCPU sent its IPIs',
      vcpus,
      (vcpu) => slot(report, vcpu, 0),
      (vcpu) => report.perVcpu[vcpu]!.counters.ipisSent,
      'guest IPIs sent and emulator IPI messages',
    ),
    check(
      'receipts add up',
      slotSum(report, 1) + report.ipis.coalesced + report.ipis.pending + report.ipis.lost === sent,
      `${slotSum(report, 1)} handled + ${report.ipis.coalesced} merged + ${report.ipis.pending} pending + ${report.ipis.lost} lost vs ${sent} sent`,
    ),
    check(
      'no IPI stranded in a released backing page',
      creation.strandedIrrBits === 0,
      `${creation.strandedIrrBits} IRR bit(s) left in released pages; ${creation.backingPagesReinitialised} page(s) re-initialised over ${creation.apicAccessMemslotResizes} memslot resize(s)`,
    ),
  ];
}

export const hotAdd: ScenarioDefinition = {
  name: 'hot-add',
  summary:
    'vCPUs hot-added (--hot-add N) while every online vCPU sends IPIs to the others; shows what each backing-page policy (--policy) costs',
  minimumVcpus: 2,
  maximumVcpus: 255,
  program: 'hot-add.s',
  defaultIpis: 1_000_000,
  supportsHotAdd: true,
  defines: (parameters) => new Map([['MAX_VCPUS', parameters.vcpus + (parameters.hotAdd ?? 0)]]),
  check: (report: VmReport, parameters: ScenarioParameters) => [
    ...commonChecks(report, hotAdd, parameters),
    ...hotAddChecks(report, parameters),
  ],
};
