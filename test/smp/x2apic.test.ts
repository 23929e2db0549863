// x2APIC through real vCPU workers (issue 5 item 4; SDM §11.12; KVM kvm_x2apic_msr_read/write):
// the switch through IA32_APIC_BASE, the 32-bit ID and derived LDR, the ICR as one 64-bit MSR and its
// read-back, the SELF IPI MSR, x2APIC destinations on the software path (hybrid AVIC intercepts every
// x2APIC ICR write; these runs set x2avic: false, test/smp/x2avic.test.ts covers x2AVIC), ESR by MSR, and the #GP rules, which stop the vCPU with a
// general-protection fault when the guest has no handler at vector 13 (these programs install none).
import { describe, expect, it } from 'vitest';
import { GuestFaultKind } from '../../src/guest/guest-fault.js';
import { runGuest, summary } from './smp-support.js';
import {
  ALL_EXCLUDING,
  ASSERT,
  FIXED,
  LEVEL,
  LOGICAL,
  LOWEST,
  NMI,
  NMI_SLOT,
  SELF,
  X2APIC_ACCESS,
  countsBySlot,
  formsProgram,
  ipiBalance,
  type Step,
} from './ipi-forms-program.js';

describe('x2APIC mode on one vCPU', () => {
  // vCPU 1 of 2 switches to x2APIC (vCPU 0 stays in xAPIC and only finishes), reads its state by
  // MSR, sends itself IPIs through the SELF IPI MSR and the ICR, reads the ICR back, and checks ESR
  // and TPR/PPR by MSR. Slots: see the comments.
  const program = `
        .equ VECTOR, 0x41
        .entry idle, 0
        .entry start, 1
idle:   li r1, 0
        hypercall HC_DONE
start:  livt ivt
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2
        rdmsr r2, MSR_IA32_APICBASE
        li r1, 0
        hypercall HC_REPORT               ; 0: IA32_APIC_BASE low
        rdmsr r2, APIC_BASE_MSR + (APIC_ID >> 4)
        li r1, 1
        hypercall HC_REPORT               ; 1: x2APIC ID (32 bits)
        rdmsr r2, APIC_BASE_MSR + (APIC_LDR >> 4)
        li r1, 2
        hypercall HC_REPORT               ; 2: derived LDR
        sti
        li r4, VECTOR
        li r5, 0
        wrmsr APIC_BASE_MSR + (APIC_SELF_IPI >> 4), r4
        li r13, 1
        call wait_count
        li r4, APIC_DEST_SELF | VECTOR
        li r5, 0
        wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4
        li r13, 2
        call wait_count
        ld32 r2, [count]
        li r1, 3
        hypercall HC_REPORT               ; 3: handler runs (2)
        ; ICR with BUSY set and a 32-bit destination nobody holds: KVM clears BUSY, keeps EDX.
        li r4, APIC_ICR_BUSY | 0x42
        li r5, 0x12345678
        wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4
        rdmsr r4, APIC_BASE_MSR + (APIC_ICR >> 4)
        mov r2, r4
        li r1, 4
        hypercall HC_REPORT               ; 4: ICR bits 31:0
        mov r2, r5
        li r1, 5
        hypercall HC_REPORT               ; 5: ICR bits 63:32
        ; An illegal vector through the SELF IPI MSR: sent and received illegal.
        li r4, 5
        li r5, 0
        wrmsr APIC_BASE_MSR + (APIC_SELF_IPI >> 4), r4
        li r4, 0
        wrmsr APIC_BASE_MSR + (APIC_ESR >> 4), r4
        rdmsr r2, APIC_BASE_MSR + (APIC_ESR >> 4)
        li r1, 6
        hypercall HC_REPORT               ; 6: ESR
        li r4, 0x20
        li r5, 0
        wrmsr APIC_BASE_MSR + (APIC_TPR >> 4), r4
        rdmsr r2, APIC_BASE_MSR + (APIC_PPR >> 4)
        li r1, 7
        hypercall HC_REPORT               ; 7: PPR after TPR = 0x20
        li r1, 0
        hypercall HC_DONE

wait_count:
        rdtsc r10
wait_loop:
        ld32 r2, [count]
        bgeu r2, r13, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 2000000000
        bltu r11, r12, wait_loop
        li r1, 1
        hypercall HC_ABORT
wait_end:
        ret
handler:
        push r2
        push r3
        li r2, 1
        xadd r2, [count]
        li r2, 7                          ; KVM accepts a non-zero x2APIC EOI
        li r3, 0
        wrmsr APIC_BASE_MSR + (APIC_EOI >> 4), r2
        pop r3
        pop r2
        iret
        .align 4
count:  .word 0
ivt:    .zero 4 * VECTOR
        .word handler
`;

  it('switches through IA32_APIC_BASE, reads its 32-bit ID and derived LDR, self-IPIs by both MSRs, reads the ICR back', async () => {
    const report = await runGuest(program, { vcpus: 2, x2avic: false });
    expect(report.ok, summary(report)).toBe(true);
    const x2apic = report.perVcpu[1]!;
    expect(x2apic.guest.reports.slice(0, 8)).toEqual([
      0xfee00c00, // base, global enable, x2APIC enable; no BSP bit on vCPU 1
      1, // x2APIC ID = vCPU index
      0x00000002, // cluster 0, member bit 1
      2,
      0x42, // BUSY cleared
      0x12345678,
      0x60, // send and receive illegal vector
      0x20,
    ]);
    // Hybrid AVIC: no x2APIC IPI goes through the AVIC hardware.
    expect(x2apic.counters.incompleteIpiExits).toEqual([0, 0, 0, 0, 0]);
    expect(x2apic.counters.doorbellsRung).toBe(0);
    expect(report.ipis.dropped).toEqual({ illegalVector: 1, invalidTarget: 1, unsupported: 0 });
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });
});

describe('x2APIC destinations between vCPUs', () => {
  const steps: readonly Step[] = [
    { name: 'physical, 32-bit destination', icr: FIXED, destination: 2, slot: 0, handled: 1, expect: [0, 0, 1] },
    { name: '0xFF is an ordinary ID in x2APIC mode: nobody', icr: FIXED, destination: 0xff, slot: 1, handled: 0, expect: [0, 0, 0] },
    { name: 'physical broadcast 0xFFFFFFFF', icr: FIXED, destination: 0xffffffff, slot: 2, handled: 3, expect: [1, 1, 1] },
    { name: 'logical, cluster 0 members 1 and 2', icr: FIXED | LOGICAL, destination: 0x00000006, slot: 3, handled: 2, expect: [0, 1, 1] },
    {
      name: 'logical, cluster 1 (IDs 16-31): nobody',
      icr: FIXED | LOGICAL,
      destination: 0x00010003,
      slot: 4,
      handled: 0,
      expect: [0, 0, 0],
    },
    { name: 'all excluding self', icr: FIXED | ALL_EXCLUDING, destination: 0, slot: 5, handled: 2, expect: [0, 1, 1] },
    {
      name: 'lowest priority, logical, twice',
      icr: LOWEST | LOGICAL,
      destination: 0x00000006,
      slot: 6,
      repeat: 2,
      handled: 1,
      expect: [0, 1, 1],
    },
    { name: 'self shorthand', icr: FIXED | SELF, destination: 0, slot: 7, handled: 1, expect: [1, 0, 0] },
    { name: 'level-triggered, physical', icr: FIXED | LEVEL | ASSERT, destination: 1, slot: 8, handled: 1, expect: [0, 1, 0] },
    { name: 'NMI, physical', icr: NMI, destination: 1, slot: NMI_SLOT, handled: 1, expect: [0, 1, 0] },
  ];

  it('matches 32-bit physical and cluster destinations on the software path', async () => {
    const report = await runGuest(formsProgram(steps, X2APIC_ACCESS), { vcpus: 3, x2avic: false });
    expect(report.ok, summary(report)).toBe(true);
    for (const step of steps) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    expect(report.ipis.dropped.invalidTarget).toBe(2);
    expect(report.perVcpu[0]!.counters.incompleteIpiExits).toEqual([0, 0, 0, 0, 0]);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });
});

describe('#GP and the other faults of the x2APIC interface', () => {
  const TO_X2APIC = `
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2`;
  const cases: readonly { name: string; x2apic: boolean; code: string; kind: string; detail: string }[] = [
    {
      name: 'an x2APIC MSR in xAPIC mode',
      x2apic: false,
      code: 'rdmsr r2, APIC_BASE_MSR + (APIC_ICR >> 4)',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'not in x2APIC mode',
    },
    {
      name: 'writing the read-only ID',
      x2apic: true,
      code: 'li r2, 5\n li r3, 0\n wrmsr APIC_BASE_MSR + (APIC_ID >> 4), r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'read-only',
    },
    {
      name: 'writing the read-only LDR',
      x2apic: true,
      code: 'li r2, 0\n li r3, 0\n wrmsr APIC_BASE_MSR + (APIC_LDR >> 4), r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'read-only',
    },
    {
      name: 'reading the write-only EOI',
      x2apic: true,
      code: 'rdmsr r2, APIC_BASE_MSR + (APIC_EOI >> 4)',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'write-only',
    },
    {
      name: 'the old ICR high, 0x831',
      x2apic: true,
      code: 'li r2, 0\n li r3, 0\n wrmsr APIC_BASE_MSR + (APIC_ICR2 >> 4), r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'no x2APIC register',
    },
    {
      name: 'DFR, gone in x2APIC mode',
      x2apic: true,
      code: 'rdmsr r2, APIC_BASE_MSR + (APIC_DFR >> 4)',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'no x2APIC register',
    },
    {
      name: 'a non-zero ESR write',
      x2apic: true,
      code: 'li r2, 1\n li r3, 0\n wrmsr APIC_BASE_MSR + (APIC_ESR >> 4), r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'ESR must be written with 0',
    },
    {
      name: 'an ICR with reserved bit 13',
      x2apic: true,
      code: 'li r2, 0x2041\n li r3, 0\n wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'reserved bits',
    },
    {
      name: 'SELF IPI bits 31:8',
      x2apic: true,
      code: 'li r2, 0x141\n li r3, 0\n wrmsr APIC_BASE_MSR + (APIC_SELF_IPI >> 4), r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'reserved bits',
    },
    {
      name: 'TPR with bits 63:32',
      x2apic: true,
      code: 'li r2, 0\n li r3, 1\n wrmsr APIC_BASE_MSR + (APIC_TPR >> 4), r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'reserved bits',
    },
    {
      name: 'IA32_APIC_BASE x2APIC -> xAPIC',
      x2apic: true,
      code: 'rdmsr r2, MSR_IA32_APICBASE\n and r2, r2, ~X2APIC_ENABLE\n wrmsr MSR_IA32_APICBASE, r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'x2APIC -> xAPIC',
    },
    {
      name: 'IA32_APIC_BASE x2APIC enable without global enable',
      x2apic: false,
      code: 'li r2, APIC_BASE | X2APIC_ENABLE\n li r3, 0\n wrmsr MSR_IA32_APICBASE, r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'invalid state',
    },
    {
      name: 'IA32_APIC_BASE reserved bit 9',
      x2apic: false,
      code: 'rdmsr r2, MSR_IA32_APICBASE\n or r2, r2, 0x200\n wrmsr MSR_IA32_APICBASE, r2',
      kind: GuestFaultKind.GeneralProtection,
      detail: 'reserved bits',
    },
    {
      name: 'xAPIC MMIO in x2APIC mode',
      x2apic: true,
      code: 'ld32 r2, [APIC_BASE + APIC_ID]',
      kind: GuestFaultKind.InvalidApicAccess,
      detail: 'in x2APIC mode',
    },
  ];

  it.each(cases)('$name', async ({ x2apic, code, kind, detail }) => {
    const program = `
        .entry start
start:  ${x2apic ? TO_X2APIC : ''}
        ${code}
        li r1, 0
        hypercall HC_DONE
`;
    const report = await runGuest(program, { vcpus: 1 });
    expect(report.exit.reason, summary(report)).toBe('fault');
    expect(report.faults).toHaveLength(1);
    expect(report.faults[0]!.fault.kind).toBe(kind);
    expect(report.faults[0]!.description).toContain(detail);
  });
});

describe("#GP is delivered to the guest's vector 13 handler", () => {
  const TO_X2APIC = `
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2`;
  const cases: readonly { name: string; x2apic: boolean; code: string; reads: boolean }[] = [
    { name: 'an x2APIC MSR read in xAPIC mode', x2apic: false, code: 'rdmsr r2, APIC_BASE_MSR + (APIC_ICR >> 4)', reads: true },
    { name: 'a read of the write-only EOI', x2apic: true, code: 'rdmsr r2, APIC_BASE_MSR + (APIC_EOI >> 4)', reads: true },
    { name: 'an MSR the model does not implement', x2apic: false, code: 'rdmsr r2, 0xC0000080', reads: true },
    {
      name: 'a write of the read-only ID',
      x2apic: true,
      code: 'li r4, 5\n li r5, 0\n wrmsr APIC_BASE_MSR + (APIC_ID >> 4), r4',
      reads: false,
    },
    {
      name: 'an ICR with reserved bit 13',
      x2apic: true,
      code: 'li r4, 0x2041\n li r5, 0\n wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4',
      reads: false,
    },
  ];

  it.each(cases)(
    '$name: the instruction does not complete, the handler runs once and resumes after it',
    async ({ x2apic, code, reads }) => {
      // The handler counts, then moves the saved pc (pushed last: [sp] after its own push is r2,
      // [sp + 4] the pc, [sp + 8] the flags) past the faulting instruction.
      const program = `
        .entry start
start:  livt ivt
        ${x2apic ? TO_X2APIC : ''}
        li r2, 0x5A5A
        li r3, 0x6B6B
        ${code}
        mov r6, r2
        mov r7, r3
        li r1, 0
        ld32 r2, [gp_count]
        hypercall HC_REPORT
        li r1, 1
        mov r2, r6
        hypercall HC_REPORT
        li r1, 2
        mov r2, r7
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE
gp_handler:
        push r2
        ld32 r2, [gp_count]
        add r2, r2, 1
        st32 [gp_count], r2
        ld32 r2, [sp + 4]
        add r2, r2, 8
        st32 [sp + 4], r2
        pop r2
        iret
        .align 64
gp_count: .word 0
ivt:    .zero 4 * 13
        .word gp_handler
        .zero 4 * (255 - 13)
`;
      const report = await runGuest(program, { vcpus: 1 });
      expect(report.exit.reason, summary(report)).toBe('all-done');
      expect(report.faults).toEqual([]);
      expect(report.perVcpu[0]!.guest.reports[0]).toBe(1);
      // rdmsr's destination pair is untouched by a #GP.
      if (reads) expect(report.perVcpu[0]!.guest.reports.slice(1, 3)).toEqual([0x5a5a, 0x6b6b]);
    },
  );
});
