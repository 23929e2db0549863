; apic/self-ipi-x2apic: kvm-unit-tests x86/apic.c, the self-IPI in x2APIC mode.
; One vCPU switches its APIC to x2APIC mode (APIC base MSR bit 10, with bit 11 still set), then sends
; itself vector 0xF1 twice, one at a time, each waited for up to 1 s: first through the ICR, which in
; x2APIC mode is the single 64-bit MSR 0x830 (SELF shorthand), then through the SELF IPI MSR 0x83F.
; In x2APIC mode the APIC is reached only through MSRs 0x800-0x8FF, so the handler EOIs with MSR 0x80B.
;
; Slots: 0 handler runs after the ICR self-IPI; 1 handler runs after the SELF IPI MSR write (total);
; 2 APIC base MSR bits 11:10 after the switch (0xC00); 3 the x2APIC ID (MSR 0x802), 32 bits.
; Abort codes: none (the host judges the slots).

        .equ VECTOR, 0xF1
        .equ CF_APIC_BASE_EXTD, 0x400
        .equ CF_X2APIC_ID_MSR, 0x802
        .equ CF_X2APIC_EOI_MSR, 0x80B
        .equ CF_X2APIC_ICR_MSR, 0x830
        .equ CF_X2APIC_SELF_IPI_MSR, 0x83F
        .entry start

start:  li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        livt cf_ivt
        rdmsr r2, MSR_IA32_APICBASE     ; r2 = bits 31:0, r3 = bits 63:32
        or r2, r2, CF_APIC_BASE_EXTD
        wrmsr MSR_IA32_APICBASE, r2
        rdmsr r2, MSR_IA32_APICBASE
        and r2, r2, 0xC00
        li r1, 2
        hypercall HC_REPORT
        rdmsr r4, CF_X2APIC_ID_MSR
        mov r2, r4
        li r1, 3
        hypercall HC_REPORT
        sti
        li r4, APIC_DEST_SELF | APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        li r5, 0                        ; destination (bits 63:32): unused with the shorthand
        wrmsr CF_X2APIC_ICR_MSR, r4
        li r13, 1
        call wait_count
        li r1, 0
        hypercall HC_REPORT
        li r4, VECTOR
        li r5, 0
        wrmsr CF_X2APIC_SELF_IPI_MSR, r4
        li r13, 2
        call wait_count
        li r1, 1
        hypercall HC_REPORT
        jmp cf_done

; Waits up to 1 s until ipi_count >= r13; returns r2 = ipi_count. Clobbers r10-r12.
wait_count:
        rdtsc r10
wait_loop:
        ld32 r2, [ipi_count]
        bgeu r2, r13, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait_loop
wait_end:
        ld32 r2, [ipi_count]
        ret

handler:
        push r2
        push r3
        li r2, 1
        xadd r2, [ipi_count]
        li r2, 0
        li r3, 0
        wrmsr CF_X2APIC_EOI_MSR, r2
        pop r3
        pop r2
        iret

        .align 4
ipi_count: .word 0
        .include "conformance.s"
