; common-line.s: the per-vCPU line lookup shared by the scenario programs that keep one line per
; vCPU, included with `.include "common-line.s"` in the program's code (beside common.s).
;
; What it needs from the including program:
;   LINE, lines        the per-vCPU lines: `lines` + vCPU * LINE is a vCPU's own line
;
; Register conventions:
;   common_my_line     called (handlers too): r2 <- this vCPU's line, from its APIC ID (bits 31:24
;                      of APIC_ID). Clobbers nothing else.

common_my_line:
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        mul r2, r2, LINE
        add r2, r2, lines
        ret
