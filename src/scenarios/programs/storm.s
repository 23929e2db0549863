; storm.s: every vCPU sends fixed IPIs to pseudo-random other vCPUs as fast as it can, all to all,
; while its own handler counts what it receives in its own 64-byte line.
;
; Targets come from a per-vCPU xorshift32 generator seeded with SEED ^ ((index + 1) * 0x9E3779B9),
; so a seed reproduces the sequence of targets; a vCPU never targets itself. The budget IPI_COUNT
; is split evenly (the first IPI_COUNT % VCPUS vCPUs send one more). Every vCPU keeps IF = 1 the
; whole time, so it takes IPIs while it sends and while it waits.
;
; Every SAMPLE_EVERY-th IPI is measured, unless the previous measurement is still in flight: the
; sender reads the target's receipt count and sends, then goes on sending, and at each later IPI
; looks whether the count moved (the IPI, or one it merged with in the target's IRR, was handled).
; The sender never stops to wait, so a target that is not scheduled (more vCPUs than host cores)
; delays only its own measurement. The 64th IPI is also where the sender polls stop_requested.
;
; At the end every vCPU enters a barrier (after which nobody sends), drains its own IRR, and reports.
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured IPIs)
;   every vCPU: 0 IPIs sent (one ICR write each), 1 IPIs handled, 2 IPIs measured, 3 its budget,
;               4 measurements abandoned (not handled within TIMEOUT_NS: a heavily oversubscribed
;                 host; lost IPIs show in the host's IPI balance instead)

        .equ VCPUS, 4                   ; host define
        .equ IPI_COUNT, 100000          ; host define: IPIs in total (0xFFFFFFFF: until stopped)
        .equ SEED, 1                    ; host define
        .equ IPI_VECTOR, 0x40
        .equ SAMPLE_EVERY, 64           ; a power of two
        .equ GOLDEN, 0x9E3779B9
        .equ TIMEOUT_NS, 4000000000     ; the longest interval a 32-bit rdtsc difference measures
        .equ LINE, 64                   ; one line per vCPU, written by its handler only
        .equ L_RCVD, 0                  ; the handler
        .equ L_ABANDONED, 4             ; this vCPU: measurements given up after TIMEOUT_NS
        .equ STUCK_SPINS, 1000000       ; with TIMEOUT_NS: spins before the barrier or drain gives up
        .equ IRR_REGISTER, APIC_IRR + 0x10 * (IPI_VECTOR >> 5)
        .equ IRR_BIT, 1 << (IPI_VECTOR & 31)

        .equ ABORT_VCPU_COUNT, 1        ; r2 = the vCPU count
        .equ ABORT_BARRIER, 3           ; r2 = vCPUs arrived
        .equ ABORT_DRAIN, 4             ; r2 = this vCPU

        .entry start

; r4 = target, r5 = ICR, r6 = budget, r7 = sent, r8 = this vCPU, r9 = generator state,
; r10 = this vCPU's line, r12 = TIMEOUT_NS, r13 = IPIs measured, r14 = VCPUS - 1;
; the measurement in flight: r3 = the target's line (0: none), r0 = its count before, r1 = rdtsc at the send
start:
        mov r8, r0
        call common_check_vcpu_count
        livt ivt
        mul r10, r8, LINE
        add r10, r10, lines
        li r6, IPI_COUNT / VCPUS        ; this vCPU's share of the budget
        li r2, IPI_COUNT % VCPUS
        sltu r2, r8, r2
        add r6, r6, r2
        add r9, r8, 1                   ; the generator's seed: never 0
        mul r9, r9, GOLDEN
        xor r9, r9, SEED
        bnez r9, seeded
        li r9, GOLDEN
seeded:
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | IPI_VECTOR
        li r7, 0
        li r12, TIMEOUT_NS
        li r13, 0
        li r14, VCPUS - 1
        li r3, 0
        sti
send_loop:
        bgeu r7, r6, finished
        beqz r3, pick                   ; a measurement in flight: has its target handled it?
        ld32 r2, [r3 + L_RCVD]
        beq r2, r0, pick
        rdtsc r11
        sub r1, r11, r1
        hypercall HC_LATENCY_SAMPLE
        add r13, r13, 1
        li r3, 0
pick:
        shl r2, r9, 13                  ; xorshift32
        xor r9, r9, r2
        shr r2, r9, 17
        xor r9, r9, r2
        shl r2, r9, 5
        xor r9, r9, r2
        remu r4, r9, r14                ; 0 .. VCPUS-2, then skip this vCPU
        sltu r2, r4, r8
        xor r2, r2, 1
        add r4, r4, r2
        and r2, r7, SAMPLE_EVERY - 1
        beqz r2, measured_send
send:
        shl r2, r4, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        st32 [APIC_BASE + APIC_ICR], r5
        add r7, r7, 1
        jmp send_loop

; Every SAMPLE_EVERY-th IPI: poll stop_requested, and start a measurement unless one is in flight
; (which must not be older than TIMEOUT_NS). The sender never waits for it: it keeps sending and
; looks at the target's count once per IPI.
measured_send:
        ld32 r2, [stop_requested]
        bnez r2, finished
        beqz r3, start_measurement
        rdtsc r11
        sub r11, r11, r1
        bltu r11, r12, send
        call abandon                    ; not handled in TIMEOUT_NS: an oversubscribed host (or a
                                        ; lost IPI, which the host's balance and drain catch)
start_measurement:
        mul r3, r4, LINE
        add r3, r3, lines
        ld32 r0, [r3 + L_RCVD]
        shl r2, r4, APIC_DEST_SHIFT
        rdtsc r1
        st32 [APIC_BASE + APIC_ICR2], r2
        st32 [APIC_BASE + APIC_ICR], r5
        add r7, r7, 1
        jmp send_loop

finished:
        beqz r3, arrive                 ; finish the measurement in flight (its target has IF = 1
wait_handled:                           ; until it has drained, after this vCPU arrives)
        ld32 r2, [r3 + L_RCVD]
        bne r2, r0, handled
        pause
        rdtsc r11
        sub r11, r11, r1
        bltu r11, r12, wait_handled
        call abandon
        jmp arrive
handled:
        rdtsc r11
        sub r1, r11, r1
        hypercall HC_LATENCY_SAMPLE
        add r13, r13, 1
arrive:
        ; Barrier: after it nobody sends. With hundreds of vCPUs on a few host cores a vCPU may wait
        ; its turn for seconds, so the barrier gives up only when nobody arrived for TIMEOUT_NS and
        ; this vCPU itself spun at least STUCK_SPINS times meanwhile (r4).
        li r2, 1
        xadd r2, [arrived]
        ld32 r0, [arrived]
        rdtsc r1
        li r4, 0
barrier:
        ld32 r2, [arrived]
        li r3, VCPUS
        beq r2, r3, drain
        bne r2, r0, barrier_progress
        pause
        add r4, r4, 1
        rdtsc r11
        sub r11, r11, r1
        bltu r11, r12, barrier
        li r3, STUCK_SPINS
        bltu r4, r3, barrier
        li r1, ABORT_BARRIER
        jmp common_abort
barrier_progress:
        mov r0, r2
        rdtsc r1
        li r4, 0
        jmp barrier
drain:
        ; Every IPI is in some IRR by now; with IF = 1 a pending one is taken at the next boundary.
        rdtsc r1
        li r4, 0
drain_loop:
        ld32 r2, [APIC_BASE + IRR_REGISTER]
        and r2, r2, IRR_BIT
        beqz r2, drained
        pause
        add r4, r4, 1
        rdtsc r11
        sub r11, r11, r1
        bltu r11, r12, drain_loop
        li r3, STUCK_SPINS
        bltu r4, r3, drain_loop
        li r1, ABORT_DRAIN
        mov r2, r8
        jmp common_abort
drained:
        cli
        li r1, 0
        mov r2, r7
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [r10 + L_RCVD]
        hypercall HC_REPORT
        li r1, 2
        mov r2, r13
        hypercall HC_REPORT
        li r1, 3
        mov r2, r6
        hypercall HC_REPORT
        li r1, 4
        ld32 r2, [r10 + L_ABANDONED]
        hypercall HC_REPORT
        jmp common_done

        .include "common.s"             ; common_abort, common_done, common_park, ...
        .include "common-line.s"        ; common_my_line
        .include "common-count.s"       ; common_count_handler (the IPI handler)

; abandon(): drop the measurement in flight (r3 <- 0) and count it. Clobbers r2.
abandon:
        li r3, 0
        ld32 r2, [r10 + L_ABANDONED]
        add r2, r2, 1
        st32 [r10 + L_ABANDONED], r2
        ret


        .align 64
stop_requested: .word 0                 ; the host sets it when a timed run is up
        .align 64
arrived:        .word 0                 ; the barrier
        .align 64
lines:          .zero LINE * VCPUS

        .align 64
ivt:
        .zero 4 * IPI_VECTOR
        .word common_count_handler
        .zero 4 * (255 - IPI_VECTOR)
