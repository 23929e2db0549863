// avic_kick_target_vcpus_fast (KVM svm/avic.c): the targets of a cause-1 AVIC_INCOMPLETE_IPI exit
// decoded from the ICR alone, so waking them costs the targets, not a walk over every vCPU
// (kvm_apic_match_dest per vCPU, which at 4096 vCPUs is 4096 matches per exit). It applies where
// KVM's does, and leaves the rest to the walk (avic_kick_target_vcpus, traced as
// kvm_avic_kick_vcpu_slowpath):
//   a shorthand                      the walk;
//   physical, the broadcast          the walk (0xFF in xAPIC, 0xFFFFFFFF in x2APIC);
//   physical, any other ID           that vCPU: AVIC runs only while every APIC ID equals its vCPU ID
//                                    (APIC_ID_MODIFIED inhibits it otherwise), so the ID is the vCPU
//                                    ID; an ID that is not the exit's table index takes the walk (KVM
//                                    warns there);
//   logical, sender in x2APIC mode   member bit i of cluster c (destination bits 31:16, bits 15:0
//                                    the members) is vCPU c * 16 + i, the LDR being derived from the ID;
//   logical, xAPIC flat model        bit i of the 8-bit destination names logical APIC ID table entry i;
//   logical, xAPIC cluster model     bit i of destination bits 3:0 names entry (bits 7:4) * 4 + i;
//                                    the sender's DFR says which model; an entry that is not Valid
//                                    names nobody; a reserved DFR takes the walk;
//   an empty member mask             nothing to wake (handled).
// One deliberate difference: the logical broadcasts that name a reserved cluster, 0xFF in the xAPIC
// cluster model and 0xFFFFFFFF in x2APIC, take the walk. The sending hardware here takes both as the
// broadcast (avic-ipi-decoders.ts), while KVM's fast path would look in the reserved cluster (xAPIC
// cluster 15, whose table entries avic_ldr_write never fills; x2APIC cluster 0xFFFF, IDs no vCPU
// has) and wake nobody.

import { XAPIC_BROADCAST_ID } from '../../hw/apic/apic-id.js';
import { ApicRegister } from '../../hw/apic/apic-register.js';
import { DestinationFormatModel, LOGICAL_BROADCAST_DESTINATION, destinationFormatModel } from '../../hw/apic/destination-format.js';
import {
  DestinationMode,
  DestinationShorthand,
  interruptCommandDestinationMode,
  interruptCommandShorthand,
} from '../../hw/apic/interrupt-command.js';
import { X2APIC_BROADCAST_ID, x2apicIdOfLogicalMember, x2apicLogicalCluster, x2apicLogicalMembers } from '../../hw/apic/x2apic-id.js';
import { logicalEntryGuestPhysicalApicId, logicalEntryIsValid } from '../../hw/avic/logical-apic-id-table.js';

/** The sender's APIC registers (its DFR) and the logical APIC ID table, as the fast path reads them. */
export interface KickTargetSender {
  /** The sender's APIC register at byte `offset`. */
  read(offset: number): number;
}
export interface KickTargetLogicalTable {
  /** The raw entry `index`. */
  load(index: number): number;
}

/**
 * avic_kick_target_vcpus_fast: puts the vCPU IDs to wake into `targets` (cleared first; IDs of
 * vCPUs that may not exist, and possibly the sender: the caller skips those) and returns true, or
 * returns false when the walk must decide. `x2apicMode`: the sender's mode (apic_x2apic_mode), which
 * makes the destination ICR[63:32], else ICR[63:56]. `exitIndex`: the exit's table index (EXITINFO2).
 */
export function avicKickTargetsFast(
  icrLow: number,
  icrHigh: number,
  exitIndex: number,
  x2apicMode: boolean,
  sender: KickTargetSender,
  logicalTable: KickTargetLogicalTable,
  targets: number[],
): boolean {
  targets.length = 0;
  if (interruptCommandShorthand(icrLow) !== DestinationShorthand.None) return false;
  const x2apic = x2apicMode;
  const destination = x2apic ? icrHigh >>> 0 : icrHigh >>> 24;
  if (interruptCommandDestinationMode(icrLow) === DestinationMode.Physical) {
    if (destination === (x2apic ? X2APIC_BROADCAST_ID : XAPIC_BROADCAST_ID)) return false;
    if (destination !== exitIndex) return false;
    targets.push(destination);
    return true;
  }
  if (x2apic) {
    if (destination === X2APIC_BROADCAST_ID) return false;
    const cluster = x2apicLogicalCluster(destination);
    for (let members = x2apicLogicalMembers(destination); members !== 0; members &= members - 1)
      targets.push(x2apicIdOfLogicalMember(cluster, lowestBit(members)));
    return true;
  }
  const model = destinationFormatModel(sender.read(ApicRegister.DestinationFormat));
  if (model === DestinationFormatModel.Flat) return visitLogicalEntries(destination & 0xff, 0, logicalTable, targets);
  if (model !== DestinationFormatModel.Cluster || destination === LOGICAL_BROADCAST_DESTINATION) return false;
  return visitLogicalEntries(destination & 0xf, (destination >>> 4) << 2, logicalTable, targets);
}

/** Each set bit i of `members` names logical table entry firstIndex + i; a Valid one names its vCPU. */
function visitLogicalEntries(members: number, firstIndex: number, table: KickTargetLogicalTable, targets: number[]): boolean {
  for (; members !== 0; members &= members - 1) {
    const entry = table.load(firstIndex + lowestBit(members));
    if (logicalEntryIsValid(entry)) targets.push(logicalEntryGuestPhysicalApicId(entry));
  }
  return true;
}

function lowestBit(members: number): number {
  return 31 - Math.clz32(members & -members);
}
