// Destination matching in x2APIC mode (Intel SDM vol. 3 §11.12.9-§11.12.10; KVM
// kvm_apic_match_physical_addr / kvm_apic_match_logical_addr with apic_x2apic_mode). The xAPIC
// rules stay in apic-destination.ts, unchanged; matchesDestinationInMode picks between the two.
//
//   physical: 32-bit destination == the target's x2APIC ID, or 0xFFFFFFFF (broadcast)
//   logical:  0xFFFFFFFF is broadcast; otherwise destination[31:16] must equal the target's
//             cluster (LDR[31:16]) and destination[15:0] & LDR[15:0] must be non-zero
//   shorthands: as in xAPIC (the destination field is ignored)
//
// Pure booleans, no allocation: used on the software IPI path (incomplete-IPI causes 0/2, and
// the cause-1 target scan).

import { matchesDestination, matchesShorthand } from './apic-destination.js';
import { DestinationMode, type DestinationShorthand } from './interrupt-command.js';
import {
  X2APIC_BROADCAST_ID,
  x2apicIdOfLogicalMember,
  x2apicLogicalCluster,
  x2apicLogicalDestination,
  x2apicLogicalMembers,
} from './x2apic-id.js';

/**
 * True when the target with x2APIC ID `targetX2apicId` accepts an IPI sent by the APIC with
 * `senderX2apicId`, given the shorthand, destination mode and 32-bit destination (ICR[63:32]).
 * The target's LDR is derived from its ID (it is read-only in x2APIC mode), so no LDR argument.
 */
export function matchesX2apicDestination(
  targetX2apicId: number,
  senderX2apicId: number,
  shorthand: DestinationShorthand,
  destinationMode: DestinationMode,
  destination: number,
): boolean {
  const byShorthand = matchesShorthand(targetX2apicId, senderX2apicId, shorthand);
  if (byShorthand !== undefined) return byShorthand;
  const mda = destination >>> 0;
  if (mda === X2APIC_BROADCAST_ID) return true;
  if (destinationMode === DestinationMode.Physical) return mda === targetX2apicId >>> 0;
  return matchesX2apicLogicalDestination(x2apicLogicalDestination(targetX2apicId), mda);
}

/** kvm_apic_match_logical_addr in x2APIC mode, for a target whose LDR is `targetLdr`. */
export function matchesX2apicLogicalDestination(targetLdr: number, destination: number): boolean {
  const mda = destination >>> 0;
  if (mda === X2APIC_BROADCAST_ID) return true;
  return (
    x2apicLogicalCluster(targetLdr) === x2apicLogicalCluster(mda) && (x2apicLogicalMembers(targetLdr) & x2apicLogicalMembers(mda)) !== 0
  );
}

/**
 * Calls `visit(x2apicId)` for each x2APIC ID a logical destination names, lowest first: member
 * bit i of cluster c names ID c * 16 + i. This is x2AVIC's arithmetic (no logical table; AMD APM
 * vol. 2, 15.29). The broadcast destination is not expanded: callers test for it first. Returns the count.
 */
export function forEachX2apicLogicalTarget(destination: number, visit: (x2apicId: number) => void): number {
  const cluster = x2apicLogicalCluster(destination >>> 0);
  let members = x2apicLogicalMembers(destination);
  let count = 0;
  for (; members !== 0; members &= members - 1) {
    visit(x2apicIdOfLogicalMember(cluster, 31 - Math.clz32(members & -members)));
    count++;
  }
  return count;
}

/** What a target's APIC registers look like to the matcher, in either mode. */
export interface DestinationTarget {
  /** True when this target is in x2APIC mode (the sender is then too: mixed modes are not modelled). */
  readonly x2apic: boolean;
  /** x2APIC ID in x2APIC mode; the 8-bit xAPIC ID (ID register bits 31:24) otherwise. */
  readonly apicId: number;
  /** LDR (ignored in x2APIC mode, where it is derived). */
  readonly logicalDestination: number;
  /** DFR (xAPIC only). */
  readonly destinationFormat: number;
}

/**
 * One entry point for both modes: x2APIC targets use the 32-bit rules above, xAPIC targets the
 * existing matchesDestination. `destination` is ICR high bits 31:24 (xAPIC) or 31:0 (x2APIC):
 * decode it with interruptCommandDestination or x2apicInterruptCommandDestination to match.
 */
export function matchesDestinationInMode(
  target: DestinationTarget,
  senderApicId: number,
  shorthand: DestinationShorthand,
  destinationMode: DestinationMode,
  destination: number,
): boolean {
  if (target.x2apic) return matchesX2apicDestination(target.apicId, senderApicId, shorthand, destinationMode, destination);
  return matchesDestination(
    target.apicId,
    target.logicalDestination,
    target.destinationFormat,
    senderApicId,
    shorthand,
    destinationMode,
    destination,
  );
}
