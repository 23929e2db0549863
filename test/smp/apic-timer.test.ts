// The LVT timer seen from guest code, through AVIC's trapped register writes and the vCPU run loop:
// one-shot fires once and not before its count has run out; periodic repeats until masked or given
// an initial count of 0; a halted vCPU sleeps (blocks) until its timer wakes it; a timer vector at or
// below the TPR class stays pending until TPR drops. Only orders of events are asserted, never times.
import { describe, expect, it } from 'vitest';
import { createGuest, summary } from './smp-support.js';

const VECTOR = 0xee;

// Shared by every program: the handler counts in `ticks`, keeps the clock of its first run in
// `first_tick_at`, and EOIs; `spin` busy-waits r3 ns with interrupts as they are. Slots via HC_REPORT.
const common = `
        .equ VECTOR, ${VECTOR}
        .equ LVT_PERIODIC, 1 << 17
        .equ LVT_MASKED, 1 << 16
        .equ DIVIDE_BY_1, 0xB
setup:  li r2, handler
        st32 [ivt + 4 * VECTOR], r2
        livt ivt
        li r2, DIVIDE_BY_1
        st32 [APIC_BASE + APIC_TDCR], r2
        ret
handler:
        push r2
        li r2, 1
        xadd r2, [ticks]
        bnez r2, handler_eoi
        rdtsc r2
        st32 [first_tick_at], r2
handler_eoi:
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret
spin:   rdtsc r10
spin_loop:
        pause
        rdtsc r11
        sub r11, r11, r10
        bltu r11, r3, spin_loop
        ret
report: push r1
        hypercall HC_REPORT
        pop r1
        ret
fail:   hypercall HC_ABORT
park:   cli
        hlt
        jmp park
        .align 4
ticks:          .word 0
first_tick_at:  .word 0
        .align 8
ivt:    .zero 4 * 256
`;

describe('the local APIC timer', () => {
  it('one-shot: fires exactly once, no sooner than its count (1 GHz bus, divide by 1)', async () => {
    const { vm } = await createGuest(
      `
        .entry start
        .equ COUNT, 1000000
start:  call setup
        li r2, VECTOR
        st32 [APIC_BASE + APIC_LVTT], r2
        rdtsc r6
        li r2, COUNT
        st32 [APIC_BASE + APIC_TMICT], r2
        sti
wait:   ld32 r2, [ticks]
        beqz r2, wait
        li r3, 5000000                  ; 5 ms more: a one-shot timer must stay quiet
        call spin
        li r1, 0
        ld32 r2, [ticks]
        call report
        li r1, 1
        ld32 r2, [first_tick_at]
        sub r2, r2, r6
        call report
        li r1, 0
        hypercall HC_DONE
${common}`,
      { vcpus: 1 },
    );
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    const [ticks, elapsed] = report.perVcpu[0]!.guest.reports;
    expect(ticks).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(1_000_000);
    const counters = report.perVcpu[0]!.counters;
    expect([counters.timerExpiries, counters.timerInterruptsAccepted]).toEqual([1, 1]);
    expect(report.ipis.timerInterrupts).toBe(1);
    expect(report.ipis.lost).toBe(0);
  });

  it('periodic: fires again and again; masking stops the interrupts, unmasking resumes them, an initial count of 0 stops the timer', async () => {
    const { vm } = await createGuest(
      `
        .entry start
start:  call setup
        li r2, LVT_PERIODIC | VECTOR
        st32 [APIC_BASE + APIC_LVTT], r2
        li r2, 200000                   ; 200 us periods
        st32 [APIC_BASE + APIC_TMICT], r2
        sti
wait5:  ld32 r2, [ticks]
        sltu r2, r2, 5
        bnez r2, wait5
        ; Mask, then let an expiry that was already pending in IRR be taken, then count.
        li r2, LVT_MASKED | LVT_PERIODIC | VECTOR
        st32 [APIC_BASE + APIC_LVTT], r2
        nop
        ld32 r7, [ticks]
        li r3, 3000000                  ; 3 ms = 15 periods, masked
        call spin
        ld32 r2, [ticks]
        sub r2, r2, r7
        li r1, 0
        call report                     ; slot 0: interrupts while masked (0)
        li r2, LVT_PERIODIC | VECTOR
        st32 [APIC_BASE + APIC_LVTT], r2
        add r8, r7, 3
wait3:  ld32 r2, [ticks]
        bltu r2, r8, wait3
        li r1, 1
        li r2, 1
        call report                     ; slot 1: unmasked, it fired 3 more times
        li r2, 0
        st32 [APIC_BASE + APIC_TMICT], r2
        nop
        ld32 r7, [ticks]
        li r3, 3000000
        call spin
        ld32 r2, [ticks]
        sub r2, r2, r7
        li r1, 2
        call report                     ; slot 2: interrupts after TMICT = 0 (0)
        ld32 r2, [APIC_BASE + APIC_TMCCT]
        li r1, 3
        call report                     ; slot 3: current count of a stopped timer (0)
        li r1, 0
        hypercall HC_DONE
${common}`,
      { vcpus: 1 },
    );
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.perVcpu[0]!.guest.reports.slice(0, 4)).toEqual([0, 1, 0, 0]);
    const counters = report.perVcpu[0]!.counters;
    // 15 masked periods at least expired without an interrupt.
    expect(counters.timerExpiries - counters.timerInterruptsAccepted - counters.timerInterruptsCoalesced).toBeGreaterThanOrEqual(10);
    expect(report.ipis.lost).toBe(0);
  });

  it('a halted vCPU sleeps until its timer fires (it blocks; nothing spins), and the VM is not taken for idle meanwhile', async () => {
    const { vm } = await createGuest(
      `
        .entry start
start:  call setup
        li r2, VECTOR
        st32 [APIC_BASE + APIC_LVTT], r2
        li r2, 50000000                 ; 50 ms: longer than any halt-polling window
        st32 [APIC_BASE + APIC_TMICT], r2
sleep:  cli
        ld32 r2, [ticks]
        bnez r2, woken
        sti
        hlt
        jmp sleep
woken:  li r1, 0
        li r2, 1
        call report
        li r1, 0
        hypercall HC_DONE
${common}`,
      { vcpus: 1 },
    );
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.exit.reason).toBe('all-done');
    const counters = report.perVcpu[0]!.counters;
    expect(counters.blocks).toBeGreaterThan(0);
    expect(counters.timerInterruptsAccepted).toBe(1);
    // The timer's own deadline ended the sleep: no ring was owed, so none was missed or late.
    expect([report.lostWakeups, report.lateWakeups]).toEqual([0, 0]);
    // A few dozen instructions, not a spin loop.
    expect(report.instructions).toBeLessThan(1000);
  });

  it('a timer vector whose priority class is not above TPR stays pending in IRR until TPR drops', async () => {
    const { vm } = await createGuest(
      `
        .entry start
        .equ IRR_WORD_OF_VECTOR, APIC_IRR + 0x10 * (VECTOR >> 5)
start:  call setup
        li r2, 0xF0
        st32 [APIC_BASE + APIC_TPR], r2
        li r2, VECTOR
        st32 [APIC_BASE + APIC_LVTT], r2
        li r2, 1000
        st32 [APIC_BASE + APIC_TMICT], r2
        sti
pending:
        ld32 r2, [APIC_BASE + IRR_WORD_OF_VECTOR]
        shr r2, r2, VECTOR & 31
        and r2, r2, 1
        beqz r2, pending                ; the expiry has set IRR
        li r3, 2000000                  ; 2 ms with IF = 1: still not taken
        call spin
        li r1, 0
        ld32 r2, [ticks]
        call report                     ; slot 0: taken while TPR = 0xF0 (0)
        li r2, 0
        st32 [APIC_BASE + APIC_TPR], r2
        nop
        li r1, 1
        ld32 r2, [ticks]
        call report                     ; slot 1: taken right after TPR = 0 (1)
        li r1, 0
        hypercall HC_DONE
${common}`,
      { vcpus: 1 },
    );
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.perVcpu[0]!.guest.reports.slice(0, 2)).toEqual([0, 1]);
  });
});
