; smptest/boot-8: kvm-unit-tests x86/smptest.c, with the bring-up its start-up code performs.
; Only the bootstrap vCPU (0) has an entry point. It sends INIT (assert, then de-assert) and two
; start-up IPIs (vector AP_START >> 12) to every other vCPU with the all-excluding-self shorthand, as
; kvm-unit-tests' SMP start-up does; each application vCPU must begin at AP_START (address vector << 12),
; which is reachable only that way. An application vCPU takes no register state on trust: it finds
; its APIC ID in the APIC, builds its stack from it, reports the ID and idles in `sti; hlt`. The
; bootstrap vCPU waits for all of them, checks that the second start-up IPI started nobody twice,
; then calls a function on every vCPU in turn (smptest's on_cpu(i), a fixed IPI to APIC ID i, vector
; 0x20), which records whether it ran on the vCPU it was sent to.
;
; Slots: every vCPU: 0 its APIC ID; vCPU 0: 1 calls that ran on the vCPU they were sent to,
; 2 application vCPUs that came online.
; Abort codes: 2 an application vCPU started twice (value = vCPUs online); 3 a call did not complete
; within 1 s (value = APIC ID); 4 an application vCPU ran before the start-up IPIs were sent (value =
; its APIC ID); 100 not every application vCPU came online (value = how many did).

        .equ VCPUS, 8
        .equ CALL_VECTOR, 0x20
        .equ AP_START, 0x8000
        .equ AP_STACK_BYTES, 1024
        .entry bsp, 0

set_up: li r2, call_handler
        st32 [cf_ivt + 4 * CALL_VECTOR], r2
        li r2, cf_eoi_handler
        st32 [cf_ivt + 4 * CF_FINISH_VECTOR], r2
        livt cf_ivt
        ret

bsp:    call set_up
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        li r1, 0
        hypercall HC_REPORT
        li r2, 1
        xchg r2, [startup_sent]
        li r2, 0
        st32 [APIC_BASE + APIC_ICR2], r2
        li r3, APIC_DEST_ALLBUT | APIC_DM_INIT | APIC_INT_LEVELTRIG | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r3
        li r3, APIC_DEST_ALLBUT | APIC_DM_INIT | APIC_INT_LEVELTRIG
        st32 [APIC_BASE + APIC_ICR], r3
        li r3, APIC_DEST_ALLBUT | APIC_DM_STARTUP | (AP_START >> 12)
        st32 [APIC_BASE + APIC_ICR], r3
        st32 [APIC_BASE + APIC_ICR], r3
        li r1, VCPUS - 1
        call cf_wait_online
        rdtsc r10                       ; 10 ms more: a vCPU started twice would count itself again
settle: pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 10000000
        bltu r11, r12, settle
        ld32 r2, [cf_online]
        li r3, VCPUS - 1
        beq r2, r3, online
        li r1, 2
        jmp cf_abort
online: li r1, 2
        hypercall HC_REPORT
        sti
        li r6, 0                        ; the APIC ID called (id_map[i] = i)
next_call:
        st32 [call_target], r6
        li r2, 0
        xchg r2, [call_done]
        bnez r6, remote_call
        call call_function              ; on_cpu() to itself runs the function directly
        jmp call_complete
remote_call:
        shl r4, r6, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | CALL_VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
call_wait:
        li r2, 0
        xadd r2, [call_done]
        bnez r2, call_complete
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, call_wait
        mov r2, r6
        li r1, 3
        jmp cf_abort
call_complete:
        add r6, r6, 1
        li r2, VCPUS
        bltu r6, r2, next_call
        li r1, 1
        ld32 r2, [calls_on_target]
        hypercall HC_REPORT
        call cf_finish_all
        jmp cf_done

; The called function: did it run where it was sent? Then signal completion. Clobbers r2, r3.
call_function:
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        ld32 r3, [call_target]
        bne r2, r3, call_function_done
        li r2, 1
        xadd r2, [calls_on_target]
call_function_done:
        li r2, 1
        xchg r2, [call_done]
        ret

call_handler:
        push r2
        push r3
        call call_function
        st32 [APIC_BASE + APIC_EOI], r2
        pop r3
        pop r2
        iret

        .align 4
startup_sent:    .word 0
call_target:     .word 0
call_done:       .word 0
calls_on_target: .word 0
ap_stacks:       .zero AP_STACK_BYTES * VCPUS
        .include "conformance.s"

; ---- the start-up page: an application vCPU begins here, at (AP_START >> 12) << 12 ----
        .org AP_START
ap_start:
        ld32 r6, [APIC_BASE + APIC_ID]
        shr r6, r6, 24
        ld32 r2, [startup_sent]
        bnez r2, ap_started
        mov r2, r6
        li r1, 4
        jmp cf_abort
ap_started:
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF ; INIT left the APIC software-disabled (SVR = 0xFF);
        st32 [APIC_BASE + APIC_SVR], r2     ; kvm-unit-tests' ap_start64 calls enable_apic too
        add r2, r6, 1
        li r3, AP_STACK_BYTES
        mul r2, r2, r3
        li sp, ap_stacks
        add sp, sp, r2                  ; the top of this vCPU's stack in ap_stacks
        call set_up
        li r1, 0
        mov r2, r6
        hypercall HC_REPORT
        li r13, cf_done
        jmp cf_ap_idle
