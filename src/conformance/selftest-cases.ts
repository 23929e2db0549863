// The remaining apic.c scenarios that change APIC IDs or need the timer, kvm-unit-tests x86/smptest.c,
// and the KVM selftests xapic_state_test and recalc_apic_map_test, as guest programs.

import type { VmReport } from '../kvm/report/vm-report.js';
import { everyVcpuSlot, expectSlots, fail, pass, slot, type CaseVerdict, type ConformanceCase } from './conformance-case.js';

const APIC_C = 'kvm-unit-tests x86/apic.c';
const NOT_ONLINE: readonly [number, string] = [100, 'an application vCPU did not come online within 2 s (value = how many did)'];

export const aliasedId: ConformanceCase = {
  name: 'apic/aliased-id',
  origin: `${APIC_C} test_aliased_xapic_physical_ipi`,
  summary:
    'with both xAPIC IDs set to 0, a chain of fixed physical IPIs to IDs 0..0xFF, each handler moving its ID one up, reaches both vCPUs every time',
  program: 'aliased-id.s',
  vcpus: 2,
  timeoutSeconds: 30,
  abortCodes: new Map([
    [2, 'an IPI did not reach both vCPUs within 1 s (value = destination ID | vCPUs it reached << 8)'],
    [3, 'an IPI was taken more than twice (value = destination ID)'],
    NOT_ONLINE,
  ]),
  check: (report) =>
    expectSlots(
      report,
      [
        { vcpu: 0, slot: 0, expected: 256, what: 'destinations that reached both vCPUs' },
        ...everyVcpuSlot(2, 1, (vcpu) => vcpu, 'APIC ID at the end (back to its index after 0xFF)'),
        ...everyVcpuSlot(2, 2, () => 256, 'IPIs its handler took'),
      ],
      'all 256 aliased destinations reached both vCPUs',
    ),
};

export const idRelocation: ConformanceCase = {
  name: 'apic/id-relocation',
  origin: `${APIC_C} test_apic_id ("writeable xapic id"), carried on to IPI delivery`,
  summary: 'a vCPU that moves its xAPIC ID to 0x42 reads it back and takes IPIs sent to 0x42, not to its old ID 1; moved back, the reverse',
  program: 'id-relocation.s',
  vcpus: 2,
  timeoutSeconds: 15,
  abortCodes: new Map([
    [2, 'the APIC ID read back after the write differs (value = ID read)'],
    [3, "an IPI to the vCPU's new ID was not taken within 1 s (value = destination ID)"],
    [4, 'an IPI to an ID no vCPU holds any more was taken (value = destination ID)'],
    [5, 'vCPU 1 did not acknowledge an ID change within 1 s'],
    [6, 'the APIC ID read back after moving back differs (value = ID read)'],
    NOT_ONLINE,
  ]),
  check: (report) =>
    expectSlots(
      report,
      [
        { vcpu: 0, slot: 0, expected: 6, what: 'steps passed (2 moves, 4 IPIs)' },
        { vcpu: 1, slot: 1, expected: 0x42, what: 'APIC ID read back after the write' },
        { vcpu: 1, slot: 0, expected: 2, what: 'IPIs taken' },
      ],
      'the relocated ID took the IPIs, the vacated ID none',
    ),
};

export const timerOneShot: ConformanceCase = {
  name: 'apic/timer-one-shot',
  origin: `${APIC_C} test_apic_timer_one_shot`,
  summary:
    'the LVT timer in one-shot mode (divide by 1, initial count 0x10000) fires exactly once, no sooner than 0x10000 ns after the start',
  program: 'timer-one-shot.s',
  vcpus: 1,
  timeoutSeconds: 10,
  abortCodes: new Map([[2, 'the timer did not fire within 1 s']]),
  check: (report) => {
    const runs = slot(report, 0, 0);
    const elapsed = slot(report, 0, 1) ?? 0;
    if (runs !== 1) return fail(`the timer handler ran ${runs ?? 'no'} times, expected once`);
    return elapsed >= 0x10000
      ? pass(`fired once, ${elapsed} ns after the start`)
      : fail(`fired after ${elapsed} ns, sooner than the initial count (65536 ticks of at least 1 ns)`);
  },
};

const BOOT_VCPUS = 8;
export const smpBoot: ConformanceCase = {
  name: 'smptest/boot-8',
  origin: 'kvm-unit-tests x86/smptest.c, with the INIT-SIPI-SIPI bring-up of its start-up code',
  summary: `only vCPU 0 starts; INIT and two start-up IPIs bring up ${BOOT_VCPUS - 1} application vCPUs at the start-up page, each reports its APIC ID, and a call sent to each APIC ID runs on that vCPU`,
  program: 'smp-boot.s',
  vcpus: BOOT_VCPUS,
  timeoutSeconds: 20,
  abortCodes: new Map([
    [2, 'an application vCPU started twice (value = vCPUs online)'],
    [3, 'a call did not complete within 1 s (value = APIC ID)'],
    [4, 'an application vCPU ran before the start-up IPIs were sent (value = its APIC ID)'],
    NOT_ONLINE,
  ]),
  check: (report) =>
    expectSlots(
      report,
      [
        ...everyVcpuSlot(BOOT_VCPUS, 0, (vcpu) => vcpu, 'APIC ID reported after bring-up'),
        { vcpu: 0, slot: 2, expected: BOOT_VCPUS - 1, what: 'application vCPUs online' },
        { vcpu: 0, slot: 1, expected: BOOT_VCPUS, what: 'calls that ran on the vCPU they were sent to' },
      ],
      `${BOOT_VCPUS} vCPUs up, each reported its APIC ID and ran the call sent to it`,
    ),
};

/** ICR values the xapic_state_test sweep writes (self 256, own ID 256, absent IDs 254 x 8, shorthand 8, garbage 3). */
export const ICR_SWEEP_VALUES = 256 + 256 + 254 * 8 + 8 + 3;
/** Of those, the ones with x2APIC reserved bits set (the three garbage values), skipped in x2APIC mode. */
const X2APIC_RESERVED_VALUES = 3;

const hex = (value: number | undefined): string => `0x${(value ?? 0).toString(16).padStart(8, '0')}`;

function firstBad(report: VmReport): string {
  return `first bad: wrote ${hex(slot(report, 0, 8))}:${hex(slot(report, 0, 7))}, read ${hex(slot(report, 0, 10))}:${hex(slot(report, 0, 9))}`;
}

/**
 * xAPIC read-back. Bits 31:0 must match apart from busy. ICR2 must follow ONE rule throughout: kept
 * whole (AMD AVIC: ICR2[23:0] kept, busy may stay set) or bits 23:0 dropped (Intel, KVM's own APIC:
 * busy reads 0), as xapic_state_test accepts one or the other according to the host.
 */
function checkXapicReadBack(report: VmReport): CaseVerdict {
  const total = ICR_SWEEP_VALUES * 2;
  const [reads, lowBad, busy, kept, masked, neither] = [0, 1, 2, 3, 4, 5].map((index) => slot(report, 0, index) ?? 0) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (reads !== total) return fail(`${reads} read-backs, expected ${total}`);
  if (lowBad > 0) return fail(`${lowBad} of ${total} ICR read-backs differ in bits 31:0 (busy aside); ${firstBad(report)}`);
  if (neither > 0)
    return fail(`${neither} of ${total} ICR2 read-backs are neither the value written nor it with bits 23:0 clear; ${firstBad(report)}`);
  if (kept === total) return pass(`${total} read-backs exact; AMD AVIC behaviour: ICR2[23:0] kept, busy read set ${busy} times`);
  if (masked === total) {
    return busy === 0
      ? pass(`${total} read-backs exact; Intel/KVM behaviour: ICR2[23:0] dropped, busy never set`)
      : fail(`ICR2[23:0] dropped (Intel/KVM behaviour) but busy read back set ${busy} times; that model clears it`);
  }
  return fail(`ICR2 follows no one rule: kept whole ${kept} times, bits 23:0 dropped ${masked} times, of ${total}`);
}

export const xapicState: ConformanceCase = {
  name: 'selftest/xapic-state',
  origin: 'Linux tools/testing/selftests/kvm/x86/xapic_state_test.c test_icr (xAPIC)',
  summary: `every ICR value of the selftest's sweep (${ICR_SWEEP_VALUES} values, busy set and clear) written through MMIO reads back as written, ICR2 by one vendor's rule`,
  program: 'apic-state.s',
  vcpus: 1,
  defines: new Map([['X2APIC', 0]]),
  timeoutSeconds: 30,
  abortCodes: new Map(),
  check: checkXapicReadBack,
};

export const x2apicState: ConformanceCase = {
  name: 'selftest/x2apic-state',
  origin: 'Linux tools/testing/selftests/kvm/x86/xapic_state_test.c test_icr (x2APIC)',
  summary: 'in x2APIC mode every ICR value of the sweep, written to MSR 0x830, reads back exactly, and the values with reserved bits #GP',
  program: 'apic-state.s',
  vcpus: 1,
  defines: new Map([['X2APIC', 1]]),
  timeoutSeconds: 30,
  abortCodes: new Map(),
  check: (report) => {
    const total = ICR_SWEEP_VALUES - X2APIC_RESERVED_VALUES;
    const reads = slot(report, 0, 0) ?? 0;
    const bad = slot(report, 0, 1) ?? 0;
    if (reads !== total) return fail(`${reads} read-backs, expected ${total}`);
    if (bad > 0) return fail(`${bad} of ${total} ICR MSR read-backs differ; ${firstBad(report)}`);
    return expectSlots(
      report,
      [
        { vcpu: 0, slot: 6, expected: X2APIC_RESERVED_VALUES, what: 'reserved-bit values that made wrmsr #GP' },
        { vcpu: 0, slot: 11, expected: 0, what: 'reserved-bit values that did not #GP' },
      ],
      `${total} ICR MSR read-backs exact; the ${X2APIC_RESERVED_VALUES} values with reserved bits #GP`,
    );
  },
};

const RECALC_VCPUS = 4;
const RECALC_ROUNDS = 2000;
export const recalcApicMap: ConformanceCase = {
  name: 'selftest/recalc-apic-map',
  origin: 'Linux tools/testing/selftests/kvm/x86/recalc_apic_map_test.c, as guests rewriting their own APIC IDs',
  summary: `while ${RECALC_VCPUS - 2} vCPUs rewrite their APIC IDs and LDRs in a loop (each write a table rebuild), ${RECALC_ROUNDS} physical and logical IPIs to a vCPU whose IDs never change all reach it, and only it`,
  program: 'recalc-apic-map.s',
  vcpus: RECALC_VCPUS,
  defines: new Map([['ROUNDS', RECALC_ROUNDS]]),
  timeoutSeconds: 60,
  abortCodes: new Map([
    [2, 'vCPU 1 did not take an IPI within 1 s (value = round)'],
    [3, 'vCPU 1 took more IPIs than were sent (value = round)'],
    [4, 'the churners made no rewrite within 2 s'],
    NOT_ONLINE,
  ]),
  check: (report) => {
    const during = slot(report, 0, 1) ?? 0;
    const churners = Array.from({ length: RECALC_VCPUS - 2 }, (_, index) => index + 2);
    const idle = churners.filter((vcpu) => (slot(report, vcpu, 0) ?? 0) === 0);
    if (during === 0 || idle.length > 0)
      return fail(`the rewrites did not overlap the sends (${during} during the sends; idle churners: ${idle.join(', ') || 'none'})`);
    return expectSlots(
      report,
      [
        { vcpu: 0, slot: 0, expected: RECALC_ROUNDS, what: 'IPIs sent' },
        { vcpu: 1, slot: 0, expected: RECALC_ROUNDS, what: 'IPIs taken' },
        ...churners.map((vcpu) => ({ vcpu, slot: 1, expected: 0, what: 'IPIs taken by a churner' })),
      ],
      `${RECALC_ROUNDS} IPIs delivered exactly while ${during} ID/LDR rewrites ran`,
    );
  },
};
