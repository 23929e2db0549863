// SMP bring-up: a vCPU without an entry point waits for INIT and a start-up IPI (wait-for-SIPI) and
// then starts at vector << 12; a start-up IPI without INIT leaves it waiting; a program with an entry
// for every vCPU still starts them all at once.
import { describe, expect, it } from 'vitest';
import { VcpuRequest, VcpuWaitReason } from '../../src/kvm/control/vcpu-run-state.js';
import type { Vm } from '../../src/kvm/vm/vm.js';
import { createGuest, example, summary } from './smp-support.js';

const VCPUS = 8;

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Atomics.waitAsync(flag, 0, 0, 2).value;
  }
}

const waitReason = (vm: Vm, vcpu: number): number => Atomics.load(vm.memory.control, vm.memory.controlBlockIndex(vcpu, 'waitReason'));
const statistic = (vm: Vm, vcpu: number, name: 'startUpsIgnored' | 'initsTaken' | 'startUpsTaken'): number =>
  vm.memory.controlFloat64[vm.memory.statisticIndex(vcpu, name)]!;

/** What a sender does for a start-up IPI (local-apic-emulation.ts): the vector first, then the request bit. */
function sendStartUp(vm: Vm, vcpu: number, vector: number): void {
  Atomics.store(vm.memory.control, vm.memory.controlBlockIndex(vcpu, 'startUpVector'), vector);
  vm.memory.kick(vcpu, VcpuRequest.StartUp);
}

// The bootstrap vCPU waits for the others to check in; the host brings them up. An application
// vCPU reports its APIC ID and the index, count and stack it started with.
const hostDriven = `
        .equ AP_START, 0x8000
        .entry bsp, 0
bsp:    sub r9, r1, 1
        rdtsc r10
wait:   li r2, 0
        xadd r2, [checked_in]
        bgeu r2, r9, done
        pause
        rdtsc r11
        sub r11, r11, r10
        li r12, 4000000000
        bltu r11, r12, wait
        li r1, 1
        hypercall HC_ABORT
done:   li r1, 0
        hypercall HC_DONE
park:   cli
        hlt
        jmp park
        .align 4
checked_in: .word 0
        .org AP_START
ap:     mov r5, r0
        mov r6, r1
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        li r1, 0
        hypercall HC_REPORT
        li r1, 1
        mov r2, r5
        hypercall HC_REPORT
        li r1, 2
        mov r2, r6
        hypercall HC_REPORT
        li r1, 3
        mov r2, sp
        hypercall HC_REPORT
        li r2, 1
        xadd r2, [checked_in]
        li r1, 0
        hypercall HC_DONE
        jmp park
`;

describe('SMP boot (INIT-SIPI-SIPI)', () => {
  it(`the bootstrap vCPU brings up ${VCPUS - 1} application vCPUs with INIT and two start-up IPIs; each reports its APIC ID`, async () => {
    const { vm } = await createGuest(example('smp-boot.s'), { vcpus: VCPUS });
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.exit.reason).toBe('all-done');
    for (let vcpu = 0; vcpu < VCPUS; vcpu++) {
      const { guest, counters } = report.perVcpu[vcpu]!;
      expect(guest.reports.slice(0, 2), `vCPU ${vcpu}: APIC ID, index`).toEqual([vcpu, vcpu]);
      expect(guest.done).toBe(true);
      // Each application vCPU took one INIT and was started by one start-up IPI; the second one was
      // ignored (or is still pending if the vCPU had finished before it came).
      expect([counters.initsTaken, counters.startUpsTaken], `vCPU ${vcpu}`).toEqual(vcpu === 0 ? [0, 0] : [1, 1]);
    }
    expect(report.perVcpu[0]!.guest.reports[2]).toBe(VCPUS - 1);
    expect(report.ipis.lost).toBe(0);
  });

  it('driven from the host: a start-up IPI without INIT is ignored; INIT then start-up starts each vCPU at vector << 12 with its registers set', async () => {
    const { vm } = await createGuest(hostDriven, { vcpus: VCPUS });
    vm.start();
    const applicationVcpus = Array.from({ length: VCPUS - 1 }, (_, i) => i + 1);
    await waitUntil(
      () => applicationVcpus.every((vcpu) => vm.runStates()[vcpu] === 'blocked' && waitReason(vm, vcpu) === VcpuWaitReason.WaitForStartUp),
      'the application vCPUs to wait for SIPI',
    );
    // Not yet INITed (KVM's mp_state UNINITIALIZED): the start-up IPI is consumed and ignored.
    sendStartUp(vm, 1, 0x8);
    // The vCPU is woken to consume it and counts it before it blocks again: wait for both, not the count alone.
    await waitUntil(
      () =>
        statistic(vm, 1, 'startUpsIgnored') === 1 && vm.runStates()[1] === 'blocked' && waitReason(vm, 1) === VcpuWaitReason.WaitForStartUp,
      'vCPU 1 to consume the start-up IPI and wait for SIPI again',
    );
    expect(statistic(vm, 1, 'startUpsTaken')).toBe(0);
    for (const vcpu of applicationVcpus) {
      vm.memory.kick(vcpu, VcpuRequest.Init);
      sendStartUp(vm, vcpu, 0x8);
    }
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(report.exit.reason, summary(report)).toBe('all-done');
    expect(report.faults.length + report.errors.length).toBe(0);
    // No guest sent these: the balance shows them as delivered with no sender's "accepted" behind them
    // (an INIT and a start-up to each application vCPU, plus the ignored one).
    expect(report.ipis.delivered).toBe(2 * applicationVcpus.length + 1);
    expect(report.ipis.lost).toBe(-report.ipis.delivered);
    for (const vcpu of applicationVcpus) {
      const { guest, counters } = report.perVcpu[vcpu]!;
      const stackTop = vm.config.memoryBytes - vcpu * vm.config.stackBytesPerVcpu;
      expect(guest.reports.slice(0, 4), `vCPU ${vcpu}: APIC ID, r0, r1, sp`).toEqual([vcpu, vcpu, VCPUS, stackTop]);
      expect([counters.initsTaken, counters.startUpsTaken]).toEqual([1, 1]);
    }
  });

  it('a program with an entry for every vCPU starts them all at once, with no INIT or start-up', async () => {
    const { vm } = await createGuest(
      `
        .entry start
start:  mov r5, r0
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        li r1, 0
        hypercall HC_REPORT
        li r1, 1
        mov r2, r5
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE
`,
      { vcpus: 4 },
    );
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    for (let vcpu = 0; vcpu < 4; vcpu++) {
      expect(report.perVcpu[vcpu]!.guest.reports.slice(0, 2)).toEqual([vcpu, vcpu]);
      expect(report.perVcpu[vcpu]!.counters.startUpsTaken).toBe(0);
    }
  });

  it('INIT resets a running vCPU: registers, flags and APIC (but not its ID) as after reset, a pending IPI discarded and counted so', async () => {
    const { vm } = await createGuest(
      `
        .equ VECTOR, 0x50
        .entry bsp, 0
        .entry victim, 1
bsp:    li r2, 0
        xadd r2, [ready]
        beqz r2, bsp
        li r2, 1 << APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        st32 [APIC_BASE + APIC_ICR], r2    ; pending in vCPU 1's IRR: its IF is 0
        li r2, APIC_DEST_PHYSICAL | APIC_DM_INIT | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_STARTUP | (restart >> 12)
        st32 [APIC_BASE + APIC_ICR], r2
        li r1, 0
        hypercall HC_DONE
park:   cli
        hlt
        jmp park
victim: li r2, 0x20
        st32 [APIC_BASE + APIC_TPR], r2
        li r5, 0x1234
        li r2, 1
        xchg r2, [ready]
        jmp park                        ; IF = 0: only INIT can get it out of here
        .align 4
ready:  .word 0
        .org 0x9000
restart:
        mov r6, r5
        li r1, 0
        ld32 r2, [APIC_BASE + APIC_TPR]
        hypercall HC_REPORT
        li r1, 1
        ld32 r2, [APIC_BASE + APIC_SVR]
        hypercall HC_REPORT
        li r1, 2
        ld32 r2, [APIC_BASE + APIC_IRR + 0x10 * (VECTOR >> 5)]
        hypercall HC_REPORT
        li r1, 3
        pushf
        pop r2
        hypercall HC_REPORT
        li r1, 4
        mov r2, r6
        hypercall HC_REPORT
        li r1, 5
        ld32 r2, [APIC_BASE + APIC_ID]
        shr r2, r2, 24
        hypercall HC_REPORT
        li r1, 0
        hypercall HC_DONE
`,
      { vcpus: 2 },
    );
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    // TPR 0, SVR 0xFF (software-disabled), the IPI gone from IRR, IF = 0, r5 cleared, APIC ID kept.
    expect(report.perVcpu[1]!.guest.reports.slice(0, 6)).toEqual([0, 0xff, 0, 0, 0, 1]);
    expect(report.perVcpu[1]!.counters.interruptsDiscardedByInit).toBe(1);
    expect(report.ipis.discardedByInit).toBe(1);
    expect(report.ipis.lost).toBe(0);
  });

  it('application vCPUs nobody starts wait for SIPI without keeping the VM busy: the run ends all-halted', async () => {
    const { vm } = await createGuest(
      `
        .entry bsp, 0
bsp:    li r1, 0
        hypercall HC_DONE
`,
      { vcpus: 3 },
    );
    const report = await vm.run({ timeoutSeconds: 30 });
    expect(report.exit.reason, summary(report)).toBe('all-halted');
    expect(report.ok).toBe(true);
    // They ran no guest code and slept: the idle check saw them asleep on untouched doorbells.
    for (const vcpu of [1, 2])
      expect([report.perVcpu[vcpu]!.counters.instructions, report.perVcpu[vcpu]!.counters.blocks > 0]).toEqual([0, true]);
  });

  it('a program where no vCPU has an entry point is refused at load', async () => {
    await expect(
      createGuest(
        `
        .entry only, 9
only:   hlt
`,
        { vcpus: 2 },
      ),
    ).rejects.toThrow(/no vCPU has an entry point/);
  });
});
