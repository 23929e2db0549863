; shootdown.s: the TLB-shootdown pattern. An initiator bumps a shared generation, IPIs a set of
; vCPUs and spins until each one's handler has acknowledged that generation in its own ack word;
; then the next round. After ROTATE_EVERY rounds the initiator hands the role to the next vCPU
; (index + 1, wrapping): it writes `initiator` and wakes that vCPU with HANDOFF_VECTOR. vCPUs that are
; not initiating wait in a `sti; hlt` loop.
;
; The set: with SHOOTDOWN_SUBSET = 1 (the default), each other vCPU is in it with probability 1/2,
; drawn from the initiator's xorshift32 generator (seeded with SEED ^ ((index + 1) * 0x9E3779B9));
; an empty draw becomes the next vCPU alone. With SHOOTDOWN_SUBSET = 0 it is every other vCPU.
;
; The run ends once IPI_COUNT shootdown IPIs were sent or the host sets stop_requested: the
; initiator then sends FINISH_VECTOR to every other vCPU and waits until each has reported.
;
; Latency, one sample per shootdown on its initiator: rdtsc before the first ICR write to rdtsc
; when the last acknowledgement was seen.
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured shootdowns)
;   every vCPU: 0 ICR writes, 1 interrupts handled, 2 shootdowns it initiated,
;               3 shootdown IPIs it handled (flushes), 4 shootdown IPIs initiators sent it,
;               5 hand-offs it received, 6 terms it served as initiator (with at least one round)

        .equ VCPUS, 4                   ; host define
        .equ IPI_COUNT, 10000           ; host define: shootdown IPIs (0xFFFFFFFF: until stopped)
        .equ SEED, 1                    ; host define
        .equ ROTATE_EVERY, 16           ; rounds per initiator term
        .equ SHOOTDOWN_SUBSET, 1
        .equ SHOOTDOWN_VECTOR, 0x40
        .equ HANDOFF_VECTOR, 0x41
        .equ FINISH_VECTOR, 0x42
        .equ GOLDEN, 0x9E3779B9
        .equ TIMEOUT_NS, 4000000000     ; the longest interval a 32-bit rdtsc difference measures
        .equ LINE, 64                   ; one line per vCPU, written by that vCPU only
        .equ L_ACK, 0                   ; the generation its handler last flushed
        .equ L_FLUSHES, 4
        .equ L_HANDLED, 8
        .equ L_HANDOFFS, 12
        .equ L_EXIT, 16
        .equ L_DONE, 20
        .equ L_ICR_WRITES, 24

        .equ ABORT_VCPU_COUNT, 1        ; r2 = the vCPU count
        .equ ABORT_NOT_ONLINE, 2        ; r2 = vCPUs online
        .equ ABORT_NO_ACK, 3            ; r2 = the vCPU that did not acknowledge
        .equ ABORT_NOT_DONE, 4          ; r2 = the vCPU that did not finish

        .entry start

; r0 = rdtsc at the shootdown, r4 = a vCPU, r5 = rounds this term, r6 = generation, r7 = targets
; this round, r8 = this vCPU, r9 = generator state, r10 = this vCPU's line, r12 = TIMEOUT_NS,
; r13 = shootdowns initiated, r14 = terms served
start:
        mov r8, r0
        call common_check_vcpu_count
        livt ivt
        mul r10, r8, LINE
        add r10, r10, lines
        add r9, r8, 1                   ; the generator's seed: never 0
        mul r9, r9, GOLDEN
        xor r9, r9, SEED
        bnez r9, seeded
        li r9, GOLDEN
seeded:
        li r12, TIMEOUT_NS
        li r13, 0
        li r14, 0
        li r2, 1
        xadd r2, [online]
        bnez r8, idle
        rdtsc r0                        ; vCPU 0 starts once everyone is online
wait_online:
        ld32 r2, [online]
        li r3, VCPUS
        beq r2, r3, initiate
        pause
        rdtsc r11
        sub r11, r11, r0
        bltu r11, r12, wait_online
        li r1, ABORT_NOT_ONLINE
        jmp common_abort

idle:
        cli                             ; IF = 0: nothing slips in between the checks and HLT
        ld32 r2, [r10 + L_EXIT]
        bnez r2, report
        ld32 r2, [initiator]
        beq r2, r8, initiate
        sti
        hlt
        jmp idle

initiate:
        sti                             ; a hand-off IPI still pending is taken now
        li r5, 0
term_loop:
        ld32 r2, [stop_requested]
        bnez r2, finish_all
        ld32 r2, [total_sent]
        li r3, IPI_COUNT
        bgeu r2, r3, finish_all
        li r2, ROTATE_EVERY
        bgeu r5, r2, hand_off
        ld32 r6, [generation]
        add r6, r6, 1
        mov r2, r6
        xchg r2, [generation]           ; before the IPIs: the handlers acknowledge this value
        li r7, 0
        rdtsc r0
        li r4, 0
pick:
        li r2, VCPUS
        bgeu r4, r2, picked
        shl r3, r4, 2
        li r2, 0
        st32 [r3 + chosen], r2
        beq r4, r8, pick_next
        li r2, SHOOTDOWN_SUBSET
        beqz r2, pick_it
        shl r2, r9, 13                  ; xorshift32
        xor r9, r9, r2
        shr r2, r9, 17
        xor r9, r9, r2
        shl r2, r9, 5
        xor r9, r9, r2
        and r2, r9, 1
        beqz r2, pick_next
pick_it:
        call shoot
pick_next:
        add r4, r4, 1
        jmp pick
picked:
        bnez r7, wait_acks
        add r4, r8, 1                   ; an empty draw: the next vCPU alone
        li r2, VCPUS
        remu r4, r4, r2
        call shoot
wait_acks:
        li r4, 0
ack_next:
        li r2, VCPUS
        bgeu r4, r2, all_acked
        shl r3, r4, 2
        ld32 r2, [r3 + chosen]
        beqz r2, ack_skip
        mul r3, r4, LINE
        add r3, r3, lines
ack_wait:
        ld32 r2, [r3 + L_ACK]
        beq r2, r6, ack_skip
        pause
        rdtsc r11
        sub r11, r11, r0
        bltu r11, r12, ack_wait
        li r1, ABORT_NO_ACK
        mov r2, r4
        jmp common_abort
ack_skip:
        add r4, r4, 1
        jmp ack_next
all_acked:
        rdtsc r11
        sub r1, r11, r0
        hypercall HC_LATENCY_SAMPLE
        add r13, r13, 1
        add r5, r5, 1
        ld32 r2, [total_sent]           ; initiators take turns: one writer at a time
        add r2, r2, r7
        st32 [total_sent], r2
        jmp term_loop

hand_off:
        add r14, r14, 1
        add r4, r8, 1
        li r2, VCPUS
        remu r4, r4, r2
        mov r2, r4
        xchg r2, [initiator]            ; before the IPI: the next vCPU checks it when it wakes
        shl r2, r4, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | HANDOFF_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        call count_icr_write
        jmp idle

finish_all:
        beqz r5, finish_send
        add r14, r14, 1
finish_send:
        li r4, 0
finish_next:
        li r2, VCPUS
        bgeu r4, r2, finish_wait
        beq r4, r8, finish_skip
        shl r2, r4, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | FINISH_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        call count_icr_write
finish_skip:
        add r4, r4, 1
        jmp finish_next
finish_wait:
        li r4, 0
done_next:
        li r2, VCPUS
        bgeu r4, r2, report
        beq r4, r8, done_skip
        mul r3, r4, LINE
        add r3, r3, lines
        rdtsc r0
done_wait:
        ld32 r2, [r3 + L_DONE]
        bnez r2, done_skip
        pause
        rdtsc r11
        sub r11, r11, r0
        bltu r11, r12, done_wait
        li r1, ABORT_NOT_DONE
        mov r2, r4
        jmp common_abort
done_skip:
        add r4, r4, 1
        jmp done_next

report:
        cli
        li r1, 0
        ld32 r2, [r10 + L_ICR_WRITES]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [r10 + L_HANDLED]
        hypercall HC_REPORT
        li r1, 2
        mov r2, r13
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [r10 + L_FLUSHES]
        hypercall HC_REPORT
        li r1, 4
        shl r2, r8, 2
        ld32 r2, [r2 + expected]
        hypercall HC_REPORT
        li r1, 5
        ld32 r2, [r10 + L_HANDOFFS]
        hypercall HC_REPORT
        li r1, 6
        mov r2, r14
        hypercall HC_REPORT
        li r2, 1
        xchg r2, [r10 + L_DONE]
        jmp common_done

        .include "common.s"             ; common_abort, common_done, common_park, ...
        .include "common-line.s"        ; common_my_line

; shoot(r4 = target): count it first (the target may report as soon as it is hit), then the IPI.
; Clobbers r2, r3; r7 += 1.
shoot:
        shl r3, r4, 2
        li r2, 1
        st32 [r3 + chosen], r2
        ld32 r2, [r3 + expected]        ; initiator-private while it holds the role
        add r2, r2, 1
        st32 [r3 + expected], r2
        shl r2, r4, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | SHOOTDOWN_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        add r7, r7, 1
count_icr_write:                        ; (also called on its own) clobbers r2
        ld32 r2, [r10 + L_ICR_WRITES]
        add r2, r2, 1
        st32 [r10 + L_ICR_WRITES], r2
        ret

; ---------------------------------------------------------------------------------------------
; Handlers: r2 = this vCPU's line (from its APIC ID)

shootdown_handler:                      ; "flush", then acknowledge the generation flushed
        push r2
        push r3
        call common_my_line
        li r3, 1
        xadd r3, [r2 + L_FLUSHES]
        li r3, 1
        xadd r3, [r2 + L_HANDLED]
        ld32 r3, [generation]
        xchg r3, [r2 + L_ACK]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret

handoff_handler:                        ; nothing to do: the idle loop reads `initiator`
        push r2
        push r3
        call common_my_line
        li r3, 1
        xadd r3, [r2 + L_HANDOFFS]
        li r3, 1
        xadd r3, [r2 + L_HANDLED]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret

finish_handler:
        push r2
        push r3
        call common_my_line
        li r3, 1
        xadd r3, [r2 + L_HANDLED]
        li r3, 1
        xchg r3, [r2 + L_EXIT]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret

; ---------------------------------------------------------------------------------------------

        .align 64
stop_requested: .word 0                 ; the host sets it when a timed run is up
        .align 64
generation:     .word 0                 ; the initiator writes, every handler reads
        .align 64
initiator:      .word 0                 ; written by the initiator handing off
total_sent:     .word 0                 ; shootdown IPIs so far (the initiator)
        .align 64
online:         .word 0
        .align 64
chosen:         .zero 4 * VCPUS         ; this round's targets (initiator-private)
        .align 64
expected:       .zero 4 * VCPUS         ; shootdown IPIs sent to each vCPU (initiator-private)
        .align 64
lines:          .zero LINE * VCPUS

        .align 64
ivt:
        .zero 4 * SHOOTDOWN_VECTOR
        .word shootdown_handler         ; 0x40
        .word handoff_handler           ; 0x41
        .word finish_handler            ; 0x42
        .zero 4 * (255 - FINISH_VECTOR)
