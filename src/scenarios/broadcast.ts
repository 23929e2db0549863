// broadcast: physical broadcast (destination 0xFF) and the all-excluding-self shorthand from vCPU 0
// to VCPUS - 1 receivers halted in sti;hlt; the sender waits for every handler (programs/broadcast.s).

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, everyVcpu, range, slot } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

const SENDER = 0;

function broadcastChecks(report: VmReport): ScenarioCheck[] {
  const receivers = range(1, report.vcpus);
  const broadcasts = slot(report, SENDER, 2);
  const physical = slot(report, SENDER, 3);
  const shorthand = slot(report, SENDER, 4);
  const messages = report.vcpus * physical + (report.vcpus - 1) * (shorthand + 1);
  return [
    everyVcpu(
      'every receiver got every broadcast',
      receivers,
      (vcpu) => slot(report, vcpu, 3),
      () => broadcasts,
      'broadcasts handled and broadcasts sent',
    ),
    everyVcpu(
      'and the finish',
      receivers,
      (vcpu) => slot(report, vcpu, 1),
      (vcpu) => slot(report, vcpu, 3) + 1,
      'interrupts handled and broadcasts + 1',
    ),
    check(
      '0xFF reaches the sender too',
      slot(report, SENDER, 1) === physical,
      `sender handled ${slot(report, SENDER, 1)} of its ${physical} physical broadcast(s)`,
    ),
    check(
      'both kinds sent',
      physical + shorthand === broadcasts && (broadcasts < 2 || (physical > 0 && shorthand > 0)),
      `${physical} physical + ${shorthand} shorthand of ${broadcasts}`,
    ),
    check(
      'one message per destination',
      report.ipis.sent === messages,
      `${report.ipis.sent} IPI messages, expected ${report.vcpus} x ${physical} + ${report.vcpus - 1} x ${shorthand + 1}`,
    ),
  ];
}

export const broadcast: ScenarioDefinition = {
  name: 'broadcast',
  summary: 'vCPU 0 alternates physical broadcast (0xFF) and the all-but-self shorthand to N-1 halted receivers, waiting for every handler',
  minimumVcpus: 2,
  maximumVcpus: 255,
  program: 'broadcast.s',
  defaultIpis: 20_000,
  latency: "one broadcast: the sender's ICR write to the sender having seen every handler run (its own too, for 0xFF)",
  abortCodes: new Map([
    [1, 'the vCPU count differs from VCPUS (or is below 2)'],
    [2, 'not every receiver came online within 4 s'],
    [3, 'a receiver did not handle a broadcast within 4 s (a lost IPI or wake-up)'],
    [4, 'the sender did not handle its own 0xFF broadcast within 4 s'],
    [5, 'a receiver did not finish within 4 s of the FINISH broadcast'],
  ]),
  defines: () => new Map(),
  check: (report: VmReport, parameters: ScenarioParameters) => [...commonChecks(report, broadcast, parameters), ...broadcastChecks(report)],
};
