; alu-loop.s: interpreter speed. vCPU 0 runs a 6-instruction ALU/memory loop ITERATIONS times and
; reports the elapsed rdtsc nanoseconds in HC_REPORT slot 0 (instructions = 6 * ITERATIONS).
; A plain ALU/memory loop (BENCHMARKS.md goal 8); bench/baselines/switch-interpreter.ts runs the
; same assembled bytes in a bare JS switch loop.

        .equ ITERATIONS, 10000000

        .entry start, 0
        .entry idle

start:
        li r1, ITERATIONS
        li r2, 0
        rdtsc r10
loop:
        add r2, r2, 3
        ld32 r3, [data]
        add r3, r3, 1
        st32 [data], r3
        sub r1, r1, 1
        bnez r1, loop
        rdtsc r11
        sub r2, r11, r10
        li r1, 0
        hypercall HC_REPORT
idle:
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt
        jmp park

        .align 64
data:   .word 0
