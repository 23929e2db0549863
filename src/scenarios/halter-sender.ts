// halter-sender: the KVM selftest xapic_ipi_test (programs/halter-sender.s): IPIs sent, received,
// halts and wake-ups must all agree, and every IPI must wake its halter within a bound.

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, everyVcpu, range, slot, slotSum } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

/** The selftest's bound: its sender gives each IPI about 2e9 TSC ticks (~1 s) to be handled. */
export const HALTER_WAKE_BOUND_NS = 1_000_000_000;

function halterSenderChecks(report: VmReport): ScenarioCheck[] {
  const sender = report.vcpus - 1;
  const halters = range(0, sender);
  const maximum = report.perVcpu[sender]?.latencyNs?.max ?? 0;
  return [
    everyVcpu(
      'received = sent',
      halters,
      (vcpu) => slot(report, vcpu, 1),
      (vcpu) => slot(report, vcpu, 5),
      'IPIs received and IPIs sent',
    ),
    everyVcpu(
      'woke once per IPI',
      halters,
      (vcpu) => slot(report, vcpu, 4),
      (vcpu) => slot(report, vcpu, 1),
      'wakes and IPIs received',
    ),
    everyVcpu(
      'halted once per IPI',
      halters,
      (vcpu) => slot(report, vcpu, 3),
      (vcpu) => slot(report, vcpu, 1),
      'halts and IPIs received',
    ),
    // The selftest's host-side assertion: the guest's hlt_count equals KVM's halt_exits.
    everyVcpu(
      'halts = halt exits',
      halters,
      (vcpu) => slot(report, vcpu, 3),
      (vcpu) => report.perVcpu[vcpu]!.counters.haltExits,
      'guest halts and halt exits',
    ),
    check(
      'sent adds up',
      slotSum(report, 5, halters) === slot(report, sender, 0),
      `halters were sent ${slotSum(report, 5, halters)}, the sender wrote ICR ${slot(report, sender, 0)} time(s)`,
    ),
    everyVcpu(
      'APIC ID is the vCPU index',
      halters,
      (vcpu) => slot(report, vcpu, 6) >>> 24,
      (vcpu) => vcpu,
      'APIC ID register and vCPU index',
    ),
    check(
      'every IPI handled within 1 s',
      maximum <= HALTER_WAKE_BOUND_NS,
      `slowest IPI handled ${(maximum / 1e6).toFixed(3)} ms after its send`,
    ),
  ];
}

export const halterSender: ScenarioDefinition = {
  name: 'halter-sender',
  summary: 'the KVM selftest xapic_ipi_test: IPIs to halted vCPUs; sent, received, halts and wakes must agree',
  minimumVcpus: 2,
  maximumVcpus: 255,
  program: 'halter-sender.s',
  defaultIpis: 20_000,
  latency: "the sender's ICR write to the halter's IPI handler starting (both on the VM clock)",
  abortCodes: new Map([
    [1, 'the APIC base MSR does not hold 0xFEE00000'],
    [2, 'a halter did not halt within 4 s of starting'],
    [3, 'an IPI was not received within 4 s (lost IPI)'],
    [4, 'the halter received the IPI but did not wake within 4 s (lost wake-up)'],
    [5, 'the halter woke but did not halt again within 4 s'],
    [6, 'a halter did not stop within 4 s of its stop IPI'],
    [7, 'the vCPU count differs from VCPUS'],
  ]),
  defines: () => new Map(),
  check: (report: VmReport, parameters: ScenarioParameters) => [
    ...commonChecks(report, halterSender, parameters),
    ...halterSenderChecks(report),
  ],
};
