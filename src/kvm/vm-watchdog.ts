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

/** The locks a thread holds and the one it waits for, from the locks' own words (validator on or off). */
export type HeldLocksOf = (lockdepThreadSlot: number) => { readonly held: readonly string[]; readonly waitingFor?: string };

export function findStuckVcpu(memory: VmMemory, heartbeats: { value: number; since: number }[], now: number, watchdogMs: number, heldLocks?: HeldLocksOf): string | undefined {
  const control = memory.control;
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    const state = Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState'));
    const beat = Atomics.load(control, memory.controlBlockIndex(vcpu, 'heartbeat'));
    const previous = heartbeats[vcpu]!;
    if (beat !== previous.value || state !== VcpuRunState.Running) {
      heartbeats[vcpu] = { value: beat, since: now };
      continue;
    }
    if (now - previous.since > watchdogMs) return `vCPU ${vcpu} made no progress for ${(watchdogMs / 1000).toFixed(1)} s (${describeVcpu(memory, vcpu, heldLocks)})`;
  }
  return undefined;
}


/** What a vCPU is doing and which locks it holds, for watchdog reports. */
export function describeVcpu(memory: VmMemory, vcpu: number, heldLocks?: HeldLocksOf): string {
  const control = memory.control;
  const state = runStateName(Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState')));
  const reason = Atomics.load(control, memory.controlBlockIndex(vcpu, 'waitReason'));
  const hostThreadSlot = Atomics.load(control, memory.controlBlockIndex(vcpu, 'hostThreadSlot'));
  // The vCPU's lockdep thread slot is its host thread slot + 1 (VcpuLocks); slot 0 is main's.
  const locks = heldLocks !== undefined && hostThreadSlot >= 0 ? heldLocks(hostThreadSlot + 1) : { held: [] };
  const held = [...locks.held];
  const waiting = reason === 0 && locks.waitingFor !== undefined ? locks.waitingFor : VCPU_WAIT_REASON_NAMES[reason] ?? 'unknown';
  const srcuSlot = vcpu + 1;
  const readsSrcu = memory.srcu.readerSlotsInside(0).includes(srcuSlot) || memory.srcu.readerSlotsInside(1).includes(srcuSlot);
  if (readsSrcu && !held.some((name) => name.startsWith('kvm->srcu'))) held.push('kvm->srcu (read)');
  return `vCPU ${vcpu} is ${state}, waiting for: ${waiting}; holds: ${held.length === 0 ? 'no lock' : held.join(', ')}`;
}
