; common-count.s: the counting interrupt handler shared by the scenario programs whose IPIs only need
; counting (storm, broadcast, hot-add), included with `.include "common-count.s"` beside
; common-line.s. Every label here starts with `common_`.
;
; What it needs from the including program:
;   L_RCVD             the offset of the receipt count in a vCPU's line (common-line.s finds the line)
;
; common_count_handler is an interrupt handler (put its address in the IVT): it adds one to this
; vCPU's receipt count (xadd: other vCPUs read it while it runs), writes EOI and returns with iret.
; Preserves every register.

common_count_handler:
        push r2
        push r3
        call common_my_line
        li r3, 1
        xadd r3, [r2 + L_RCVD]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret
