; smp-boot.s: bring up the application vCPUs the way a PC does, with INIT-SIPI-SIPI
; (Intel SDM vol. 3 §9.4.4 "MP Initialization Example"; kvm-unit-tests x86/smptest's start-up).
;
; Only vCPU 0, the bootstrap processor, has an entry point. Every other vCPU has none, so it starts
; in wait-for-SIPI: asleep, running nothing. The BSP broadcasts INIT to all the others (shorthand
; all-excluding-self), waits 10 ms, sends a start-up IPI whose vector is the start-up page number
; (AP_START >> 12), waits 200 us and sends it once more, as the SDM's algorithm does: the second one
; covers a processor that missed the first, and is ignored by one the first already started. The
; waits read the clock (rdtsc, nanoseconds).
;
; Each application vCPU starts at AP_START, a 4 KiB-aligned page below 1 MiB (the vector names
; address vector << 12). It enables its APIC (INIT left it software-disabled, SVR = 0xFF), reports
; its APIC ID, checks in by incrementing `checked_in`, and finishes. The BSP waits up to 2 s for all
; of them, then reports how many checked in and finishes.
;
; Results (HC_REPORT slots): every vCPU: 0 = its APIC ID, 1 = the vCPU index it found in r0.
; vCPU 0 also: 2 = application vCPUs that checked in (vCPUs - 1 on success).
; Abort codes: 1 = not every application vCPU checked in within 2 s (value = how many did);
;              2 = the second start-up IPI started a vCPU again (value = check-ins seen).

        .equ AP_START, 0x8000
        .equ INIT_WAIT_NS, 10000000     ; 10 ms after INIT (SDM)
        .equ SIPI_WAIT_NS, 200000       ; 200 us after each start-up IPI (SDM)
        .equ CHECK_IN_TIMEOUT_NS, 2000000000
        .entry bsp, 0

; ---- vCPU 0, the bootstrap processor: r0 = 0, r1 = the number of vCPUs ----
bsp:    mov r7, r0                      ; hypercalls return in r0: keep the index
        mov r8, r1                      ; and the vCPU count
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        li r1, 0
        hypercall HC_REPORT
        li r1, 1
        mov r2, r7
        hypercall HC_REPORT
        li r2, 0
        st32 [APIC_BASE + APIC_ICR2], r2   ; the shorthand needs no destination
        li r2, APIC_DEST_ALLBUT | APIC_DM_INIT | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r2
        li r3, INIT_WAIT_NS
        call delay
        li r2, APIC_DEST_ALLBUT | APIC_DM_STARTUP | (AP_START >> 12)
        st32 [APIC_BASE + APIC_ICR], r2
        li r3, SIPI_WAIT_NS
        call delay
        st32 [APIC_BASE + APIC_ICR], r2    ; the second start-up IPI, same vector
        li r3, SIPI_WAIT_NS
        call delay

        sub r9, r8, 1                   ; application vCPUs expected
        rdtsc r10
wait_all:
        li r2, 0
        xadd r2, [checked_in]           ; an ordered read
        bgeu r2, r9, all_in
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, CHECK_IN_TIMEOUT_NS
        bltu r11, r12, wait_all
        li r1, 1
        hypercall HC_ABORT
        jmp park
all_in: bne r2, r9, twice               ; more check-ins than vCPUs: someone started twice
        li r1, 2
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE
        jmp park
twice:  li r1, 2
        hypercall HC_ABORT
park:   cli
        hlt
        jmp park

; Busy-waits r3 nanoseconds by the clock. Clobbers r10, r11.
delay:  rdtsc r10
delay_loop:
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r3, delay_loop
        ret

        .align 4
checked_in: .word 0

; ---- the start-up page: application vCPUs begin here with r0 = index, r1 = vCPUs, sp = stack ----
        .org AP_START
ap_start:
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        st32 [APIC_BASE + APIC_SVR], r2
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        push r0                         ; the stack works: sp was set at start-up
        li r1, 0
        hypercall HC_REPORT
        pop r2
        li r1, 1
        hypercall HC_REPORT
        li r2, 1
        xadd r2, [checked_in]
        li r1, 0
        hypercall HC_DONE
        jmp park
