// x2APIC identifiers (Intel SDM vol. 3 §11.12.2 "x2APIC Register Availability" / §11.12.10.2
// "Logical Destination Mode in x2APIC Mode"; KVM avic_kick_target_vcpus_fast). In x2APIC mode the APIC ID
// is 32 bits wide, read-only, and set by hardware from the initial APIC ID; the LDR is read-only
// too and derived from the ID, which is why x2AVIC needs no logical APIC ID table.
//
// Kept apart from apic-id.ts: ApicId there is an AVIC physical table index (0..0x1FF), while an
// x2APIC ID is any 32-bit value except the broadcast. Conversions are explicit.

import type { ApicId } from './apic-id.js';

declare const x2apicIdBrand: unique symbol;

/** A 32-bit x2APIC ID (0..0xFFFFFFFE; 0xFFFFFFFF is the broadcast destination). */
export type X2apicId = number & { readonly [x2apicIdBrand]: true };

/** Physical and logical broadcast destination in x2APIC mode (ICR[63:32] = 0xFFFFFFFF). */
export const X2APIC_BROADCAST_ID = 0xffffffff;
/** The cluster ID occupies LDR[31:16] and the member bitmap LDR[15:0]. */
export const X2APIC_LOGICAL_CLUSTER_SHIFT = 16;
export const X2APIC_LOGICAL_MEMBER_MASK = 0xffff;
/** Each cluster holds 16 x2APIC IDs: cluster = id >> 4, member bit = id & 15. */
export const X2APIC_IDS_PER_CLUSTER = 16;

/**
 * Checked constructor. Throws RangeError for non-integers, negatives, values above 32 bits and the
 * broadcast ID (the SDM reserves 0xFFFFFFFF; no processor may hold it). Host-side use only: a
 * guest never supplies an x2APIC ID (the register is read-only).
 */
export function x2apicId(value: number): X2apicId {
  if (!Number.isInteger(value) || value < 0 || value >= X2APIC_BROADCAST_ID) {
    throw new RangeError(`not an x2APIC ID: ${value}`);
  }
  return value as X2apicId;
}

/**
 * The x2APIC ID hardware assigns when the APIC enters x2APIC mode: the initial APIC ID (CPUID
 * leaf 0xB EDX), which KVM sets to the vCPU ID (kvm_apic_set_x2apic_id). In this emulator the
 * initial APIC ID is the guest physical APIC ID, so the conversion is the identity.
 */
export function x2apicIdFromInitialApicId(initialApicId: ApicId): X2apicId {
  return initialApicId as number as X2apicId;
}

/**
 * The read-only x2APIC LDR of `id`: cluster (id >> 4) in bits 31:16, member bit (id & 15) in bits
 * 15:0 (SDM §11.12.10.2; KVM kvm_apic_calc_x2apic_ldr). Returned unsigned. Callers store it in the
 * LDR slot of the APIC page whenever the x2APIC ID is (re)assigned, i.e. on xAPIC -> x2APIC.
 */
export function x2apicLogicalDestination(id: X2apicId | number): number {
  return (((id >>> 4) << X2APIC_LOGICAL_CLUSTER_SHIFT) | (1 << (id & 15))) >>> 0;
}

/** LDR[31:16] / destination[31:16]: the logical cluster ID. */
export function x2apicLogicalCluster(logicalDestination: number): number {
  return logicalDestination >>> X2APIC_LOGICAL_CLUSTER_SHIFT;
}

/** LDR[15:0] / destination[15:0]: the member bitmap. */
export function x2apicLogicalMembers(logicalDestination: number): number {
  return logicalDestination & X2APIC_LOGICAL_MEMBER_MASK;
}

/**
 * The x2APIC ID named by member bit `bit` (0..15) of cluster `cluster`: cluster * 16 + bit. This
 * is how x2AVIC turns a logical destination into physical table indices (APM 15.29; KVM
 * avic_kick_target_vcpus_fast). Callers walk the set bits of x2apicLogicalMembers(destination).
 */
export function x2apicIdOfLogicalMember(cluster: number, bit: number): number {
  return cluster * X2APIC_IDS_PER_CLUSTER + (bit & 15);
}
