; x2avic-storm.s: every vCPU switches to x2APIC and meets the others at a barrier, then sends ROUNDS
; x2APIC IPIs by WRMSR 0x830: physical to the next vCPU (x2APIC IDs above 0xFF included), and every
; eighth round a logical-cluster IPI to its own cluster's 16 members (cluster = ID >> 4). A second
; barrier, then done. Barriers halt (sti; hlt, the sti shadow closes the race with the wake-up) and
; the last vCPU to arrive wakes the others with an all-excluding-self x2APIC IPI, so hundreds of
; waiting vCPUs do not spin on 2 host cores. Used by bench/x2avic-512.bench.ts; the VM report
; balances the IPIs (sent = accepted + coalesced + dropped, accepted = delivered + pending + lost).

        .equ VECTOR, 0x41
        .equ WAKE, 0x42
        ; ROUNDS comes from the assembler's defines (bench/x2avic-512.bench.ts).
        .entry start
start:  mov r6, r0                      ; vCPU index = x2APIC ID
        mov r9, r1                      ; vCPUs
        livt ivt
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2
        li r12, ready
        call barrier
        li r7, 0
round:  add r5, r6, 1                   ; physical: the next vCPU, wrapping
        bltu r5, r9, physical
        li r5, 0
physical:
        li r4, VECTOR
        wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4
        and r2, r7, 7
        bnez r2, next
        shr r5, r6, 4                   ; logical: own cluster, all 16 member bits
        shl r5, r5, 16
        or r5, r5, 0xffff
        li r4, APIC_DEST_LOGICAL | VECTOR
        wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4
next:   add r7, r7, 1
        li r2, ROUNDS
        bltu r7, r2, round
        li r12, sent
        call barrier
        li r1, 0
        hypercall HC_DONE

; Arrives at the counter at r12; the last to arrive wakes everyone, the others halt until it has.
barrier:
        cli
        li r2, 1
        xadd r2, [r12]
        add r2, r2, 1
        bltu r2, r9, barrier_wait
        li r4, APIC_DEST_ALLBUT | WAKE
        li r5, 0
        wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4
        sti
        ret
barrier_wait:
        ld32 r2, [r12]
        bgeu r2, r9, barrier_done
        sti
        hlt                             ; the sti shadow: a wake-up set after the load ends this hlt
        cli
        jmp barrier_wait
barrier_done:
        sti
        ret

handler:
        push r2
        push r3
        li r2, 0
        li r3, 0
        wrmsr APIC_BASE_MSR + (APIC_EOI >> 4), r2
        pop r3
        pop r2
        iret
        .align 4
ready:  .word 0
sent:   .word 0
ivt:    .zero 4 * VECTOR
        .word handler
        .word handler
