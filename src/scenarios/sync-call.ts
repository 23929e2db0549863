// sync-call: kvm-unit-tests' vmexit `ipi`: synchronous cross-vCPU calls (on_cpu) from vCPU 0 to
// vCPUs idling in sti;hlt, round robin (programs/sync-call.s).

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, everyVcpu, range, slot, slotSum } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

const CALLER = 0;

function syncCallChecks(report: VmReport): ScenarioCheck[] {
  const others = range(1, report.vcpus);
  const calls = slot(report, CALLER, 2);
  return [
    everyVcpu(
      'every call ran where it was sent',
      others,
      (vcpu) => slot(report, vcpu, 3),
      (vcpu) => slot(report, vcpu, 4),
      'calls run and calls the caller made',
    ),
    check(
      'no call on the wrong vCPU',
      slotSum(report, 5, others) === 0,
      `${slotSum(report, 5, others)} call(s) ran on a vCPU they were not sent to`,
    ),
    check('calls add up', slotSum(report, 3, others) === calls, `${slotSum(report, 3, others)} call(s) run, ${calls} made`),
    everyVcpu(
      'one interrupt per call',
      others,
      (vcpu) => slot(report, vcpu, 1),
      (vcpu) => slot(report, vcpu, 3) + 1,
      'interrupts handled and calls + the finish call',
    ),
  ];
}

export const syncCall: ScenarioDefinition = {
  name: 'sync-call',
  summary: 'vCPU 0 makes synchronous cross-vCPU calls (on_cpu) to vCPUs idling in sti;hlt, as kvm-unit-tests vmexit ipi',
  minimumVcpus: 2,
  maximumVcpus: 255,
  program: 'sync-call.s',
  defaultIpis: 20_000,
  latency: "one on_cpu() call: publishing the call to seeing ipi_done set by the target's handler",
  abortCodes: new Map([
    [1, 'the vCPU count differs from VCPUS'],
    [2, 'not every vCPU came online within 4 s'],
    [3, 'a call was not completed within 4 s (a lost IPI or wake-up)'],
  ]),
  defines: () => new Map(),
  check: (report: VmReport, parameters: ScenarioParameters) => [...commonChecks(report, syncCall, parameters), ...syncCallChecks(report)],
};
