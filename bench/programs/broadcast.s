; broadcast.s: the all-excluding-self shorthand to VCPUS - 1 HALTED receivers; the sender waits for
; every handler (QEMU's ipi_pingpong `bcast_halt`, gap 50 us).
;
; Before each round the sender waits until every receiver's run state is "blocked" (put, IsRunning
; clear, waiting for KVM's wake-up; HC_VCPU_RUN_STATE), then idles GAP_NS. It measures
; from just before the ICR write until all VCPUS - 1 handlers have run (HC_LATENCY_SAMPLE).
;
; Rounds during the first WARMUP_NS of broadcasting are sampled too, then dropped (HC_LATENCY_RESET):
; the rounds that count run only code the warm-up ran, so they do not set off a recompile (the first
; sample of a program that samples only after its warm-up is new code for the host CPU's isolate,
; and V8's recompile jobs then compete with the host CPUs for the cores). The warm-up is a time, not
; a count, because what it waits out is the JIT: each host CPU worker's isolate compiles the
; interpreter's hot functions on V8's background threads for about a second after start
; (BENCHMARKS.md, rows 13a/13b).

        .equ VCPUS, 8
        .equ ROUNDS, 1000
        .equ WARMUP_NS, 1500000000      ; below 2^31: a 32-bit rdtsc difference measures it
        .equ GAP_NS, 50000
        .equ VECTOR, 0x40

        .entry sender, 0
        .entry receiver

; r6 sampled rounds left, r7 ICR value, r8 expected handler runs, r12 1 while warming up,
; r13 receivers, r14 rdtsc at the first round
sender:
        hypercall HC_LATENCY_RESET      ; nothing to drop yet: its path is not new when the warm-up ends
        li r6, ROUNDS
        li r12, 1
        li r13, VCPUS - 1
wait_ready:
        ld32 r2, [ready_count]
        bne r2, r13, wait_ready
        li r7, APIC_DEST_ALLBUT | APIC_DM_FIXED | VECTOR
        li r8, 0
        rdtsc r14
round:
        li r9, 1
wait_asleep:
        mov r1, r9
        hypercall HC_VCPU_RUN_STATE
        li r2, VCPU_STATE_BLOCKED
        bne r0, r2, wait_asleep
        add r9, r9, 1
        li r2, VCPUS
        bltu r9, r2, wait_asleep
        rdtsc r10
gap:
        rdtsc r11
        sub r11, r11, r10
        li r3, GAP_NS
        bltu r11, r3, gap
        add r8, r8, r13
        rdtsc r4
        st32 [APIC_BASE + APIC_ICR], r7
wait_all:
        ld32 r2, [handled]
        beq r2, r8, all_handled
        pause                           ; cpu_relax(), as csd_lock_wait() spins
        jmp wait_all
all_handled:
        rdtsc r5
        sub r1, r5, r4
        beqz r12, sample
        sub r3, r5, r14                 ; once past WARMUP_NS, r12 stays 0: the difference wraps at 2^32
        li r2, WARMUP_NS
        bltu r3, r2, warm_sample
        li r12, 0
        hypercall HC_LATENCY_RESET      ; warm: drop the warm-up's samples (r1 is kept)
sample:
        hypercall HC_LATENCY_SAMPLE
        sub r6, r6, 1
        bnez r6, round
        li r2, 1
        xchg r2, [stop]
        st32 [APIC_BASE + APIC_ICR], r7
        li r1, 0
        hypercall HC_DONE
        jmp park
warm_sample:
        hypercall HC_LATENCY_SAMPLE     ; sampled and dropped: the sampled rounds then run no new code
        jmp round

receiver:
        livt ivt
        li r2, 1
        xadd r2, [ready_count]
idle_loop:
        cli
        ld32 r2, [stop]
        bnez r2, receiver_done
        sti
        hlt
        jmp idle_loop
receiver_done:
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt
        jmp park

handler:
        li r9, 1
        xadd r9, [handled]
        st32 [APIC_BASE + APIC_EOI], r9
        iret

        .align 64
ready_count: .word 0
        .align 64
handled:     .word 0
        .align 64
stop:        .word 0
        .align 64
ivt:    .zero 4 * VECTOR
        .word handler
        .zero 4 * (255 - VECTOR)
