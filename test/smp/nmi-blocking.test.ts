// NMI blocking (SDM vol. 3 §6.7.1): after an NMI is taken, further NMIs are held until the next iret,
// then taken at once; NMIs ignore IF. The handler sends itself a second NMI and spins 1 ms: the
// second one must neither nest inside the handler nor be lost.
import { describe, expect, it } from 'vitest';
import { createGuest, summary } from './smp-support.js';

const source = `
        .entry start
start:  li r2, nmi_handler
        st32 [ivt + 4 * 2], r2
        livt ivt
        call send_nmi                   ; IF = 0 throughout: NMIs do not need it
        rdtsc r10
wait:   ld32 r2, [nmis]
        sltu r3, r2, 2
        beqz r3, done
        rdtsc r11
        sub r11, r11, r10
        li r12, 1000000000
        bltu r11, r12, wait
done:   li r1, 0
        ld32 r2, [nmis]
        hypercall HC_REPORT             ; slot 0: NMIs taken (2)
        li r1, 1
        ld32 r2, [nested]
        hypercall HC_REPORT             ; slot 1: NMIs taken inside the handler (0)
        li r1, 2
        ld32 r2, [second_during_first]
        hypercall HC_REPORT             ; slot 2: NMIs counted when the first handler ended (1)
        li r1, 0
        hypercall HC_DONE
park:   cli
        hlt
        jmp park

send_nmi:
        li r2, 0                        ; physical destination: APIC ID 0, this vCPU
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_NMI | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r2
        ret

nmi_handler:
        ld32 r4, [in_handler]
        beqz r4, not_nested
        li r4, 1
        st32 [nested], r4
not_nested:
        li r4, 1
        st32 [in_handler], r4
        li r4, 1
        xadd r4, [nmis]
        bnez r4, leave                  ; the second NMI: just return
        call send_nmi                   ; the first: raise another while NMIs are blocked
        rdtsc r10
hold:   pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 1000000
        bltu r11, r12, hold
        ld32 r4, [nmis]
        st32 [second_during_first], r4
leave:  li r4, 0
        st32 [in_handler], r4
        iret

        .align 4
nmis:                .word 0
in_handler:          .word 0
nested:              .word 0
second_during_first: .word 0
        .align 8
ivt:    .zero 4 * 256
`;

describe('NMI blocking', () => {
  it('an NMI raised inside the NMI handler waits for iret, then is taken: two NMIs, none nested', async () => {
    const { vm } = await createGuest(source, { vcpus: 1 });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.perVcpu[0]!.guest.reports.slice(0, 3)).toEqual([2, 0, 1]);
    expect(report.perVcpu[0]!.counters.nmisDelivered).toBe(2);
  });
});
