// The main thread's checks on running vCPUs: is the VM idle (nothing left that could wake anyone),
// and has a vCPU stopped making progress (its run loop's heartbeat is still).

import { VCPU_WAIT_REASON_NAMES, VcpuRunState, runStateName } from './vcpu-run-state.js';
import type { VcpuExitReport } from './vcpu.js';
import type { VmMemory } from './vm-memory.js';

/**
 * Every vCPU finished, or asleep on a doorbell nobody has rung since with no timer of its own that
 * will raise an interrupt (idle: nothing can wake it). Halted vCPUs and application processors in
 * wait-for-SIPI (run state Blocked, wait reason WaitForStartUp) both count as asleep.
 */
export function allVcpusIdle(memory: VmMemory, results: readonly (VcpuExitReport | Error | undefined)[]): boolean {
  const control = memory.control;
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    if (results[vcpu] !== undefined) continue;
    if (Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState')) !== VcpuRunState.Blocked) return false;
    if (Atomics.load(control, memory.controlBlockIndex(vcpu, 'apicTimerArmed')) !== 0) return false;
    const slot = Atomics.load(control, memory.controlBlockIndex(vcpu, 'hostThreadSlot'));
    if (slot < 0 || Atomics.load(control, memory.doorbellIndex(slot, 'sleeping')) !== 1) return false;
    if (Atomics.load(control, memory.doorbellIndex(slot, 'ring')) !== Atomics.load(control, memory.doorbellIndex(slot, 'waitValue'))) return false;
  }
  return true;
}

export function findStuckVcpu(memory: VmMemory, heartbeats: { value: number; since: number }[], now: number, watchdogMs: number): string | undefined {
  const control = memory.control;
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    const state = Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState'));
    const beat = Atomics.load(control, memory.controlBlockIndex(vcpu, 'heartbeat'));
    const previous = heartbeats[vcpu]!;
    if (beat !== previous.value || state !== VcpuRunState.Running) {
      heartbeats[vcpu] = { value: beat, since: now };
      continue;
    }
    if (now - previous.since > watchdogMs) return `vCPU ${vcpu} made no progress for ${(watchdogMs / 1000).toFixed(1)} s (${describeVcpu(memory, vcpu)})`;
  }
  return undefined;
}


/** What a vCPU is doing and which locks it holds, for watchdog reports. */
export function describeVcpu(memory: VmMemory, vcpu: number): string {
  const control = memory.control;
  const state = runStateName(Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState')));
  const waiting = VCPU_WAIT_REASON_NAMES[Atomics.load(control, memory.controlBlockIndex(vcpu, 'waitReason'))] ?? 'unknown';
  const srcuSlot = vcpu + 1;
  const holdsSrcu = memory.srcu.readerSlotsInside(0).includes(srcuSlot) || memory.srcu.readerSlotsInside(1).includes(srcuSlot);
  return `vCPU ${vcpu} is ${state}, waiting for: ${waiting}; holds: ${holdsSrcu ? 'kvm->srcu (read)' : 'no lock'}`;
}
