// The Destination Format Register's model and the logical broadcast (Intel SDM vol. 3 §11.6.2.2,
// KVM avic_get_logical_id_entry). Shared by the logical APIC ID table, the AVIC delivery and software matching.

/** DFR[31:28]: the destination format model. Other values are reserved. */
export const DestinationFormatModel = {
  /** 8-bit logical ID is a bitmap of up to 8 APICs. */
  Flat: 0xf,
  /** Logical ID is a cluster (bits 7:4) and a 4-bit member bitmap (bits 3:0). */
  Cluster: 0x0,
} as const;
export type DestinationFormatModel = (typeof DestinationFormatModel)[keyof typeof DestinationFormatModel];

/** The model of a DFR value, or -1 for the reserved encodings of DFR[31:28]. */
export function destinationFormatModel(dfr: number): DestinationFormatModel | -1 {
  const model = dfr >>> 28;
  return model === DestinationFormatModel.Flat || model === DestinationFormatModel.Cluster ? model : -1;
}

/** Cluster 15 is reserved for broadcast; no APIC can be a member of it (avic_get_logical_id_entry). */
export const LOGICAL_BROADCAST_CLUSTER = 0xf;
/** Logical destination 0xFF: broadcast in both models (KVM kvm_apic_broadcast). */
export const LOGICAL_BROADCAST_DESTINATION = 0xff;
