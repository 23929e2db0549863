; apic/nmi-after-sti: kvm-unit-tests x86/apic.c test_sti_nmi.
; vCPU 1 loops `sti; <an instruction that exits>; nop; cli` with an NMI handler that counts NMIs and
; counts those whose return address is the instruction right after the sti (post_sti): an NMI taken
; there was taken inside the sti interrupt shadow, which KVM, like the hardware it runs on, blocks.
; The instruction in the shadow reads the timer current count, an APIC access that exits to the
; hypervisor (as apic.c touches an unmapped page), so the NMI meets a vCPU that is in the shadow
; while outside guest mode. vCPU 0 sends ROUNDS NMIs to vCPU 1, one at a time, each waited for.
;
; Slots: vCPU 0: 0 NMIs sent; vCPU 1: 0 NMIs taken in the sti shadow, 1 NMIs taken.
; Abort codes: 2 an NMI was not taken within 1 s (value = round); 100 vCPU 1 not online.

        .equ VCPUS, 2
        .equ ROUNDS, 10000
        .equ CF_NMI_VECTOR, 2
        .entry bsp, 0
        .entry looper, 1

looper: li r2, nmi_handler
        st32 [cf_ivt + 4 * CF_NMI_VECTOR], r2
        livt cf_ivt
        li r2, 1
        xadd r2, [cf_online]
loop:   sti
post_sti:
        ld32 r2, [APIC_BASE + APIC_TMCCT]
        nop
        cli
        ld32 r3, [nmi_private]
        st32 [nmi_counter], r3
        ld32 r2, [active]
        bnez r2, loop
        li r1, 0
        ld32 r2, [shadow_hits]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [nmi_private]
        hypercall HC_REPORT
        jmp cf_done

nmi_handler:
        push r2
        push r3
        li r2, 1
        xadd r2, [nmi_private]
        ld32 r2, [sp + 8]               ; the return address (below it: the two pushes)
        li r3, post_sti
        bne r2, r3, nmi_handler_end
        li r2, 1
        xadd r2, [shadow_hits]
nmi_handler_end:
        pop r3
        pop r2
        iret

bsp:    li r1, 1
        call cf_wait_online
        li r6, 0                        ; NMIs sent
        li r4, 1 << APIC_DEST_SHIFT
        li r5, APIC_DEST_PHYSICAL | APIC_DM_NMI | APIC_INT_ASSERT
round:  li r7, 0
        xadd r7, [nmi_counter]          ; old count
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
        add r6, r6, 1
        rdtsc r10
wait:   li r2, 0
        xadd r2, [nmi_counter]
        bne r2, r7, taken
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait
        mov r2, r6
        li r1, 2
        jmp cf_abort
taken:  li r3, ROUNDS
        bltu r2, r3, round
        li r2, 0
        xchg r2, [active]
        li r1, 0
        mov r2, r6
        hypercall HC_REPORT
        jmp cf_done

        .align 4
active:      .word 1
nmi_private: .word 0
nmi_counter: .word 0
shadow_hits: .word 0
        .include "conformance.s"
