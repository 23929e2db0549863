; logical.s: logical-destination multicast over every destination pattern, in the flat model
; (LOGICAL_MODE = 0, up to 8 vCPUs) or the cluster model (LOGICAL_MODE = 1, up to 60 vCPUs: clusters
; 0..14 of 4). kvm-unit-tests apic.c's logical flat/cluster tests, over all destination patterns.
;
; Set-up, on every vCPU: DFR <- flat or cluster, then LDR <- this vCPU's logical ID (flat: bit
; `index`; cluster: cluster index / 4 in bits 7:4, bit index % 4 in bits 3:0). Each write traps and
; the host rebuilds the logical APIC ID table before the vCPU goes on. Then a barrier.
;
; vCPU 0 then sweeps the destination bytes 0..255, starting at SEED & 0xFF and wrapping, skipping
; those that are not patterns (flat: 1 .. 2^VCPUS - 1; cluster: a present cluster and a non-empty
; member mask of its present vCPUs). For each pattern it publishes it in `current_pattern`, sends
; one fixed logical IPI, and waits until every vCPU the pattern names has handled it (vCPU 0 too,
; when named: it waits with IF = 1). The others wait in a `sti; hlt` loop. Every handler counts its
; receipts per pattern in its own table and counts receipts for patterns that do not name it.
;
; At the end (IPI_COUNT messages, or stop_requested) vCPU 0 sends FINISH_VECTOR to each other vCPU
; (physical destination); every vCPU then compares, pattern by pattern, its receipts with what the
; sender sent and reports. The host recomputes the expected receipts itself from the sweep.
;
; Latency, one sample per pattern on vCPU 0: rdtsc just before the ICR write to rdtsc when it has
; seen every named vCPU's handler run.
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured patterns)
;   every vCPU: 0 ICR writes (vCPU 0: patterns + VCPUS - 1 finishes), 1 interrupts handled,
;               2 patterns sent (vCPU 0), 3 pattern IPIs received, 4 pattern IPIs expected (from
;               the sender's per-pattern counts), 5 patterns whose count differs, 6 receipts for
;               patterns that do not name this vCPU, 7 LDR register, 8 DFR register

        .equ VCPUS, 8                   ; host define
        .equ IPI_COUNT, 10000           ; host define: IPI messages (0xFFFFFFFF: until stopped)
        .equ SEED, 0                    ; host define: the first destination byte tried (low 8 bits)
        .equ LOGICAL_MODE, 0            ; 0 flat, 1 cluster
        .equ PATTERN_VECTOR, 0x40
        .equ FINISH_VECTOR, 0x41
        .equ SENDER, 0
        .equ FLAT_MAX_VCPUS, 8
        .equ CLUSTER_MAX_VCPUS, 60
        .equ TIMEOUT_NS, 4000000000     ; the longest interval a 32-bit rdtsc difference measures
        .equ LINE, 64                   ; one line per vCPU, written by that vCPU only
        .equ L_RCVD, 0                  ; pattern IPIs handled
        .equ L_UNEXPECTED, 4
        .equ L_LDR, 8                   ; this vCPU's logical ID (LDR bits 31:24)
        .equ L_EXIT, 12
        .equ L_DONE, 16
        .equ TABLE, 1024                ; per vCPU: receipts for each of the 256 destination bytes

        .equ ABORT_VCPU_COUNT, 1        ; r2 = the vCPU count
        .equ ABORT_MODE_LIMIT, 2        ; r2 = the vCPU count
        .equ ABORT_NOT_CONFIGURED, 3    ; r2 = vCPUs through the set-up
        .equ ABORT_RECEIVER_MISSED, 4   ; r2 = vCPU | pattern << 8
        .equ ABORT_NOT_DONE, 5          ; r2 = the vCPU

        .entry start

; ---------------------------------------------------------------------------------------------
; Every vCPU: set up DFR and LDR, then the barrier

start:
        mov r8, r0
        li r2, VCPUS
        beq r1, r2, vcpu_count_ok
        mov r2, r1
        li r1, ABORT_VCPU_COUNT
        jmp common_abort
vcpu_count_ok:
        li r3, FLAT_MAX_VCPUS
        li r2, LOGICAL_MODE
        beqz r2, check_limit
        li r3, CLUSTER_MAX_VCPUS
check_limit:
        bgeu r3, r1, limit_ok
        mov r2, r1
        li r1, ABORT_MODE_LIMIT
        jmp common_abort
limit_ok:
        livt ivt
        mul r10, r8, LINE
        add r10, r10, lines
        li r2, APIC_DFR_FLAT
        li r3, LOGICAL_MODE
        beqz r3, write_dfr
        li r2, APIC_DFR_CLUSTER
write_dfr:
        st32 [APIC_BASE + APIC_DFR], r2 ; traps: the host rebuilds the logical table
        mov r4, r8
        call ldr_of
        shl r2, r3, 24
        st32 [APIC_BASE + APIC_LDR], r2 ; traps likewise
        ld32 r2, [APIC_BASE + APIC_LDR]
        shr r2, r2, 24
        st32 [r10 + L_LDR], r2
        li r2, 1
        xadd r2, [configured]
        li r12, TIMEOUT_NS
        rdtsc r0
wait_configured:
        ld32 r2, [configured]
        li r3, VCPUS
        beq r2, r3, configured_all
        pause
        rdtsc r11
        sub r11, r11, r0
        bltu r11, r12, wait_configured
        li r1, ABORT_NOT_CONFIGURED
        jmp common_abort
configured_all:
        bnez r8, receiver

; ---------------------------------------------------------------------------------------------
; vCPU 0, the sender
;   r0 = rdtsc at the send, r4 = a vCPU, r5 = destination byte, r6 = patterns sent, r7 = messages,
;   r13 = a vCPU's line, r14 = ICR

        sti                             ; vCPU 0 is a destination too
        li r5, SEED & 0xFF
        li r6, 0
        li r7, 0
        li r14, APIC_DEST_LOGICAL | APIC_DM_FIXED | PATTERN_VECTOR
pattern_loop:
        ld32 r2, [stop_requested]
        bnez r2, finish
        li r3, IPI_COUNT
        bgeu r7, r3, finish
next_valid:
        call valid
        bnez r1, send_pattern
        add r5, r5, 1
        and r5, r5, 0xFF
        jmp next_valid
send_pattern:
        mov r2, r5
        xchg r2, [current_pattern]      ; before the IPI: the handlers read it
        shl r2, r5, 2
        ld32 r3, [r2 + sends]
        add r3, r3, 1
        st32 [r2 + sends], r3
        li r4, 0                        ; each named vCPU must now have one more receipt
bump:
        li r2, VCPUS
        bgeu r4, r2, bumped
        call ldr_of
        call named
        beqz r1, bump_next
        shl r2, r4, 2
        ld32 r3, [r2 + awaited]
        add r3, r3, 1
        st32 [r2 + awaited], r3
        add r7, r7, 1
bump_next:
        add r4, r4, 1
        jmp bump
bumped:
        shl r2, r5, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        rdtsc r0
        st32 [APIC_BASE + APIC_ICR], r14
        li r4, 0
await_next:
        li r2, VCPUS
        bgeu r4, r2, all_handled
        shl r2, r4, 2
        ld32 r3, [r2 + awaited]
        mul r13, r4, LINE
        add r13, r13, lines
await:
        ld32 r2, [r13 + L_RCVD]
        bgeu r2, r3, await_done
        pause
        rdtsc r11
        sub r11, r11, r0
        bltu r11, r12, await
        li r1, ABORT_RECEIVER_MISSED
        shl r2, r5, 8
        or r2, r2, r4
        jmp common_abort
await_done:
        add r4, r4, 1
        jmp await_next
all_handled:
        rdtsc r11
        sub r1, r11, r0
        hypercall HC_LATENCY_SAMPLE
        add r6, r6, 1
        add r5, r5, 1
        and r5, r5, 0xFF
        jmp pattern_loop

finish:
        li r4, 1
finish_next:
        li r2, VCPUS
        bgeu r4, r2, finish_wait
        shl r2, r4, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | FINISH_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        add r4, r4, 1
        jmp finish_next
finish_wait:
        li r4, 1
done_next:
        li r2, VCPUS
        bgeu r4, r2, sender_report
        mul r13, r4, LINE
        add r13, r13, lines
        rdtsc r0
done_wait:
        ld32 r2, [r13 + L_DONE]
        bnez r2, done_seen
        pause
        rdtsc r11
        sub r11, r11, r0
        bltu r11, r12, done_wait
        li r1, ABORT_NOT_DONE
        mov r2, r4
        jmp common_abort
done_seen:
        add r4, r4, 1
        jmp done_next
sender_report:
        cli
        li r1, 0
        li r2, VCPUS - 1
        add r2, r2, r6
        hypercall HC_REPORT
        li r1, 2
        mov r2, r6
        hypercall HC_REPORT
        jmp verify_and_report

; ---------------------------------------------------------------------------------------------
; The other vCPUs

receiver:
        cli                             ; IF = 0: FINISH cannot slip in between check and HLT
        ld32 r2, [r10 + L_EXIT]
        bnez r2, verify_and_report
        sti
        hlt
        jmp receiver

; Every vCPU at the end: compare receipts with the sender's counts, pattern by pattern; report.
;   r3 = this vCPU's LDR byte, r5 = destination byte, r6 = mismatches, r7 = expected total,
;   r9 = this vCPU's receipt table, r13 = expected for this pattern
verify_and_report:
        ld32 r3, [r10 + L_LDR]
        mul r9, r8, TABLE
        add r9, r9, receipts
        li r5, 0
        li r6, 0
        li r7, 0
verify_loop:
        call named
        li r13, 0
        beqz r1, not_named
        shl r2, r5, 2
        ld32 r13, [r2 + sends]
not_named:
        add r7, r7, r13
        shl r2, r5, 2
        add r2, r2, r9
        ld32 r2, [r2]
        beq r2, r13, verified
        add r6, r6, 1
verified:
        add r5, r5, 1
        li r2, 256
        bltu r5, r2, verify_loop
        li r1, 1
        ld32 r2, [r10 + L_RCVD]
        ld32 r3, [r10 + L_EXIT]
        add r2, r2, r3
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [r10 + L_RCVD]
        hypercall HC_REPORT
        li r1, 4
        mov r2, r7
        hypercall HC_REPORT
        li r1, 5
        mov r2, r6
        hypercall HC_REPORT
        li r1, 6
        ld32 r2, [r10 + L_UNEXPECTED]
        hypercall HC_REPORT
        li r1, 7
        ld32 r2, [APIC_BASE + APIC_LDR]
        hypercall HC_REPORT
        li r1, 8
        ld32 r2, [APIC_BASE + APIC_DFR]
        hypercall HC_REPORT
        li r2, 1
        xchg r2, [r10 + L_DONE]
        jmp common_done

        .include "common.s"             ; common_abort, common_done, common_park, ...
        .include "common-line.s"        ; common_my_line
        .include "common-finish.s"      ; common_finish_handler (the FINISH handler)

; ---------------------------------------------------------------------------------------------
; Destination arithmetic

; ldr_of(r4 = vCPU) -> r3 = its logical ID byte. Clobbers r1.
ldr_of:
        li r1, LOGICAL_MODE
        bnez r1, ldr_cluster
        li r3, 1
        shl r3, r3, r4
        ret
ldr_cluster:
        and r1, r4, 3
        li r3, 1
        shl r3, r3, r1
        shr r1, r4, 2
        shl r1, r1, 4
        or r3, r3, r1
        ret

; named(r5 = destination byte, r3 = logical ID byte) -> r1 = 1 if the destination names that ID.
named:
        li r1, LOGICAL_MODE
        bnez r1, named_cluster
        and r1, r5, r3
        sne r1, r1, 0
        ret
named_cluster:
        xor r1, r5, r3
        shr r1, r1, 4                   ; the same cluster?
        bnez r1, named_no
        and r1, r5, r3
        and r1, r1, 0xF
        sne r1, r1, 0
        ret
named_no:
        li r1, 0
        ret

; valid(r5 = destination byte) -> r1 = 1 if it is a pattern of the sweep. Clobbers r2.
valid:
        li r1, LOGICAL_MODE
        bnez r1, valid_cluster
        beqz r5, valid_no
        li r1, VCPUS
        li r2, 1
        shl r2, r2, r1
        sub r2, r2, 1                   ; 2^VCPUS - 1: every vCPU's bit
        sltu r1, r2, r5
        xor r1, r1, 1
        ret
valid_cluster:
        and r1, r5, 0xF
        beqz r1, valid_no
        shr r2, r5, 4
        shl r2, r2, 2                   ; the cluster's first vCPU
        li r1, VCPUS
        sub r2, r1, r2                  ; vCPUs from there on
        li r1, 1
        blt r2, r1, valid_no            ; no such cluster (cluster 15 included: VCPUS <= 60)
        li r1, 4
        blt r2, r1, members_known
        mov r2, r1
members_known:
        li r1, 1
        shl r1, r1, r2
        sub r1, r1, 1                   ; the cluster's member mask
        and r2, r5, 0xF
        sltu r1, r1, r2                 ; a bit beyond the members?
        xor r1, r1, 1
        ret
valid_no:
        li r1, 0
        ret

; ---------------------------------------------------------------------------------------------
; Handlers

pattern_handler:
        push r1
        push r2
        push r3
        push r4
        push r5
        ld32 r4, [APIC_BASE + APIC_ID]
        shr r4, r4, 24
        mul r2, r4, TABLE
        add r2, r2, receipts
        mul r4, r4, LINE
        add r4, r4, lines
        ld32 r5, [current_pattern]
        ld32 r3, [r4 + L_LDR]
        call named
        bnez r1, count_receipt
        li r1, 1
        xadd r1, [r4 + L_UNEXPECTED]
count_receipt:
        shl r5, r5, 2
        add r2, r2, r5
        ld32 r1, [r2]                   ; this vCPU's own table: plain accesses
        add r1, r1, 1
        st32 [r2], r1
        li r1, 1
        xadd r1, [r4 + L_RCVD]          ; after the table: the sender waits on this
        st32 [APIC_BASE + APIC_EOI], r1
        pop r5
        pop r4
        pop r3
        pop r2
        pop r1
        iret

; ---------------------------------------------------------------------------------------------

        .align 64
stop_requested:  .word 0                ; the host sets it when a timed run is up
        .align 64
current_pattern: .word 0                ; the sender writes, handlers read
        .align 64
configured:      .word 0                ; the set-up barrier
        .align 64
sends:           .zero 4 * 256          ; sender-private: IPIs sent per destination byte
awaited:         .zero 4 * VCPUS        ; sender-private: receipts each vCPU must have by now
        .align 64
lines:           .zero LINE * VCPUS
        .align 64
receipts:        .zero TABLE * VCPUS

        .align 64
ivt:
        .zero 4 * PATTERN_VECTOR
        .word pattern_handler           ; 0x40
        .word common_finish_handler     ; 0x41
        .zero 4 * (255 - FINISH_VECTOR)
