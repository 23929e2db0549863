// The two AVIC delivery paths with real vCPU workers: a running target is reached through the
// doorbell with no exit; a target asleep in HLT through incomplete-IPI cause 1 and a wake-up.
import { describe, expect, it } from 'vitest';
import { runGuest, summary } from './smp-support.js';

// vCPU 1 announces it is about to wait (running, or halted per WAIT_MODE), vCPU 0 waits for that
// handshake, sends vector 0x40 once, and waits for the handler's acknowledgement.
const program = (waitMode: 'spin' | 'halt', waitForSleep: boolean) => `
        .equ VECTOR, 0x40
        .entry sender, 0
        .entry receiver, 1
sender:
wait_ready:
        ld32 r2, [ready]
        beqz r2, wait_ready
${
  waitForSleep
    ? `wait_asleep:
        li r1, 1
        hypercall HC_VCPU_RUN_STATE
        li r3, VCPU_STATE_BLOCKED
        bne r0, r3, wait_asleep`
    : ''
}
        li r2, 1 << APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r2
wait_ack:
        pause
        ld32 r2, [acked]
        beqz r2, wait_ack
        li r1, 0
        hypercall HC_DONE
receiver:
        livt ivt
        li r2, 1
        xchg r2, [ready]
${
  waitMode === 'spin'
    ? `        sti
spin:
        ld32 r2, [acked]
        beqz r2, spin`
    : `        sti
        hlt
        cli`
}
        li r1, 0
        hypercall HC_DONE
handler:
        push r2
        li r2, 1
        xchg r2, [acked]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret
        .align 4
ready:  .word 0
acked:  .word 0
        .align 8
ivt:    .zero 4 * VECTOR
        .word handler
`;

describe('AVIC IPI delivery between real vCPU workers', () => {
  it('an IPI to a running vCPU rings its doorbell and causes no exit', async () => {
    const report = await runGuest(program('spin', false), { vcpus: 2 });
    const [sender, receiver] = report.perVcpu;
    expect(report.ok, summary(report)).toBe(true);
    expect(sender!.counters.doorbellsRung).toBe(1);
    expect(sender!.counters.incompleteIpiExits).toEqual([0, 0, 0, 0, 0]);
    expect(sender!.counters.kicksSent).toBe(0);
    expect(receiver!.counters.interruptsDelivered).toBe(1);
    expect(report.ipis).toMatchObject({ sent: 1, accepted: 1, delivered: 1, lost: 0 });
  });

  it('an IPI to a vCPU asleep in HLT takes incomplete-IPI cause 1 and wakes it', async () => {
    const report = await runGuest(program('halt', true), { vcpus: 2, haltPolling: false });
    const [sender, receiver] = report.perVcpu;
    expect(report.ok, summary(report)).toBe(true);
    expect(sender!.counters.incompleteIpiExits).toEqual([0, 1, 0, 0, 0]);
    expect(sender!.counters.doorbellsRung).toBe(0);
    expect(sender!.counters.kicksSent).toBe(1);
    expect(receiver!.counters.blocks).toBeGreaterThanOrEqual(1);
    expect(receiver!.counters.wakeups).toBeGreaterThanOrEqual(1);
    expect(receiver!.counters.interruptsDelivered).toBe(1);
    expect(report.lostWakeups).toBe(0);
  });

  it('with IPI virtualization off (erratum #1235 work-around) even a running target takes cause 1', async () => {
    const report = await runGuest(program('spin', false), { vcpus: 2, ipiVirtualization: false });
    const [sender, receiver] = report.perVcpu;
    expect(report.ok, summary(report)).toBe(true);
    expect(sender!.counters.doorbellsRung).toBe(0);
    expect(sender!.counters.incompleteIpiExits[1]).toBe(1);
    expect(receiver!.counters.interruptsDelivered).toBe(1);
  });
});
