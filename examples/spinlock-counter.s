; spinlock-counter.s: every vCPU adds 1 to a shared counter ITERATIONS times, each time under a
; spinlock. The lock is taken with cas and released with xchg (an atomic store, so the counter's
; update is visible to the next owner before the lock looks free). The last vCPU to finish, found
; with xadd on a `finished` counter, reports the total in HC_REPORT slot 0 and aborts the VM if an
; update was lost. Works with any number of vCPUs.

        .equ ITERATIONS, 10000
        .equ ABORT_LOST_UPDATE, 1       ; r2 = the total found

        .entry start

; r0 = this vCPU's index, r1 = the vCPU count (the start state); r9 = count, r6 = iterations left
start:
        mov r9, r1
        li r6, ITERATIONS
increment:
acquire:
        li r2, 0                        ; expected: free
        li r3, 1                        ; new: taken
        cas r2, [lock], r3              ; r2 <- old value; the lock is ours if it was 0
        beqz r2, locked
wait_free:
        pause                           ; test-and-test-and-set: read until free, then retry cas
        ld32 r2, [lock]
        bnez r2, wait_free
        jmp acquire
locked:
        ld32 r4, [counter]              ; plain accesses: the lock orders them
        add r4, r4, 1
        st32 [counter], r4
        li r2, 0
        xchg r2, [lock]                 ; release
        sub r6, r6, 1
        bnez r6, increment

        li r2, 1
        xadd r2, [finished]             ; r2 <- how many finished before this vCPU
        add r2, r2, 1
        bne r2, r9, done                ; not the last one
        ld32 r2, [counter]              ; every other vCPU released the lock before its xadd
        li r1, 0
        hypercall HC_REPORT
        mul r3, r9, ITERATIONS
        beq r2, r3, done
        li r1, ABORT_LOST_UPDATE
        hypercall HC_ABORT
done:
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt
        jmp park

        .align 64                       ; the lock and counter share a line, as a real lock and its data would
lock:     .word 0
counter:  .word 0
        .align 64                       ; touched once per vCPU: keep it off the hot line
finished: .word 0
