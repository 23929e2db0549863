; apic/logical-flat and apic/logical-cluster: kvm-unit-tests x86/apic.c test_logical_ipi_xapic.
; Two vCPUs in xAPIC mode. vCPU 0 configures both logical APIC IDs (its own directly, vCPU 1's through
; a mailbox and a wake-up IPI, as apic.c's on_cpu), then sends fixed logical IPIs (vector 0xF1) to
; every destination pattern that names the configured targets and counts the handler runs:
;
;   CLUSTER = 0 (flat model, DFR 0xFFFFFFFF, LDR = 8-bit mask):
;     single target: vCPU 0 LDR 0, vCPU 1 LDR BIT(i), i = 0..7; every dest BIT(i) | k with k not
;       overlapping BIT(i), 0xFF excluded: exactly vCPU 1 takes it.
;     two targets: for i != j, vCPU 0 BIT(i) and vCPU 1 BIT(j), then both BIT(i) | BIT(j) (aliased
;       logical IDs); every dest BIT(i) | BIT(j) | k: both take it.
;   CLUSTER = 1 (cluster model, DFR 0x0FFFFFFF, LDR = cluster << 4 | 4-bit mask), clusters 0..14:
;     the same with BIT(i), i = 0..3, inside cluster c, and k over the 4-bit masks.
;
; Before each IPI vCPU 0 waits until vCPU 1 is asleep in HLT (HC_VCPU_RUN_STATE), so that every IPI
; must wake a blocked target, which is what apic.c's delay before each send aims for (the incomplete-
; IPI path). Unlike apic.c, vCPU 0 stays in the cluster model (LDR 0) for the cluster single-target
; tests, so that the two vCPUs never mix models, and each configuration is set once for all of its
; destinations rather than once per destination.
;
; Slots: vCPU 0: 0 IPIs sent, 1 its own handler runs, 2 handler runs it expected for itself,
; 3 handler runs it expected for vCPU 1, 4 configurations; vCPU 1: 1 its own handler runs.
; Abort codes: 2 an IPI was not taken by every target within 1 s (value = dest | configuration << 8);
; 3 a vCPU took more IPIs than were sent to it (value = dest); 4 vCPU 1 did not acknowledge a
; configuration; 5 vCPU 1 did not fall asleep; 100 vCPU 1 did not come online.

        .equ VCPUS, 2
        .equ CLUSTER, 0
        .equ VECTOR, 0xF1
        .equ COMMAND_VECTOR, 0x22
        .equ CF_LDR_CLUSTER_FLAG, 0x80000000
        .entry bsp, 0
        .entry server, 1

set_up: li r2, handler
        st32 [cf_ivt + 4 * VECTOR], r2
        li r2, cf_eoi_handler
        st32 [cf_ivt + 4 * COMMAND_VECTOR], r2
        st32 [cf_ivt + 4 * CF_FINISH_VECTOR], r2
        livt cf_ivt
        ret

; set_ldr: r1 = logical ID (bits 7:0) | CF_LDR_CLUSTER_FLAG for the cluster model. Clobbers r2, r3.
set_ldr:
        li r2, APIC_DFR_FLAT
        li r3, CF_LDR_CLUSTER_FLAG
        and r3, r1, r3
        beqz r3, set_ldr_dfr
        li r2, APIC_DFR_CLUSTER
set_ldr_dfr:
        st32 [APIC_BASE + APIC_DFR], r2
        and r2, r1, 0xFF
        shl r2, r2, 24
        st32 [APIC_BASE + APIC_LDR], r2
        ret

; ---- vCPU 1: serves configuration commands, takes IPIs, sleeps in between ----
server: call set_up
        li r2, 1
        xadd r2, [cf_online]
server_loop:
        cli
        ld32 r1, [command]
        beqz r1, server_sleep
        call set_ldr
        li r2, 0
        xchg r2, [command]              ; acknowledge: the LDR write has taken effect (it traps)
        jmp server_loop
server_sleep:
        ld32 r2, [cf_finish]
        bnez r2, server_end
        sti
        hlt
        jmp server_loop
server_end:
        li r1, 1
        ld32 r2, [received + 4]
        hypercall HC_REPORT
        jmp cf_done

; ---- vCPU 0 ----
; configure: r6 = vCPU 0's logical ID, r7 = vCPU 1's (each with the cluster flag when CLUSTER).
configure:
        push r13
        mov r1, r6
        call set_ldr
        li r2, 1
        xadd r2, [configurations]
        xchg r7, [command]              ; publish vCPU 1's new ID (r7 now holds the old word, 0)
        li r4, 1 << APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | COMMAND_VECTOR
        st32 [APIC_BASE + APIC_ICR], r5
        rdtsc r10
configure_wait:
        li r2, 0
        xadd r2, [command]
        beqz r2, configure_done
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, configure_wait
        li r1, 4
        jmp cf_abort
configure_done:
        pop r13
        ret

; send: r8 = destination byte, r4 = IPIs vCPU 0 must take (0/1), r5 = IPIs vCPU 1 must take (0/1).
; Waits for vCPU 1 to sleep, sends, and waits until both counts are reached. Clobbers r1-r5, r9-r12.
send:   ld32 r2, [expected]
        add r2, r2, r4
        st32 [expected], r2
        ld32 r2, [expected + 4]
        add r2, r2, r5
        st32 [expected + 4], r2
        rdtsc r10
send_sleep_wait:
        li r1, 1
        hypercall HC_VCPU_RUN_STATE
        li r2, VCPU_STATE_BLOCKED
        beq r0, r2, send_now
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, send_sleep_wait
        li r1, 5
        jmp cf_abort
send_now:
        shl r2, r8, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r3, APIC_DEST_LOGICAL | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r3
        li r2, 1
        xadd r2, [sent]
        rdtsc r10
send_wait:
        li r2, 0
        xadd r2, [received]
        ld32 r3, [expected]
        bltu r3, r2, send_too_many
        li r4, 0
        xadd r4, [received + 4]
        ld32 r5, [expected + 4]
        bltu r5, r4, send_too_many
        bne r2, r3, send_pending
        beq r4, r5, send_done
send_pending:
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CF_NS_PER_SECOND
        bltu r11, r12, send_wait
        ld32 r2, [configurations]
        shl r2, r2, 8
        or r2, r2, r8
        li r1, 2
        jmp cf_abort
send_too_many:
        mov r2, r8
        li r1, 3
        jmp cf_abort
send_done:
        ret

bsp:    call set_up
        li r1, 1
        call cf_wait_online
        sti
        li r2, CLUSTER
        bnez r2, cluster_tests

; ---- flat: single target ----
        li r13, 0                       ; i
flat_single_i:
        li r6, 0
        li r2, 1
        shl r7, r2, r13                 ; BIT(i)
        call configure
        li r9, 0                        ; k
flat_single_k:
        li r2, 1
        shl r2, r2, r13
        and r3, r9, r2
        bnez r3, flat_single_next
        or r8, r9, r2
        li r3, 0xFF
        beq r8, r3, flat_single_next
        push r9
        li r4, 0
        li r5, 1
        call send
        pop r9
flat_single_next:
        add r9, r9, 1
        li r2, 0xFF
        bltu r9, r2, flat_single_k
        add r13, r13, 1
        li r2, 8
        bltu r13, r2, flat_single_i

; ---- flat: two targets; r13 = i, r14 = j, r15 is sp, so the pass number lives in memory ----
        li r13, 0
flat_multi_i:
        li r14, 0
flat_multi_j:
        beq r13, r14, flat_multi_next_j
        li r2, 0
        st32 [pass], r2
flat_multi_pass:
        li r2, 1
        shl r6, r2, r13                 ; BIT(i)
        shl r7, r2, r14                 ; BIT(j)
        ld32 r2, [pass]
        beqz r2, flat_multi_configure
        or r6, r6, r7                   ; second pass: both BIT(i) | BIT(j)
        mov r7, r6
flat_multi_configure:
        call configure
        li r9, 0
flat_multi_k:
        li r2, 1
        shl r3, r2, r13
        shl r2, r2, r14
        or r2, r2, r3                   ; BIT(i) | BIT(j)
        and r3, r9, r2
        bnez r3, flat_multi_next_k
        or r8, r9, r2
        push r9
        li r4, 1
        li r5, 1
        call send
        pop r9
flat_multi_next_k:
        add r9, r9, 1
        li r2, 0x100
        bltu r9, r2, flat_multi_k
        ld32 r2, [pass]
        add r2, r2, 1
        st32 [pass], r2
        li r3, 2
        bltu r2, r3, flat_multi_pass
flat_multi_next_j:
        add r14, r14, 1
        li r2, 8
        bltu r14, r2, flat_multi_j
        add r13, r13, 1
        bltu r13, r2, flat_multi_i
        jmp finish

; ---- cluster: r12 would be clobbered by send, so the cluster number lives in memory ----
cluster_tests:
        li r2, 0
        st32 [cluster], r2
cluster_c:
        li r13, 0                       ; i
cluster_single_i:
        li r6, CF_LDR_CLUSTER_FLAG      ; vCPU 0: cluster model, LDR 0 (names no cluster member)
        ld32 r2, [cluster]
        shl r2, r2, 4
        li r3, 1
        shl r3, r3, r13
        or r7, r2, r3
        or r7, r7, r6                   ; vCPU 1: c << 4 | BIT(i)
        call configure
        li r9, 0
cluster_single_k:
        li r2, 1
        shl r2, r2, r13
        and r3, r9, r2
        bnez r3, cluster_single_next
        ld32 r3, [cluster]
        shl r3, r3, 4
        or r8, r9, r2
        or r8, r8, r3
        push r9
        li r4, 0
        li r5, 1
        call send
        pop r9
cluster_single_next:
        add r9, r9, 1
        li r2, 0x10
        bltu r9, r2, cluster_single_k
        add r13, r13, 1
        li r2, 4
        bltu r13, r2, cluster_single_i

        li r13, 0
cluster_multi_i:
        li r14, 0
cluster_multi_j:
        beq r13, r14, cluster_multi_next_j
        li r2, 0
        st32 [pass], r2
cluster_multi_pass:
        ld32 r3, [cluster]
        shl r3, r3, 4
        li r2, CF_LDR_CLUSTER_FLAG
        or r3, r3, r2                   ; flag | c << 4
        li r2, 1
        shl r6, r2, r13
        shl r7, r2, r14
        ld32 r2, [pass]
        beqz r2, cluster_multi_configure
        or r6, r6, r7
        mov r7, r6
cluster_multi_configure:
        or r6, r6, r3
        or r7, r7, r3
        call configure
        li r9, 0
cluster_multi_k:
        li r2, 1
        shl r3, r2, r13
        shl r2, r2, r14
        or r2, r2, r3
        and r3, r9, r2
        bnez r3, cluster_multi_next_k
        ld32 r3, [cluster]
        shl r3, r3, 4
        or r8, r9, r2
        or r8, r8, r3
        push r9
        li r4, 1
        li r5, 1
        call send
        pop r9
cluster_multi_next_k:
        add r9, r9, 1
        li r2, 0x10
        bltu r9, r2, cluster_multi_k
        ld32 r2, [pass]
        add r2, r2, 1
        st32 [pass], r2
        li r3, 2
        bltu r2, r3, cluster_multi_pass
cluster_multi_next_j:
        add r14, r14, 1
        li r2, 4
        bltu r14, r2, cluster_multi_j
        add r13, r13, 1
        bltu r13, r2, cluster_multi_i

        ld32 r2, [cluster]
        add r2, r2, 1
        st32 [cluster], r2
        li r3, 15
        bltu r2, r3, cluster_c

finish: li r1, 0
        ld32 r2, [sent]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [received]
        hypercall HC_REPORT
        li r1, 2
        ld32 r2, [expected]
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [expected + 4]
        hypercall HC_REPORT
        li r1, 4
        ld32 r2, [configurations]
        hypercall HC_REPORT
        call cf_finish_all
        jmp cf_done

; The IPI handler: count the IPI for the vCPU that took it (APIC IDs are the indices here).
handler:
        push r2
        push r3
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24 - 2
        li r3, 1
        xadd r3, [r2 + received]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret

        .align 4
command:        .word 0
sent:           .word 0
configurations: .word 0
pass:           .word 0
cluster:        .word 0
received:       .word 0, 0
expected:       .word 0, 0
        .include "conformance.s"
