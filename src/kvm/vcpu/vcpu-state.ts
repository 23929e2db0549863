// Saving and restoring the vCPU's state that lives in its objects (a migration between host CPUs):
// each part writes its own fields of the save area (src/kvm/control/vcpu-save-area.ts); the guest
// CPU's registers are written here. A restore goes into a freshly built Vcpu, whose constructor has
// already taken from shared memory what lives there (APIC page base, x2APIC mode, counters).

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { SAVED_REGISTERS, type VcpuSaveAreaView } from '../control/vcpu-save-area.js';

/** A part of the vCPU with state of its own. */
export interface SavedPart {
  save(area: VcpuSaveAreaView): void;
  restore(area: VcpuSaveAreaView): void;
}

export interface VcpuStateParts {
  readonly cpu: GuestCpu;
  /** The timer, boot, interrupt, sleep and AVIC parts. */
  readonly parts: readonly SavedPart[];
  /** The run loop's own: halted (HLT in progress) and whether the first exit was taken. */
  halted: boolean;
  firstExitDone: boolean;
}

export function saveVcpuState(state: VcpuStateParts, area: VcpuSaveAreaView): void {
  const cpu = state.cpu;
  for (let register = 0; register < SAVED_REGISTERS; register++) area.set('registers', cpu.registers[register]!, register);
  area.set('pc', cpu.pc);
  area.set('flags', cpu.flags);
  area.set('interruptVectorTableBase', cpu.interruptVectorTableBase);
  area.set('nmiBlocked', cpu.nmiBlocked ? 1 : 0);
  area.set('msrHighWord', cpu.msrHighWord);
  area.set('generalProtectionExceptions', cpu.generalProtectionExceptions);
  area.set('halted', state.halted ? 1 : 0);
  area.set('firstExitDone', state.firstExitDone ? 1 : 0);
  for (const part of state.parts) part.save(area);
}

export function restoreVcpuState(state: VcpuStateParts, area: VcpuSaveAreaView): void {
  const cpu = state.cpu;
  for (let register = 0; register < SAVED_REGISTERS; register++) cpu.registers[register] = area.get('registers', register);
  cpu.pc = area.get('pc') >>> 0;
  cpu.flags = area.get('flags');
  cpu.interruptVectorTableBase = area.get('interruptVectorTableBase');
  cpu.nmiBlocked = area.get('nmiBlocked') !== 0;
  cpu.msrHighWord = area.get('msrHighWord');
  cpu.generalProtectionExceptions = area.get('generalProtectionExceptions');
  state.halted = area.get('halted') !== 0;
  state.firstExitDone = area.get('firstExitDone') !== 0;
  for (const part of state.parts) part.restore(area);
}
