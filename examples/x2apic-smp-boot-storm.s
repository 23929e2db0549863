; x2apic-smp-boot-storm.s: bring up every application vCPU with INIT-SIPI-SIPI in x2APIC mode, then
; have every vCPU send fixed IPIs to the next few vCPUs (a ring), and count every IPI twice: the
; messages each vCPU sends and the interrupts each one takes. Written for large VMs (up to
; MAX_VCPUS; 4096 with x2AVIC's 4K extension): above 255 vCPUs the guest has to use x2APIC, since a
; vCPU with index 255 or more has no 8-bit xAPIC ID (docs/guest-isa.md §8.1).
;
; Boot (Intel SDM vol. 3 §9.4.4, as examples/smp-boot.s, but in x2APIC mode): only vCPU 0, the
; bootstrap processor, has an entry point. It switches to x2APIC mode and, through the 64-bit ICR
; (MSR 0x830), sends INIT to all the others (shorthand all-excluding-self), waits 10 ms, sends a
; start-up IPI for the page AP_START, waits 200 us, sends it again and waits 200 us. Each
; application vCPU starts at AP_START in xAPIC mode with its APIC software-disabled (INIT's SVR
; 0xFF); it switches to x2APIC mode, enables its APIC through the SVR MSR, loads its IVT, checks in
; (an atomic counter) and halts with interrupts enabled until the BSP releases it.
;
; Barriers: the BSP polls a counter (with a timeout that aborts the VM) while everyone else sleeps
; in `sti; hlt` until its wake-up handler has run once more; the BSP then wakes them all with one
; fixed IPI (vector WAKE_VECTOR, shorthand all-excluding-self). Waiting for the handler rather than
; for a flag means a wake-up IPI can never be left pending at the end, nor merge with the next one:
; a vCPU leaves barrier N only after it took wake-up N, and the BSP sends wake-up N+1 only after
; every vCPU arrived at barrier N+1.
;  1. check-in: the BSP waits until all vCPUs (itself included) checked in, then releases them;
;  2. storm: each vCPU sends ROUNDS rounds of STORM_VECTOR to vCPUs index+1 .. index+TARGETS
;     (mod the vCPU count; fewer targets in a VM too small for TARGETS others), physical
;     destination = the target's x2APIC ID, which is its index; the handler counts what arrives;
;  3. arrival: the BSP waits until all vCPUs finished sending, then releases them;
;  4. drain: with interrupts enabled, each vCPU waits until its STORM_VECTOR IRR bit is clear (IRR
;     is read through its MSR), so every storm IPI sent to it has been taken or merged.
;
; Received can be less than sent: a fixed IPI whose vector is already pending merges with it.
;
; Results (HC_REPORT slots), every vCPU: 0 = IPI messages it sent, one per destination (the BSP's
; include INIT and both start-up IPIs to every other vCPU, and both wake-up broadcasts); 1 = storm
; IPIs its handler took; 2 = wake-up IPIs its handler took (2 on an application vCPU, 0 on the
; BSP). vCPU 0 also: 3 = vCPUs that checked in (the vCPU count on success).
; Abort codes: 1 = more vCPUs than MAX_VCPUS (value = the vCPU count);
;              2 = not every vCPU checked in within TIMEOUT_SECONDS (value = how many did);
;              3 = more check-ins than vCPUs, a vCPU started twice (value = check-ins);
;              4 = not every vCPU finished its storm within TIMEOUT_SECONDS (value = how many did).

        .equ AP_START, 0x8000
        .equ STORM_VECTOR, 0x40
        .equ WAKE_VECTOR, 0x41
        .equ TARGETS, 4                 ; each vCPU sends to the next TARGETS vCPUs ...
        .equ ROUNDS, 2                  ; ... ROUNDS times
        .equ MAX_VCPUS, 4096
        .equ INIT_WAIT_NS, 10000000     ; 10 ms after INIT (SDM)
        .equ SIPI_WAIT_NS, 200000       ; 200 us after each start-up IPI (SDM)
        .equ TIMEOUT_SECONDS, 120
        .equ SECOND_NS, 1000000000
        .equ RECORD_BYTES, 16           ; one per vCPU, written only by that vCPU
        .equ RECORD_STORM, 0            ; storm IPIs taken
        .equ RECORD_WAKE, 4             ; wake-up IPIs taken
        .equ MSR_ID, APIC_BASE_MSR + (APIC_ID >> 4)
        .equ MSR_SVR, APIC_BASE_MSR + (APIC_SVR >> 4)
        .equ MSR_EOI, APIC_BASE_MSR + (APIC_EOI >> 4)
        .equ MSR_ICR, APIC_BASE_MSR + (APIC_ICR >> 4)
        .equ MSR_STORM_IRR, APIC_BASE_MSR + ((APIC_IRR + 0x10 * (STORM_VECTOR >> 5)) >> 4)
        .equ STORM_IRR_BIT, 1 << (STORM_VECTOR & 31)
        .equ ABORT_TOO_MANY_VCPUS, 1
        .equ ABORT_CHECK_IN_TIMEOUT, 2
        .equ ABORT_STARTED_TWICE, 3
        .equ ABORT_STORM_TIMEOUT, 4

        .entry bsp, 0

; Registers on every vCPU once started: r8 = its index, r9 = the vCPU count, r13 = IPI messages
; sent, r14 = its record. A wrmsr of the ICR takes bits 31:0 in r2 and the destination in r3.

; ---- vCPU 0, the bootstrap processor ----
bsp:    mov r8, r0
        mov r9, r1
        li r2, MAX_VCPUS
        bgeu r2, r9, count_ok
        li r1, ABORT_TOO_MANY_VCPUS
        mov r2, r9
        hypercall HC_ABORT
        jmp park
count_ok:
        livt ivt
        call enter_x2apic               ; its APIC is software-enabled from the start (SVR 0x1FF)
        sub r12, r9, 1                  ; messages per broadcast to the others
        li r13, 0
        li r2, APIC_DEST_ALLBUT | APIC_DM_INIT | APIC_INT_ASSERT
        li r3, 0                        ; the shorthand needs no destination
        wrmsr MSR_ICR, r2
        add r13, r13, r12
        li r4, INIT_WAIT_NS
        call delay
        li r2, APIC_DEST_ALLBUT | APIC_DM_STARTUP | (AP_START >> 12)
        li r3, 0
        wrmsr MSR_ICR, r2
        add r13, r13, r12
        li r4, SIPI_WAIT_NS
        call delay
        li r2, APIC_DEST_ALLBUT | APIC_DM_STARTUP | (AP_START >> 12)
        li r3, 0
        wrmsr MSR_ICR, r2               ; the second start-up IPI: ignored by a vCPU already started
        add r13, r13, r12
        li r4, SIPI_WAIT_NS
        call delay

        li r2, 1
        xadd r2, [checked_in]           ; the BSP counts itself
        li r5, checked_in
        li r6, ABORT_CHECK_IN_TIMEOUT
        call wait_for_all
        bne r2, r9, started_twice
        li r1, 3
        hypercall HC_REPORT
        call wake_all                   ; release barrier 1
        jmp storm
started_twice:
        li r1, ABORT_STARTED_TWICE
        hypercall HC_ABORT
        jmp park

; The BSP's half of a barrier: until the counter at r5 reaches the vCPU count, at most
; TIMEOUT_SECONDS (else abort with code r6 and the count). Returns the count in r2.
; Clobbers r2, r4, r10, r11.
wait_for_all:
        li r4, TIMEOUT_SECONDS
        rdtsc r10
wait_for_all_poll:
        li r2, 0
        xadd r2, [r5]                   ; an ordered read
        bgeu r2, r9, wait_for_all_done
        pause
        rdtsc r11
        sub r11, r11, r10
        li r2, SECOND_NS
        bltu r11, r2, wait_for_all_poll
        add r10, r10, r2                ; one more second gone
        sub r4, r4, 1
        bnez r4, wait_for_all_poll
        mov r1, r6
        li r2, 0
        xadd r2, [r5]
        hypercall HC_ABORT
        jmp park
wait_for_all_done:
        ret

; One wake-up IPI to every other vCPU. Clobbers r2, r3.
wake_all:
        li r2, APIC_DEST_ALLBUT | APIC_DM_FIXED | WAKE_VECTOR
        li r3, 0
        wrmsr MSR_ICR, r2
        add r13, r13, r12
        ret

; ---- every vCPU from here ----
; The storm, then barrier 2, the drain and the report.
storm:
        mul r14, r8, RECORD_BYTES
        add r14, r14, records
        sub r12, r9, 1                  ; targets per round: TARGETS, or every other vCPU if fewer
        li r2, TARGETS
        bgeu r12, r2, targets_ok
        mov r2, r12
targets_ok:
        mov r12, r2
        sti                             ; receive while sending
        li r6, ROUNDS
storm_round:
        li r7, 1                        ; distance to the target
storm_next:
        bltu r12, r7, storm_round_done
        add r3, r8, r7
        remu r3, r3, r9                 ; the target's index, its x2APIC ID
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | STORM_VECTOR
        wrmsr MSR_ICR, r2
        add r13, r13, 1
        add r7, r7, 1
        jmp storm_next
storm_round_done:
        sub r6, r6, 1
        bnez r6, storm_round

        li r2, 1
        xadd r2, [arrived]
        bnez r8, storm_wait             ; an application vCPU waits for wake-up 2
        sub r12, r9, 1
        li r5, arrived
        li r6, ABORT_STORM_TIMEOUT
        call wait_for_all
        call wake_all                   ; release barrier 2
        jmp drain
storm_wait:
        li r5, 2
        call wait_for_wake
drain:  sti                             ; a pending IPI is taken at the next instruction boundary
        rdmsr r2, MSR_STORM_IRR
        and r2, r2, STORM_IRR_BIT
        bnez r2, drain
        cli
        li r1, 0
        mov r2, r13
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [r14 + RECORD_STORM]
        hypercall HC_REPORT
        li r1, 2
        ld32 r2, [r14 + RECORD_WAKE]
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE
park:   cli
        hlt
        jmp park

; An application vCPU's half of a barrier: sleep until its handler has taken r5 wake-up IPIs in
; all. IF = 0 during the check, so a wake-up after it still ends the hlt (the sti shadow).
wait_for_wake:
        cli
        ld32 r2, [r14 + RECORD_WAKE]
        bgeu r2, r5, woken
        sti
        hlt
        jmp wait_for_wake
woken:  ret

; Switches this vCPU's APIC to x2APIC mode (IA32_APIC_BASE bit 10). Clobbers r2, r3.
enter_x2apic:
        rdmsr r2, MSR_IA32_APICBASE     ; r2 = bits 31:0, r3 = bits 63:32
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2
        ret

; Busy-waits r4 nanoseconds by the clock. Clobbers r10, r11.
delay:  rdtsc r10
delay_loop:
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r4, delay_loop
        ret

; The handlers add 1 to a field of this vCPU's record (found from the x2APIC ID) and EOI.
storm_handler:
        push r4
        li r4, RECORD_STORM
        jmp count_and_eoi
wake_handler:
        push r4
        li r4, RECORD_WAKE
count_and_eoi:
        push r2
        push r3
        rdmsr r2, MSR_ID                ; r2 = the x2APIC ID (the index), r3 = 0
        mul r2, r2, RECORD_BYTES
        add r4, r4, r2
        ld32 r2, [r4 + records]         ; only this vCPU writes its record
        add r2, r2, 1
        st32 [r4 + records], r2
        li r2, 0
        li r3, 0
        wrmsr MSR_EOI, r2
        pop r3
        pop r2
        pop r4
        iret

; ---- the start-up page: application vCPUs begin here with r0 = index, r1 = vCPUs, sp = stack ----
        .org AP_START
ap_start:
        mov r8, r0
        mov r9, r1
        li r13, 0
        mul r14, r8, RECORD_BYTES
        add r14, r14, records
        livt ivt
        call enter_x2apic
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        li r3, 0
        wrmsr MSR_SVR, r2               ; INIT left the APIC software-disabled
        li r2, 1
        xadd r2, [checked_in]           ; ready for the wake-up: x2APIC, enabled, IVT loaded
        li r5, 1
        call wait_for_wake
        jmp storm

        .align 4
checked_in:     .word 0
arrived:        .word 0

        .align 64
ivt:
        .zero 4 * STORM_VECTOR
        .word storm_handler
        .word wake_handler
        .zero 4 * (255 - WAKE_VECTOR)

        .align 64
records:        .zero MAX_VCPUS * RECORD_BYTES
