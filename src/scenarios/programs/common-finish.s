; common-finish.s: the FINISH interrupt handler of the programs that end a run with a FINISH IPI
; (broadcast, logical), included with `.include "common-finish.s"` beside common-line.s. Every label
; here starts with `common_`.
;
; What it needs from the including program:
;   L_EXIT             the offset of the "FINISH seen" flag in a vCPU's line (common-line.s finds it)
;
; common_finish_handler is an interrupt handler (put its address in the IVT): it sets this vCPU's
; L_EXIT flag (xchg: the vCPU's own wait loop reads it), writes EOI and returns with iret.
; Preserves every register.

common_finish_handler:
        push r2
        push r3
        call common_my_line
        li r3, 1
        xchg r3, [r2 + L_EXIT]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret
