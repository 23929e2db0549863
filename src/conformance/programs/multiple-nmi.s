; apic/multiple-nmi: kvm-unit-tests x86/apic.c test_multiple_nmi.
; Each round, vCPU 0 (IF = 1) and vCPU 1 meet at a counter handshake; then vCPU 1 sends vCPU 0 an NMI
; followed by a fixed IPI (vector 0x44, the "flush": NMIs are taken before maskable interrupts, so
; once its handler runs the NMI has arrived), while vCPU 0 sends itself an NMI. Two NMIs raised
; while none is being handled must both be taken: one delivered, one held pending (x86 keeps one
; NMI pending while another is in service; KVM's nmi_pending allows two when none is in progress).
; vCPU 0 checks, after the flush, that its NMI handler ran exactly twice.
;
; Slots: vCPU 0: 0 rounds passed.
; Abort codes: 2 a round took a number of NMIs other than 2 (value = NMIs | round << 8); 3 the flush
; IPI did not arrive within 1 s (value = round); 4 a handshake timed out (value = vCPU); 100 online.

        .equ VCPUS, 2
        .equ ROUNDS, 5000
        .equ FLUSH_VECTOR, 0x44
        .equ CF_NMI_VECTOR, 2
        .entry bsp, 0
        .entry kicker, 1

; wait_equal: waits up to 2 s until [r8] == [r9] or [nmi_done]; aborts with code 4, value r1.
; Clobbers r2, r3, r10-r12.
wait_equal:
        rdtsc r10
wait_equal_loop:
        li r2, 0
        xadd r2, [r8]
        li r3, 0
        xadd r3, [r9]
        beq r2, r3, wait_equal_end
        ld32 r2, [nmi_done]
        bnez r2, wait_equal_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 2 * CF_NS_PER_SECOND
        bltu r11, r12, wait_equal_loop
        mov r2, r1
        li r1, 4
        jmp cf_abort
wait_equal_end:
        ret

kicker: li r2, 1
        xadd r2, [cf_online]
kick_round:
        ld32 r2, [nmi_done]
        bnez r2, cf_done
        li r2, 1
        xadd r2, [cpu1_ctr1]
        li r8, cpu1_ctr1
        li r9, cpu0_ctr1
        li r1, 1
        call wait_equal
        ld32 r2, [nmi_done]
        bnez r2, cf_done
        li r4, 0 << APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_PHYSICAL | APIC_DM_NMI | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r5
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | APIC_INT_ASSERT | FLUSH_VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        li r2, 1
        xadd r2, [cpu1_ctr2]
        li r8, cpu1_ctr2
        li r9, cpu0_ctr2
        li r1, 1
        call wait_equal
        jmp kick_round

bsp:    li r2, nmi_handler
        st32 [cf_ivt + 4 * CF_NMI_VECTOR], r2
        li r2, flush_handler
        st32 [cf_ivt + 4 * FLUSH_VECTOR], r2
        livt cf_ivt
        li r1, 1
        call cf_wait_online
        sti
        li r6, 0                        ; rounds passed
round:  li r2, 0
        xchg r2, [nmi_flushed]
        li r2, 0
        xchg r2, [nmi_received]
        li r2, 1
        xadd r2, [cpu0_ctr1]
        li r8, cpu1_ctr1
        li r9, cpu0_ctr1
        li r1, 0
        call wait_equal
        li r4, 0 << APIC_DEST_SHIFT     ; this vCPU's own APIC ID
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_PHYSICAL | APIC_DM_NMI | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
flush_wait:
        ld32 r2, [nmi_flushed]
        bnez r2, flushed
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, flush_wait
        mov r2, r6
        li r1, 3
        jmp cf_abort
flushed:
        ld32 r2, [nmi_received]
        li r3, 2
        beq r2, r3, round_ok
        shl r3, r6, 8
        or r2, r2, r3
        li r1, 2
        jmp cf_abort
round_ok:
        add r6, r6, 1
        li r2, 1
        xadd r2, [cpu0_ctr2]
        li r8, cpu1_ctr2
        li r9, cpu0_ctr2
        li r1, 0
        call wait_equal
        li r3, ROUNDS
        bltu r6, r3, round
        li r2, 1
        xchg r2, [nmi_done]
        li r1, 0
        mov r2, r6
        hypercall HC_REPORT
        jmp cf_done

nmi_handler:
        push r2
        li r2, 1
        xadd r2, [nmi_received]
        pop r2
        iret

flush_handler:
        push r2
        li r2, 1
        xchg r2, [nmi_flushed]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

        .align 4
nmi_done:     .word 0
nmi_flushed:  .word 0
nmi_received: .word 0
cpu0_ctr1:    .word 0
cpu1_ctr1:    .word 0
cpu0_ctr2:    .word 0
cpu1_ctr2:    .word 0
        .include "conformance.s"
