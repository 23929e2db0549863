; halter-sender.s: the Linux KVM selftest xapic_ipi_test (tools/testing/selftests/kvm/x86/
; xapic_ipi_test.c) as a scenario. With 2 vCPUs it is the selftest: vCPU 0 halts, vCPU 1 sends.
; With more, the last vCPU (VCPUS - 1) is the sender and every other vCPU is a halter; the sender
; serves the halters round robin, one IPI in flight at a time.
;
; A halter halts in a loop with interrupts enabled only around HLT, counting halts and wake-ups; its
; handler (vector 0xA5) stamps the time, counts the IPI and EOIs with the value 77 (as the selftest
; does, to expose stray page writes). After each IPI the sender waits until that halter has received
; it, woken up and halted again; if that does not happen within TIMEOUT_NS it aborts, naming what
; was missed. That is the test that catches a stale IsRunning read (AMD erratum #1235).
;
; The run ends after IPI_COUNT IPIs or when the host sets stop_requested: the sender sets `stop`,
; sends each halter one last IPI and waits until it has reported.
;
; Latency, one sample per IPI on the sender: rdtsc just before the ICR write to the halter handler's
; rdtsc (both read the VM's shared clock), i.e. send -> IPI handled on the halter.
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured IPIs)
;   sender:  0 ICR writes (IPIs + one stop IPI per halter), 1 0, 2 IPIs measured
;   halters: 0 0, 1 IPIs received, 2 0, 3 halts, 4 wakes, 5 IPIs the sender sent it,
;            6 APIC ID register, 7 APIC version register

        .equ VCPUS, 2                   ; host define
        .equ IPI_COUNT, 100000          ; host define: IPIs to send (0xFFFFFFFF: until stopped)
        .equ SEED, 0                    ; host define (unused)
        .equ IPI_VECTOR, 0xA5
        .equ EOI_VALUE, 77
        .equ SENDER, VCPUS - 1
        .equ TIMEOUT_NS, 4000000000     ; the longest interval a 32-bit rdtsc difference measures
        .equ LINE, 64                   ; one line per halter
        .equ L_RCVD, 0                  ; halter (handler)
        .equ L_HLT, 4                   ; halter
        .equ L_WAKE, 8                  ; halter
        .equ L_HANDLED_AT, 12           ; halter (handler)
        .equ L_DONE, 16                 ; halter
        .equ L_APIC_ID, 20              ; halter
        .equ L_LVR, 24                  ; halter
        .equ L_TPR, 28                  ; halter (diagnosis, as the selftest keeps it)
        .equ L_PPR, 32                  ; halter

        .equ ABORT_APIC_BASE, 1         ; r2 = IA32_APICBASE low word
        .equ ABORT_NO_FIRST_HALT, 2     ; r2 = the halter
        .equ ABORT_IPI_NOT_RECEIVED, 3  ; r2 = the halter
        .equ ABORT_HALTER_DID_NOT_WAKE, 4 ; r2 = the halter
        .equ ABORT_HALTER_DID_NOT_HALT, 5 ; r2 = the halter
        .equ ABORT_HALTER_DID_NOT_STOP, 6 ; r2 = the halter
        .equ ABORT_VCPU_COUNT, 7        ; r2 = the vCPU count

        .entry sender, SENDER
        .entry halter

; ---------------------------------------------------------------------------------------------
; The halters

halter:
        call check_apic_base
        livt ivt
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF    ; the selftest's xapic_enable()
        st32 [APIC_BASE + APIC_SPIV], r2
        mov r8, r0                      ; this vCPU's index (hypercalls overwrite r0)
        mul r10, r8, LINE
        add r10, r10, lines
        ld32 r2, [APIC_BASE + APIC_ID]
        st32 [r10 + L_APIC_ID], r2
        ld32 r2, [APIC_BASE + APIC_LVR]
        st32 [r10 + L_LVR], r2
halt_loop:
        ld32 r2, [APIC_BASE + APIC_TASKPRI]
        st32 [r10 + L_TPR], r2
        ld32 r2, [APIC_BASE + APIC_PROCPRI]
        st32 [r10 + L_PPR], r2
        li r2, 1
        xadd r2, [r10 + L_HLT]          ; atomic, so the sender's polling sees it promptly
        sti                             ; safe_halt(): the IPI cannot slip in between sti and hlt
        hlt
        cli
        li r2, 1
        xadd r2, [r10 + L_WAKE]
        ld32 r2, [stop]
        beqz r2, halt_loop
        li r1, 1
        ld32 r2, [r10 + L_RCVD]
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [r10 + L_HLT]
        hypercall HC_REPORT
        li r1, 4
        ld32 r2, [r10 + L_WAKE]
        hypercall HC_REPORT
        li r1, 5
        shl r2, r8, 2
        ld32 r2, [r2 + sent_to]
        hypercall HC_REPORT
        li r1, 6
        ld32 r2, [r10 + L_APIC_ID]
        hypercall HC_REPORT
        li r1, 7
        ld32 r2, [r10 + L_LVR]
        hypercall HC_REPORT
        li r2, 1
        xchg r2, [r10 + L_DONE]
        jmp common_done

; The IPI handler: stamp, count (after the stamp: the sender reads the stamp once the count moved).
ipi_handler:
        push r2
        push r3
        rdtsc r3
        call common_my_line
        st32 [r2 + L_HANDLED_AT], r3
        li r3, 1
        xadd r3, [r2 + L_RCVD]
        li r3, EOI_VALUE
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret

; ---------------------------------------------------------------------------------------------
; The sender
;   r5 = ICR, r6 = halter, r7 = IPIs measured, r8/r13/r14 = the halter's counters before the IPI,
;   r9 = the halter's line, r10 = rdtsc at the send, r12 = TIMEOUT_NS

sender:
        li r2, VCPUS
        beq r1, r2, sender_count_ok
        mov r2, r1
        li r1, ABORT_VCPU_COUNT
        jmp common_abort
sender_count_ok:
        call check_apic_base
        li r12, TIMEOUT_NS
        li r6, 0                        ; wait for every halter's first HLT
first_halts:
        li r2, SENDER
        bgeu r6, r2, all_halted
        mul r9, r6, LINE
        add r9, r9, lines
        rdtsc r10
wait_first_halt:
        ld32 r2, [r9 + L_HLT]
        bnez r2, first_halt_seen
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_first_halt
        li r1, ABORT_NO_FIRST_HALT
        mov r2, r6
        jmp common_abort
first_halt_seen:
        add r6, r6, 1
        jmp first_halts
all_halted:
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | IPI_VECTOR
        li r6, 0
        li r7, 0
send_loop:
        ld32 r2, [stop_requested]
        bnez r2, stop_halters
        li r3, IPI_COUNT
        bgeu r7, r3, stop_halters
        mul r9, r6, LINE
        add r9, r9, lines
        ld32 r13, [r9 + L_RCVD]
        ld32 r14, [r9 + L_WAKE]
        ld32 r8, [r9 + L_HLT]
        shl r3, r6, 2                   ; counted before the send: the halter may read it at once
        ld32 r2, [r3 + sent_to]
        add r2, r2, 1
        st32 [r3 + sent_to], r2
        shl r4, r6, APIC_DEST_SHIFT
        rdtsc r10
        st32 [APIC_BASE + APIC_ICR2], r4        ; destination first: the ICR write sends
        st32 [APIC_BASE + APIC_ICR], r5
wait_round:
        ; Done when all three changed: IPI handled, halter woken, and halted again.
        ld32 r11, [r9 + L_RCVD]
        beq r11, r13, round_pending
        ld32 r11, [r9 + L_WAKE]
        beq r11, r14, round_pending
        ld32 r11, [r9 + L_HLT]
        bne r11, r8, round_done
round_pending:
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_round
        ld32 r11, [r9 + L_RCVD]         ; name what was missed
        li r1, ABORT_IPI_NOT_RECEIVED
        beq r11, r13, abort_halter
        ld32 r11, [r9 + L_WAKE]
        li r1, ABORT_HALTER_DID_NOT_WAKE
        beq r11, r14, abort_halter
        li r1, ABORT_HALTER_DID_NOT_HALT
abort_halter:
        mov r2, r6
        jmp common_abort
round_done:
        ld32 r11, [r9 + L_HANDLED_AT]
        sub r1, r11, r10                ; send -> handled, on the VM's shared clock
        li r2, 0x80000000
        bltu r1, r2, sample
        li r1, 0                        ; a stamp a hair before the send: clock skew between threads
sample:
        hypercall HC_LATENCY_SAMPLE
        add r7, r7, 1
        add r6, r6, 1
        li r2, SENDER
        bltu r6, r2, send_loop
        li r6, 0
        jmp send_loop

stop_halters:
        li r2, 1
        xchg r2, [stop]                 ; atomically, so it is visible before the IPIs
        li r6, 0
stop_next:
        li r2, SENDER
        bgeu r6, r2, sender_report
        mul r9, r6, LINE
        add r9, r9, lines
        shl r3, r6, 2                   ; counted before the send: the halter reads it on waking
        ld32 r2, [r3 + sent_to]
        add r2, r2, 1
        st32 [r3 + sent_to], r2
        shl r4, r6, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
wait_halter_done:
        ld32 r2, [r9 + L_DONE]
        bnez r2, halter_stopped
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_halter_done
        li r1, ABORT_HALTER_DID_NOT_STOP
        mov r2, r6
        jmp common_abort
halter_stopped:
        add r6, r6, 1
        jmp stop_next
sender_report:
        li r1, 0
        li r2, SENDER                   ; one stop IPI per halter
        add r2, r2, r7
        hypercall HC_REPORT
        li r1, 2
        mov r2, r7
        hypercall HC_REPORT
        jmp common_done

; ---------------------------------------------------------------------------------------------
; Shared code

; As the selftest asserts first: the local APIC is at its architectural base. Clobbers r2, r3, r11.
check_apic_base:
        rdmsr r2, MSR_IA32_APICBASE     ; r2 = low word, r3 = high word
        and r3, r2, ~0xFFF              ; the base; bits 11..0 are flags (enable, BSP)
        li r11, APIC_BASE
        bne r3, r11, bad_apic_base
        ret
bad_apic_base:
        li r1, ABORT_APIC_BASE
        jmp common_abort

        .include "common.s"             ; common_abort, common_done, common_park, ...
        .include "common-line.s"        ; common_my_line

; ---------------------------------------------------------------------------------------------
; Data

        .align 64
stop_requested: .word 0                 ; the host sets it when a timed run is up
        .align 64
stop:           .word 0                 ; the sender sets it when it has finished
        .align 64
sent_to:        .zero 4 * VCPUS         ; the sender only: IPIs sent to each halter
        .align 64
lines:          .zero LINE * VCPUS

        .align 64
ivt:
        .zero 4 * IPI_VECTOR
        .word ipi_handler
        .zero 4 * (255 - IPI_VECTOR)
