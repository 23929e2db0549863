// The x2APIC MSR interface (Intel SDM vol. 3 §11.12.1.2 table 11-6, §11.12.1.3 reserved-bit
// checking; AMD APM vol. 2 §16.11; KVM kvm_x2apic_msr_read/kvm_x2apic_msr_write). In x2APIC mode
// each xAPIC register at page offset R becomes MSR 0x800 + (R >> 4); the MMIO page is gone. What
// was an ESR "illegal register address" in xAPIC becomes #GP, and so do reads of write-only
// registers, writes of read-only ones and set reserved bits.
//
// These functions classify an access; they do not perform it. The caller (the vCPU's RDMSR/WRMSR
// emulation) asks for the fault first, injects #GP if there is one, and otherwise reads or writes
// the register slot at xapicOffsetForX2apicMsr(msr) in the APIC page (the ICR as two slots, 0x300
// low and 0x310 high, as KVM keeps it when x2apic_icr_is_split, which is the AVIC case).

import { APIC_LVT_CMCI_OFFSET, APIC_SELF_IPI_OFFSET, X2APIC_MSR_BASE } from './apic-register.js';
import { RegisterAccess, x2apicAccessOf, xapicAccessOf } from './apic-register-table.js';
import { ApicImplementation, x2apicInterruptCommandWriteFault, X2apicIcrWriteFault } from './interrupt-command-readback.js';

export { APIC_LVT_CMCI_OFFSET, APIC_SELF_IPI_OFFSET, X2APIC_MSR_BASE, RegisterAccess };

/** Last MSR of the x2APIC register range modelled (the SDM reserves up to 0xBFF). */
export const X2APIC_MSR_LAST = 0x8ff;

/** The x2APIC MSR addresses (SDM table 11-6). */
export const X2apicMsr = {
  Id: 0x802,
  Version: 0x803,
  TaskPriority: 0x808,
  ProcessorPriority: 0x80a,
  EndOfInterrupt: 0x80b,
  LogicalDestination: 0x80d,
  SpuriousInterruptVector: 0x80f,
  /** ISR 0x810..0x817, TMR 0x818..0x81F, IRR 0x820..0x827: the first of each eight. */
  InService: 0x810,
  TriggerMode: 0x818,
  InterruptRequest: 0x820,
  ErrorStatus: 0x828,
  LvtCmci: 0x82f,
  /** The whole 64-bit ICR; 0x831 (the old ICR high) does not exist. */
  InterruptCommand: 0x830,
  LvtTimer: 0x832,
  LvtThermal: 0x833,
  LvtPerformanceCounter: 0x834,
  LvtLint0: 0x835,
  LvtLint1: 0x836,
  LvtError: 0x837,
  TimerInitialCount: 0x838,
  TimerCurrentCount: 0x839,
  TimerDivideConfiguration: 0x83e,
  /** Write-only; exists only in x2APIC mode. */
  SelfIpi: 0x83f,
} as const;
export type X2apicMsr = (typeof X2apicMsr)[keyof typeof X2apicMsr];

/** True for MSRs 0x800..0x8FF (whether or not a register sits there). */
export function isX2apicMsr(msr: number): boolean {
  return msr >= X2APIC_MSR_BASE && msr <= X2APIC_MSR_LAST;
}

/** MSR address of the register at xAPIC page `offset` (a multiple of 16, 0..0x3F0). */
export function x2apicMsrForOffset(offset: number): number {
  return X2APIC_MSR_BASE + (offset >>> 4);
}

/** xAPIC page offset of x2APIC `msr` (0x800..0x83F map onto 0x000..0x3F0). */
export function xapicOffsetForX2apicMsr(msr: number): number {
  return (msr - X2APIC_MSR_BASE) << 4;
}

/**
 * Access of the register at page `offset` in x2APIC mode (SDM table 11-6; the x2apic column of
 * apic-register-table.ts). Differences from xAPIC: APR (0x90), RRD (0xC0), DFR (0xE0) and ICR high
 * (0x310) do not exist; ID and LDR are read-only; SELF IPI (0x3F0) exists, write-only. LVT CMCI
 * exists only when the CPU reports CMCI.
 */
export function x2apicRegisterAccess(offset: number, lvtCmciSupported = false): RegisterAccess {
  return x2apicAccessOf(offset, lvtCmciSupported);
}

/**
 * Access of the register at page `offset` in xAPIC (MMIO) mode, as the architecture defines it
 * (SDM table 11-1; the xapic column). An access to a Reserved offset sets ESR bit 7 (illegal
 * register address) on the APICs that implement it; see docs/amd-intel-differences.md for what KVM
 * does instead.
 */
export function xapicRegisterAccess(offset: number, lvtCmciSupported = false): RegisterAccess {
  return xapicAccessOf(offset, lvtCmciSupported);
}

/** Why an RDMSR/WRMSR of an x2APIC MSR takes #GP, or None. */
export const X2apicMsrFault = {
  None: 0,
  /** The APIC is not in x2APIC mode (SDM: MSRs 0x800-0xBFF #GP unless EXTD = 1). */
  NotInX2apicMode: 1,
  /** No register at this MSR (includes 0x831 ICR high, 0x80E DFR, 0x809 APR, 0x80C RRD). */
  ReservedRegister: 2,
  /** RDMSR of EOI or SELF IPI. */
  ReadOfWriteOnly: 3,
  /** WRMSR of ID, version, PPR, LDR, ISR/TMR/IRR or the current count. */
  WriteToReadOnly: 4,
  /** Bits 63:32 set in a 32-bit register, or reserved ICR / SELF IPI bits. */
  ReservedBits: 5,
  /** EOI written with a non-zero value (SDM §11.12.1.2). */
  NonZeroEndOfInterrupt: 6,
  /** ESR written with a non-zero value (SDM §11.12.1.2; KVM checks this). */
  NonZeroErrorStatus: 7,
  /** ICR BUSY bit set on AMD (see x2apicInterruptCommandWriteFault). */
  IcrBusyBitSet: 8,
} as const;
export type X2apicMsrFault = (typeof X2apicMsrFault)[keyof typeof X2apicMsrFault];

/**
 * RDMSR `msr` (0x800..0x8FF): the fault, or None, in which case the caller reads the page slot at
 * xapicOffsetForX2apicMsr(msr) into EAX (and, for 0x830 only, the 0x310 slot into EDX; EDX = 0
 * for all others).
 */
export function x2apicMsrReadFault(msr: number, x2apicMode: boolean, lvtCmciSupported = false): X2apicMsrFault {
  if (!x2apicMode) return X2apicMsrFault.NotInX2apicMode;
  if (!isX2apicMsr(msr)) return X2apicMsrFault.ReservedRegister;
  const access = x2apicRegisterAccess(xapicOffsetForX2apicMsr(msr), lvtCmciSupported);
  if (access === RegisterAccess.Reserved) return X2apicMsrFault.ReservedRegister;
  return access === RegisterAccess.WriteOnly ? X2apicMsrFault.ReadOfWriteOnly : X2apicMsrFault.None;
}

/**
 * WRMSR `msr` with EDX:EAX = `high`:`low`: the fault, or None, in which case the caller performs
 * the write's effect (ICR: store x2apicInterruptCommandStoredLow(low) and `high`, then send; SELF
 * IPI: send vector `low & 0xFF` to self; EOI: end of interrupt; others: store `low` with the
 * register's own masks). Reserved-bit checks follow KVM (bits 63:32 of 32-bit registers, the ICR
 * mask, SELF IPI bits 31:8, ESR non-zero) plus the SDM's EOI rule, which KVM does not check.
 */
export function x2apicMsrWriteFault(
  msr: number,
  low: number,
  high: number,
  x2apicMode: boolean,
  implementation: ApicImplementation = ApicImplementation.KvmEmulated,
  lvtCmciSupported = false,
): X2apicMsrFault {
  if (!x2apicMode) return X2apicMsrFault.NotInX2apicMode;
  if (!isX2apicMsr(msr)) return X2apicMsrFault.ReservedRegister;
  const access = x2apicRegisterAccess(xapicOffsetForX2apicMsr(msr), lvtCmciSupported);
  if (access === RegisterAccess.Reserved) return X2apicMsrFault.ReservedRegister;
  if (access === RegisterAccess.ReadOnly) return X2apicMsrFault.WriteToReadOnly;
  if (msr === X2apicMsr.InterruptCommand) {
    const fault = x2apicInterruptCommandWriteFault(low, implementation);
    if (fault === X2apicIcrWriteFault.ReservedBits) return X2apicMsrFault.ReservedBits;
    return fault === X2apicIcrWriteFault.BusyBitSet ? X2apicMsrFault.IcrBusyBitSet : X2apicMsrFault.None;
  }
  if (high !== 0) return X2apicMsrFault.ReservedBits;
  switch (msr) {
    case X2apicMsr.SelfIpi:
      return (low & ~0xff) !== 0 ? X2apicMsrFault.ReservedBits : X2apicMsrFault.None;
    case X2apicMsr.EndOfInterrupt:
      return low !== 0 && implementation !== ApicImplementation.KvmEmulated ? X2apicMsrFault.NonZeroEndOfInterrupt : X2apicMsrFault.None;
    case X2apicMsr.ErrorStatus:
      return low !== 0 ? X2apicMsrFault.NonZeroErrorStatus : X2apicMsrFault.None;
    default:
      return X2apicMsrFault.None;
  }
}
