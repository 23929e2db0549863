// The MSRs the model implements. An unknown MSR is #GP on hardware; here it is a guest fault.

import type { GuestCpu } from '../guest/guest-cpu.js';
import { GuestFaultKind } from '../guest/guest-fault.js';
import { APIC_DEFAULT_PHYSICAL_BASE } from '../hw/apic/apic-register.js';
import type { Vcpu } from './vcpu.js';

export const ModelSpecificRegister = {
  /** IA32_TIME_STAMP_COUNTER: the VM clock in nanoseconds. */
  TimeStampCounter: 0x10,
  /** IA32_APIC_BASE: base address, BSP flag (bit 8), global enable (bit 11), x2APIC (bit 10). */
  ApicBase: 0x1b,
} as const;

const APIC_BASE_BOOTSTRAP_PROCESSOR = 1 << 8;
const APIC_BASE_GLOBAL_ENABLE = 1 << 11;

function apicBaseValue(vcpu: Vcpu): number {
  return (APIC_DEFAULT_PHYSICAL_BASE | APIC_BASE_GLOBAL_ENABLE | (vcpu.index === 0 ? APIC_BASE_BOOTSTRAP_PROCESSOR : 0)) | 0;
}

export function readModelSpecificRegister(vcpu: Vcpu, cpu: GuestCpu, index: number): number {
  switch (index) {
    case ModelSpecificRegister.TimeStampCounter: {
      const now = vcpu.readClock();
      cpu.msrHighWord = Math.floor(now / 2 ** 32) | 0;
      return now | 0;
    }
    case ModelSpecificRegister.ApicBase:
      cpu.msrHighWord = 0;
      return apicBaseValue(vcpu);
    default:
      cpu.raiseFault(GuestFaultKind.UnknownMsr, `rdmsr of MSR 0x${index.toString(16)}, which this model does not implement (#GP)`);
      return 0;
  }
}

export function writeModelSpecificRegister(vcpu: Vcpu, cpu: GuestCpu, index: number, low: number, high: number): void {
  if (index === ModelSpecificRegister.ApicBase && (low | 0) === apicBaseValue(vcpu) && high === 0) return;
  const what = index === ModelSpecificRegister.ApicBase
    ? 'relocating, disabling or switching the APIC to x2APIC mode is not modelled yet'
    : 'this model does not implement it';
  cpu.raiseFault(GuestFaultKind.UnknownMsr, `wrmsr of MSR 0x${index.toString(16)} = 0x${(high >>> 0).toString(16)}:${(low >>> 0).toString(16)}: ${what} (#GP)`);
}
