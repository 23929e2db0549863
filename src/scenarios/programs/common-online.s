; common-online.s: the start-up wait of the programs with one driving vCPU (broadcast, sync-call),
; included with `.include "common-online.s"` beside common.s. Every label here starts with `common_`.
;
; What it needs from the including program:
;   VCPUS, TIMEOUT_NS  the vCPU count and the wait's bound (a 32-bit rdtsc difference)
;   ABORT_NOT_ONLINE   the program's abort code for vCPUs that never came online
;   online             a word every other vCPU increments once it is ready for IPIs
;
; common_wait_others_online: called by the driving vCPU; returns once `online` holds VCPUS - 1,
; with r12 = TIMEOUT_NS, or aborts (ABORT_NOT_ONLINE, r2 = vCPUs online) after TIMEOUT_NS.
; Clobbers r2, r3, r10, r11.

common_wait_others_online:
        li r12, TIMEOUT_NS
        rdtsc r10
common_wait_others_online_loop:
        ld32 r2, [online]
        li r3, VCPUS - 1
        beq r2, r3, common_wait_others_online_done
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, common_wait_others_online_loop
        li r1, ABORT_NOT_ONLINE
        ld32 r2, [online]
        jmp common_abort
common_wait_others_online_done:
        ret
