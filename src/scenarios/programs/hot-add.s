; hot-add.s: vCPU hot-add while IPIs fly. Every vCPU, the VCPUS created with the VM and the ones the
; host hot-adds while the run goes on (up to MAX_VCPUS), sends fixed IPIs as fast as it can to
; seeded pseudo-random targets among the vCPUs online (never itself), and counts what its own
; handler takes in its own 64-byte line. The host adds vCPUs at evenly spaced moments of the run and
; then raises `online_vcpus` (as firmware tells the OS about a new CPU); senders re-read it every
; STOP_POLL_EVERY IPIs, so a new vCPU becomes a target at once, even before its worker runs (its
; IRR holds the IPIs until it does). Under the rfc-v2 backing-page policy every addition resizes the
; APIC-access memslot and moves every existing vCPU's backing page while these IPIs are in flight.
;
; There is no end-of-run barrier (the number of vCPUs changes): when stop_requested is set, each
; vCPU disables interrupts, reports and finishes; IPIs that reach it afterwards stay pending in its
; IRR, where the host's balance counts them.
;
; Report slots (0-2 as every scenario: ICR writes, interrupts handled, measured IPIs)
;   every vCPU: 0 IPIs sent (one ICR write each), 1 IPIs handled, 2 0 (no latency samples)
;
; A count-based run (no hot-add) gives each vCPU IPI_COUNT / VCPUS, rounded up, to send.

        .equ VCPUS, 4                   ; host define: vCPUs created with the VM (the targets)
        .equ MAX_VCPUS, 8               ; host define: vCPUs the VM may reach by hot-add
        .equ IPI_COUNT, 0xFFFFFFFF      ; host define (a hot-add run is time-based)
        .equ SEED, 1                    ; host define
        .equ IPI_VECTOR, 0x40
        .equ STOP_POLL_EVERY, 64        ; a power of two
        .equ GOLDEN, 0x9E3779B9
        .equ LINE, 64                   ; one line per vCPU, written by its handler only
        .equ L_RCVD, 0
        .equ ABORT_VCPU_COUNT, 1        ; common.s needs it; this program does not check the count

        .entry start

; r4 = target, r5 = ICR, r6 = budget, r7 = sent, r8 = this vCPU, r9 = generator state, r10 = this vCPU's line,
; r13 = vCPUs online (the last value read), r14 = targets to pick from (the others online)
start:
        mov r8, r0
        livt ivt
        call common_my_line
        mov r10, r2
        add r9, r8, 1                   ; the generator's seed: never 0
        mul r9, r9, GOLDEN
        xor r9, r9, SEED
        bnez r9, seeded
        li r9, GOLDEN
seeded:
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | IPI_VECTOR
        li r7, 0
        li r6, IPI_COUNT / VCPUS + (IPI_COUNT % VCPUS + VCPUS - 1) / VCPUS ; each vCPU's share, rounded up
        call read_online
        sti
send_loop:
        bgeu r7, r6, finished
        and r2, r7, STOP_POLL_EVERY - 1
        bnez r2, pick
        ld32 r2, [stop_requested]
        bnez r2, finished
        call read_online
pick:
        shl r2, r9, 13                  ; xorshift32
        xor r9, r9, r2
        shr r2, r9, 17
        xor r9, r9, r2
        shl r2, r9, 5
        xor r9, r9, r2
        remu r4, r9, r14                ; 0 .. r14-1, then skip this vCPU
        sltu r2, r4, r8
        xor r2, r2, 1
        add r4, r4, r2
send:
        shl r2, r4, APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        st32 [APIC_BASE + APIC_ICR], r5
        add r7, r7, 1
        jmp send_loop

finished:
        cli                             ; from here on IPIs stay pending (counted by the host)
        li r1, 0
        mov r2, r7
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [r10 + L_RCVD]
        hypercall HC_REPORT
        jmp common_done

; read_online(): r13 <- online_vcpus (at least VCPUS), r14 <- r13 - 1. Clobbers r2.
read_online:
        ld32 r13, [online_vcpus]
        li r2, VCPUS
        bgeu r13, r2, online_ok
        mov r13, r2
online_ok:
        sub r14, r13, 1
        ret

        .include "common.s"             ; common_abort, common_done, common_park
        .include "common-line.s"        ; common_my_line
        .include "common-count.s"       ; common_count_handler (the IPI handler)


        .align 64
stop_requested: .word 0                 ; the host sets it when the run is up
        .align 64
online_vcpus:   .word 0                 ; the host: vCPUs created so far (0 until the first hot-add)
        .align 64
lines:          .zero LINE * MAX_VCPUS

        .align 64
ivt:
        .zero 4 * IPI_VECTOR
        .word common_count_handler
        .zero 4 * (255 - IPI_VECTOR)
