; apic/aliased-id: kvm-unit-tests x86/apic.c test_aliased_xapic_physical_ipi.
; Both vCPUs set their xAPIC ID to 0, so the two IDs alias. vCPU 0 then sends a fixed physical IPI
; (vector 0xF1) to destination 0, 1, ..., 0xFF in turn; both vCPUs share the ID being named, so each
; IPI must reach both. Each handler first moves its own ID one up (from 0xFF back to its vCPU index),
; then counts the IPI, so the count is the barrier before the next send: a chain reaction through
; all 256 IDs, in which every APIC ID write must reach the hypervisor's view of the IDs before the
; next IPI (KVM: the APIC ID change inhibits AVIC, and delivery goes through its software map).
; Destination 0xFF is also the xAPIC broadcast ID, so the last IPI reaches both either way.
;
; Slots: vCPU 0: 0 destinations that reached both vCPUs; every vCPU: 1 its APIC ID at the end,
; 2 IPIs its handler took.
; Abort codes: 2 an IPI did not reach both vCPUs within 1 s (value = destination | IPIs taken << 8);
; 3 an IPI was taken more than twice (value = destination); 100 vCPU 1 not online.

        .equ VCPUS, 2
        .equ VECTOR, 0xF1
        .entry bsp, 0
        .entry ap, 1

set_up: mov r14, r0                     ; the vCPU index, read by the handler (never changed)
        li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        li r2, cf_eoi_handler
        st32 [cf_ivt + 4 * CF_FINISH_VECTOR], r2
        livt cf_ivt
        li r2, 0
        st32 [APIC_BASE + APIC_ID], r2  ; APIC ID 0: aliases the other vCPU's
        ret

ap:     call set_up
        li r13, finish
        jmp cf_ap_idle

bsp:    call set_up
        li r1, 1
        call cf_wait_online
        sti
        li r6, 0                        ; destination
        li r7, 0                        ; IPIs expected so far
send:   add r7, r7, 2
        shl r2, r6, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r3, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r3
        rdtsc r10
wait:   li r2, 0
        xadd r2, [ipi_count]
        beq r2, r7, next
        bltu r7, r2, too_many
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait
        sub r2, r2, r7
        add r2, r2, 2                   ; taken of this IPI's 2
        shl r2, r2, 8
        or r2, r2, r6
        li r1, 2
        jmp cf_abort
too_many:
        mov r2, r6
        li r1, 3
        jmp cf_abort
next:   add r6, r6, 1
        li r2, 0x100
        bltu r6, r2, send
        li r1, 0
        mov r2, r6
        hypercall HC_REPORT
        call cf_finish_all
finish: li r1, 1
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        hypercall HC_REPORT
        li r1, 2
        shl r2, r14, 2
        ld32 r2, [r2 + own_counts]
        hypercall HC_REPORT
        jmp cf_done

handler:
        push r2
        push r3
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        li r3, 0xFF
        bne r2, r3, handler_bump
        mov r2, r14                     ; after 0xFF: back to the vCPU's own ID
        jmp handler_write
handler_bump:
        add r2, r2, 1
handler_write:
        shl r2, r2, 24
        st32 [APIC_BASE + APIC_ID], r2
        shl r2, r14, 2
        li r3, 1
        xadd r3, [r2 + own_counts]
        li r3, 1
        xadd r3, [ipi_count]            ; last: the sender's barrier
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret

        .align 4
ipi_count:  .word 0
own_counts: .zero 4 * VCPUS
        .include "conformance.s"
