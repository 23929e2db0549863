; apic/pending-nmi: kvm-unit-tests x86/apic.c test_pending_nmi.
; One vCPU sends itself an NMI; the handler, on its first run, sends itself ten more NMIs. They
; arrive while the first is in service (NMIs blocked until iret), so exactly one of them is held
; pending and taken after the iret: two handler runs per round, never more. After the second run
; the vCPU sends itself a fixed IPI (IF = 1) and waits for its handler: an NMI still pending would
; be taken first, so the count is final when the flush handler has run.
;
; Slots: 0 rounds passed.
; Abort codes: 2 fewer than 2 NMIs within 1 s (value = NMIs | round << 8); 3 other than 2 NMIs after
; the flush (value = NMIs | round << 8); 4 the flush IPI was not taken within 1 s (value = round).

        .equ ROUNDS, 5000
        .equ FLUSH_VECTOR, 0x45
        .equ CF_NMI_VECTOR, 2
        .entry start

start:  li r2, nmi_handler
        st32 [cf_ivt + 4 * CF_NMI_VECTOR], r2
        li r2, flush_handler
        st32 [cf_ivt + 4 * FLUSH_VECTOR], r2
        livt cf_ivt
        sti
        ld32 r4, [APIC_BASE + APIC_ID]
        st32 [APIC_BASE + APIC_ICR2], r4  ; physical destination: this vCPU's own ID
        li r6, 0
round:  li r2, 0
        xchg r2, [nmi_received]
        li r2, 0
        xchg r2, [flushed]
        li r5, APIC_DEST_PHYSICAL | APIC_DM_NMI
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
wait_two:
        ld32 r2, [nmi_received]
        li r3, 2
        bgeu r2, r3, two
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait_two
        li r1, 2
        jmp fail_count
two:    li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | FLUSH_VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
wait_flush:
        ld32 r2, [flushed]
        bnez r2, check
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait_flush
        mov r2, r6
        li r1, 4
        jmp cf_abort
check:  ld32 r2, [nmi_received]
        li r3, 2
        li r1, 3
        bne r2, r3, fail_count
        add r6, r6, 1
        li r3, ROUNDS
        bltu r6, r3, round
        li r1, 0
        mov r2, r6
        hypercall HC_REPORT
        jmp cf_done
fail_count:
        ld32 r2, [nmi_received]
        shl r3, r6, 8
        or r2, r2, r3
        jmp cf_abort

nmi_handler:
        push r2
        push r5
        li r2, 1
        xadd r2, [nmi_received]
        bnez r2, nmi_handler_end
        li r2, 10
        li r5, APIC_DEST_PHYSICAL | APIC_DM_NMI
nmi_handler_send:
        st32 [APIC_BASE + APIC_ICR], r5 ; ICR2 still names this vCPU
        sub r2, r2, 1
        bnez r2, nmi_handler_send
nmi_handler_end:
        pop r5
        pop r2
        iret

flush_handler:
        push r2
        li r2, 1
        xchg r2, [flushed]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

        .align 4
nmi_received: .word 0
flushed:      .word 0
        .include "conformance.s"
