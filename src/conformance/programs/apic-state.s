; selftest/xapic-state and selftest/x2apic-state: the KVM selftest x86/xapic_state_test.c, test_icr().
; One vCPU with interrupts off writes a sweep of ICR values and reads each back at once:
;   fixed self-IPIs (SELF shorthand) with every vector 0..0xFF; fixed physical IPIs to its own ID
;   with every vector; IPIs of all 8 delivery modes (vector 0xFF) to every physical ID 0..0xFE except
;   its own (IDs no vCPU holds); all 8 delivery modes with the all-excluding-self shorthand; and three
;   garbage values (0xA5..., 0x5A..., all ones) with the delivery mode cleared.
; Every value is sent: the IPIs really go out (self-IPIs stay pending with IF = 0, the others find
; no target).
;
; X2APIC = 0 (xAPIC, MMIO): each value is written twice, with the busy bit (12) set and clear: ICR2
;   (the destination, bits 63:32) first, then ICR. The read-back must match in bits 31:0 except busy;
;   ICR2 must read back either whole (AMD AVIC, which keeps ICR2[23:0]) or with bits 23:0 cleared
;   (Intel and KVM's own APIC); which one, and whether busy ever reads set, the host judges.
; X2APIC = 1 (x2APIC, after the switch through the APIC base MSR): ICR is the 64-bit MSR 0x830,
;   written and read in one access, and must read back exactly. Busy is not tested (reserved, and
;   vendors differ). Values with bits in the x2APIC reserved fields (31:20, 17:16, 13) must make
;   wrmsr #GP: the vector 13 handler counts the exception and resumes after the wrmsr, and the
;   sweep counts each such value as faulted (slot 6) or, if no #GP came, as not faulted (slot 11).
;
; Slots: 0 read-backs; 1 read-backs whose bits 31:0 (busy aside) differ; 2 read-backs with busy set;
; 3 ICR2 read back whole; 4 ICR2 read back with bits 23:0 clear; 5 ICR2 read back as neither
; (x2APIC: 1 counts any difference in either half); 6 reserved-bit values that made wrmsr #GP;
; 7-10 the first bad read-back: written low, written high, read low, read high; 11 reserved-bit
; values that did not #GP.

        .equ X2APIC, 0
        .equ CF_APIC_BASE_EXTD, 0x400
        .equ CF_X2APIC_ICR_MSR, 0x830
        .equ CF_X2APIC_RESERVED, 0xFFF00000 | 0x30000 | 0x2000
        .entry start

start:  cli
        li r2, gp_handler
        st32 [cf_ivt + 4 * 13], r2
        livt cf_ivt
        li r2, X2APIC
        beqz r2, sweep
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, CF_APIC_BASE_EXTD
        wrmsr MSR_IA32_APICBASE, r2
sweep:  li r13, 0                       ; vector
self_loop:
        li r4, APIC_DEST_SELF | APIC_INT_ASSERT | APIC_DM_FIXED
        or r4, r4, r13
        li r5, 0
        call test_icr
        add r13, r13, 1
        li r2, 0x100
        bltu r13, r2, self_loop
        li r13, 0
own_loop:
        li r4, APIC_INT_ASSERT | APIC_DM_FIXED
        or r4, r4, r13
        li r5, 0                        ; physical ID 0: this vCPU
        call test_icr
        add r13, r13, 1
        li r2, 0x100
        bltu r13, r2, own_loop
        li r13, 1                       ; every ID but its own (0), up to 0xFE
absent_id:
        li r14, 0                       ; delivery mode
absent_mode:
        shl r4, r14, 8
        or r4, r4, APIC_INT_ASSERT | 0xFF
        shl r5, r13, 24
        call test_icr
        add r14, r14, 1
        li r2, 8
        bltu r14, r2, absent_mode
        add r13, r13, 1
        li r2, 0xFF
        bltu r13, r2, absent_id
        li r14, 0
allbut_mode:
        shl r4, r14, 8
        or r4, r4, APIC_DEST_ALLBUT | APIC_INT_ASSERT
        li r5, 0
        call test_icr
        add r14, r14, 1
        li r2, 8
        bltu r14, r2, allbut_mode
        li r4, 0xA5A5A5A5 & ~0x700
        li r5, 0xA5A5A5A5
        call test_icr
        li r4, 0x5A5A5A5A & ~0x700
        li r5, 0x5A5A5A5A
        call test_icr
        li r4, 0xFFFFFFFF & ~0x700
        li r5, 0xFFFFFFFF
        call test_icr
        li r9, 0
report: shl r2, r9, 2
        ld32 r2, [r2 + counters]
        mov r1, r9
        hypercall HC_REPORT
        add r9, r9, 1
        li r2, 12
        bltu r9, r2, report
        jmp cf_done

; test_icr: r4 = value bits 31:0, r5 = bits 63:32. Clobbers r2, r3, r6-r12.
test_icr:
        push r13
        li r2, X2APIC
        bnez r2, test_icr_x2apic
        li r2, APIC_ICR_BUSY
        or r6, r4, r2
        mov r7, r5
        call one_xapic
        li r2, ~APIC_ICR_BUSY
        and r6, r4, r2
        mov r7, r5
        call one_xapic
        pop r13
        ret
test_icr_x2apic:
        li r2, CF_X2APIC_RESERVED
        and r2, r4, r2
        beqz r2, test_icr_x2apic_write
        ld32 r10, [gp_taken]            ; reserved bits: this wrmsr must #GP (gp_handler skips it)
        li r2, ~APIC_ICR_BUSY
        and r6, r4, r2
        mov r7, r5
        wrmsr CF_X2APIC_ICR_MSR, r6
        ld32 r11, [gp_taken]
        sub r11, r11, r10
        li r1, 6
        li r2, 1
        beq r11, r2, reserved_counted
        li r1, 11
reserved_counted:
        call bump
        pop r13
        ret
test_icr_x2apic_write:
        li r2, ~APIC_ICR_BUSY
        and r6, r4, r2
        mov r7, r5
        wrmsr CF_X2APIC_ICR_MSR, r6     ; r6 = bits 31:0, r7 = bits 63:32
        rdmsr r8, CF_X2APIC_ICR_MSR     ; r8 = bits 31:0, r9 = bits 63:32
        li r1, 0
        call bump
        bne r8, r6, x2apic_bad
        beq r9, r7, x2apic_ok
x2apic_bad:
        li r1, 1
        call bump
        call record_first
x2apic_ok:
        pop r13
        ret

; one_xapic: writes r7 to ICR2 and r6 to ICR, reads back r8 = ICR, r9 = ICR2, and counts.
one_xapic:
        push r13
        st32 [APIC_BASE + APIC_ICR2], r7
        st32 [APIC_BASE + APIC_ICR], r6
        ld32 r8, [APIC_BASE + APIC_ICR]
        ld32 r9, [APIC_BASE + APIC_ICR2]
        li r1, 0
        call bump
        xor r2, r8, r6
        li r3, ~APIC_ICR_BUSY
        and r2, r2, r3
        beqz r2, one_low_ok
        li r1, 1
        call bump
        call record_first
one_low_ok:
        li r3, APIC_ICR_BUSY
        and r2, r8, r3
        beqz r2, one_busy_clear
        li r1, 2
        call bump
one_busy_clear:
        li r12, 0                       ; matched a high-half rule
        bne r9, r7, one_not_kept
        li r1, 3
        call bump
        li r12, 1
one_not_kept:
        li r3, 0xFF000000
        and r3, r7, r3
        bne r9, r3, one_not_masked
        li r1, 4
        call bump
        li r12, 1
one_not_masked:
        bnez r12, one_end
        li r1, 5
        call bump
        call record_first
one_end:
        pop r13
        ret

; The #GP handler (vector 13): count it, and resume after the faulting instruction (the saved pc,
; at [sp + 4] once r2 is pushed, is the faulting instruction's address).
gp_handler:
        push r2
        ld32 r2, [gp_taken]
        add r2, r2, 1
        st32 [gp_taken], r2
        ld32 r2, [sp + 4]
        add r2, r2, 8
        st32 [sp + 4], r2
        pop r2
        iret

; bump: counters[r1] += 1. Clobbers r2, r3.
bump:   shl r2, r1, 2
        ld32 r3, [r2 + counters]
        add r3, r3, 1
        st32 [r2 + counters], r3
        ret

; record_first: the first bad read-back's written (r6, r7) and read (r8, r9) values. Clobbers r2.
record_first:
        ld32 r2, [recorded]
        bnez r2, record_first_end
        li r2, 1
        st32 [recorded], r2
        st32 [counters + 7 * 4], r6
        st32 [counters + 8 * 4], r7
        st32 [counters + 9 * 4], r8
        st32 [counters + 10 * 4], r9
record_first_end:
        ret

        .align 4
recorded: .word 0
gp_taken: .word 0
counters: .zero 4 * 12
        .include "conformance.s"
