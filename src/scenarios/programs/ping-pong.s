; ping-pong.s: one sender (vCPU 0) and one target (vCPU 1) bounce IPIs, one in flight at a time.
; QEMU's ipi_pingpong scenarios (docs/scenarios.md); four patterns share it:
;
;   pattern         TARGET_HALTS  REPLY_IPI  WAIT_ASLEEP  the target...
;   ping-pong       0             1          0            spins with IF=1; its handler IPIs back (pong_spin)
;   ping-pong-halt  1             1          0            waits in a `sti; hlt` loop; IPIs back (pong_halt)
;   ack             0             0          0            spins with IF=1; its handler acks in memory (ack_spin)
;   ack-halt        1             0          1            is blocked in HLT; acks in memory (ack_halt)
;
; A halting target sets `target_halting` just before its `sti; hlt`, and the sender waits for that
; flag (and clears it) before each send, so every IPI meets a target in or entering HLT: with
; halt-polling on, this measures the polling path. WAIT_ASLEEP additionally waits until the host
; reports the target blocked (HC_VCPU_RUN_STATE), so the IPI has to wake a sleeping thread.
;
; Latency, one sample per round on the sender: rdtsc just before the ICR2/ICR writes, to rdtsc when
; the sender sees the reply (its pong handler ran, or the target's ack landed in memory).
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured rounds)
;   sender: 0 ICR writes (rounds + 1 wake), 1 pongs handled, 2 rounds, 3 replies seen
;   target: 0 ICR writes (pongs sent), 1 interrupts handled (pings + 1 wake), 2 0,
;           3 pings handled, 4 HLTs executed
;
; The run ends when IPI_COUNT messages have been sent (1 + REPLY_IPI per round) or the host sets
; stop_requested: the sender then sends the WAKE vector, whose handler tells the target to finish.

        .equ VCPUS, 2                   ; host define
        .equ IPI_COUNT, 10000           ; host define: IPI messages to send (0xFFFFFFFF: until stopped)
        .equ SEED, 0                    ; host define (unused: the pattern is deterministic)
        .equ TARGET_HALTS, 0
        .equ REPLY_IPI, 1
        .equ WAIT_ASLEEP, 0
        .equ GAP_NS, 0                  ; the sender idles this long before each send
        .equ PING_VECTOR, 0x40
        .equ PONG_VECTOR, 0x41
        .equ WAKE_VECTOR, 0x42
        .equ SENDER, 0
        .equ TARGET, 1
        .equ TIMEOUT_NS, 4000000000      ; the longest interval a 32-bit rdtsc difference measures
        .equ SPINS_PER_CLOCK_CHECK, 64

        .equ ABORT_VCPU_COUNT, 1        ; r2 = the vCPU count
        .equ ABORT_NO_REPLY, 2          ; r2 = the round
        .equ ABORT_TARGET_NOT_HALTING, 3 ; r2 = the round
        .equ ABORT_TARGET_NOT_ASLEEP, 4 ; r2 = the round
        .equ ABORT_TARGET_NOT_DONE, 5   ; r2 = rounds

        .entry sender, SENDER
        .entry target, TARGET

; ---------------------------------------------------------------------------------------------
; vCPU 0, the sender
;   r4 = ICR2, r5 = ICR, r6 = rounds, r7 = IPI messages sent, r8 = replies before the send,
;   r9 = address of the reply word, r10 = rdtsc at the send, r12 = TIMEOUT_NS, r13 = spin budget

sender:
        li r2, 2
        beq r1, r2, sender_count_ok
        mov r2, r1
        li r1, ABORT_VCPU_COUNT
        jmp common_abort
sender_count_ok:
        livt ivt
        sti                             ; pongs arrive while the sender spins
        li r4, TARGET << APIC_DEST_SHIFT
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | PING_VECTOR
        li r9, pongs
        li r2, REPLY_IPI
        bnez r2, reply_word_chosen
        li r9, acks
reply_word_chosen:
        li r6, 0
        li r7, 0
        li r12, TIMEOUT_NS
round:
        ld32 r2, [stop_requested]
        bnez r2, finish
        li r3, IPI_COUNT
        bgeu r7, r3, finish
        li r2, TARGET_HALTS
        beqz r2, target_ready

        ; The target announces its HLT; consume the announcement so the next one is fresh.
        rdtsc r10
wait_halting:
        ld32 r2, [target_halting]
        bnez r2, halting_seen
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_halting
        li r1, ABORT_TARGET_NOT_HALTING
        mov r2, r6
        jmp common_abort
halting_seen:
        li r2, 0
        xchg r2, [target_halting]
        li r2, WAIT_ASLEEP
        beqz r2, target_ready
        rdtsc r10
wait_asleep:
        li r1, TARGET
        hypercall HC_VCPU_RUN_STATE
        li r2, VCPU_STATE_BLOCKED
        beq r0, r2, target_ready
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_asleep
        li r1, ABORT_TARGET_NOT_ASLEEP
        mov r2, r6
        jmp common_abort

target_ready:
        li r3, GAP_NS
        beqz r3, send
        rdtsc r10
gap:
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r3, gap
send:
        ld32 r8, [r9]
        rdtsc r10
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5 ; this write sends
        li r13, SPINS_PER_CLOCK_CHECK
wait_reply:
        ld32 r2, [r9]
        bne r2, r8, replied
        pause
        sub r13, r13, 1
        bnez r13, wait_reply
        li r13, SPINS_PER_CLOCK_CHECK
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_reply
        li r1, ABORT_NO_REPLY
        mov r2, r6
        jmp common_abort
replied:
        rdtsc r11
        sub r1, r11, r10
        hypercall HC_LATENCY_SAMPLE
        add r6, r6, 1
        add r7, r7, 1 + REPLY_IPI
        jmp round

finish:
        ; The WAKE vector tells the target to finish (it is handled, so nothing stays pending).
        st32 [APIC_BASE + APIC_ICR2], r4
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | WAKE_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        rdtsc r10
wait_target_done:
        ld32 r2, [target_done]
        bnez r2, sender_report
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, wait_target_done
        li r1, ABORT_TARGET_NOT_DONE
        mov r2, r6
        jmp common_abort
sender_report:
        cli
        li r1, 0
        add r2, r6, 1
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [pongs]
        hypercall HC_REPORT
        li r1, 2
        mov r2, r6
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [r9]
        hypercall HC_REPORT
        jmp common_done

; The sender's PONG handler.
pong_handler:
        push r2
        li r2, 1
        xadd r2, [pongs]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

; ---------------------------------------------------------------------------------------------
; vCPU 1, the target

target:
        livt ivt
        li r2, TARGET_HALTS
        bnez r2, halt_loop
        sti
spin:
        pause
        ld32 r2, [target_woken]
        beqz r2, spin
        cli
        jmp target_report
halt_loop:
        cli                             ; IF = 0: the WAKE cannot slip in between check and HLT
        ld32 r2, [target_woken]
        bnez r2, target_report
        li r2, 1
        xadd r2, [target_halts]
        li r2, 1
        xchg r2, [target_halting]       ; "about to halt": the sender may send now
        sti
        hlt                             ; the sti shadow: an IPI pending now still wakes the hlt
        jmp halt_loop
target_report:
        li r1, 0
        ld32 r2, [target_pongs_sent]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [target_pings]
        ld32 r3, [target_woken]
        add r2, r2, r3
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [target_pings]
        hypercall HC_REPORT
        li r1, 4
        ld32 r2, [target_halts]
        hypercall HC_REPORT
        li r2, 1
        xchg r2, [target_done]
        jmp common_done

; The target's PING handler: answer with an IPI, or ack in memory.
ping_handler:
        push r2
        li r2, 1
        xadd r2, [target_pings]
        li r2, REPLY_IPI
        beqz r2, ping_ack
        li r2, SENDER << APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | PONG_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        li r2, 1
        xadd r2, [target_pongs_sent]
        jmp ping_eoi
ping_ack:
        li r2, 1
        xadd r2, [acks]
ping_eoi:
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

; The target's WAKE handler: the run is over.
wake_handler:
        push r2
        li r2, 1
        xchg r2, [target_woken]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

; ---------------------------------------------------------------------------------------------

        .include "common.s"             ; common_abort, common_done, common_park, ...

; ---------------------------------------------------------------------------------------------
; Data: each line has one writer

        .align 64
stop_requested:    .word 0              ; the host sets it when a timed run is up
        .align 64
pongs:             .word 0              ; sender's handler
        .align 64
acks:              .word 0              ; target's handler (REPLY_IPI = 0)
        .align 64
target_halting:    .word 0              ; target sets, sender clears
        .align 64
target_pings:      .word 0              ; target only
target_pongs_sent: .word 0
target_halts:      .word 0
target_woken:      .word 0
target_done:       .word 0

        .align 64
ivt:
        .zero 4 * PING_VECTOR
        .word ping_handler              ; 0x40
        .word pong_handler              ; 0x41
        .word wake_handler              ; 0x42
        .zero 4 * (255 - WAKE_VECTOR)
