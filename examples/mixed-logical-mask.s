; mixed-logical-mask.s: flat logical IPIs whose mask names a vCPU and a logical ID nobody has.
;
; vCPU 1 takes flat logical ID bit 0 and halts with interrupts enabled; vCPU 0 (logical ID bit 1)
; sends it ROUNDS IPIs to the destination 0x05: bit 0 (vCPU 1) and bit 2 (no vCPU). AVIC checks
; every target before it sets any IRR bit, finds bit 2 invalid and exits with cause 2 (invalid
; target); KVM emulates the whole IPI, so vCPU 1 gets every one. KVM before Linux 6.3 ignored the
; exit and dropped the IPI for vCPU 1 too (docs/bug-zoo.md, --inject invalid-target-ignored): the
; sender's round then times out and it aborts the VM (exit status 1). Run with 2 vCPUs:
;
;   avic-smp run examples/mixed-logical-mask.s --inject invalid-target-ignored         # fails
;   avic-smp run examples/mixed-logical-mask.s --inject invalid-target-ignored-fixed   # passes
;
; Results (HC_REPORT slot 0): the IPIs vCPU 1 received.

        .equ ROUNDS, 1000
        .equ VECTOR, 0x50
        .equ MASK, 0x05                 ; bit 0: vCPU 1; bit 2: nobody
        .equ TIMEOUT_NS, 1000000000     ; 1 s per round
        .equ SENDER, 0
        .equ RECEIVER, 1

        .equ ABORT_NOT_CONFIGURED, 1    ; r2 = 0
        .equ ABORT_IPI_MISSED, 2        ; r2 = IPIs received so far

        .entry sender, SENDER
        .entry receiver, RECEIVER
        .entry idle

; vCPU 1: flat logical ID bit 0, then halt until told to stop.
receiver:
        livt ivt
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        st32 [APIC_BASE + APIC_SPIV], r2
        li r2, APIC_DFR_FLAT
        st32 [APIC_BASE + APIC_DFR], r2
        li r2, 0x01 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        li r2, 1
        xchg r2, [configured]
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
        li r2, 1
        xadd r2, [received]
        li r2, 0
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

; vCPU 0: flat logical ID bit 1; each round sends one IPI to MASK and waits until vCPU 1 took it.
sender:
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        st32 [APIC_BASE + APIC_SPIV], r2
        li r2, APIC_DFR_FLAT
        st32 [APIC_BASE + APIC_DFR], r2
        li r2, 0x02 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        li r12, TIMEOUT_NS
        rdtsc r10
wait_configured:
        pause
        ld32 r11, [configured]
        bnez r11, configured_seen
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_configured
        li r1, ABORT_NOT_CONFIGURED
        li r2, 0
        hypercall HC_ABORT
        jmp park
configured_seen:
        li r4, MASK << APIC_DEST_SHIFT
        li r5, APIC_DEST_LOGICAL | APIC_DM_FIXED | VECTOR
        li r6, ROUNDS
send_loop:
        ld32 r7, [received]
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
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
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
        jmp finish

idle:
finish:
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt
        jmp park

        .align 64
configured:     .word 0
received:       .word 0
stop:           .word 0

        .align 64
ivt:
        .zero 4 * VECTOR
        .word ipi_handler
        .zero 4 * (255 - VECTOR)
