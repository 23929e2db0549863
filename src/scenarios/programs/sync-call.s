; sync-call.s: kvm-unit-tests' vmexit `ipi` (and, with CALL_GAP_NS, `ipi_halt`) in the avic-smp ISA.
;
; vCPU 0, the caller, makes synchronous cross-vCPU calls the way kvm-unit-tests' on_cpu() does: it
; publishes the function and its argument, clears ipi_done, sends a fixed physical IPI with vector
; 0x20, and spins until the target's handler has run the function and set ipi_done. Every other vCPU
; idles as ap_online() does, in a `sti; hlt` loop. With more than two vCPUs the caller calls each of
; the others in turn. The function checks it runs on the vCPU it was meant for (smptest's id_map)
; and counts the call on that vCPU.
;
; The run ends after IPI_COUNT calls or when the host sets stop_requested; the caller then makes one
; last call on each vCPU, to `finish_call`, passing the number of calls it made to that vCPU, and the
; vCPU compares and finishes.
;
; Latency, one sample per call on the caller: rdtsc before publishing the call to rdtsc after seeing
; ipi_done, i.e. the whole on_cpu() (vmexit's "ipi" figure, as a distribution instead of a mean).
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured calls)
;   caller: 0 ICR writes (calls + finish calls), 1 0, 2 calls, 3 finish calls
;   others: 0 0, 1 interrupts handled (calls + 1 finish), 2 0, 3 calls run here,
;           4 calls the caller says it made here, 5 calls that ran on the wrong vCPU

        .equ VCPUS, 2                   ; host define
        .equ IPI_COUNT, 10000           ; host define: calls to make (0xFFFFFFFF: until stopped)
        .equ SEED, 0                    ; host define (unused: the calls go round robin)
        .equ CALL_GAP_NS, 0             ; busy wait after each call (vmexit ipi_halt: 2000 cycles)
        .equ IPI_VECTOR, 0x20           ; kvm-unit-tests' IPI vector
        .equ CALLER, 0
        .equ TIMEOUT_NS, 4000000000     ; the longest interval a 32-bit rdtsc difference measures
        .equ SPINS_PER_CLOCK_CHECK, 64
        .equ LINE, 64                   ; one line per vCPU, written by that vCPU only
        .equ L_CALLS, 0
        .equ L_HANDLED, 4
        .equ L_EXIT, 8
        .equ L_EXPECTED, 12
        .equ L_WRONG_CPU, 16

        .equ ABORT_VCPU_COUNT, 1        ; r2 = the vCPU count
        .equ ABORT_NOT_ONLINE, 2        ; r2 = vCPUs online
        .equ ABORT_CALL_NOT_DONE, 3     ; r2 = the target vCPU

        .entry caller, CALLER
        .entry ap

; ---------------------------------------------------------------------------------------------
; vCPU 0, the caller
;   r6 = target, r7 = calls, r10 = rdtsc at the call, r12 = TIMEOUT_NS

caller:
        li r2, VCPUS
        beq r1, r2, caller_count_ok
        mov r2, r1
        li r1, ABORT_VCPU_COUNT
        jmp common_abort
caller_count_ok:
        call common_wait_others_online  ; smp_init: every AP online before the first call
        li r6, 1
        li r7, 0
call_loop:
        ld32 r2, [stop_requested]
        bnez r2, finish
        li r3, IPI_COUNT
        bgeu r7, r3, finish
        rdtsc r10
        li r1, count_call
        mov r2, r6                      ; the argument: the vCPU it must run on
        call on_cpu
        rdtsc r11
        sub r1, r11, r10
        hypercall HC_LATENCY_SAMPLE
        add r7, r7, 1
        shl r3, r6, 2                   ; calls_made[target]++ (caller-private)
        ld32 r2, [r3 + calls_made]
        add r2, r2, 1
        st32 [r3 + calls_made], r2
        li r3, CALL_GAP_NS
        beqz r3, next_target
        rdtsc r10
gap:
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r3, gap
next_target:
        add r6, r6, 1
        li r2, VCPUS
        bltu r6, r2, call_loop
        li r6, 1
        jmp call_loop

finish:
        li r6, 1
finish_next:
        li r2, VCPUS
        bgeu r6, r2, caller_report
        rdtsc r10
        li r1, finish_call
        shl r3, r6, 2
        ld32 r2, [r3 + calls_made]      ; the argument: how many calls it should have run
        call on_cpu
        add r6, r6, 1
        jmp finish_next
caller_report:
        li r1, 0
        li r2, VCPUS - 1
        add r2, r2, r7
        hypercall HC_REPORT
        li r1, 2
        mov r2, r7
        hypercall HC_REPORT
        li r1, 3
        li r2, VCPUS - 1
        hypercall HC_REPORT
        jmp common_done

; on_cpu(r6 = vCPU, r1 = function, r2 = argument): publish, ipi_done = 0, IPI, spin until ipi_done.
; r10 = the start of the call (for the timeout). Clobbers r2, r11, r13.
on_cpu:
        st32 [ipi_function], r1
        st32 [ipi_data], r2
        li r2, 0
        xchg r2, [ipi_done]             ; an atomic store: function and data are visible before it
        shl r2, r6, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | IPI_VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
        li r13, SPINS_PER_CLOCK_CHECK
on_cpu_wait:
        ld32 r2, [ipi_done]
        bnez r2, on_cpu_done
        pause
        sub r13, r13, 1
        bnez r13, on_cpu_wait
        li r13, SPINS_PER_CLOCK_CHECK
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r12, on_cpu_wait
        li r1, ABORT_CALL_NOT_DONE
        mov r2, r6
        jmp common_abort
on_cpu_done:
        ret

; ---------------------------------------------------------------------------------------------
; Every other vCPU: ap_online()'s idle loop, made safe to leave (IF = 0 around the exit check)

ap:
        livt ivt
        mul r10, r0, LINE
        add r10, r10, lines
        li r2, 1
        xadd r2, [online]
ap_idle:
        cli
        ld32 r2, [r10 + L_EXIT]
        bnez r2, ap_report
        sti
        hlt                             ; the sti shadow: an IPI pending now still wakes the hlt
        jmp ap_idle
ap_report:
        li r1, 1
        ld32 r2, [r10 + L_HANDLED]
        hypercall HC_REPORT
        li r1, 3
        ld32 r2, [r10 + L_CALLS]
        hypercall HC_REPORT
        li r1, 4
        ld32 r2, [r10 + L_EXPECTED]
        hypercall HC_REPORT
        li r1, 5
        ld32 r2, [r10 + L_WRONG_CPU]
        hypercall HC_REPORT
        jmp common_done

; The IPI handler (kvm-unit-tests' ipi_entry): run the function, then ipi_done = 1, then EOI.
ipi_handler:
        push r1
        push r2
        push r3
        push r4
        ld32 r4, [APIC_BASE + APIC_ID]
        shr r4, r4, 24
        mul r4, r4, LINE
        add r4, r4, lines               ; this vCPU's line
        ld32 r2, [ipi_function]
        ld32 r1, [ipi_data]
        call r2                         ; function(r1 = argument, r4 = this vCPU's line)
        li r2, 1
        xadd r2, [r4 + L_HANDLED]
        li r2, 1
        xchg r2, [ipi_done]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r4
        pop r3
        pop r2
        pop r1
        iret

; The measured call: count it, and whether it ran where it was sent (r1 = the intended vCPU).
count_call:
        ld32 r3, [APIC_BASE + APIC_ID]
        shr r3, r3, 24
        beq r3, r1, count_call_here
        li r3, 1
        xadd r3, [r4 + L_WRONG_CPU]
count_call_here:
        li r3, 1
        xadd r3, [r4 + L_CALLS]
        ret

; The last call: r1 = calls the caller made to this vCPU; leave the idle loop.
finish_call:
        st32 [r4 + L_EXPECTED], r1
        li r3, 1
        xchg r3, [r4 + L_EXIT]
        ret

; ---------------------------------------------------------------------------------------------

        .include "common-online.s"      ; common_wait_others_online
        .include "common.s"             ; common_abort, common_done, common_park, ...

; ---------------------------------------------------------------------------------------------
; Data

        .align 64
stop_requested: .word 0                 ; the host sets it when a timed run is up
        .align 64
ipi_function:   .word 0                 ; the caller writes the call, the target reads it
ipi_data:       .word 0
        .align 64
ipi_done:       .word 0                 ; the target sets, the caller clears
        .align 64
online:         .word 0                 ; each AP adds 1 once
        .align 64
calls_made:     .zero 4 * VCPUS         ; caller-private
        .align 64
lines:          .zero LINE * VCPUS

        .align 64
ivt:
        .zero 4 * IPI_VECTOR
        .word ipi_handler
        .zero 4 * (255 - IPI_VECTOR)
