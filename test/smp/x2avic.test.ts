// x2AVIC through real vCPU workers (issue 5 item 4; avic_activate_vmcb, avic_kick_target_vcpus_fast): every vCPU switches to
// x2APIC, then vCPU 0 sends physical, logical-cluster, broadcast and shorthand x2APIC IPIs by WRMSR
// 0x830. With x2avic (the default) the hardware model delivers them (IRR set, doorbell rung); the
// receivers spin (IsRunning stays 1, also across pause-loop yields), so no incomplete-IPI exit may
// happen. With x2avic false ("hybrid AVIC") KVM intercepts every x2APIC ICR write and sends it in
// software: no doorbell, a kick per target instead. Both runs must deliver every IPI exactly.
import { describe, expect, it } from 'vitest';
import { runGuest, summary } from './smp-support.js';
import {
  ALL_EXCLUDING,
  FIXED,
  LOGICAL,
  SELF,
  X2APIC_ACCESS,
  countsBySlot,
  formsProgram,
  ipiBalance,
  type Step,
} from './ipi-forms-program.js';

const REPEAT = 20;
const steps: readonly Step[] = [
  { name: 'physical, x2APIC ID 2', icr: FIXED, destination: 2, slot: 0, repeat: REPEAT, handled: 1, expect: [0, 0, REPEAT, 0] },
  { name: 'physical, x2APIC ID 3', icr: FIXED, destination: 3, slot: 1, repeat: REPEAT, handled: 1, expect: [0, 0, 0, REPEAT] },
  {
    name: 'physical broadcast 0xFFFFFFFF',
    icr: FIXED,
    destination: 0xffffffff,
    slot: 2,
    repeat: REPEAT,
    handled: 4,
    expect: [REPEAT, REPEAT, REPEAT, REPEAT],
  },
  {
    name: 'logical cluster 0, members 1 and 3',
    icr: FIXED | LOGICAL,
    destination: 0x0000000a,
    slot: 3,
    repeat: REPEAT,
    handled: 2,
    expect: [0, REPEAT, 0, REPEAT],
  },
  { name: 'logical broadcast 0xFFFFFFFF', icr: FIXED | LOGICAL, destination: 0xffffffff, slot: 4, handled: 4, expect: [1, 1, 1, 1] },
  {
    name: 'all excluding self',
    icr: FIXED | ALL_EXCLUDING,
    destination: 0,
    slot: 5,
    repeat: REPEAT,
    handled: 3,
    expect: [0, REPEAT, REPEAT, REPEAT],
  },
  { name: 'self shorthand', icr: FIXED | SELF, destination: 0, slot: 6, repeat: REPEAT, handled: 1, expect: [REPEAT, 0, 0, 0] },
];
/** IPI messages the steps send to other vCPUs (each needs a doorbell or a kick). */
const REMOTE_MESSAGES = REPEAT * (1 + 1 + 3 + 2 + 3) + 3;
const ALL_MESSAGES = REPEAT * (1 + 1 + 4 + 2 + 3 + 1) + 4;

describe('x2APIC IPIs with and without x2AVIC', () => {
  it('x2AVIC accelerates every form: no incomplete-IPI exit, a doorbell per remote message, none lost', async () => {
    // One host CPU per vCPU: every target stays loaded (a preempted one would take cause 1, as under KVM).
    const report = await runGuest(formsProgram(steps, X2APIC_ACCESS), { vcpus: 4, hostCpus: 4 });
    expect(report.ok, summary(report)).toBe(true);
    for (const step of steps) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    expect(report.exits.incompleteIpi).toEqual({
      invalidInterruptType: 0,
      targetNotRunning: 0,
      invalidTarget: 0,
      invalidBackingPage: 0,
      invalidIpiVector: 0,
    });
    const sender = report.perVcpu[0]!.counters;
    expect(sender.doorbellsRung).toBe(REMOTE_MESSAGES);
    expect(sender.kicksSent).toBe(0);
    expect(report.ipis.sent).toBe(ALL_MESSAGES);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });

  it('hybrid AVIC (x2avic: false) sends every x2APIC IPI in software: kicks, no doorbell, none lost', async () => {
    const report = await runGuest(formsProgram(steps, X2APIC_ACCESS), { vcpus: 4, x2avic: false });
    expect(report.ok, summary(report)).toBe(true);
    for (const step of steps) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    // The hardware never saw these ICR writes, so it took no incomplete-IPI exit either.
    expect(report.exits.incompleteIpi).toEqual({
      invalidInterruptType: 0,
      targetNotRunning: 0,
      invalidTarget: 0,
      invalidBackingPage: 0,
      invalidIpiVector: 0,
    });
    const sender = report.perVcpu[0]!.counters;
    expect(sender.doorbellsRung).toBe(0);
    expect(sender.kicksSent).toBe(REMOTE_MESSAGES);
    expect(report.ipis.sent).toBe(ALL_MESSAGES);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });

  it('x2AVIC exits to software for what it cannot accelerate: an NMI (cause 0) and a missing ID (cause 2)', async () => {
    const nmiAndMissing: readonly Step[] = [
      { name: 'NMI to x2APIC ID 1', icr: 0x400, destination: 1, slot: 9, handled: 1, expect: [0, 1] },
      { name: 'physical x2APIC ID 300: nobody', icr: FIXED, destination: 300, slot: 0, handled: 0, expect: [0, 0] },
    ];
    const report = await runGuest(formsProgram(nmiAndMissing, X2APIC_ACCESS), { vcpus: 2 });
    expect(report.ok, summary(report)).toBe(true);
    for (const step of nmiAndMissing) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    expect(report.exits.incompleteIpi.invalidInterruptType).toBe(1);
    expect(report.exits.incompleteIpi.invalidTarget).toBe(1);
    expect(report.ipis.dropped.invalidTarget).toBe(1);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });
});

describe('x2APIC MSRs x2AVIC leaves un-intercepted (avic_set_x2apic_msr_interception, x2avic_passthrough_msrs)', () => {
  // vCPU 1 switches to x2APIC and touches one MSR of each kind: ICR (self IPI) and, in its handler,
  // TPR, PPR and EOI; ID, LDR and ISR0 reads; the current count (a read AVIC faults); SPIV (a write
  // AVIC traps); and three MSRs KVM keeps intercepting: SELF IPI, IRR1 (only the first ISR/TMR/IRR
  // MSR is in KVM's list) and the LVT timer. With `inhibit`, vCPUs 2 and 3 share an xAPIC logical
  // ID first (LOGICAL_ID_ALIASED), which deactivates AVIC and re-intercepts every x2APIC MSR.
  const program = (inhibit: boolean): string => `
        .entry idle, 0
        .entry x2apic, 1
        .entry alias
idle:   li r1, 0
        hypercall HC_DONE
alias:  li r2, ${inhibit ? '0x04 << 24' : '0'}
        st32 [APIC_BASE + APIC_LDR], r2
        li r2, 1
        xadd r2, [aliased]
        li r1, 0
        hypercall HC_DONE
x2apic: livt ivt
        ld32 r2, [aliased]
        li r3, 2
        bltu r2, r3, x2apic
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2
        sti
        li r4, APIC_DEST_SELF | 0x40
        li r5, 0
        wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4
        li r13, 1
        call wait_handled
        li r4, 0x40
        wrmsr APIC_BASE_MSR + (APIC_SELF_IPI >> 4), r4
        li r13, 2
        call wait_handled
        rdmsr r2, APIC_BASE_MSR + (APIC_ID >> 4)
        rdmsr r2, APIC_BASE_MSR + (APIC_LDR >> 4)
        rdmsr r2, APIC_BASE_MSR + (APIC_ISR >> 4)
        rdmsr r2, APIC_BASE_MSR + (APIC_IRR >> 4) + 1
        rdmsr r2, APIC_BASE_MSR + (APIC_TMCCT >> 4)
        li r4, APIC_SPIV_APIC_ENABLED | 0xff
        wrmsr APIC_BASE_MSR + (APIC_SPIV >> 4), r4
        li r4, 0x10000
        wrmsr APIC_BASE_MSR + (APIC_LVTT >> 4), r4
        li r1, 0
        hypercall HC_DONE
wait_handled:
        ld32 r2, [handled]
        bltu r2, r13, wait_handled
        ret
handler:
        push r2
        push r4
        push r5
        li r5, 0
        li r4, 0x10
        wrmsr APIC_BASE_MSR + (APIC_TPR >> 4), r4
        rdmsr r2, APIC_BASE_MSR + (APIC_PPR >> 4)
        li r4, 0
        wrmsr APIC_BASE_MSR + (APIC_TPR >> 4), r4
        li r2, 1
        xadd r2, [handled]
        li r4, 0
        wrmsr APIC_BASE_MSR + (APIC_EOI >> 4), r4
        pop r5
        pop r4
        pop r2
        iret
        .align 4
aliased: .word 0
handled: .word 0
ivt:    .zero 4 * 0x40
        .word handler
`;
  /** IA32_APIC_BASE read and write, SELF IPI, IRR1 read, LVT timer write. */
  const INTERCEPTED = 5;
  /** Everything vCPU 1 does by RDMSR/WRMSR: the 5 above, ICR, 2 x (TPR, PPR, TPR, EOI), ID, LDR, ISR0, TMCCT, SPIV. */
  const ALL = INTERCEPTED + 1 + 8 + 3 + 1 + 1;

  it('x2AVIC: only the MSRs KVM intercepts exit as MSR exits; TMCCT faults and SPIV traps (AVIC_NOACCEL)', async () => {
    const report = await runGuest(program(false), { vcpus: 4 });
    expect(report.ok, summary(report)).toBe(true);
    const counters = report.perVcpu[1]!.counters;
    expect(counters.msrAccesses).toBe(INTERCEPTED);
    expect(counters.unacceleratedAccessTrapExits).toBe(1);
    expect(counters.unacceleratedAccessFaultExits).toBe(1);
    expect(report.perVcpu[1]!.counters.interruptsDelivered).toBe(2);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });

  it('hybrid AVIC (x2avic: false) intercepts every x2APIC MSR', async () => {
    const report = await runGuest(program(false), { vcpus: 4, x2avic: false });
    expect(report.ok, summary(report)).toBe(true);
    const counters = report.perVcpu[1]!.counters;
    expect(counters.msrAccesses).toBe(ALL);
    expect(counters.unacceleratedAccessTrapExits + counters.unacceleratedAccessFaultExits).toBe(0);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });

  it('x2AVIC with an inhibit set intercepts every x2APIC MSR (avic_deactivate_vmcb)', async () => {
    const report = await runGuest(program(true), { vcpus: 4 });
    expect(report.ok, summary(report)).toBe(true);
    const counters = report.perVcpu[1]!.counters;
    expect(counters.msrAccesses).toBe(ALL);
    expect(counters.unacceleratedAccessTrapExits + counters.unacceleratedAccessFaultExits).toBe(0);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });
});
