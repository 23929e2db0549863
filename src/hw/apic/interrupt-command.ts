// The xAPIC Interrupt Command Register (Intel SDM vol. 3 §11.6.1, figure 11-12; AMD APM vol. 2, 15.29 for what AVIC does with it).
// ICR is 64 bits split over two registers: ICR low (0x300) holds the command, ICR high (0x310) the
// destination in bits 31:24. The field extractors below take one 32-bit half and return a number,
// so the IPI hot path decodes without allocating; decodeInterruptCommand is the object form for
// tests and slow paths. x2APIC (one 64-bit MSR, 32-bit destination in the high half) differs only
// in interruptCommandDestination, so the low-half extractors serve both.

/** ICR[10:8]: the message type. */
export const DeliveryMode = {
  /** Deliver the vector to every target; the only mode AVIC accelerates (APM 15.29; incomplete-IPI cause 0 otherwise). */
  Fixed: 0,
  /** Deliver to the lowest-priority target; AVIC exits with cause 0. */
  LowestPriority: 1,
  /** System Management Interrupt; vector ignored. */
  Smi: 2,
  /** Reserved encoding 011b. */
  Reserved3: 3,
  /** Non-maskable interrupt; vector ignored. */
  Nmi: 4,
  /** INIT (or INIT level de-assert with level = 0, trigger = level). */
  Init: 5,
  /** Start-up IPI; the vector names the start page. */
  StartUp: 6,
  /** Reserved encoding 111b. */
  Reserved7: 7,
} as const;
export type DeliveryMode = (typeof DeliveryMode)[keyof typeof DeliveryMode];

/** ICR[11]: how the destination field is interpreted. */
export const DestinationMode = {
  /** Destination is a physical APIC ID (0xFF = broadcast). */
  Physical: 0,
  /** Destination is a message destination address matched against LDR/DFR. */
  Logical: 1,
} as const;
export type DestinationMode = (typeof DestinationMode)[keyof typeof DestinationMode];

/** ICR[19:18]: destination shorthand; anything but None ignores the destination field. */
export const DestinationShorthand = {
  /** Use the destination field. */
  None: 0,
  /** The sender only. */
  Self: 1,
  /** Every APIC, the sender included. */
  AllIncludingSelf: 2,
  /** Every APIC but the sender. */
  AllExcludingSelf: 3,
} as const;
export type DestinationShorthand = (typeof DestinationShorthand)[keyof typeof DestinationShorthand];

/** ICR[15]: trigger mode. */
export const TriggerMode = {
  /** Edge-triggered; the only trigger AVIC accelerates (APM 15.29; incomplete-IPI cause 0 otherwise). */
  Edge: 0,
  /** Level-triggered; AVIC exits with cause 0. */
  Level: 1,
} as const;
export type TriggerMode = (typeof TriggerMode)[keyof typeof TriggerMode];

export const ICR_VECTOR_MASK = 0xff;
export const ICR_DELIVERY_MODE_SHIFT = 8;
export const ICR_DESTINATION_MODE_LOGICAL = 1 << 11;
/** Delivery status: 1 = send pending. AVIC may leave it set on an exit; software clears it (avic_incomplete_ipi_interception). */
export const ICR_DELIVERY_STATUS_BUSY = 1 << 12;
/** Level: 1 = assert (0 only meaningful for INIT level de-assert). */
export const ICR_LEVEL_ASSERT = 1 << 14;
export const ICR_TRIGGER_MODE_LEVEL = 1 << 15;
export const ICR_SHORTHAND_SHIFT = 18;
/** xAPIC destination: ICR high bits 31:24. */
export const ICR_XAPIC_DESTINATION_SHIFT = 24;

export function interruptCommandVector(low: number): number {
  return low & ICR_VECTOR_MASK;
}

export function interruptCommandDeliveryMode(low: number): DeliveryMode {
  return ((low >>> ICR_DELIVERY_MODE_SHIFT) & 7) as DeliveryMode;
}

export function interruptCommandDestinationMode(low: number): DestinationMode {
  return ((low >>> 11) & 1) as DestinationMode;
}

export function interruptCommandIsBusy(low: number): boolean {
  return (low & ICR_DELIVERY_STATUS_BUSY) !== 0;
}

export function interruptCommandLevelAsserted(low: number): boolean {
  return (low & ICR_LEVEL_ASSERT) !== 0;
}

export function interruptCommandTriggerMode(low: number): TriggerMode {
  return ((low >>> 15) & 1) as TriggerMode;
}

export function interruptCommandShorthand(low: number): DestinationShorthand {
  return ((low >>> ICR_SHORTHAND_SHIFT) & 3) as DestinationShorthand;
}

/** xAPIC destination (8 bits). x2AVIC would return the whole high half instead (x2avic-ipi-delivery.ts). */
export function interruptCommandDestination(high: number): number {
  return high >>> ICR_XAPIC_DESTINATION_SHIFT;
}

/** The decoded xAPIC ICR, for tests and slow paths (allocates). */
export interface InterruptCommand {
  readonly vector: number;
  readonly deliveryMode: DeliveryMode;
  readonly destinationMode: DestinationMode;
  /** Delivery status (bit 12): true = send pending. */
  readonly busy: boolean;
  /** Level (bit 14): true = assert. */
  readonly levelAssert: boolean;
  readonly triggerMode: TriggerMode;
  readonly shorthand: DestinationShorthand;
  /** ICR high bits 31:24. */
  readonly destination: number;
}

export function decodeInterruptCommand(low: number, high: number): InterruptCommand {
  return {
    vector: interruptCommandVector(low),
    deliveryMode: interruptCommandDeliveryMode(low),
    destinationMode: interruptCommandDestinationMode(low),
    busy: interruptCommandIsBusy(low),
    levelAssert: interruptCommandLevelAsserted(low),
    triggerMode: interruptCommandTriggerMode(low),
    shorthand: interruptCommandShorthand(low),
    destination: interruptCommandDestination(high),
  };
}

/**
 * Encodes an xAPIC ICR. Omitted fields default to a Fixed, physical, edge, asserted IPI with no
 * shorthand, which is what guests send. Both halves are returned as unsigned 32-bit numbers.
 */
export function encodeInterruptCommand(fields: Partial<InterruptCommand>): { low: number; high: number } {
  const low =
    ((fields.vector ?? 0) & ICR_VECTOR_MASK) |
    (((fields.deliveryMode ?? DeliveryMode.Fixed) & 7) << ICR_DELIVERY_MODE_SHIFT) |
    ((fields.destinationMode ?? DestinationMode.Physical) === DestinationMode.Logical ? ICR_DESTINATION_MODE_LOGICAL : 0) |
    (fields.busy === true ? ICR_DELIVERY_STATUS_BUSY : 0) |
    ((fields.levelAssert ?? true) ? ICR_LEVEL_ASSERT : 0) |
    ((fields.triggerMode ?? TriggerMode.Edge) === TriggerMode.Level ? ICR_TRIGGER_MODE_LEVEL : 0) |
    (((fields.shorthand ?? DestinationShorthand.None) & 3) << ICR_SHORTHAND_SHIFT);
  const high = ((fields.destination ?? 0) & 0xff) << ICR_XAPIC_DESTINATION_SHIFT;
  return { low: low >>> 0, high: high >>> 0 };
}
