; broadcast.s: one sender (vCPU 0) broadcasts to VCPUS - 1 receivers that wait in a `sti; hlt` loop,
; and waits until every handler has run before the next broadcast. kvm-unit-tests apic.c's physical
; broadcast test and QEMU ipi_pingpong's bcast_halt (docs/scenarios.md).
;
; Rounds alternate between the two ways to reach everyone:
;   even rounds: physical destination 0xFF (xAPIC broadcast: every vCPU, the sender included)
;   odd rounds:  the all-excluding-self shorthand (APIC_DEST_ALLBUT)
; so the sender also handles the physical broadcasts it sends (it spins with IF = 1).
;
; The run ends after IPI_COUNT IPI messages (VCPUS per physical broadcast, VCPUS - 1 per shorthand)
; or when the host sets stop_requested: the sender then sends FINISH_VECTOR with the shorthand, whose
; handler tells each receiver to report and finish.
;
; Latency, one sample per broadcast on the sender: rdtsc just before the ICR write to rdtsc when the
; sender has seen every receiver's count (and, for 0xFF, its own) move.
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured broadcasts)
;   sender:    0 ICR writes (broadcasts + 1 finish), 1 own broadcasts handled, 2 broadcasts,
;              3 physical broadcasts (0xFF), 4 shorthand broadcasts
;   receivers: 0 0, 1 interrupts handled (broadcasts + 1 finish), 2 0, 3 broadcasts handled

        .equ VCPUS, 4                   ; host define
        .equ IPI_COUNT, 10000           ; host define: IPI messages (0xFFFFFFFF: until stopped)
        .equ SEED, 0                    ; host define (unused: the rounds alternate)
        .equ IPI_VECTOR, 0x40
        .equ FINISH_VECTOR, 0x41
        .equ SENDER, 0
        .equ TIMEOUT_NS, 4000000000     ; the longest interval a 32-bit rdtsc difference measures
        .equ LINE, 64                   ; one line per vCPU, written by its handlers only
        .equ L_RCVD, 0                  ; broadcasts handled
        .equ L_EXIT, 4                  ; FINISH_VECTOR handled
        .equ L_DONE, 8                  ; reported

        .equ ABORT_VCPU_COUNT, 1        ; r2 = the vCPU count
        .equ ABORT_NOT_ONLINE, 2        ; r2 = receivers online
        .equ ABORT_RECEIVER_MISSED, 3   ; r2 = the receiver
        .equ ABORT_SENDER_MISSED, 4     ; r2 = broadcasts so far
        .equ ABORT_RECEIVER_NOT_DONE, 5 ; r2 = the receiver

        .entry sender, SENDER
        .entry receiver

; ---------------------------------------------------------------------------------------------
; vCPU 0, the sender
;   r4 = receiver, r6 = broadcasts, r7 = IPI messages, r9 = a receiver's line, r10 = rdtsc at
;   the send, r12 = TIMEOUT_NS, r13 = physical broadcasts

sender:
        call common_check_vcpu_count
        livt ivt
        sti                             ; the physical broadcast reaches the sender too
        call common_wait_others_online
        li r6, 0
        li r7, 0
        li r13, 0
round:
        ld32 r2, [stop_requested]
        bnez r2, finish
        li r3, IPI_COUNT
        bgeu r7, r3, finish
        and r2, r6, 1
        bnez r2, send_shorthand
        li r2, 0xFF << APIC_DEST_SHIFT  ; physical broadcast
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | IPI_VECTOR
        rdtsc r10
        st32 [APIC_BASE + APIC_ICR], r2
        add r13, r13, 1
        add r7, r7, VCPUS
        jmp wait_all
send_shorthand:
        li r2, APIC_DEST_ALLBUT | APIC_DM_FIXED | IPI_VECTOR
        rdtsc r10
        st32 [APIC_BASE + APIC_ICR], r2
        add r7, r7, VCPUS - 1
wait_all:
        add r6, r6, 1                   ; every receiver must have handled r6 broadcasts
        li r4, 1
wait_next:
        li r2, VCPUS
        bgeu r4, r2, wait_self
        mul r9, r4, LINE
        add r9, r9, lines
wait_receiver:
        ld32 r2, [r9 + L_RCVD]
        bgeu r2, r6, receiver_seen
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_receiver
        li r1, ABORT_RECEIVER_MISSED
        mov r2, r4
        jmp common_abort
receiver_seen:
        add r4, r4, 1
        jmp wait_next
wait_self:
        ld32 r2, [lines + SENDER * LINE + L_RCVD]
        bgeu r2, r13, all_seen
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_self
        li r1, ABORT_SENDER_MISSED
        mov r2, r6
        jmp common_abort
all_seen:
        rdtsc r11
        sub r1, r11, r10
        hypercall HC_LATENCY_SAMPLE
        jmp round

finish:
        li r2, APIC_DEST_ALLBUT | APIC_DM_FIXED | FINISH_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        li r4, 1
finish_next:
        li r2, VCPUS
        bgeu r4, r2, sender_report
        mul r9, r4, LINE
        add r9, r9, lines
        rdtsc r10
wait_done:
        ld32 r2, [r9 + L_DONE]
        bnez r2, receiver_done
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_done
        li r1, ABORT_RECEIVER_NOT_DONE
        mov r2, r4
        jmp common_abort
receiver_done:
        add r4, r4, 1
        jmp finish_next
sender_report:
        cli
        li r1, 0
        add r2, r6, 1
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [lines + SENDER * LINE + L_RCVD]
        hypercall HC_REPORT
        li r1, 2
        mov r2, r6
        hypercall HC_REPORT
        li r1, 3
        mov r2, r13
        hypercall HC_REPORT
        li r1, 4
        sub r2, r6, r13
        hypercall HC_REPORT
        jmp common_done

; ---------------------------------------------------------------------------------------------
; The receivers

receiver:
        livt ivt
        mul r10, r0, LINE
        add r10, r10, lines
        li r2, 1
        xadd r2, [online]
receive_loop:
        cli                             ; IF = 0: FINISH cannot slip in between check and HLT
        ld32 r2, [r10 + L_EXIT]
        bnez r2, receiver_report
        sti
        hlt
        jmp receive_loop
receiver_report:
        li r1, 1
        ld32 r2, [r10 + L_RCVD]
        ld32 r3, [r10 + L_EXIT]
        add r2, r2, r3
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [r10 + L_RCVD]
        hypercall HC_REPORT
        li r2, 1
        xchg r2, [r10 + L_DONE]
        jmp common_done

; ---------------------------------------------------------------------------------------------

        .include "common-online.s"      ; common_wait_others_online
        .include "common.s"             ; common_abort, common_done, common_park, ...
        .include "common-line.s"        ; common_my_line
        .include "common-finish.s"      ; common_finish_handler (the FINISH handler)
        .include "common-count.s"       ; common_count_handler (the IPI handler)

        .align 64
stop_requested: .word 0                 ; the host sets it when a timed run is up
        .align 64
online:         .word 0                 ; each receiver adds 1 once
        .align 64
lines:          .zero LINE * VCPUS

        .align 64
ivt:
        .zero 4 * IPI_VECTOR
        .word common_count_handler      ; 0x40
        .word common_finish_handler     ; 0x41
        .zero 4 * (255 - FINISH_VECTOR)
