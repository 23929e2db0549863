// Memslot updates from the main thread share it fairly: a tight `await` loop of updates leaves the
// event loop turning (timers, the supervisor), and concurrent updates and a hot-add take
// kvm->slots_lock in the order they asked for it, each within its bound, while IPIs fly.
import { describe, expect, it } from 'vitest';
import { assembleScenario } from '../../src/scenarios/run-scenario.js';
import { resolveParameters } from '../../src/scenarios/scenario-parameters.js';
import { hotAdd } from '../../src/scenarios/hot-add.js';
import { Vm } from '../../src/kvm/vm/vm.js';
import { createGuestVm, summary } from './smp-support.js';

const SLOT_ADDRESS = 0x40000000;
const MOVED_ADDRESS = 0x50000000;

const idle = `
        .entry idle
idle:   cli
        hlt
        jmp idle
`;

describe('memslot updates and the main thread', () => {
  it('a tight await loop of moves on an idle VM lets timers run: every update passes through the event loop', async () => {
    const vm = await createGuestVm(idle, { vcpus: 2, memoryBytes: 16 << 20 });
    await vm.setMemoryRegion({ id: 1, guestPhysicalAddress: SLOT_ADDRESS, size: 64 << 10, hostOffset: 8 << 20 });
    vm.start();
    const ending = vm.wait({ timeoutSeconds: 60 });
    let ticks = 0;
    const interval = setInterval(() => {
      ticks++;
    }, 1);
    let updates = 0;
    let eachUpdateYielded = true;
    try {
      // Bounded by a count, not a time: without yielding, 20,000 updates ran with no tick at all.
      while (ticks < 10 && updates < 20_000) {
        let immediateRan = false;
        setImmediate(() => {
          immediateRan = true;
        });
        await vm.moveMemoryRegion(1, updates % 2 === 0 ? MOVED_ADDRESS : SLOT_ADDRESS);
        eachUpdateYielded &&= immediateRan;
        updates++;
      }
    } finally {
      clearInterval(interval);
    }
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(eachUpdateYielded).toBe(true);
    expect(vm.memslotStatistics.updates).toBeGreaterThan(updates);
    const report = await ending;
    expect(report.exit.reason, summary(report)).toBe('all-halted');
  });

  it('four update loops and a hot-add under an IPI storm: slots_lock is taken first come, first served, and nothing times out', async () => {
    const parameters = resolveParameters(hotAdd, { vcpus: 2, seconds: 60, seed: 5 });
    const program = assembleScenario(hotAdd, parameters, new Map([['MAX_VCPUS', 3]]));
    const vm = await Vm.create({ vcpus: 2, maxVcpus: 3, memoryBytes: 32 << 20 });
    vm.loadProgram({
      origin: program.origin,
      bytes: program.bytes,
      ...(program.entryPoints.default === undefined ? {} : { entryPoint: program.entryPoints.default }),
    });
    vm.start();
    const ending = vm.wait({ timeoutSeconds: 120 });
    await vm.whenAllRunning();

    // Every update draws a ticket when it is called; with slots_lock taken in arrival order they
    // complete in ticket order. Each caller creates and deletes its own slot, ten times.
    let nextTicket = 0;
    const completed: number[] = [];
    const failures: string[] = [];
    const update = async (call: () => Promise<void>): Promise<void> => {
      const ticket = nextTicket++;
      try {
        await call();
      } catch (error) {
        failures.push(String(error));
      }
      completed.push(ticket);
    };
    const caller = async (id: number): Promise<void> => {
      for (let round = 0; round < 10; round++) {
        await update(() =>
          vm.setMemoryRegion({
            id: 10 + id,
            guestPhysicalAddress: 0x60000000 + id * 0x100000,
            size: 4096,
            hostOffset: (24 << 20) + id * 4096,
          }),
        );
        await update(() => vm.deleteMemoryRegion(10 + id));
      }
    };
    const callers = [0, 1, 2, 3].map(caller);
    // The hot-add asks once the loops are under way: it may wait for the updates queued before it,
    // not for the loops to end.
    while (completed.length < 4) await new Promise((resolve) => setImmediate(resolve));
    const completedBeforeHotAdd = completed.length;
    const added = await vm.hotAddVcpu();
    const completedDuringHotAdd = completed.length - completedBeforeHotAdd;
    await Promise.all(callers);
    const stop = program.symbols.get('stop_requested')! >>> 2;
    Atomics.store(new Int32Array(vm.memory.buffers.ram), stop, 1);
    const report = await ending;

    expect(failures).toEqual([]);
    expect(completed).toEqual(Array.from({ length: 80 }, (_, ticket) => ticket));
    expect(added).toBe(2);
    // Ahead of the hot-add's slots_lock request: at most one queued update per loop (4), with some
    // room for those completing while it takes kvm->lock. Without the queue, one loop took the lock
    // back each time and ran all its remaining 16 updates first.
    expect(completedDuringHotAdd).toBeLessThanOrEqual(8);
    expect(report.exit.reason, summary(report)).toBe('all-done');
    expect(report.vcpus).toBe(3);
    expect(report.perVcpu.map((entry) => entry.exit)).toEqual(['done', 'done', 'done']);
    expect(report.ipis.lost).toBe(0);
  });
});
