// What a read of the ICR returns after a guest write, and which x2APIC ICR writes fault (Intel SDM
// vol. 3 §11.6.1 and §11.12.9; AMD APM vol. 2 §16.5; KVM lapic.c; the KVM selftest
// xapic_state_test). This is where the vendors visibly disagree, so every function takes the
// implementation being modelled and docs/amd-intel-differences.md lists the differences.
//
// The model avic-smp runs is ApicImplementation.KvmEmulated: the ICR is emulated by the hypervisor
// (every non-Fixed IPI exits with cause 0 and KVM completes it, avic_incomplete_ipi_interception), KVM clears BUSY
// (it has no delay) and keeps ICR high bits 31:24 only. AmdAvic and IntelHardware are there so
// tests and the conformance suite can state what the other answers would have been.
//
// Pure, allocation-free: values are unsigned 32-bit halves, faults are small integers.

import { ICR_DELIVERY_STATUS_BUSY, ICR_XAPIC_DESTINATION_SHIFT } from './interrupt-command.js';

/** Whose behaviour a function reproduces where the vendors differ. */
export const ApicImplementation = {
  /** KVM's software lapic (lapic.c), including what it does after an AVIC trap. The default. */
  KvmEmulated: 0,
  /** AMD hardware with AVIC / x2AVIC handling the access without a software fix-up. */
  AmdAvic: 1,
  /** Intel hardware (with or without APICv IPI virtualization). */
  IntelHardware: 2,
} as const;
export type ApicImplementation = (typeof ApicImplementation)[keyof typeof ApicImplementation];

/** xAPIC ICR high: only the destination byte (bits 31:24) is implemented (SDM figure 11-12). */
export const XAPIC_ICR_HIGH_IMPLEMENTED_MASK = 0xff << ICR_XAPIC_DESTINATION_SHIFT;

/**
 * x2APIC ICR low bits that must be zero (SDM §11.12.9 figure 11-28): 31:20, 17:16 and 13. The
 * same mask as KVM's X2APIC_ICR_RESERVED_BITS. BUSY (bit 12) is reserved as well but handled per
 * implementation, see x2apicInterruptCommandWriteFaults.
 */
export const X2APIC_ICR_LOW_RESERVED_MASK = (0xfff00000 | 0x00030000 | 0x00002000) >>> 0;

/**
 * Value a later read of xAPIC ICR low (0x300) returns after the guest wrote `written`.
 *   KvmEmulated, IntelHardware: BUSY reads 0 (KVM: "no delay, always clear the pending bit";
 *     Intel completes the send before the next read is observable to software that polls).
 *   AmdAvic: the written value, BUSY included; the hardware may also leave BUSY set after an
 *     incomplete-IPI exit (avic_incomplete_ipi_interception's comment), so a caller modelling AVIC without KVM's fix-up
 *     passes `busyLeftSet` = true for that case. xapic_state_test masks BUSY on AVIC for this.
 * Reserved bits of ICR low read back as written in every model (KVM stores the whole word).
 */
export function xapicInterruptCommandLowAfterWrite(written: number, implementation: ApicImplementation, busyLeftSet = false): number {
  if (implementation === ApicImplementation.AmdAvic) {
    return (busyLeftSet ? written | ICR_DELIVERY_STATUS_BUSY : written) >>> 0;
  }
  return (written & ~ICR_DELIVERY_STATUS_BUSY) >>> 0;
}

/**
 * Value a later read of xAPIC ICR high (0x310) returns after the guest wrote `written`.
 * KvmEmulated and IntelHardware drop bits 23:0; AmdAvic keeps all 32 bits (the page is written
 * without an exit, not in KVM's trap list; xapic_state_test "AVIC ... keeps ICR2[23:0]").
 */
export function xapicInterruptCommandHighAfterWrite(written: number, implementation: ApicImplementation): number {
  if (implementation === ApicImplementation.AmdAvic) return written >>> 0;
  return (written & XAPIC_ICR_HIGH_IMPLEMENTED_MASK) >>> 0;
}

/** Why an x2APIC ICR write (WRMSR 0x830) takes #GP instead of sending, or None. */
export const X2apicIcrWriteFault = {
  None: 0,
  /** A bit of X2APIC_ICR_LOW_RESERVED_MASK is set. */
  ReservedBits: 1,
  /** BUSY (bit 12) set on AMD, which treats the reserved bit as must-be-zero. */
  BusyBitSet: 2,
} as const;
export type X2apicIcrWriteFault = (typeof X2apicIcrWriteFault)[keyof typeof X2apicIcrWriteFault];

/**
 * Does WRMSR 0x830 with EDX:EAX = `high`:`low` fault? The destination (`high`) has no reserved
 * bits: every 32-bit value is a destination. On fault the ICR is unchanged and nothing is sent.
 * Callers: on a non-None result inject #GP and stop; otherwise store
 * x2apicInterruptCommandStoredLow(low) and `high`, then send.
 */
export function x2apicInterruptCommandWriteFault(low: number, implementation: ApicImplementation): X2apicIcrWriteFault {
  if ((low & X2APIC_ICR_LOW_RESERVED_MASK) !== 0) return X2apicIcrWriteFault.ReservedBits;
  if (implementation === ApicImplementation.AmdAvic && (low & ICR_DELIVERY_STATUS_BUSY) !== 0) return X2apicIcrWriteFault.BusyBitSet;
  return X2apicIcrWriteFault.None;
}

/**
 * ICR low as stored (and later read by RDMSR 0x830) after an accepted x2APIC write: BUSY cleared.
 * KVM clears it ("arbitrarily", its comment says); Intel ignores the bit; AMD faulted above.
 * So all three implementations read back `low & ~BUSY`, and the high half exactly as written.
 */
export function x2apicInterruptCommandStoredLow(low: number): number {
  return (low & ~ICR_DELIVERY_STATUS_BUSY) >>> 0;
}
