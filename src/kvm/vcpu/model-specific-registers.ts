// The MSRs the model implements: the time-stamp counter, IA32_APIC_BASE and the x2APIC registers
// 0x800-0x8FF (x2apic-msr.ts). An unknown MSR is #GP, as on hardware: vector 13, or an unknown-MSR
// guest fault when the guest has no handler there.
//
// An intercepted RDMSR/WRMSR is an MSR exit, counted here (msrAccesses): every MSR but the x2APIC
// ones x2AVIC passes through (x2apic-msr.ts x2avicPassesThrough), which the hardware handles in
// guest mode. Intercepted APIC MSR writes run as exit handling: outside guest mode and an SRCU
// reader, like an AVIC trap (vcpu.beginExitHandling).

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { GuestFaultKind } from '../../guest/guest-fault.js';
import { isX2apicMsr } from '../../hw/apic/x2apic-register.js';
import { IA32_APIC_BASE_MSR } from '../../hw/apic/apic-base.js';
import { apicBaseLow, readX2apicMsr, readX2apicMsrPassedThrough, writeApicBase, writeX2apicMsr, writeX2apicMsrPassedThrough, x2avicPassesThrough } from '../lapic/x2apic-msr.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { Vcpu } from './vcpu.js';

export const ModelSpecificRegister = {
  /** IA32_TIME_STAMP_COUNTER: the VM clock in nanoseconds. */
  TimeStampCounter: 0x10,
  /** IA32_APIC_BASE: base address, BSP flag (bit 8), global enable (bit 11), x2APIC (bit 10). */
  ApicBase: IA32_APIC_BASE_MSR,
} as const;

export function readModelSpecificRegister(vcpu: Vcpu, cpu: GuestCpu, index: number): number {
  if (isX2apicMsr(index) && x2avicPassesThrough(vcpu, index)) return readX2apicMsrPassedThrough(vcpu, cpu, index);
  vcpu.count(VcpuStatistic.msrAccesses);
  switch (index) {
    case ModelSpecificRegister.TimeStampCounter: {
      const now = vcpu.readClock();
      cpu.msrHighWord = Math.floor(now / 2 ** 32) | 0;
      return now | 0;
    }
    case ModelSpecificRegister.ApicBase:
      cpu.msrHighWord = 0;
      return apicBaseLow(vcpu);
    default:
      if (isX2apicMsr(index)) return readX2apicMsr(vcpu, cpu, index);
      cpu.raiseGeneralProtection(GuestFaultKind.UnknownMsr, `rdmsr of MSR 0x${index.toString(16)}, which this model does not implement`);
      return 0;
  }
}

export function writeModelSpecificRegister(vcpu: Vcpu, cpu: GuestCpu, index: number, low: number, high: number): void {
  if (isX2apicMsr(index) && x2avicPassesThrough(vcpu, index)) {
    writeX2apicMsrPassedThrough(vcpu, cpu, index, low, high);
    return;
  }
  vcpu.count(VcpuStatistic.msrAccesses);
  if (index !== ModelSpecificRegister.ApicBase && !isX2apicMsr(index)) {
    cpu.raiseGeneralProtection(GuestFaultKind.UnknownMsr, `wrmsr of MSR 0x${index.toString(16)} = 0x${(high >>> 0).toString(16)}:${(low >>> 0).toString(16)}: this model does not implement it`);
    return;
  }
  vcpu.beginExitHandling();
  if (index === ModelSpecificRegister.ApicBase) writeApicBase(vcpu, cpu, low, high);
  else writeX2apicMsr(vcpu, cpu, index, low, high);
  vcpu.endExitHandling();
}
