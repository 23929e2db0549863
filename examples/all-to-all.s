; all-to-all.s: every vCPU sends fixed IPIs to every other vCPU, round robin, ROUNDS times. Each
; vCPU counts what it sends and, in its interrupt handler, what it receives. After a barrier (so
; every IPI has been sent), each vCPU waits until its own IRR bit for the vector is clear (so every
; IPI sent to it has been handled), then reports: HC_REPORT slot 0 = IPIs sent, slot 1 = received.
;
; Received can be less than sent: as on real hardware, a fixed IPI whose vector is already pending
; in the target's IRR merges with it. Summed over all vCPUs, received <= sent, and received > 0.
; Up to MAX_VCPUS vCPUs; APIC ID = vCPU index (the start state).

        .equ IPI_VECTOR, 0x40
        .equ ROUNDS, 1000
        .equ MAX_VCPUS, 16
        .equ RECORD_BYTES, 64           ; one line per vCPU: no shared hot counters
        .equ RECORD_SENT, 0
        .equ RECORD_RECEIVED, 4
        .equ IRR_REGISTER, APIC_IRR + 0x10 * (IPI_VECTOR >> 5)
        .equ IRR_BIT, 1 << (IPI_VECTOR & 31)
        .equ ABORT_TOO_MANY_VCPUS, 1    ; r2 = the vCPU count

        .entry start

; r8 = this vCPU's index, r9 = the vCPU count, r10 = this vCPU's record, r11 = the ICR value,
; r6 = rounds left, r7 = the target
start:
        mov r8, r0
        mov r9, r1
        li r2, MAX_VCPUS
        bgeu r2, r9, count_ok
        li r1, ABORT_TOO_MANY_VCPUS
        mov r2, r9
        hypercall HC_ABORT
        jmp park
count_ok:
        livt ivt
        mul r10, r8, RECORD_BYTES
        add r10, r10, records
        li r11, APIC_DEST_PHYSICAL | APIC_DM_FIXED | IPI_VECTOR
        sti                             ; receive while sending
        li r6, ROUNDS
round:
        li r7, 0
next_target:
        beq r7, r8, skip_self
        shl r2, r7, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        st32 [APIC_BASE + APIC_ICR], r11
        ld32 r2, [r10 + RECORD_SENT]    ; only this vCPU writes its own record's sent count
        add r2, r2, 1
        st32 [r10 + RECORD_SENT], r2
skip_self:
        add r7, r7, 1
        bltu r7, r9, next_target
        sub r6, r6, 1
        bnez r6, round

        ; Barrier: every vCPU has sent everything (the IRR bits are set during the ICR write).
        li r2, 1
        xadd r2, [arrived]
barrier:
        pause
        ld32 r2, [arrived]
        bltu r2, r9, barrier
        ; Drain: with IF = 1, a pending IPI is taken at the next instruction boundary.
drain:
        ld32 r2, [APIC_BASE + IRR_REGISTER]
        and r2, r2, IRR_BIT
        bnez r2, drain
        cli
        li r1, 0
        ld32 r2, [r10 + RECORD_SENT]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [r10 + RECORD_RECEIVED]
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt
        jmp park

; The IPI handler: find this vCPU's record from its APIC ID, count, EOI.
ipi_handler:
        push r2
        push r3
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24                  ; xAPIC ID is in bits 31:24
        mul r2, r2, RECORD_BYTES
        li r3, 1
        xadd r3, [r2 + records + RECORD_RECEIVED]
        st32 [APIC_BASE + APIC_EOI], r3 ; any value
        pop r3
        pop r2
        iret

        .align 64
arrived:  .word 0
        .align 64
records:  .zero MAX_VCPUS * RECORD_BYTES

        .align 64
ivt:
        .zero 4 * IPI_VECTOR
        .word ipi_handler
        .zero 4 * (255 - IPI_VECTOR)
