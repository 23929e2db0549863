; x2apic-logical-halter.s: x2APIC logical IPIs to a vCPU that is asleep in HLT.
;
; Both vCPUs switch to x2APIC mode. vCPU 1 (x2APIC logical ID: cluster 0, bit 1) halts with
; interrupts enabled; vCPU 0 waits until it is really blocked (HC_VCPU_RUN_STATE), then sends it an
; IPI to the logical destination 0x00000002, ROUNDS times. Its IsRunning bit is clear, so x2AVIC
; sets the IRR bit and exits with cause 1 (target not running), and KVM wakes the target. Linux
; 6.0-6.2 read the member mask from the wrong half of the destination in
; avic_kick_target_vcpus_fast and woke nobody (docs/bug-zoo.md, --inject x2avic-logical-kick): the
; round times out and the sender aborts the VM (exit status 1). Run with 2 vCPUs:
;
;   avic-smp run examples/x2apic-logical-halter.s --inject x2avic-logical-kick         # fails
;   avic-smp run examples/x2apic-logical-halter.s --inject x2avic-logical-kick-fixed   # passes
;
; Results (HC_REPORT slot 0): the IPIs vCPU 1 received.

        .equ ROUNDS, 200
        .equ VECTOR, 0x52
        .equ DESTINATION, 0x00000002    ; cluster 0 (bits 31:16), member bit 1: vCPU 1
        .equ TIMEOUT_NS, 1000000000     ; 1 s per wait
        .equ MSR_ICR, APIC_BASE_MSR + (APIC_ICR >> 4)
        .equ MSR_EOI, APIC_BASE_MSR + (APIC_EOI >> 4)
        .equ SENDER, 0
        .equ RECEIVER, 1

        .equ ABORT_NOT_BLOCKED, 1       ; r2 = IPIs received so far
        .equ ABORT_IPI_MISSED, 2        ; r2 = IPIs received so far

        .entry sender, SENDER
        .entry receiver, RECEIVER
        .entry idle

; vCPU 1: x2APIC mode, then halt until told to stop.
receiver:
        livt ivt
        call enter_x2apic
receive_loop:
        ld32 r2, [stop]
        bnez r2, receiver_report
        sti                             ; the IPI cannot slip in between sti and hlt
        hlt
        cli
        jmp receive_loop
receiver_report:
        li r1, 0
        ld32 r2, [received]
        hypercall HC_REPORT
        jmp finish

ipi_handler:
        push r2
        push r3
        li r2, 1
        xadd r2, [received]
        li r2, 0
        li r3, 0
        wrmsr MSR_EOI, r2
        pop r3
        pop r2
        iret

; vCPU 0: x2APIC mode; each round waits until vCPU 1 is blocked, sends, and waits for the handler.
sender:
        call enter_x2apic
        li r12, TIMEOUT_NS
        li r4, APIC_DEST_LOGICAL | APIC_DM_FIXED | VECTOR
        li r5, DESTINATION
        li r6, ROUNDS
send_loop:
        call wait_receiver_blocked
        ld32 r7, [received]
        wrmsr MSR_ICR, r4               ; r4 = ICR bits 31:0, r5 = the 32-bit destination
        rdtsc r10
wait_round:
        pause
        ld32 r11, [received]
        bne r11, r7, round_done
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_round
        li r1, ABORT_IPI_MISSED
        ld32 r2, [received]
        hypercall HC_ABORT
        jmp park
round_done:
        sub r6, r6, 1
        bnez r6, send_loop
        ; Stop the receiver: the flag first, then one more IPI to wake it.
        li r11, 1
        xchg r11, [stop]
        wrmsr MSR_ICR, r4
        jmp finish

; Until HC_VCPU_RUN_STATE says vCPU 1 is blocked (IsRunning clear), at most TIMEOUT_NS.
wait_receiver_blocked:
        rdtsc r10
wait_blocked:
        li r1, RECEIVER
        hypercall HC_VCPU_RUN_STATE
        li r11, VCPU_STATE_BLOCKED
        beq r0, r11, receiver_blocked
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_blocked
        li r1, ABORT_NOT_BLOCKED
        ld32 r2, [received]
        hypercall HC_ABORT
        jmp park
receiver_blocked:
        ret

enter_x2apic:
        rdmsr r2, MSR_IA32_APICBASE     ; r2 = bits 31:0, r3 = bits 63:32
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2
        ret

idle:
finish:
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt
        jmp park

        .align 64
received:       .word 0
stop:           .word 0

        .align 64
ivt:
        .zero 4 * VECTOR
        .word ipi_handler
        .zero 4 * (255 - VECTOR)
