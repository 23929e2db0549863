// logical, logical-flat, logical-cluster: logical-destination multicast over every destination
// pattern (programs/logical.s). `logical` picks the flat model up to 8 vCPUs and the cluster model
// above; the other two force a model.

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, everyVcpu, range, slot, slotSum } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

export const LogicalMode = { Flat: 0, Cluster: 1 } as const;
export type LogicalMode = (typeof LogicalMode)[keyof typeof LogicalMode];

export const FLAT_MAX_VCPUS = 8;
/** Clusters 0..14 of four; cluster 15 is the broadcast cluster. */
export const CLUSTER_MAX_VCPUS = 60;
const APIC_DFR_FLAT = 0xffffffff;
const APIC_DFR_CLUSTER = 0x0fffffff;

/** A vCPU's logical ID (LDR bits 31:24), as the program sets it. */
export function logicalId(mode: LogicalMode, vcpu: number): number {
  return mode === LogicalMode.Flat ? 1 << vcpu : ((vcpu >> 2) << 4) | (1 << (vcpu & 3));
}

/** Does destination byte `destination` name logical ID `id` (SDM 11.6.2.2)? */
export function logicalDestinationNames(mode: LogicalMode, destination: number, id: number): boolean {
  if (mode === LogicalMode.Flat) return (destination & id) !== 0;
  return destination >> 4 === id >> 4 && (destination & id & 0xf) !== 0;
}

/** Is `destination` one of the patterns the program sweeps for this many vCPUs? */
export function isSweptPattern(mode: LogicalMode, vcpus: number, destination: number): boolean {
  if (mode === LogicalMode.Flat) return destination >= 1 && destination <= (1 << vcpus) - 1;
  const members = Math.min(4, vcpus - (destination >> 4) * 4);
  return (destination & 0xf) !== 0 && members >= 1 && (destination & 0xf) <= (1 << members) - 1;
}

/** The IPIs each vCPU must receive when the sweep starting at `seed & 0xFF` sent `patterns` patterns. */
export function expectedLogicalReceipts(mode: LogicalMode, vcpus: number, seed: number, patterns: number): number[] {
  const swept = range(0, 256).filter((destination) => isSweptPattern(mode, vcpus, destination));
  const expected = new Array<number>(vcpus).fill(0);
  if (swept.length === 0) return expected;
  const start = swept.findIndex((destination) => destination >= (seed & 0xff));
  const first = start === -1 ? 0 : start; // none at or above the seed: wrap to the first
  const fullSweeps = Math.floor(patterns / swept.length);
  swept.forEach((destination, index) => {
    const sends = fullSweeps + ((index - first + swept.length) % swept.length < patterns % swept.length ? 1 : 0);
    for (let vcpu = 0; vcpu < vcpus; vcpu++)
      if (logicalDestinationNames(mode, destination, logicalId(mode, vcpu))) expected[vcpu]! += sends;
  });
  return expected;
}

function logicalChecks(report: VmReport, parameters: ScenarioParameters, mode: LogicalMode): ScenarioCheck[] {
  const vcpus = range(0, report.vcpus);
  const expected = expectedLogicalReceipts(mode, report.vcpus, parameters.seed, slot(report, 0, 2));
  const dfr = mode === LogicalMode.Flat ? APIC_DFR_FLAT : APIC_DFR_CLUSTER;
  return [
    everyVcpu(
      'LDR took',
      vcpus,
      (vcpu) => slot(report, vcpu, 7) >>> 24,
      (vcpu) => logicalId(mode, vcpu),
      'LDR read back and the logical ID',
    ),
    everyVcpu(
      'DFR took',
      vcpus,
      (vcpu) => slot(report, vcpu, 8),
      () => dfr,
      'DFR read back and the model',
    ),
    everyVcpu(
      'each vCPU got exactly the IPIs that named it',
      vcpus,
      (vcpu) => slot(report, vcpu, 3),
      (vcpu) => expected[vcpu]!,
      "pattern IPIs received and the sweep's expectation (computed on the host)",
    ),
    check('per pattern, too', slotSum(report, 5) === 0, `${slotSum(report, 5)} (vCPU, pattern) count(s) differ from the sender's sends`),
    check('none to the wrong vCPU', slotSum(report, 6) === 0, `${slotSum(report, 6)} IPI(s) reached a vCPU their pattern does not name`),
    everyVcpu(
      'the guest agrees',
      vcpus,
      (vcpu) => slot(report, vcpu, 4),
      (vcpu) => expected[vcpu]!,
      "the guest's own expectation and the host's",
    ),
  ];
}

function logicalDefinition(
  name: string,
  summary: string,
  maximumVcpus: number,
  reason: string,
  modeFor: (vcpus: number) => LogicalMode,
): ScenarioDefinition {
  const definition: ScenarioDefinition = {
    name,
    summary,
    minimumVcpus: 2,
    maximumVcpus,
    vcpuLimitReason: reason,
    program: 'logical.s',
    defaultIpis: 20_000,
    latency: "one pattern: vCPU 0's ICR write to its having seen every named vCPU's handler run",
    abortCodes: new Map([
      [1, 'the vCPU count differs from VCPUS'],
      [2, 'too many vCPUs for the logical model'],
      [3, 'not every vCPU set up its LDR and DFR within 4 s'],
      [4, 'a named vCPU did not handle a pattern within 4 s (value = vCPU | pattern << 8)'],
      [5, 'a vCPU did not finish within 4 s of its FINISH IPI'],
    ]),
    defines: (parameters) => new Map([['LOGICAL_MODE', modeFor(parameters.vcpus)]]),
    check: (report: VmReport, parameters: ScenarioParameters) => [
      ...commonChecks(report, definition, parameters),
      ...logicalChecks(report, parameters, modeFor(parameters.vcpus)),
    ],
  };
  return definition;
}

export const logicalFlat = logicalDefinition(
  'logical-flat',
  'flat logical-destination multicast over every destination pattern (up to 8 vCPUs)',
  FLAT_MAX_VCPUS,
  'the flat model has 8 logical ID bits',
  () => LogicalMode.Flat,
);
export const logicalCluster = logicalDefinition(
  'logical-cluster',
  'cluster logical-destination multicast over every cluster and member mask (up to 60 vCPUs)',
  CLUSTER_MAX_VCPUS,
  'the cluster model has 15 clusters of 4',
  () => LogicalMode.Cluster,
);
export const logical = logicalDefinition(
  'logical',
  'logical-destination multicast over every pattern: flat up to 8 vCPUs, cluster above (up to 60)',
  CLUSTER_MAX_VCPUS,
  'the cluster model has 15 clusters of 4',
  (vcpus) => (vcpus <= FLAT_MAX_VCPUS ? LogicalMode.Flat : LogicalMode.Cluster),
);
