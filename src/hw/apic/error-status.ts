// Error Status Register bits (Intel SDM vol. 3 §11.5.3, figure 11-9). The kvm layer latches these
// into a pending-error word and publishes them to ESR on the guest's next ESR write, as the
// hardware does; this file only names the bits.

/** Bit positions in the ESR. */
export const ErrorStatusBit = {
  /** P6/Pentium only: checksum error on a message this APIC sent. */
  SendChecksum: 0,
  /** P6/Pentium only: checksum error on a message this APIC received. */
  ReceiveChecksum: 1,
  /** P6/Pentium only: a message this APIC sent was accepted by no APIC. */
  SendAccept: 2,
  /** P6/Pentium only: a message this APIC received was accepted by no APIC (itself included). */
  ReceiveAccept: 3,
  /** A lowest-priority IPI was sent where that mode is unsupported. */
  RedirectableIpi: 4,
  /** An IPI with an illegal vector (0..15) was sent. */
  SendIllegalVector: 5,
  /** An interrupt with an illegal vector (0..15) was received or set in an LVT. */
  ReceivedIllegalVector: 6,
  /** An access to an unimplemented register offset in the APIC page. */
  IllegalRegisterAddress: 7,
} as const;
export type ErrorStatusBit = (typeof ErrorStatusBit)[keyof typeof ErrorStatusBit];

/** The mask of one ESR bit. */
export function errorStatusMask(bit: ErrorStatusBit): number {
  return 1 << bit;
}

/** Bits 7:0 are defined; the rest of ESR reads as zero. */
export const ERROR_STATUS_DEFINED_MASK = 0xff;
