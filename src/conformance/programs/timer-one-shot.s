; apic/timer-one-shot: kvm-unit-tests x86/apic.c test_apic_timer_one_shot.
; One vCPU programs the LVT timer in one-shot mode (vector 0xEE), divide by 1 (TDCR = 0xB), and starts
; it with an initial count of 0x10000. It waits up to 1 s for the handler, then 2 ms more to see that
; a one-shot timer fires once only. apic.c requires at least `count` TSC cycles between the start and
; the interrupt; the guest's clock counts nanoseconds, so this holds for any timer clock of 1 GHz or
; less (one tick is at least 1 ns).
;
; Slots: 0 handler runs; 1 nanoseconds from the TMICT write to the first handler run.
; Abort codes: 2 the timer did not fire within 1 s.

        .equ VECTOR, 0xEE
        .equ INITIAL_COUNT, 0x10000
        .equ CF_LVT_TIMER_ONESHOT, 0
        .entry start

start:  li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        livt cf_ivt
        sti
        li r2, CF_LVT_TIMER_ONESHOT | VECTOR
        st32 [APIC_BASE + APIC_LVTT], r2
        li r2, 0xB                      ; divide by 1
        st32 [APIC_BASE + APIC_TDCR], r2
        li r3, INITIAL_COUNT
        rdtsc r6
        st32 [APIC_BASE + APIC_TMICT], r3
        mov r10, r6
wait:   ld32 r2, [timer_count]
        bnez r2, fired
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait
        li r1, 2
        li r2, 0
        jmp cf_abort
fired:  ld32 r7, [fired_at]
        rdtsc r10
settle: pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 2000000
        bltu r11, r12, settle
        li r1, 0
        ld32 r2, [timer_count]
        hypercall HC_REPORT
        li r1, 1
        sub r2, r7, r6
        hypercall HC_REPORT
        jmp cf_done

handler:
        push r2
        rdtsc r2
        st32 [fired_at], r2
        li r2, 1
        xadd r2, [timer_count]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret

        .align 4
timer_count: .word 0
fired_at:    .word 0
        .include "conformance.s"
