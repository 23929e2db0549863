// Memslot updates from the main thread while vCPUs run (KVM set_memory_region_test in spirit): the
// update waits for its grace period without blocking the event loop, and afterwards no vCPU can
// reach the old mapping: a guest access there is a guest fault naming the address.
import { describe, expect, it } from 'vitest';
import { createGuest, createGuestVm, summary } from './smp-support.js';

const SLOT_ADDRESS = 0x40000000;
const MOVED_ADDRESS = 0x50000000;

// vCPU 0 reads the extra slot in a loop and counts its reads in `progress`; vCPU 1 halts forever.
const source = `
        .entry reader, 0
        .entry idle, 1
reader:
        li r3, 0
loop:
        ld32 r2, [${SLOT_ADDRESS}]
        add r3, r3, 1
        st32 [progress], r3
        jmp loop
idle:
        cli
        hlt
        jmp idle
        .align 4096
progress: .word 0
`;

async function waitForProgress(ram: Int32Array, index: number, atLeast: number): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (Atomics.load(ram, index) < atLeast) {
    if (performance.now() > deadline) throw new Error('the guest made no progress');
    const wait = Atomics.waitAsync(ram, index, Atomics.load(ram, index), 5);
    if (wait.async) await wait.value;
  }
}

describe('memslot updates under running vCPUs', () => {
  it('moving a slot waits for its grace period, after which the old address faults', async () => {
    const { vm, program } = await createGuest(source, { vcpus: 2, memoryBytes: 16 << 20 });
    await vm.setMemoryRegion({ id: 1, guestPhysicalAddress: SLOT_ADDRESS, size: 64 << 10, hostOffset: 8 << 20 });
    const progressAddress = program.symbols.get('progress')!;
    const ram = new Int32Array(vm.memory.buffers.ram);
    vm.start();
    await waitForProgress(ram, progressAddress >> 2, 1000);
    await vm.moveMemoryRegion(1, MOVED_ADDRESS);
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(report.exit.reason, summary(report)).toBe('fault');
    expect(report.faults).toHaveLength(1);
    const { vcpu, fault } = report.faults[0]!;
    expect(vcpu).toBe(0);
    expect(fault.kind).toBe('access-outside-memory');
    expect(fault.address).toBe(SLOT_ADDRESS);
    expect(fault.instruction).toBe(`ld32 r2, [0x${SLOT_ADDRESS.toString(16)}]`);
    expect(vm.memslots.find(MOVED_ADDRESS as never)?.guestPhysicalAddress).toBe(MOVED_ADDRESS);
  });

  it('a memslot update is refused with a clear error when the new slot overlaps an old one', async () => {
    const vm = await createGuestVm(source, { vcpus: 2 });
    await expect(vm.setMemoryRegion({ id: 2, guestPhysicalAddress: 0, size: 4096, hostOffset: 0 })).rejects.toThrow(/overlap/);
  });
});
