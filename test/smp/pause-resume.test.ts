// Kick, pause and resume from the main thread while vCPUs run guest code.
import { describe, expect, it } from 'vitest';
import { VcpuRunState } from '../../src/kvm/control/vcpu-run-state.js';
import { TaskState } from '../../src/host/run-queue.js';
import { countingProgram, createGuest, summary } from './smp-support.js';

const PAUSE_CYCLES = 80;
const RESUME_PAUSE_CYCLES = 200;

// Each vCPU counts in its own line until the host sets `stop`.
const source = countingProgram(4);

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Atomics.waitAsync(flag, 0, 0, 2).value;
  }
}

/** A short, bounded spin on the main thread, to see a vCPU's state change the moment it happens. */
function spinUntil(condition: () => boolean, what: string): void {
  const deadline = performance.now() + 10_000;
  while (!condition()) if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
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
    // A kick to a paused vCPU must not let it run: wait until vCPU 1 has been woken by the kick, run
    // its loop (its heartbeat moved) and parked again (blocked, put), then look.
    const control = vm.memory.control;
    const heartbeat = () => Atomics.load(control, vm.memory.controlBlockIndex(1, 'heartbeat'));
    const beforeKick = heartbeat();
    vm.kick(1);
    await waitUntil(
      () => heartbeat() !== beforeKick && vm.memory.runQueues.state(1) === TaskState.Blocked,
      'vCPU 1 to park again after the kick',
    );
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

  it('a vCPU seen Paused, and every vCPU once pause() resolves, is put (IsRunning clear) and out of SRCU; resume loads it again', async () => {
    const vcpus = 3;
    // One host CPU per vCPU: after resume() each is loaded again (shared, a preempted one is put).
    const { vm, program } = await createGuest(source, { vcpus, hostCpus: vcpus });
    const ram = new Int32Array(vm.memory.buffers.ram);
    const control = vm.memory.control;
    const counterIndex = (vcpu: number) => (program.symbols.get('counters')! >> 2) + vcpu * 16;
    const counts = () => Array.from({ length: vcpus }, (_, vcpu) => Atomics.load(ram, counterIndex(vcpu)));
    const runState = (vcpu: number) => Atomics.load(control, vm.memory.controlBlockIndex(vcpu, 'runState'));
    const srcuReaders = () => [...vm.memory.srcu.readerSlotsInside(0), ...vm.memory.srcu.readerSlotsInside(1)];
    vm.start();
    await waitUntil(() => counts().every((count) => count > 0), 'every vCPU to count');
    const problems: string[] = [];
    // What pause() relies on: a vCPU seen Paused is already put and out of SRCU.
    const checkPut = (cycle: number, vcpu: number, when: string) => {
      if (vm.memory.physicalApicIdTable.isRunning(vcpu as never)) problems.push(`cycle ${cycle}: vCPU ${vcpu} IsRunning = 1 ${when}`);
      // Reader slot 0 is the main thread, slot i + 1 is vCPU i.
      if (srcuReaders().includes(vcpu + 1)) problems.push(`cycle ${cycle}: vCPU ${vcpu} is an SRCU reader ${when}`);
    };
    for (let cycle = 0; cycle < PAUSE_CYCLES && problems.length === 0; cycle++) {
      const pausing = vm.pause();
      // Watch each vCPU's run state as pause() does, but without pause()'s waits: the moment it
      // reads Paused, look at the vCPU's IsRunning and SRCU read section.
      for (let vcpu = 0; vcpu < vcpus; vcpu++) {
        spinUntil(() => runState(vcpu) === VcpuRunState.Paused, `vCPU ${vcpu} to park`);
        checkPut(cycle, vcpu, 'when its run state reads Paused');
      }
      await pausing;
      for (let vcpu = 0; vcpu < vcpus; vcpu++) checkPut(cycle, vcpu, 'after pause() resolved');
      const frozen = counts();
      vm.resume();
      // Handshake: every vCPU has left the park and runs guest code again (its counter moved); then
      // it must be loaded again (IsRunning set: it counts in guest mode, with no exit in between).
      await waitUntil(
        () => counts().every((count, vcpu) => count > frozen[vcpu]! && runState(vcpu) === VcpuRunState.Running),
        'every vCPU to count again',
      );
      for (let vcpu = 0; vcpu < vcpus; vcpu++) {
        if (!vm.memory.physicalApicIdTable.isRunning(vcpu as never))
          problems.push(`cycle ${cycle}: vCPU ${vcpu} runs guest code with IsRunning = 0 after resume()`);
      }
    }
    Atomics.store(ram, program.symbols.get('stop')! >> 2, 1);
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(problems).toEqual([]);
    expect(report.ok, summary(report)).toBe(true);
  });

  it('pause() right after resume() waits for every vCPU to park for it, not for the park it is leaving', async () => {
    const vcpus = 2;
    const { vm, program } = await createGuest(source, { vcpus });
    const ram = new Int32Array(vm.memory.buffers.ram);
    vm.start();
    await waitUntil(() => Atomics.load(ram, program.symbols.get('counters')! >> 2) > 0, 'vCPU 0 to count');
    const problems: string[] = [];
    const control = vm.memory.control;
    const runState = () => Atomics.load(control, vm.memory.controlBlockIndex(0, 'runState'));
    await vm.pause();
    for (let cycle = 0; cycle < RESUME_PAUSE_CYCLES && problems.length === 0; cycle++) {
      vm.resume();
      // Pause again the moment vCPU 0 wakes for the resume: it has not left its park yet (its run
      // state still reads Paused) but is about to.
      spinUntil(() => vm.memory.runQueues.state(0) !== TaskState.Blocked || runState() !== VcpuRunState.Paused, 'vCPU 0 to wake');
      await vm.pause();
      const states = vm.runStates();
      states.forEach((state, vcpu) => {
        if (state !== 'paused') problems.push(`cycle ${cycle}: vCPU ${vcpu} is ${state} after pause()`);
        else if (vm.memory.physicalApicIdTable.isRunning(vcpu as never))
          problems.push(`cycle ${cycle}: vCPU ${vcpu} IsRunning = 1 after pause()`);
      });
    }
    vm.resume();
    Atomics.store(ram, program.symbols.get('stop')! >> 2, 1);
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(problems).toEqual([]);
    expect(report.ok, summary(report)).toBe(true);
  });

  it('pause, kick and resume are refused on a VM that is not running', async () => {
    const { vm } = await createGuest(source, { vcpus: 1 });
    await expect(vm.pause()).rejects.toThrow(/started/);
    expect(() => vm.kick(0)).toThrow(/started/);
  });
});
