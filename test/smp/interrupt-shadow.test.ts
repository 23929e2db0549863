// kvm-unit-tests vmexit self_ipi_sti_nop / self_ipi_tpr in spirit: a self-IPI made pending while
// interrupts are blocked is taken at the first instruction boundary where it can be, no later
// (a KVM-PVM run on this machine missed it 4031 times out of 4032).
import { describe, expect, it } from 'vitest';
import { createGuest, summary } from './smp-support.js';

const ROUNDS = 1000;

// The handler stores the return pc it finds on its stack (pushed by interrupt delivery) and counts.
const source = (blocking: 'cli' | 'tpr') => `
        .equ VECTOR, 0x40
        .entry start
start:
        livt ivt
        li r6, ${ROUNDS}
round:
${
  blocking === 'cli'
    ? `        cli
        li r2, APIC_DEST_SELF | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        sti
        nop
expected_cli:
        nop`
    : `        sti
        li r2, 0x40                     ; TPR class 4 masks vector 0x40 (class 4 is not above it)
        st32 [APIC_BASE + APIC_TPR], r2
        li r2, APIC_DEST_SELF | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        li r2, 0
        st32 [APIC_BASE + APIC_TPR], r2
expected_tpr:
        nop`
}
        ld32 r3, [taken]
        bnez r3, ok
        li r1, 1                        ; not taken at all
        hypercall HC_ABORT
ok:     li r3, 0
        st32 [taken], r3
        cli
        sub r6, r6, 1
        bnez r6, round
        li r1, 0
        hypercall HC_DONE
handler:
        ld32 r4, [sp]                   ; the return pc
        li r5, ${blocking === 'cli' ? 'expected_cli' : 'expected_tpr'}
        beq r4, r5, on_time
        li r1, 2                        ; taken at the wrong instruction
        mov r2, r4
        hypercall HC_ABORT
on_time:
        li r3, 1
        st32 [taken], r3
        st32 [APIC_BASE + APIC_EOI], r3
        iret
        .align 4
taken:  .word 0
        .align 8
ivt:    .zero 4 * VECTOR
        .word handler
`;

describe('interrupts are taken at the first boundary that allows them', () => {
  it('a self-IPI pending across sti; nop is taken right after the nop, every time', async () => {
    const { vm } = await createGuest(source('cli'), { vcpus: 1 });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.perVcpu[0]!.counters.interruptsDelivered).toBe(ROUNDS);
  });

  it('a self-IPI masked by TPR is taken right after the TPR write that unmasks it', async () => {
    const { vm } = await createGuest(source('tpr'), { vcpus: 1 });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.perVcpu[0]!.counters.interruptsDelivered).toBe(ROUNDS);
  });
});
