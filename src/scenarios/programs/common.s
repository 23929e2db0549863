; common.s: routines every scenario program shares, included with `.include "common.s"` in the
; program's code (before its data). Every label here starts with `common_`.
;
; What it needs from the including program (every scenario program defines these):
;   VCPUS              the vCPU count (a host define)
;   ABORT_VCPU_COUNT   the program's abort code for a wrong vCPU count
;
; Register conventions:
;   common_abort       jumped to, never returns: r1 = abort code, r2 = detail (HC_ABORT's arguments)
;   common_done        jumped to, never returns: HC_DONE with r1 = 0, then parks
;   common_park        jumped to, never returns: halts with interrupts off, forever
;   common_check_vcpu_count
;                      called at the entry with r1 = the vCPU count (as the vCPU starts); returns if
;                      r1 == VCPUS and r1 >= 2, else aborts (ABORT_VCPU_COUNT, r2 = the count).
;                      Clobbers r2.
;
; common-line.s, included beside it by the programs with per-vCPU lines, has common_my_line.

common_check_vcpu_count:
        li r2, VCPUS
        bne r1, r2, common_bad_vcpu_count
        li r2, 2
        bgeu r1, r2, common_vcpu_count_ok
common_bad_vcpu_count:
        mov r2, r1
        li r1, ABORT_VCPU_COUNT
        jmp common_abort
common_vcpu_count_ok:
        ret

common_abort:
        hypercall HC_ABORT
        jmp common_park
common_done:
        li r1, 0
        hypercall HC_DONE
common_park:
        cli
        hlt
        jmp common_park
