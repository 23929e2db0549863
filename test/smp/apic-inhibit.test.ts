// The AVIC inhibits with real vCPU workers (docs/architecture.md O8; KVM
// kvm_recalculate_apic_map): an APIC ID rewritten while IPIs are in
// flight sets APIC_ID_MODIFIED and every later ICR write is emulated, so IPIs to the new ID reach
// their vCPU and none is lost; aliased logical IDs set LOGICAL_ID_ALIASED while they last.
import { describe, expect, it } from 'vitest';
import { ApicvInhibitReason, apicvInhibitReasons } from '../../src/kvm/control/apic-inhibit.js';
import type { VmReport } from '../../src/kvm/report/vm-report.js';
import { createGuestVm, summary } from './smp-support.js';
import { ipiBalance } from './ipi-forms-program.js';

function expectBalanced(report: VmReport): void {
  expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
}

describe('AVIC inhibits keep IPIs on the right vCPU', () => {
  it('APIC ID relocation with sends in flight: APIC_ID_MODIFIED, software delivery, none lost', async () => {
    const N = 200,
      K = 100,
      NEW_ID = 0x20;
    // vCPU 1 takes vector 0x40 from vCPU 0 (physical, to target_id) and 0x50 from vCPU 2 (logical,
    // LDR bit 1, unaffected by the ID). In its K-th 0x40 handler it rewrites its APIC ID to NEW_ID
    // and publishes it before acknowledging, so vCPU 0's next send already names the new ID while
    // vCPU 2's IPIs keep arriving throughout.
    const program = `
        .entry sender_physical, 0
        .entry target, 1
        .entry sender_logical, 2
target: livt ivt
        li r2, 0x02 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        li r2, 1
        xadd r2, [ready]
        sti
wait_finished:
        pause
        ld32 r2, [finished]
        li r3, 2
        bltu r2, r3, wait_finished
        cli
        ld32 r2, [count_a]
        li r1, 0
        hypercall HC_REPORT
        ld32 r2, [count_b]
        li r1, 1
        hypercall HC_REPORT
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        li r1, 2
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE

sender_physical:
        ld32 r2, [ready]
        beqz r2, sender_physical
        li r6, 0
loop_a: ld32 r4, [target_id]
        shl r4, r4, 24
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r5
        add r6, r6, 1
        li r12, count_a
        call wait_count
        li r2, ${N}
        bltu r6, r2, loop_a
        jmp sender_done

sender_logical:
        ld32 r2, [ready]
        beqz r2, sender_logical
        li r6, 0
loop_b: li r4, 0x02 << 24
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_LOGICAL | APIC_DM_FIXED | 0x50
        st32 [APIC_BASE + APIC_ICR], r5
        add r6, r6, 1
        li r12, count_b
        call wait_count
        li r2, ${N}
        bltu r6, r2, loop_b
sender_done:
        li r2, 1
        xadd r2, [finished]
        li r1, 0
        hypercall HC_DONE

; Waits until the word at r12 reaches r6, at most 2 s, else aborts with the count reached.
wait_count:
        rdtsc r10
wait_loop:
        ld32 r2, [r12]
        bgeu r2, r6, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r3, 2000000000
        bltu r11, r3, wait_loop
        li r1, 1
        hypercall HC_ABORT
wait_end:
        ret

handler_a:
        push r2
        push r3
        ld32 r2, [count_a]
        add r2, r2, 1
        li r3, ${K}
        bne r2, r3, ack_a
        li r3, ${NEW_ID} << 24
        st32 [APIC_BASE + APIC_ID], r3     ; traps: APIC_ID_MODIFIED, then the map rebuild
        li r3, ${NEW_ID}
        xchg r3, [target_id]
ack_a:  xchg r2, [count_a]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r3
        pop r2
        iret
handler_b:
        push r2
        li r2, 1
        xadd r2, [count_b]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret
        .align 4
ready:     .word 0
finished:  .word 0
target_id: .word 1
count_a:   .word 0
count_b:   .word 0
ivt:    .zero 4 * 0x40
        .word handler_a
        .zero 4 * 15
        .word handler_b
`;
    // With the lock validator on: the ID write's trap handling waits for the main thread's map
    // rebuild inside the vCPU's SRCU read section; report.ok includes "no lockdep report".
    const vm = await createGuestVm(program, { vcpus: 3, lockdep: true });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.lockdep).toMatchObject({ enabled: true });
    expect(report.lockdep?.report).toBeUndefined();
    expect(report.perVcpu[1]!.guest.reports.slice(0, 3)).toEqual([N, N, NEW_ID]);
    expect(apicvInhibitReasons(vm.memory) & ApicvInhibitReason.ApicIdModified).not.toBe(0);
    // After the rewrite vCPU 0's ICR writes are emulated (the inhibit), and they reach vCPU 1 by its new ID.
    const inhibited = report.perVcpu[0]!.counters.interruptCommandsWhileInhibited;
    expect(inhibited).toBeGreaterThanOrEqual(N - K);
    expect(inhibited).toBeLessThanOrEqual(N);
    expect(report.ipis.accepted + report.ipis.coalesced).toBe(2 * N);
    expectBalanced(report);
  });

  it('aliased logical IDs set LOGICAL_ID_ALIASED and reach every holder; a rebuild without aliases clears it', async () => {
    // vCPUs 1 and 2 both take logical ID 0x04 (flat); vCPU 0 sends to it once; then vCPU 2 moves to
    // 0x08 and vCPU 0 sends to 0x04 again, which only vCPU 1 holds now.
    const program = `
        .entry sender, 0
        .entry receiver
receiver:
        livt ivt
        li r2, 0x04 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        li r2, 1
        xadd r2, [ready]
        sti
wait_phase:
        ld32 r2, [phase]
        beqz r2, wait_phase
        li r3, 2
        bne r0, r3, wait_done
        cli
        li r2, 0x08 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        sti
        li r2, 1
        xadd r2, [ready]
wait_done:
        ld32 r2, [phase]
        li r3, 2
        bltu r2, r3, wait_done
        cli
        mov r2, r0
        shl r2, r2, 2
        ld32 r2, [r2 + counts]
        li r1, 0
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE
sender:
        ld32 r2, [ready]
        li r3, 2
        bltu r2, r3, sender
        li r4, 0x04 << 24
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DEST_LOGICAL | APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r5
        li r13, 2
        call wait_handled
        li r2, 1
        xchg r2, [phase]
wait_moved:
        ld32 r2, [ready]
        li r3, 3
        bltu r2, r3, wait_moved
        st32 [APIC_BASE + APIC_ICR], r5
        li r13, 3
        call wait_handled
        li r2, 2
        xchg r2, [phase]
        li r1, 0
        hypercall HC_DONE
wait_handled:
        rdtsc r10
wait_loop:
        ld32 r2, [handled]
        bgeu r2, r13, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r3, 2000000000
        bltu r11, r3, wait_loop
        li r1, 1
        hypercall HC_ABORT
wait_end:
        ret
handler:
        push r2
        push r3
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 22
        li r3, 1
        xadd r3, [r2 + counts]
        li r3, 1
        xadd r3, [handled]
        st32 [APIC_BASE + APIC_EOI], r3
        pop r3
        pop r2
        iret
        .align 4
ready:   .word 0
phase:   .word 0
handled: .word 0
counts:  .zero 16
ivt:    .zero 4 * 0x40
        .word handler
`;
    const vm = await createGuestVm(program, { vcpus: 3 });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.perVcpu.map((vcpu) => vcpu.guest.reports[0])).toEqual([0, 2, 1]);
    expect(apicvInhibitReasons(vm.memory) & ApicvInhibitReason.LogicalIdAliased).toBe(0);
    // The first send found the inhibit set and was emulated; the second found it cleared.
    expect(report.perVcpu[0]!.counters.interruptCommandsWhileInhibited).toBe(1);
    expectBalanced(report);
  });
});

describe('APIC_ID_MODIFIED follows the IDs (kvm_recalculate_apic_map recomputes xapic_id_mismatch)', () => {
  // vCPU 1 rewrites its xAPIC ID to 0x20 and sends vCPU 0 one IPI (AVIC inhibited: emulated), then
  // writes its own index back, which ends the mismatch, and sends again (AVIC again: accelerated).
  // vCPU 2 rewrites its ID and then switches to x2APIC, whose ID is the vCPU index again.
  const program = `
        .entry receiver, 0
        .entry mover, 1
        .entry switcher, 2
receiver:
        livt ivt
        li r2, 1
        xchg r2, [ready]
        sti
wait_two:
        ld32 r2, [handled]
        li r3, 2
        bltu r2, r3, wait_two
        cli
        li r1, 0
        hypercall HC_DONE
mover:  ld32 r2, [ready]
        beqz r2, mover
        li r2, 0x20 << 24
        st32 [APIC_BASE + APIC_ID], r2     ; traps: the map rebuild finds the mismatch
        li r4, 0
        st32 [APIC_BASE + APIC_ICR2], r4
        li r5, APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r5
        li r13, 1
        call wait_handled
        li r2, 1 << 24
        st32 [APIC_BASE + APIC_ID], r2     ; its own index again: the rebuild clears the reason
        st32 [APIC_BASE + APIC_ICR], r5
        li r13, 2
        call wait_handled
        li r1, 0
        hypercall HC_DONE
switcher:
        ld32 r2, [handled]
        li r3, 2
        bltu r2, r3, switcher
        li r2, 0x30 << 24
        st32 [APIC_BASE + APIC_ID], r2
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2        ; the x2APIC ID is the vCPU index: no mismatch left
        li r1, 0
        hypercall HC_DONE
wait_handled:
        rdtsc r10
wait_loop:
        ld32 r2, [handled]
        bgeu r2, r13, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r3, 2000000000
        bltu r11, r3, wait_loop
        li r1, 1
        hypercall HC_ABORT
wait_end:
        ret
handler:
        push r2
        li r2, 1
        xadd r2, [handled]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret
        .align 4
ready:   .word 0
handled: .word 0
ivt:    .zero 4 * 0x40
        .word handler
`;

  it('a rebuild that finds every xAPIC ID equal to its vCPU index clears it, and AVIC accelerates again', async () => {
    const vm = await createGuestVm(program, { vcpus: 3 });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    // Only the send made while vCPU 1's ID was 0x20 went through the inhibited (emulated) path.
    expect(report.perVcpu[1]!.counters.interruptCommandsWhileInhibited).toBe(1);
    // vCPU 2's rewrite set the reason again; its switch to x2APIC ended the mismatch.
    expect(apicvInhibitReasons(vm.memory) & ApicvInhibitReason.ApicIdModified).toBe(0);
    expectBalanced(report);
  });
});

describe('an inhibit deactivates AVIC on every vCPU (avic_refresh_apicv_exec_ctrl), un-inhibiting restores it', () => {
  // vCPUs 1 and 2 share logical ID 0x04 (LOGICAL_ID_ALIASED). While it is set, vCPU 0 sends N IPIs
  // to vCPU 1, whose handler writes TPR twice and EOI: with AVIC inactive the APIC page is not
  // mapped, so every one of those accesses is an emulated MMIO exit. Then vCPU 2 moves to 0x08, the
  // rebuild clears the inhibit, vCPU 1 touches its APIC once (AVIC active again, IsRunning set) and
  // vCPU 0 sends N more, which the hardware delivers with a doorbell each.
  const N = 40;
  const program = `
        .entry sender, 0
        .entry receiver, 1
        .entry alias, 2
receiver:
        livt ivt
        li r2, 0x04 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        li r2, 1
        xadd r2, [ready]
        sti
wait_active:
        pause
        ld32 r2, [phase]
        li r3, 2
        bltu r2, r3, wait_active
        ld32 r2, [APIC_BASE + APIC_ID]     ; the first APIC access with AVIC active again
        li r2, 1
        xchg r2, [receiver_on]
wait_all:
        pause
        ld32 r2, [handled]
        li r3, ${2 * N}
        bltu r2, r3, wait_all
        cli
        li r1, 0
        hypercall HC_DONE
alias:  li r2, 0x04 << 24
        st32 [APIC_BASE + APIC_LDR], r2
        li r2, 1
        xadd r2, [ready]
wait_first:
        pause
        ld32 r2, [phase]
        beqz r2, wait_first
        li r2, 0x08 << 24
        st32 [APIC_BASE + APIC_LDR], r2    ; no alias left: the rebuild clears the inhibit
        li r2, 2
        xchg r2, [phase]
        li r1, 0
        hypercall HC_DONE
sender: ld32 r2, [ready]
        li r3, 2
        bltu r2, r3, sender
        li r4, 1 << 24
        st32 [APIC_BASE + APIC_ICR2], r4
        li r6, 0
first:  li r5, APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r5
        add r6, r6, 1
        mov r13, r6
        call wait_handled
        li r2, ${N}
        bltu r6, r2, first
        li r2, 1
        xchg r2, [phase]
wait_on:
        pause
        ld32 r2, [receiver_on]
        beqz r2, wait_on
second: li r5, APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r5
        add r6, r6, 1
        mov r13, r6
        call wait_handled
        li r2, ${2 * N}
        bltu r6, r2, second
        li r1, 0
        hypercall HC_DONE
wait_handled:
        rdtsc r10
wait_loop:
        ld32 r2, [handled]
        bgeu r2, r13, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r3, 2000000000
        bltu r11, r3, wait_loop
        li r1, 1
        hypercall HC_ABORT
wait_end:
        ret
handler:
        push r2
        li r2, 0x10
        st32 [APIC_BASE + APIC_TPR], r2
        li r2, 0
        st32 [APIC_BASE + APIC_TPR], r2
        li r2, 1
        xadd r2, [handled]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret
        .align 4
ready:       .word 0
phase:       .word 0
receiver_on: .word 0
handled:     .word 0
ivt:    .zero 4 * 0x40
        .word handler
`;

  it('inhibited: every APIC access is an emulated MMIO exit and every IPI software; afterwards AVIC delivers with doorbells', async () => {
    const vm = await createGuestVm(program, { vcpus: 3 });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    const [sender, receiver, alias] = report.perVcpu.map((vcpu) => vcpu.counters);
    // Inhibited: the first N ICR writes and the ICR2 write before them were emulated, the hardware
    // never saw an ICR write (no incomplete-IPI exit at all), and every IPI arrived.
    expect(sender!.interruptCommandsWhileInhibited).toBe(N);
    expect(sender!.apicMmioEmulationExits).toBe(N + 1);
    expect(report.exits.incompleteIpi).toEqual({
      invalidInterruptType: 0,
      targetNotRunning: 0,
      invalidTarget: 0,
      invalidBackingPage: 0,
      invalidIpiVector: 0,
    });
    // The receiver's TPR and EOI writes are emulated only while inhibited (three per handler run).
    expect(receiver!.apicMmioEmulationExits).toBe(3 * N);
    // vCPU 2's LDR write that ended the alias was made with AVIC inactive.
    expect(alias!.apicMmioEmulationExits).toBe(1);
    expect(report.exits.apicMmioEmulation).toBe(4 * N + 2);
    // Un-inhibited (KVM_REQ_APICV_UPDATE): the receiver runs with IsRunning set again, so each of the
    // last N IPIs is accelerated and rings its doorbell.
    expect(sender!.doorbellsRung).toBe(N);
    expect(apicvInhibitReasons(vm.memory)).toBe(0);
    expect(report.ipis.accepted + report.ipis.coalesced).toBe(2 * N);
    expectBalanced(report);
  });
});
