; apic/id-relocation: kvm-unit-tests x86/apic.c test_apic_id ("writeable xapic id"), carried on to
; delivery. vCPU 1 moves its xAPIC ID from 1 to NEW_ID and reads it back. vCPU 0 then sends a fixed
; physical IPI (vector 0xF1) to NEW_ID, which vCPU 1 must take, and one to the old ID 1, which no vCPU
; holds any more and nobody may take. vCPU 1 then moves back to ID 1, and the same two IPIs, the
; other way round, must again reach only the ID it holds. (KVM: an xAPIC ID change inhibits AVIC,
; whose physical ID table assumes ID = vCPU index; delivery then follows the IDs in software.)
; vCPU 1 waits asleep in HLT for commands and IPIs.
;
; Slots: vCPU 0: 0 steps passed (6); vCPU 1: 0 IPIs taken, 1 its APIC ID read back after the move.
; Abort codes: 2 the ID read back differs (value = it); 3 an IPI to vCPU 1's new ID was not taken
; within 1 s (value = ID); 4 an IPI to an ID nobody holds was taken (value = ID); 5 vCPU 1 did not
; acknowledge a command within 1 s; 6 the ID read back after moving back differs (value = it);
; 100 vCPU 1 not online.

        .equ VCPUS, 2
        .equ NEW_ID, 0x42
        .equ VECTOR, 0xF1
        .equ COMMAND_VECTOR, 0x22
        .entry bsp, 0
        .entry server, 1

set_up: li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        li r2, cf_eoi_handler
        st32 [cf_ivt + 4 * COMMAND_VECTOR], r2
        st32 [cf_ivt + 4 * CF_FINISH_VECTOR], r2
        livt cf_ivt
        ret

; vCPU 1: a command is the new ID + 1 (0 = none); the acknowledgement is the ID read back + 1.
server: call set_up
        li r2, 1
        xadd r2, [cf_online]
server_loop:
        cli
        ld32 r2, [command]
        beqz r2, server_sleep
        sub r2, r2, 1
        shl r2, r2, 24
        st32 [APIC_BASE + APIC_ID], r2
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        add r3, r2, 1
        xchg r3, [reply]
        li r3, 0
        xchg r3, [command]
        jmp server_loop
server_sleep:
        ld32 r2, [cf_finish]
        bnez r2, server_end
        sti
        hlt
        jmp server_loop
server_end:
        li r1, 0
        ld32 r2, [ipi_count]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [first_reply]
        hypercall HC_REPORT
        jmp cf_done

; move_id: r6 = the ID vCPU 1 holds now (for the wake-up IPI), r7 = its new ID. Returns r2 = the ID
; vCPU 1 read back. Clobbers r2-r5, r10-r12.
move_id:
        li r2, 0
        xchg r2, [reply]
        add r2, r7, 1
        xchg r2, [command]
        shl r4, r6, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | COMMAND_VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
move_wait:
        li r2, 0
        xadd r2, [reply]
        bnez r2, move_done
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, move_wait
        li r1, 5
        jmp cf_abort
move_done:
        sub r2, r2, 1
        ret

; send: r8 = destination ID, r9 = vCPU 1's IPI count expected after it. Waits up to 1 s for that
; count (or, when the count must not change, 20 ms to see that it does not). Clobbers r2-r5, r10-r12.
send:   shl r4, r8, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        li r3, 0
        xadd r3, [ipi_count]
        li r12, CF_NS_PER_SECOND
        bne r3, r9, send_timed
        li r12, 20000000                ; already there: watch 20 ms for an IPI nobody should take
send_timed:
        rdtsc r10
send_wait:
        li r2, 0
        xadd r2, [ipi_count]
        bltu r9, r2, send_extra
        bne r2, r9, send_pending
        bne r3, r9, send_done           ; the awaited IPI arrived
send_pending:
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, send_wait
        beq r2, r9, send_done           ; nothing arrived, and nothing was to
        mov r2, r8
        li r1, 3
        jmp cf_abort
send_extra:
        mov r2, r8
        li r1, 4
        jmp cf_abort
send_done:
        li r2, 1
        xadd r2, [steps]
        ret

bsp:    call set_up
        li r1, 1
        call cf_wait_online
        li r6, 1
        li r7, NEW_ID
        call move_id
        st32 [first_reply], r2
        li r3, NEW_ID
        beq r2, r3, moved
        li r1, 2
        jmp cf_abort
moved:  li r8, NEW_ID
        li r9, 1
        call send                       ; to the new ID: taken
        li r8, 1
        li r9, 1
        call send                       ; to the old ID: nobody
        li r6, NEW_ID
        li r7, 1
        call move_id
        li r3, 1
        beq r2, r3, moved_back
        li r1, 6
        jmp cf_abort
moved_back:
        li r8, 1
        li r9, 2
        call send                       ; to ID 1 again: taken
        li r8, NEW_ID
        li r9, 2
        call send                       ; to the ID it left: nobody
        li r1, 0
        ld32 r2, [steps]
        add r2, r2, 2                   ; the two moves
        hypercall HC_REPORT
        call cf_finish_all
        jmp cf_done

handler:
        push r2
        li r2, 1
        xadd r2, [ipi_count]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

        .align 4
command:     .word 0
reply:       .word 0
first_reply: .word 0
ipi_count:   .word 0
steps:       .word 0
        .include "conformance.s"
