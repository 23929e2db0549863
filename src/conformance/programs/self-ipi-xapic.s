; apic/self-ipi-xapic: kvm-unit-tests x86/apic.c, the self-IPI in xAPIC mode.
; One vCPU, in xAPIC mode, sends itself one fixed IPI (vector 0xF1) with the SELF shorthand and IF = 1,
; and waits up to 1 s for its handler. Exactly one handler run is the pass (the host checks slot 0).
;
; Slots: 0 handler runs after the wait; 1 APIC base MSR bits 11:10 (0x800: enabled, xAPIC mode).
; Abort codes: none (the host judges the slots).

        .equ VECTOR, 0xF1
        .entry start

start:  li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        livt cf_ivt
        rdmsr r2, MSR_IA32_APICBASE
        and r2, r2, 0xC00
        li r1, 1
        hypercall HC_REPORT
        sti
        ld32 r4, [APIC_BASE + APIC_ID]  ; the destination field holds this vCPU's ID, as apic.c passes id_map[0]
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_SELF | APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
wait:   ld32 r2, [ipi_count]
        bnez r2, seen
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait
seen:   li r1, 0
        ld32 r2, [ipi_count]
        hypercall HC_REPORT
        jmp cf_done

handler:
        push r2
        li r2, 1
        xadd r2, [ipi_count]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

        .align 4
ipi_count: .word 0
        .include "conformance.s"
