// Kick, pause and resume from the main thread while vCPUs run guest code.
import { describe, expect, it } from 'vitest';
import { createGuest, summary } from './smp-support.js';

// Each vCPU counts in its own line until the host sets `stop`.
const source = `
        .entry count
count:
        shl r5, r0, 6
        add r5, r5, counters
loop:
        ld32 r2, [r5]
        add r2, r2, 1
        st32 [r5], r2
        ld32 r3, [stop]
        beqz r3, loop
        li r1, 0
        hypercall HC_DONE
        .align 64
stop:     .word 0
        .align 64
counters: .zero 64 * 4
`;

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Atomics.waitAsync(flag, 0, 0, 2).value;
  }
}

describe('main-thread control of running vCPUs', () => {
  it('pause parks every vCPU (no guest code runs), resume lets them go on, stop ends the run', async () => {
    const { vm, program } = await createGuest(source, { vcpus: 3 });
    const ram = new Int32Array(vm.memory.buffers.ram);
    const counterIndex = (vcpu: number) => (program.symbols.get('counters')! >> 2) + vcpu * 16;
    const counts = () => [0, 1, 2].map((vcpu) => Atomics.load(ram, counterIndex(vcpu)));
    vm.start();
    await waitUntil(() => counts().every((count) => count > 1000), 'every vCPU to count');

    await vm.pause();
    expect(vm.runStates()).toEqual(['paused', 'paused', 'paused']);
    const frozen = counts();
    // A kick to a paused vCPU must not let it run: wait until vCPU 1 has seen the kick's ring and
    // is asleep again on the new ring value (a handshake through its doorbell line), then look.
    const control = vm.memory.control;
    const slot = Atomics.load(control, vm.memory.controlBlockIndex(1, 'hostThreadSlot'));
    vm.kick(1);
    const ringAfterKick = Atomics.load(control, vm.memory.doorbellIndex(slot, 'ring'));
    await waitUntil(() => Atomics.load(control, vm.memory.doorbellIndex(slot, 'sleeping')) === 1
      && Atomics.load(control, vm.memory.doorbellIndex(slot, 'waitValue')) === ringAfterKick, 'vCPU 1 to park again after the kick');
    expect(vm.runStates()).toEqual(['paused', 'paused', 'paused']);
    expect(counts()).toEqual(frozen);
    // Paused vCPUs are put: IsRunning clear in the physical APIC ID table.
    for (let vcpu = 0; vcpu < 3; vcpu++) expect(vm.memory.physicalApicIdTable.isRunning(vcpu as never)).toBe(false);

    vm.resume();
    await waitUntil(() => counts().every((count, vcpu) => count > frozen[vcpu]! + 1000), 'counting to resume');
    Atomics.store(ram, program.symbols.get('stop')! >> 2, 1);
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.exit.reason).toBe('all-done');
  });

  it('pause, kick and resume are refused on a VM that is not running', async () => {
    const { vm } = await createGuest(source, { vcpus: 1 });
    await expect(vm.pause()).rejects.toThrow(/started/);
    expect(() => vm.kick(0)).toThrow(/started/);
  });
});
