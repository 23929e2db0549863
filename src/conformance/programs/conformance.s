; conformance.s: what every conformance program shares, included with `.include "conformance.s"`
; at the END of the program (it holds data). Every label and constant here starts with `cf_`/`CF_`,
; so that neither a program nor a symbol the assembler may predefine later can collide with it.
;
; What it needs from the including program: the host define VCPUS (the vCPU count).
;
;   cf_abort      jumped to: HC_ABORT with r1 = code, r2 = value; never returns
;   cf_done       jumped to: HC_DONE with status 0, then parks; never returns
;   cf_park       jumped to: halts with interrupts off, forever
;   cf_ap_idle    jumped to by an application vCPU with r13 = where to go when finished: counts
;                 itself online, then sleeps in `sti; hlt` (kvm-unit-tests' ap_online) until
;                 cf_finish is set, then jumps to r13 with IF = 0. Its IVT must hold cf_eoi_handler
;                 (or another handler that EOIs) at CF_FINISH_VECTOR. Clobbers r2.
;   cf_wait_online  called with r1 = how many vCPUs must have run cf_ap_idle; returns once they
;                 have, aborts with CF_ABORT_NOT_ONLINE (value = how many did) after 2 s.
;                 Clobbers r2, r10, r11, r12.
;   cf_finish_all called (xAPIC mode): sets cf_finish and sends CF_FINISH_VECTOR to every other
;                 vCPU by the all-excluding-self shorthand, which needs no APIC ID. Clobbers r2, r3.
;   cf_eoi_handler  an interrupt handler that only EOIs (xAPIC mode).
;   cf_ivt        the interrupt vector table, 256 words, filled at run time by each program
;                 (`li r2, handler` / `st32 [cf_ivt + 4 * VECTOR], r2`), which keeps programs with
;                 several vectors readable.

        .equ CF_FINISH_VECTOR, 0x41
        .equ CF_ABORT_NOT_ONLINE, 100
        .equ CF_NS_PER_SECOND, 1000000000

cf_abort:
        hypercall HC_ABORT
        jmp cf_park
cf_done:
        li r1, 0
        hypercall HC_DONE
cf_park:
        cli
        hlt
        jmp cf_park

cf_ap_idle:
        li r2, 1
        xadd r2, [cf_online]
cf_ap_idle_loop:
        cli
        ld32 r2, [cf_finish]            ; IF = 0: the FINISH IPI cannot slip in between check and hlt
        beqz r2, cf_ap_sleep
        jmp r13
cf_ap_sleep:
        sti
        hlt                             ; the sti shadow: an IPI pending at the sti still ends hlt
        jmp cf_ap_idle_loop

cf_wait_online:
        rdtsc r10
cf_wait_online_loop:
        li r2, 0
        xadd r2, [cf_online]            ; an ordered read
        bgeu r2, r1, cf_wait_online_ok
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 2 * CF_NS_PER_SECOND
        bltu r11, r12, cf_wait_online_loop
        li r1, CF_ABORT_NOT_ONLINE
        jmp cf_abort
cf_wait_online_ok:
        ret

cf_finish_all:
        li r2, 1
        xchg r2, [cf_finish]
        li r2, 0
        st32 [APIC_BASE + APIC_ICR2], r2
        li r3, APIC_DEST_ALLBUT | APIC_DM_FIXED | CF_FINISH_VECTOR
        st32 [APIC_BASE + APIC_ICR], r3
        ret

cf_eoi_handler:
        st32 [APIC_BASE + APIC_EOI], r0 ; any value
        iret

        .align 4
cf_online:  .word 0
cf_finish:  .word 0
cf_ivt:     .zero 4 * 256
