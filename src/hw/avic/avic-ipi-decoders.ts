// The per-mode target decoders of the AVIC IPI driver (avic-ipi-delivery.ts; AMD APM vol. 2, 15.29;
// KVM avic_kick_target_vcpus_fast): where the targets of an ICR write come from. xAVIC: the
// destination is ICR[63:56], 0xFF the broadcast, and logical IDs go through the logical APIC ID
// table in the sender's DFR model (flat or cluster). x2AVIC: the destination is ICR[63:32],
// 0xFFFFFFFF the broadcast, and logical IDs are cluster arithmetic (x2APIC LDRs are derived from
// the ID, so there is no logical table and no DFR). Allocation-free.

import { ApicPageWord } from '../apic/apic-backing-page.js';
import { XAPIC_BROADCAST_ID, type ApicId } from '../apic/apic-id.js';
import {
  DestinationMode,
  DestinationShorthand,
  interruptCommandDestinationMode,
  interruptCommandShorthand,
} from '../apic/interrupt-command.js';
import { DestinationFormatModel, LOGICAL_BROADCAST_DESTINATION, destinationFormatModel } from '../apic/destination-format.js';
import { X2APIC_BROADCAST_ID, x2apicIdOfLogicalMember, x2apicLogicalCluster, x2apicLogicalMembers } from '../apic/x2apic-id.js';
import { AvicIncompleteIpiCause } from './avic-exit.js';
import { logicalEntryGuestPhysicalApicId, logicalEntryIsValid } from './logical-apic-id-table.js';
import { NO_EXIT, Pass, recordExit, visitTarget, type AvicHardware, type AvicIpiOutcome } from './avic-ipi-target.js';

/**
 * The shape of the target set, decoded once by the sender's mode's decoder from the ICR (and, in
 * xAPIC mode, the sender's DFR) so the two passes share it without allocating. The logical shapes
 * say which walk applies, so the driver needs no mode of its own.
 */
export const TargetSet = {
  None: 0,
  AllIncludingSelf: 1,
  AllExcludingSelf: 2,
  Physical: 3,
  /** xAPIC logical, flat model: through the logical APIC ID table. */
  LogicalFlat: 4,
  /** xAPIC logical, cluster model: through the logical APIC ID table. */
  LogicalCluster: 5,
  /** x2APIC logical (always cluster): by arithmetic on the ID, no table. */
  X2apicLogical: 6,
} as const;
export type TargetSet = (typeof TargetSet)[keyof typeof TargetSet];

// ---- xAPIC (xAVIC) ----

/**
 * Logical xAPIC destination through the logical table (avic_get_logical_id_entry): flat, each set bit i
 * of the MDA names entry i; cluster, each set bit b of MDA[3:0] names entry (MDA[7:4] * 4 + b).
 * Every named logical entry, and the physical entry it names, must be Valid, else cause 2 with
 * the logical index. The bits are walked lowest first without allocating.
 */
export function visitXapicLogical(
  destination: number,
  clusterModel: boolean,
  vector: number,
  sender: ApicId,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
  pass: Pass,
): boolean {
  const firstIndex = clusterModel ? (destination >>> 4) << 2 : 0;
  let members = clusterModel ? destination & 0xf : destination & 0xff;
  let ok = true;
  for (; members !== 0; members &= members - 1) {
    const logicalIndex = firstIndex + 31 - Math.clz32(members & -members);
    const entry = hardware.logicalTable.load(logicalIndex);
    const cause = logicalEntryIsValid(entry)
      ? visitTarget(logicalEntryGuestPhysicalApicId(entry), logicalIndex, vector, sender, hardware, outcome, pass)
      : AvicIncompleteIpiCause.InvalidTarget;
    if (cause !== NO_EXIT) {
      ok = recordExit(outcome, cause, logicalIndex);
      if (pass === Pass.Validate) return false;
    }
  }
  return ok;
}

/**
 * Decodes the target set. Logical destinations are decoded with the SENDER's DFR, read from its
 * own page [I]: AVIC indexes the logical table per one VM-wide model, KVM keeps the DFR per vCPU
 * and inhibits AVIC when they disagree, and KVM's own fast path (avic_kick_target_vcpus_fast)
 * also reads the source's DFR. A reserved DFR model names no targets.
 */
export function xapicTargetSet(icrLow: number, destination: number, senderPageBase: number, hardware: AvicHardware): TargetSet {
  const shorthand = interruptCommandShorthand(icrLow);
  if (shorthand === DestinationShorthand.AllIncludingSelf) return TargetSet.AllIncludingSelf;
  if (shorthand === DestinationShorthand.AllExcludingSelf) return TargetSet.AllExcludingSelf;
  if (interruptCommandDestinationMode(icrLow) === DestinationMode.Physical) {
    return destination === XAPIC_BROADCAST_ID ? TargetSet.AllIncludingSelf : TargetSet.Physical;
  }
  // 0xFF is the logical broadcast in both models (SDM §11.6.2.2). In the flat model its eight
  // bits name entries 0..7, which is broadcast when eight vCPUs exist and cause 2 (software
  // re-emulation) otherwise, as avic_incomplete_ipi_interception does; in the cluster model it would name the
  // reserved cluster 15, so it is decoded as broadcast [I].
  const model = destinationFormatModel(hardware.pageWords[senderPageBase + ApicPageWord.DestinationFormat] ?? 0);
  if (model === DestinationFormatModel.Flat) return TargetSet.LogicalFlat;
  if (model === DestinationFormatModel.Cluster) {
    return destination === LOGICAL_BROADCAST_DESTINATION ? TargetSet.AllIncludingSelf : TargetSet.LogicalCluster;
  }
  return TargetSet.None;
}

// ---- x2APIC (x2AVIC) ----

/** x2APIC: the destination is all of ICR[63:32]. */
export function x2apicDestination(icrHigh: number): number {
  return icrHigh >>> 0;
}

/** x2APIC: shorthands, the 0xFFFFFFFF broadcast, physical, or (always) the cluster model. */
export function x2apicTargetSet(icrLow: number, destination: number): TargetSet {
  const shorthand = interruptCommandShorthand(icrLow);
  if (shorthand === DestinationShorthand.AllIncludingSelf) return TargetSet.AllIncludingSelf;
  if (shorthand === DestinationShorthand.AllExcludingSelf) return TargetSet.AllExcludingSelf;
  // 0xFFFFFFFF is the broadcast in both destination modes (SDM §11.12.9).
  if (destination === X2APIC_BROADCAST_ID) return TargetSet.AllIncludingSelf;
  // Always the cluster model: x2APIC has no DFR.
  return interruptCommandDestinationMode(icrLow) === DestinationMode.Physical ? TargetSet.Physical : TargetSet.X2apicLogical;
}

/**
 * Logical x2APIC destination by arithmetic (avic_kick_target_vcpus_fast): member bit i of cluster c names physical
 * index c * 16 + i; each must be a usable target, else cause 2 with that index. Lowest bit first.
 */
export function visitX2apicLogical(
  destination: number,
  vector: number,
  sender: ApicId,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
  pass: Pass,
): boolean {
  const cluster = x2apicLogicalCluster(destination);
  let members = x2apicLogicalMembers(destination);
  let ok = true;
  for (; members !== 0; members &= members - 1) {
    const index = x2apicIdOfLogicalMember(cluster, 31 - Math.clz32(members & -members));
    const cause = visitTarget(index, index, vector, sender, hardware, outcome, pass);
    if (cause !== NO_EXIT) {
      ok = recordExit(outcome, cause, index);
      if (pass === Pass.Validate) return false;
    }
  }
  return ok;
}
