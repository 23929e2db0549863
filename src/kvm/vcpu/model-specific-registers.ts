// The MSRs the model implements: the time-stamp counter, IA32_APIC_BASE and the x2APIC registers
// 0x800-0x8FF (lapic/x2apic-msr.ts). An unknown MSR is #GP, as on hardware: vector 13, or an
// unknown-MSR guest fault when the guest has no handler there.
//
// These are the intercepted accesses, each an MSR exit (counted by the vCPU as msrAccesses): every
// MSR but the x2APIC ones x2AVIC passes through, which the hardware handles in guest mode
// (vcpu.ts, src/hw/avic/avic-apic-access.ts). An RDMSR is answered where it happens; an APIC MSR
// write goes through the vCPU's exit dispatch (SVM_EXIT_MSR), outside guest mode and an SRCU reader.

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { GuestFaultKind } from '../../guest/guest-fault.js';
import { isX2apicMsr } from '../../hw/apic/x2apic-register.js';
import { IA32_APIC_BASE_MSR } from '../../hw/apic/apic-base.js';
import { apicBaseLow, readX2apicMsr, writeApicBase, writeX2apicMsr, type X2apicMsrApic } from '../lapic/x2apic-msr.js';

export const ModelSpecificRegister = {
  /** IA32_TIME_STAMP_COUNTER: the VM clock in nanoseconds. */
  TimeStampCounter: 0x10,
  /** IA32_APIC_BASE: base address, BSP flag (bit 8), global enable (bit 11), x2APIC (bit 10). */
  ApicBase: IA32_APIC_BASE_MSR,
} as const;

/** What the MSR handlers need: the VM clock and the local APIC's register emulation. */
export interface MsrHost {
  readClock(): number;
  readonly lapic: X2apicMsrApic;
}

type MsrCpu = Pick<GuestCpu, 'raiseGeneralProtection' | 'raiseFault' | 'msrHighWord'>;

/** An intercepted RDMSR: the value's low half; the high half goes to cpu.msrHighWord. */
export function readModelSpecificRegister(host: MsrHost, cpu: MsrCpu, index: number): number {
  switch (index) {
    case ModelSpecificRegister.TimeStampCounter: {
      const now = host.readClock();
      cpu.msrHighWord = Math.floor(now / 2 ** 32) | 0;
      return now | 0;
    }
    case ModelSpecificRegister.ApicBase:
      cpu.msrHighWord = 0;
      return apicBaseLow(host.lapic);
    default:
      if (isX2apicMsr(index)) return readX2apicMsr(host.lapic, cpu, index);
      cpu.raiseGeneralProtection(GuestFaultKind.UnknownMsr, `rdmsr of MSR 0x${index.toString(16)}, which this model does not implement`);
      return 0;
  }
}

/**
 * An intercepted WRMSR before it exits: true if the model implements the MSR (the write is then an
 * SVM_EXIT_MSR the vCPU dispatches); otherwise #GP is raised here and there is nothing to handle.
 */
export function checkModelSpecificRegisterWrite(cpu: MsrCpu, index: number, low: number, high: number): boolean {
  if (index === ModelSpecificRegister.ApicBase || isX2apicMsr(index)) return true;
  cpu.raiseGeneralProtection(
    GuestFaultKind.UnknownMsr,
    `wrmsr of MSR 0x${index.toString(16)} = 0x${(high >>> 0).toString(16)}:${(low >>> 0).toString(16)}: this model does not implement it`,
  );
  return false;
}

/** SVM_EXIT_MSR for a write (msr_interception -> kvm_set_msr): IA32_APIC_BASE or an x2APIC register. */
export function writeModelSpecificRegister(host: MsrHost, cpu: MsrCpu, index: number, low: number, high: number): void {
  if (index === ModelSpecificRegister.ApicBase) writeApicBase(host.lapic, cpu, low, high);
  else writeX2apicMsr(host.lapic, cpu, index, low, high);
}
