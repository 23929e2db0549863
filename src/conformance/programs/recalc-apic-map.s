; selftest/recalc-apic-map: the KVM selftest x86/recalc_apic_map_test.c, as a guest. The selftest
; makes KVM rebuild its APIC map over and over (KVM_SET_LAPIC, APIC base toggles) while the map is in
; use; here the guests do it themselves. vCPUs 2.. ("churners") rewrite their own APIC ID (index,
; then 0x80 | index) and LDR (1 << index, then 0) in a loop, every write a trap that makes the
; hypervisor rebuild and republish its tables, while vCPU 0 sends ROUNDS fixed IPIs (vector 0xF1) to
; vCPU 1, whose ID and LDR never change, alternately by physical ID 1 and logical (flat) ID 0x02,
; one at a time. Every IPI must reach vCPU 1 and nobody else, however the tables are being rebuilt.
;
; Slots: vCPU 0: 0 IPIs sent, 1 rewrites the churners made while vCPU 0 was sending; vCPU 1: 0 IPIs
; taken; churners: 0 rewrites, 1 IPIs taken (none were sent to them).
; Abort codes: 2 vCPU 1 did not take an IPI within 1 s (value = round); 3 vCPU 1 took more IPIs than
; were sent (value = round); 4 a churner made no rewrite within 2 s; 100 a vCPU did not come online.

        .equ VCPUS, 4
        .equ ROUNDS, 2000
        .equ VECTOR, 0xF1
        .entry bsp, 0
        .entry receiver, 1
        .entry churner

set_up: li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        li r2, cf_eoi_handler
        st32 [cf_ivt + 4 * CF_FINISH_VECTOR], r2
        livt cf_ivt
        li r2, APIC_DFR_FLAT
        st32 [APIC_BASE + APIC_DFR], r2
        ret

receiver:
        mov r14, r0
        call set_up
        li r2, 0x02 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        li r13, finish
        jmp cf_ap_idle

churner:
        mov r14, r0
        call set_up
        li r2, 1
        xadd r2, [cf_online]
        sti
        li r6, 0                        ; rewrites
        shl r7, r14, 24                 ; ID = index
        li r2, 0x80
        or r8, r14, r2
        shl r8, r8, 24                  ; ID = 0x80 | index
        li r2, 1
        shl r9, r2, r14
        shl r9, r9, 24                  ; LDR bit = index
        li r10, 0
churn:  st32 [APIC_BASE + APIC_ID], r8
        st32 [APIC_BASE + APIC_LDR], r10
        st32 [APIC_BASE + APIC_ID], r7
        st32 [APIC_BASE + APIC_LDR], r9
        add r6, r6, 4
        li r2, 4
        xadd r2, [rewrites]
        ld32 r2, [cf_finish]
        beqz r2, churn
        li r1, 0
        mov r2, r6
        hypercall HC_REPORT
        jmp finish

bsp:    mov r14, r0
        call set_up
        li r1, VCPUS - 1
        call cf_wait_online
        li r2, 0x01 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        rdtsc r10                       ; the churners must be at work before the sends start
churn_wait:
        ld32 r2, [rewrites]
        li r3, 4 * (VCPUS - 2)
        bgeu r2, r3, sending
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 2 * CF_NS_PER_SECOND
        bltu r11, r12, churn_wait
        li r1, 4
        jmp cf_abort
sending:
        li r2, 0
        xadd r2, [rewrites]
        mov r13, r2                     ; rewrites before the first send
        li r6, 0                        ; IPIs sent
round:  and r2, r6, 1
        bnez r2, logical
        li r4, 1 << APIC_DEST_SHIFT
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        jmp send
logical:
        li r4, 0x02 << APIC_DEST_SHIFT
        li r5, APIC_DEST_LOGICAL | APIC_DM_FIXED | VECTOR
send:   st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
        add r6, r6, 1
        rdtsc r10
wait:   li r2, 0
        xadd r2, [own_counts + 4]
        beq r2, r6, taken
        bltu r6, r2, too_many
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, wait
        mov r2, r6
        li r1, 2
        jmp cf_abort
too_many:
        mov r2, r6
        li r1, 3
        jmp cf_abort
taken:  li r2, ROUNDS
        bltu r6, r2, round
        li r2, 0
        xadd r2, [rewrites]
        sub r2, r2, r13
        li r1, 1
        hypercall HC_REPORT
        li r1, 0
        mov r2, r6
        hypercall HC_REPORT
        call cf_finish_all
        jmp cf_done

finish: li r1, 0
        li r2, 1
        bne r14, r2, finish_churner
        ld32 r2, [own_counts + 4]
        hypercall HC_REPORT
        jmp cf_done
finish_churner:
        li r1, 1
        shl r2, r14, 2
        ld32 r2, [r2 + own_counts]
        hypercall HC_REPORT
        jmp cf_done

; Counts the IPI for the vCPU that took it, by index (r14 is never changed after the start: the
; churners' APIC IDs are not their indices half of the time).
handler:
        push r2
        push r3
        shl r2, r14, 2
        li r3, 1
        xadd r3, [r2 + own_counts]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret

        .align 4
rewrites:   .word 0
own_counts: .zero 4 * VCPUS
        .include "conformance.s"
