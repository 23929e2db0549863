; halter-sender.s: the Linux KVM selftest xapic_ipi_test
; (tools/testing/selftests/kvm/x86/xapic_ipi_test.c) in the avic-smp guest ISA.
;
; vCPU 0, the halter, halts in a loop with interrupts enabled only around HLT. vCPU 1, the sender,
; sends it IPI after IPI and, after each one, waits until the halter has received the IPI, woken up
; and halted again. If that does not happen within a second, an IPI or a wake-up was lost: the
; sender aborts the VM. This is the test that catches a sender reading a stale IsRunning bit
; (AMD erratum #1235). Run with 2 vCPUs; any further vCPU simply finishes.
;
; Unlike the selftest, which runs until the host cancels it, the sender stops after IPI_COUNT
; rounds: it sets `stop` and sends one last IPI, the halter wakes, sees `stop`, reports and finishes.
;
; Results (HC_REPORT slots, the same meaning on both vCPUs):
;   0 = IPIs sent (sender), 1 = IPIs received, 2 = halts, 3 = wakes.
; On success every one of them is IPI_COUNT + 1 on the sender.

        .equ IPI_COUNT, 100000
        .equ IPI_VECTOR, 0xA5
        .equ EOI_VALUE, 77              ; as in the selftest: a non-zero EOI exposes stray page writes
        .equ HALTER, 0                  ; vCPU index = APIC ID
        .equ SENDER, 1
        .equ TIMEOUT_NS, 1000000000     ; 1 s per round, as the selftest's ~2e9 TSC ticks
        .equ FIRST_HALT_TIMEOUT_NS, 4000000000  ; the longest interval rdtsc differences can measure

        ; Abort codes (r1 of HC_ABORT); r2 carries a value for the report.
        .equ ABORT_APIC_BASE, 1         ; r2 = IA32_APICBASE low word
        .equ ABORT_NO_FIRST_HALT, 2     ; r2 = 0
        .equ ABORT_MISSED_IPI_OR_WAKE, 3  ; r2 = IPIs sent so far
        .equ ABORT_HALTER_DID_NOT_STOP, 4 ; r2 = IPIs sent

        .entry halter, HALTER
        .entry sender, SENDER
        .entry idle

; ---------------------------------------------------------------------------------------------
; vCPU 0: the halter

halter:
        call check_apic_base
        livt ivt
        ; The selftest's xapic_enable(): software-enable the APIC with spurious vector 0xFF.
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        st32 [APIC_BASE + APIC_SPIV], r2
        ; Record the APIC ID and version for the host's report.
        ld32 r2, [APIC_BASE + APIC_ID]
        st32 [halter_apic_id], r2
        ld32 r2, [APIC_BASE + APIC_LVR]
        st32 [halter_lvr], r2
halt_loop:
        ld32 r2, [APIC_BASE + APIC_TASKPRI]     ; TPR and PPR, kept for diagnosis as the selftest does
        st32 [halter_tpr], r2
        ld32 r2, [APIC_BASE + APIC_PROCPRI]
        st32 [halter_ppr], r2
        li r2, 1
        xadd r2, [hlt_count]            ; atomic, so the sender's polling sees it promptly
        sti                             ; safe_halt(): the IPI cannot slip in between sti and hlt
        hlt
        cli
        li r2, 1
        xadd r2, [wake_count]
        ld32 r2, [stop]
        beqz r2, halt_loop
        ; The sender has finished: report this vCPU's counters, then tell the sender.
        li r1, 1
        ld32 r2, [ipis_rcvd]
        hypercall HC_REPORT
        li r1, 2
        ld32 r2, [hlt_count]
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [wake_count]
        hypercall HC_REPORT
        li r2, 1
        xchg r2, [halter_done]
        jmp finish

; The IPI handler (vector IPI_VECTOR, on the halter): count, then EOI.
ipi_handler:
        push r2
        li r2, 1
        xadd r2, [ipis_rcvd]
        li r2, EOI_VALUE
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

; ---------------------------------------------------------------------------------------------
; vCPU 1: the sender
;   r4 = ICR2 value, r5 = ICR value, r6 = rounds left, r7..r9 = counters before the IPI,
;   r10 = rdtsc at the send, r11 = scratch, r12 = timeout

sender:
        call check_apic_base
        li r4, HALTER << APIC_DEST_SHIFT
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | IPI_VECTOR
        st32 [sender_icr2], r4
        st32 [sender_icr], r5
        ; The host starts the sender only after the halter's first HLT; here the sender waits for it.
        li r12, FIRST_HALT_TIMEOUT_NS
        rdtsc r10
wait_first_halt:
        pause
        ld32 r11, [hlt_count]
        bnez r11, first_halt_seen
        rdtsc r11
        sub r11, r11, r10               ; unsigned difference: right across the 32-bit wrap
        bltu r11, r12, wait_first_halt
        li r1, ABORT_NO_FIRST_HALT
        li r2, 0
        hypercall HC_ABORT
        jmp park
first_halt_seen:
        li r12, TIMEOUT_NS
        li r6, IPI_COUNT
send_loop:
        ld32 r7, [ipis_rcvd]
        ld32 r8, [wake_count]
        ld32 r9, [hlt_count]
        st32 [APIC_BASE + APIC_ICR2], r4        ; destination first: the ICR write sends
        st32 [APIC_BASE + APIC_ICR], r5
        li r11, 1
        xadd r11, [ipis_sent]
        rdtsc r10
wait_round:
        pause
        ; Done when all three changed: IPI handled, halter woken, and halted again.
        ld32 r11, [ipis_rcvd]
        beq r11, r7, check_round_timeout
        ld32 r11, [wake_count]
        beq r11, r8, check_round_timeout
        ld32 r11, [hlt_count]
        bne r11, r9, round_done
check_round_timeout:
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_round
        li r1, ABORT_MISSED_IPI_OR_WAKE
        ld32 r2, [ipis_sent]
        hypercall HC_ABORT
        jmp park
round_done:
        sub r6, r6, 1
        bnez r6, send_loop

        ; Stop the halter: the flag first (atomically, so it is visible before the IPI), then one IPI.
        li r11, 1
        xchg r11, [stop]
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
        li r11, 1
        xadd r11, [ipis_sent]
        rdtsc r10
wait_halter_done:
        pause
        ld32 r11, [halter_done]
        bnez r11, sender_report
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_halter_done
        li r1, ABORT_HALTER_DID_NOT_STOP
        ld32 r2, [ipis_sent]
        hypercall HC_ABORT
        jmp park
sender_report:
        li r1, 0
        ld32 r2, [ipis_sent]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [ipis_rcvd]
        hypercall HC_REPORT
        li r1, 2
        ld32 r2, [hlt_count]
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [wake_count]
        hypercall HC_REPORT
        jmp finish

; ---------------------------------------------------------------------------------------------
; Shared code

; As the selftest asserts first: the local APIC is at its architectural base.
check_apic_base:
        rdmsr r2, MSR_IA32_APICBASE     ; r2 = low word, r3 = high word
        and r3, r2, ~0xFFF              ; the base; bits 11..0 are flags (enable, BSP)
        li r11, APIC_BASE
        bne r3, r11, bad_apic_base
        ret
bad_apic_base:
        li r1, ABORT_APIC_BASE
        hypercall HC_ABORT
        jmp park

idle:                                   ; vCPUs other than the halter and the sender
finish:
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt                             ; with IF = 0, for good
        jmp park

; ---------------------------------------------------------------------------------------------
; Data

        .align 64
shared:                                 ; the selftest's struct test_data_page (plus ipis_rcvd)
ipis_sent:      .word 0
ipis_rcvd:      .word 0
hlt_count:      .word 0
wake_count:     .word 0
stop:           .word 0
halter_done:    .word 0
halter_apic_id: .word 0
halter_lvr:     .word 0
halter_tpr:     .word 0
halter_ppr:     .word 0
sender_icr:     .word 0
sender_icr2:    .word 0

; The interrupt vector table: the handler for vector v is the word at ivt + 4 * v.
        .align 64
ivt:
        .zero 4 * IPI_VECTOR
        .word ipi_handler
        .zero 4 * (255 - IPI_VECTOR)
