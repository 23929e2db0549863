; apic/physical-broadcast: kvm-unit-tests x86/apic.c test_physical_broadcast, in xAPIC mode.
; vCPU 0 waits until every other vCPU idles in `sti; hlt`, then sends one fixed IPI (vector 0xCF) to
; physical destination 0xFF, the xAPIC broadcast ID, and waits up to 1 s until the handlers have run
; VCPUS times; then the same with the all-including-self shorthand. Every vCPU, the sender included
; (IF = 1 while it waits), must take each broadcast exactly once.
;
; Slots: vCPU 0: 0 handler runs after the 0xFF broadcast (all vCPUs), 1 after the shorthand broadcast;
; every vCPU: 2 broadcasts its own handler took.
; Abort codes: 100 not every vCPU came online.

        .equ VCPUS, 4
        .equ VECTOR, 0xCF
        .entry bsp, 0
        .entry ap

ap:     mov r14, r0                     ; this vCPU's index
        call set_up
        li r13, finish
        jmp cf_ap_idle

set_up: li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        li r2, cf_eoi_handler
        st32 [cf_ivt + 4 * CF_FINISH_VECTOR], r2
        livt cf_ivt
        ret

bsp:    mov r14, r0
        call set_up
        li r1, VCPUS - 1
        call cf_wait_online
        sti
        li r4, 0xFF << APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | APIC_INT_ASSERT | VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        call wait_all
        li r1, 0
        hypercall HC_REPORT
        li r4, 0
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_ALLINC | APIC_DEST_PHYSICAL | APIC_DM_FIXED | APIC_INT_ASSERT | VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        call wait_all
        li r1, 1
        hypercall HC_REPORT
        call cf_finish_all
        jmp finish

; Waits up to 1 s until VCPUS handler runs are counted, then returns r2 = the count and resets it.
wait_all:
        rdtsc r10
wait_loop:
        li r2, 0
        xadd r2, [broadcast_count]
        li r3, VCPUS
        bgeu r2, r3, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait_loop
wait_end:
        li r2, 0
        xchg r2, [broadcast_count]
        ret

finish: li r1, 2
        shl r2, r14, 2
        ld32 r2, [r2 + own_counts]
        hypercall HC_REPORT
        jmp cf_done

handler:
        push r2
        push r3
        li r2, 1
        xadd r2, [broadcast_count]
        ld32 r2, [APIC_BASE + APIC_ID]  ; IDs are the vCPU indices here
        shr r2, r2, 24 - 2              ; ID * 4
        li r3, 1
        xadd r3, [r2 + own_counts]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r3
        pop r2
        iret

        .align 4
broadcast_count: .word 0
own_counts:      .zero 4 * VCPUS
        .include "conformance.s"
