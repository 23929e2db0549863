// storm: every vCPU sends to seeded pseudo-random other vCPUs, all to all (programs/storm.s).

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, everyVcpu, range, slot, slotSum } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

function stormChecks(report: VmReport, parameters: ScenarioParameters): ScenarioCheck[] {
  const vcpus = range(0, report.vcpus);
  const sent = slotSum(report, 0);
  const checks = [
    everyVcpu(
      'each vCPU sent its IPIs',
      vcpus,
      (vcpu) => slot(report, vcpu, 0),
      (vcpu) => report.perVcpu[vcpu]!.counters.ipisSent,
      'guest IPIs sent and emulator IPI messages',
    ),
    check(
      'receipts add up',
      slotSum(report, 1) + report.ipis.coalesced + report.ipis.pending === sent,
      `${slotSum(report, 1)} handled + ${report.ipis.coalesced} merged in an IRR + ${report.ipis.pending} pending vs ${sent} sent`,
    ),
    everyVcpu(
      'every sender measured',
      vcpus,
      (vcpu) => (slot(report, vcpu, 0) > 0 ? Math.sign(slot(report, vcpu, 2)) : 1),
      () => 1,
      'vCPUs that sent and took at least one latency sample',
    ),
  ];
  if (parameters.ipis !== undefined) {
    checks.push(
      everyVcpu(
        'budget split evenly',
        vcpus,
        (vcpu) => slot(report, vcpu, 0),
        (vcpu) => slot(report, vcpu, 3),
        'IPIs sent and budget',
      ),
    );
    checks.push(check('the whole budget sent', sent === parameters.ipis, `${sent} sent of ${parameters.ipis}`));
  }
  return checks;
}

export const storm: ScenarioDefinition = {
  name: 'storm',
  summary: 'every vCPU sends to seeded pseudo-random other vCPUs, all to all, as fast as it can',
  minimumVcpus: 2,
  maximumVcpus: 255,
  program: 'storm.s',
  defaultIpis: 1_000_000,
  latency:
    "about every 64th IPI of each sender: its ICR write to the sender next noticing (once per IPI it sends) that the target's receipt count moved",
  abortCodes: new Map([
    [1, 'the vCPU count differs from VCPUS (or is below 2)'],
    [3, 'the end-of-run barrier saw no vCPU arrive for 4 s (and a million spins)'],
    [4, "this vCPU's IRR did not drain within 4 s (and a million spins)"],
  ]),
  defines: () => new Map(),
  check: (report: VmReport, parameters: ScenarioParameters) => [
    ...commonChecks(report, storm, parameters),
    ...stormChecks(report, parameters),
  ],
};
