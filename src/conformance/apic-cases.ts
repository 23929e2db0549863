// The kvm-unit-tests x86/apic.c scenarios (snapshot 1da1819e49fc), as guest programs. Each case's
// program says at its top what it does and what its slots and abort codes mean; docs/conformance.md
// lists them.

import { everyVcpuSlot, expectSlots, fail, slot, type ConformanceCase } from './conformance-case.js';

const APIC_C = 'kvm-unit-tests x86/apic.c';
const NOT_ONLINE: readonly [number, string] = [100, 'an application vCPU did not come online within 2 s (value = how many did)'];

export const selfIpiXapic: ConformanceCase = {
  name: 'apic/self-ipi-xapic',
  origin: `${APIC_C} test_self_ipi_xapic`,
  summary: 'a fixed self-IPI (SELF shorthand) in xAPIC mode is taken exactly once',
  program: 'self-ipi-xapic.s',
  vcpus: 1,
  timeoutSeconds: 10,
  abortCodes: new Map(),
  check: (report) =>
    expectSlots(
      report,
      [
        { vcpu: 0, slot: 1, expected: 0x800, what: 'APIC base MSR bits 11:10 (enabled, xAPIC mode)' },
        { vcpu: 0, slot: 0, expected: 1, what: 'handler runs after the self-IPI' },
      ],
      'the self-IPI was taken exactly once',
    ),
};

export const selfIpiX2apic: ConformanceCase = {
  name: 'apic/self-ipi-x2apic',
  origin: `${APIC_C} test_self_ipi_x2apic`,
  summary:
    'after the switch to x2APIC mode (APIC base bit 10), a self-IPI through the ICR MSR 0x830 and one through the SELF IPI MSR 0x83F are each taken exactly once',
  program: 'self-ipi-x2apic.s',
  vcpus: 1,
  timeoutSeconds: 10,
  abortCodes: new Map(),
  check: (report) =>
    expectSlots(
      report,
      [
        { vcpu: 0, slot: 2, expected: 0xc00, what: 'APIC base MSR bits 11:10 after the switch (enabled, x2APIC mode)' },
        { vcpu: 0, slot: 3, expected: 0, what: 'x2APIC ID (MSR 0x802)' },
        { vcpu: 0, slot: 0, expected: 1, what: 'handler runs after the ICR (MSR 0x830) self-IPI' },
        { vcpu: 0, slot: 1, expected: 2, what: 'handler runs after the SELF IPI MSR (0x83F) write, both IPIs' },
      ],
      'both x2APIC self-IPIs were taken exactly once',
    ),
};

const BROADCAST_VCPUS = 4;
export const physicalBroadcast: ConformanceCase = {
  name: 'apic/physical-broadcast',
  origin: `${APIC_C} test_physical_broadcast`,
  summary:
    'a fixed IPI to physical destination 0xFF, and one with the all-including-self shorthand, reach every vCPU (the sender too) exactly once',
  program: 'physical-broadcast.s',
  vcpus: BROADCAST_VCPUS,
  timeoutSeconds: 15,
  abortCodes: new Map([NOT_ONLINE]),
  check: (report) =>
    expectSlots(
      report,
      [
        { vcpu: 0, slot: 0, expected: BROADCAST_VCPUS, what: 'handler runs after the 0xFF broadcast' },
        { vcpu: 0, slot: 1, expected: BROADCAST_VCPUS, what: 'handler runs after the all-including-self broadcast' },
        ...everyVcpuSlot(BROADCAST_VCPUS, 2, () => 2, 'broadcasts taken by its own handler'),
      ],
      `both broadcasts reached all ${BROADCAST_VCPUS} vCPUs exactly once`,
    ),
};

/**
 * The handler runs each vCPU must see over the whole logical sweep, counted here from the same
 * enumeration apic.c makes (so the host does not take the guest's word for it).
 */
export function logicalSweepExpectation(cluster: boolean): { sends: number; vcpu0: number; vcpu1: number; configurations: number } {
  const bits = cluster ? 4 : 8;
  const clusters = cluster ? 15 : 1;
  let sends = 0;
  let vcpu0 = 0;
  let configurations = 0;
  for (let c = 0; c < clusters; c++) {
    for (let i = 0; i < bits; i++) {
      configurations++;
      for (let k = 0; k < (cluster ? 0x10 : 0xff); k++) {
        if ((k & (1 << i)) !== 0) continue;
        if (!cluster && ((1 << i) | k) === 0xff) continue;
        sends++;
      }
    }
    for (let i = 0; i < bits; i++) {
      for (let j = 0; j < bits; j++) {
        if (i === j) continue;
        const mask = (1 << i) | (1 << j);
        configurations += 2;
        for (let k = 0; k < 1 << bits; k++)
          if ((k & mask) === 0) {
            sends += 2;
            vcpu0 += 2;
          }
      }
    }
  }
  return { sends, vcpu0, vcpu1: sends, configurations };
}

function logicalCase(cluster: boolean): ConformanceCase {
  const model = cluster ? 'cluster' : 'flat';
  return {
    name: `apic/logical-${model}`,
    origin: `${APIC_C} test_logical_ipi_xapic (${model} model)`,
    summary: `fixed logical IPIs in the ${model} model, to one and to two targets (distinct and aliased logical IDs), over every destination pattern that names them, each to a target asleep in HLT: every named vCPU takes each exactly once`,
    program: 'logical.s',
    vcpus: 2,
    defines: new Map([['CLUSTER', cluster ? 1 : 0]]),
    vmConfig: { haltPolling: false },
    timeoutSeconds: 60,
    abortCodes: new Map([
      [2, 'an IPI was not taken by every named vCPU within 1 s (value = destination | configuration number << 8)'],
      [3, 'a vCPU took more IPIs than were sent to it (value = destination)'],
      [4, 'vCPU 1 did not acknowledge its new logical ID within 1 s'],
      [5, 'vCPU 1 did not fall asleep in HLT within 1 s'],
      NOT_ONLINE,
    ]),
    check: (report) => {
      const want = logicalSweepExpectation(cluster);
      return expectSlots(
        report,
        [
          { vcpu: 0, slot: 0, expected: want.sends, what: 'IPIs sent' },
          { vcpu: 0, slot: 4, expected: want.configurations, what: 'logical ID configurations' },
          { vcpu: 0, slot: 1, expected: want.vcpu0, what: 'IPIs taken by vCPU 0' },
          { vcpu: 1, slot: 1, expected: want.vcpu1, what: 'IPIs taken by vCPU 1' },
        ],
        `${want.sends} logical IPIs over ${want.configurations} configurations, each taken by exactly the vCPUs it named`,
      );
    },
  };
}

export const logicalFlat = logicalCase(false);
export const logicalCluster = logicalCase(true);

const NMI_AFTER_STI_ROUNDS = 3000;
export const nmiAfterSti: ConformanceCase = {
  name: 'apic/nmi-after-sti',
  origin: `${APIC_C} test_sti_nmi`,
  summary: `${NMI_AFTER_STI_ROUNDS} NMIs sent to a vCPU looping sti; <exiting instruction>; nop; cli are all taken, none inside the sti interrupt shadow`,
  program: 'nmi-after-sti.s',
  vcpus: 2,
  defines: new Map([['ROUNDS', NMI_AFTER_STI_ROUNDS]]),
  timeoutSeconds: 60,
  abortCodes: new Map([[2, 'an NMI was not taken within 1 s (value = round)'], NOT_ONLINE]),
  check: (report) => {
    const sent = slot(report, 0, 0) ?? 0;
    if (sent < NMI_AFTER_STI_ROUNDS) return fail(`only ${sent} of ${NMI_AFTER_STI_ROUNDS} NMIs sent`);
    return expectSlots(
      report,
      [
        { vcpu: 1, slot: 0, expected: 0, what: 'NMIs taken inside the sti shadow' },
        { vcpu: 1, slot: 1, expected: sent, what: 'NMIs taken' },
      ],
      `${sent} NMIs taken, none inside the sti shadow`,
    );
  },
};

const MULTIPLE_NMI_ROUNDS = 5000;
export const multipleNmi: ConformanceCase = {
  name: 'apic/multiple-nmi',
  origin: `${APIC_C} test_multiple_nmi`,
  summary: 'an NMI from the other vCPU and a self-NMI raised together are both taken (one delivered, one held pending), every round',
  program: 'multiple-nmi.s',
  vcpus: 2,
  defines: new Map([['ROUNDS', MULTIPLE_NMI_ROUNDS]]),
  timeoutSeconds: 60,
  abortCodes: new Map([
    [2, 'a round took other than 2 NMIs (value = NMIs taken | round << 8)'],
    [3, 'the flush IPI did not arrive within 1 s (value = round)'],
    [4, 'a round handshake timed out (value = the vCPU waiting)'],
    NOT_ONLINE,
  ]),
  check: (report) =>
    expectSlots(
      report,
      [{ vcpu: 0, slot: 0, expected: MULTIPLE_NMI_ROUNDS, what: 'rounds with exactly 2 NMIs' }],
      `${MULTIPLE_NMI_ROUNDS} rounds, 2 NMIs taken in each`,
    ),
};

const PENDING_NMI_ROUNDS = 5000;
export const pendingNmi: ConformanceCase = {
  name: 'apic/pending-nmi',
  origin: `${APIC_C} test_pending_nmi`,
  summary: 'ten self-NMIs sent from inside an NMI handler collapse into exactly one pending NMI, taken after the iret',
  program: 'pending-nmi.s',
  vcpus: 1,
  defines: new Map([['ROUNDS', PENDING_NMI_ROUNDS]]),
  timeoutSeconds: 60,
  abortCodes: new Map([
    [2, 'fewer than 2 NMIs within 1 s (value = NMIs taken | round << 8)'],
    [3, 'other than 2 NMIs once a later fixed IPI was handled (value = NMIs taken | round << 8)'],
    [4, 'the flush IPI was not taken within 1 s (value = round)'],
  ]),
  check: (report) =>
    expectSlots(
      report,
      [{ vcpu: 0, slot: 0, expected: PENDING_NMI_ROUNDS, what: 'rounds with exactly 2 NMIs' }],
      `${PENDING_NMI_ROUNDS} rounds, exactly 2 NMIs in each`,
    ),
};
