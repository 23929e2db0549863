// What x2AVIC hardware does on a guest WRMSR of the x2APIC ICR (MSR 0x830) or SELF IPI (0x83F)
// when KVM runs the vCPU with int_ctl bits 31 and 30 set (AMD APM vol. 2, 15.29; KVM
// avic_activate_vmcb, avic_kick_target_vcpus_fast): the one driver of avic-ipi-delivery.ts
// (deliverAvicIpiWith) with the x2APIC target decoder below. So everything except where the
// targets come from is the xAVIC algorithm: the same two passes (validate every target, then set
// IRR bits), the same IsRunning read after the IRR OR (O1 in docs/architecture.md#orderings), the
// same "never doorbell yourself", the same incomplete-IPI causes 0-4.
//
// The three differences from xAVIC (svm.h X2AVIC_MAX_PHYSICAL_ID and X2AVIC_4K_MAX_PHYSICAL_ID;
// KVM avic_kick_target_vcpus_fast and avic_get_max_physical_id):
//  * the destination is the full 32-bit ICR[63:32], and a physical destination indexes the
//    physical APIC ID table directly, up to the VMCB max index (0x1FF at most, 0xFFF with the 4K
//    extension X2AVIC_EXT; x2avic.ts); an index above it is an invalid target (cause 2, software
//    re-emulates, exactly as for a not-Valid entry);
//  * the broadcast is 0xFFFFFFFF (physical and logical alike), not 0xFF;
//  * a logical destination does not use the logical APIC ID table: x2APIC LDRs are read-only and
//    derived from the ID (cluster = ID >> 4, member bit = ID & 15), so member bit i of cluster c
//    names physical index c * 16 + i. The DFR does not exist in x2APIC mode, so there is no flat
//    model and nothing to read from the sender's page. Each named index must be Valid, else
//    cause 2 with that index in EXITINFO2 [I: the APM's wording for the index reported in the
//    x2AVIC logical case was not available; KVM does not use it for x2APIC logical kicks].
//
// An empty member mask names nobody: no IRR is touched and no exit is taken [I] (KVM's own
// fast path returns early for it, "no destinations in the cluster").
//
// Like deliverAvicIpi it allocates nothing and writes its result into a caller-owned outcome.

import type { ApicId } from '../apic/apic-id.js';
import { DestinationMode, DestinationShorthand, interruptCommandDestinationMode, interruptCommandShorthand } from '../apic/interrupt-command.js';
import { X2APIC_BROADCAST_ID, x2apicIdOfLogicalMember, x2apicLogicalCluster, x2apicLogicalMembers } from '../apic/x2apic-id.js';
import {
  NO_EXIT,
  Pass,
  TargetSet,
  deliverAvicIpiWith,
  recordExit,
  visitTarget,
  type AvicHardware,
  type AvicIpiOutcome,
  type AvicTargetDecoder,
} from './avic-ipi-delivery.js';

function x2apicDestination(icrHigh: number): number {
  return icrHigh >>> 0;
}

function x2apicTargetSet(icrLow: number, destination: number): TargetSet {
  const shorthand = interruptCommandShorthand(icrLow);
  if (shorthand === DestinationShorthand.AllIncludingSelf) return TargetSet.AllIncludingSelf;
  if (shorthand === DestinationShorthand.AllExcludingSelf) return TargetSet.AllExcludingSelf;
  // 0xFFFFFFFF is the broadcast in both destination modes (SDM §11.12.9).
  if (destination === X2APIC_BROADCAST_ID) return TargetSet.AllIncludingSelf;
  // Always the cluster model: x2APIC has no DFR.
  return interruptCommandDestinationMode(icrLow) === DestinationMode.Physical ? TargetSet.Physical : TargetSet.LogicalCluster;
}

/**
 * Logical x2APIC destination by arithmetic (avic_kick_target_vcpus_fast): member bit i of cluster c names physical
 * index c * 16 + i; each must be a usable target, else cause 2 with that index. Lowest bit first.
 */
function visitX2apicLogical(destination: number, _clusterModel: boolean, vector: number, sender: ApicId, hardware: AvicHardware, outcome: AvicIpiOutcome, pass: Pass): boolean {
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

/** x2AVIC: the destination is ICR[63:32], the broadcast 0xFFFFFFFF, logical IDs are arithmetic. */
export const X2APIC_TARGET_DECODER: AvicTargetDecoder = {
  destination: x2apicDestination,
  targetSet: x2apicTargetSet,
  visitLogical: visitX2apicLogical,
};

/**
 * The x2AVIC hardware's handling of a WRMSR to the x2APIC ICR by vCPU `sender` (its physical table
 * index, = its x2APIC ID), whose backing page is at word `senderPageBase` of hardware.pageWords.
 * `icrLow` is EAX, `icrHigh` EDX (the 32-bit destination). `hardware.maxPhysicalIndex` must be
 * the x2AVIC VMCB max index (avicMaxPhysicalIndex(AvicMode.X2avic, ...)). The SELF IPI MSR is
 * this call with ICR = self shorthand | vector (KVM sends it the same way in software).
 * The caller has already made the #GP checks of the MSR write (reserved bits).
 */
export function deliverX2avicIpi(
  icrLow: number,
  icrHigh: number,
  sender: ApicId,
  senderPageBase: number,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
): void {
  deliverAvicIpiWith(X2APIC_TARGET_DECODER, icrLow, icrHigh, sender, senderPageBase, hardware, outcome);
}
