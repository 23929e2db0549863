// Software destination matching for the emulated IPI path: KVM's kvm_apic_match_dest with
// kvm_apic_match_physical_addr / kvm_apic_match_logical_addr, xAPIC mode (Intel SDM vol. 3
// §11.6.2). Used when the hypervisor emulates an ICR write (incomplete-IPI causes 0 and 2,
// avic_incomplete_ipi_interception) and when it looks for the targets of a cause-1 exit (avic_kick_target_vcpus).
// Pure booleans, no allocation.

import { XAPIC_BROADCAST_ID } from './apic-id.js';
import { DestinationMode, DestinationShorthand } from './interrupt-command.js';
import { DestinationFormatModel, LOGICAL_BROADCAST_DESTINATION, destinationFormatModel } from './destination-format.js';

/**
 * True when a target APIC with id `targetApicId`, LDR `targetLdr` and DFR `targetDfr` accepts an
 * IPI sent by `senderApicId` with this shorthand, destination mode and 8-bit destination.
 *   physical: destination == the target's ID, or 0xFF (broadcast)
 *   logical:  0xFF is broadcast in both models; flat: LDR[31:24] & MDA != 0; cluster: same
 *             cluster (bits 7:4) and overlapping member bits (3:0); a reserved DFR matches nothing.
 */
export function matchesDestination(
  targetApicId: number,
  targetLdr: number,
  targetDfr: number,
  senderApicId: number,
  shorthand: DestinationShorthand,
  destinationMode: DestinationMode,
  destination: number,
): boolean {
  const byShorthand = matchesShorthand(targetApicId, senderApicId, shorthand);
  if (byShorthand !== undefined) return byShorthand;
  if (destinationMode === DestinationMode.Physical) {
    return destination === XAPIC_BROADCAST_ID || destination === targetApicId;
  }
  return matchesLogicalDestination(targetLdr, targetDfr, destination);
}

/** kvm_apic_match_logical_addr for xAPIC. */
export function matchesLogicalDestination(targetLdr: number, targetDfr: number, destination: number): boolean {
  if (destination === LOGICAL_BROADCAST_DESTINATION) return true;
  const logicalId = targetLdr >>> 24;
  switch (destinationFormatModel(targetDfr)) {
    case DestinationFormatModel.Flat:
      return (logicalId & destination) !== 0;
    case DestinationFormatModel.Cluster:
      return logicalId >>> 4 === destination >>> 4 && (logicalId & destination & 0xf) !== 0;
    default:
      return false;
  }
}

/**
 * The shorthand's verdict for a target (the same in xAPIC and x2APIC: ids are compared, whatever
 * their width), or undefined for "no shorthand", when the destination field decides.
 */
export function matchesShorthand(targetId: number, senderId: number, shorthand: DestinationShorthand): boolean | undefined {
  switch (shorthand) {
    case DestinationShorthand.Self:
      return targetId === senderId;
    case DestinationShorthand.AllIncludingSelf:
      return true;
    case DestinationShorthand.AllExcludingSelf:
      return targetId !== senderId;
    default:
      return undefined;
  }
}
