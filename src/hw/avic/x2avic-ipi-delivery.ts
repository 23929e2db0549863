// What x2AVIC hardware does on a guest WRMSR of the x2APIC ICR (MSR 0x830) or SELF IPI (0x83F)
// when KVM runs the vCPU with int_ctl bits 31 and 30 set (AMD APM vol. 2, 15.29; KVM
// avic_activate_vmcb, avic_kick_target_vcpus_fast). Everything except where the targets come from is the xAVIC algorithm, shared with
// avic-ipi-delivery.ts (visitTarget, visitAllValid, visitPhysical): the same two passes
// (validate every target, then set IRR bits), the same IsRunning read after the IRR OR (O1 in docs/architecture.md#orderings),
// the same "never doorbell yourself", the same incomplete-IPI causes 0-4.
//
// The three differences from xAVIC (svm.h X2AVIC_MAX_PHYSICAL_ID; KVM avic_kick_target_vcpus_fast
// and avic_get_max_physical_id):
//  * the destination is the full 32-bit ICR[63:32], and a physical destination indexes the
//    physical APIC ID table directly, up to the VMCB max index (0x1FF at most); an index above it
//    is an invalid target (cause 2, software re-emulates, exactly as for a not-Valid entry);
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
import { AvicIncompleteIpiCause } from './avic-exit.js';
import {
  NO_EXIT,
  Pass,
  beginAvicIpi,
  recordExit,
  visitAllValid,
  visitPhysical,
  visitTarget,
  type AvicHardware,
  type AvicIpiOutcome,
} from './avic-ipi-delivery.js';

/** The shapes an x2APIC ICR's target set can take (decoded once for both passes). */
const X2avicTargetSet = {
  AllIncludingSelf: 0,
  AllExcludingSelf: 1,
  Physical: 2,
  LogicalCluster: 3,
} as const;
type X2avicTargetSet = (typeof X2avicTargetSet)[keyof typeof X2avicTargetSet];

function decodeX2avicTargetSet(icrLow: number, destination: number): X2avicTargetSet {
  const shorthand = interruptCommandShorthand(icrLow);
  if (shorthand === DestinationShorthand.AllIncludingSelf) return X2avicTargetSet.AllIncludingSelf;
  if (shorthand === DestinationShorthand.AllExcludingSelf) return X2avicTargetSet.AllExcludingSelf;
  // 0xFFFFFFFF is the broadcast in both destination modes (SDM §11.12.9).
  if (destination === X2APIC_BROADCAST_ID) return X2avicTargetSet.AllIncludingSelf;
  return interruptCommandDestinationMode(icrLow) === DestinationMode.Physical ? X2avicTargetSet.Physical : X2avicTargetSet.LogicalCluster;
}

/**
 * Logical x2APIC destination by arithmetic (avic_kick_target_vcpus_fast): member bit i of cluster c names physical
 * index c * 16 + i; each must be a usable target, else cause 2 with that index. Lowest bit first.
 */
function visitX2apicLogical(destination: number, vector: number, sender: ApicId, hardware: AvicHardware, outcome: AvicIpiOutcome, pass: Pass): boolean {
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

function visitX2avicTargetSet(set: X2avicTargetSet, destination: number, vector: number, sender: ApicId, hardware: AvicHardware, outcome: AvicIpiOutcome, pass: Pass): boolean {
  switch (set) {
    case X2avicTargetSet.AllIncludingSelf:
      return visitAllValid(vector, sender, false, hardware, outcome, pass);
    case X2avicTargetSet.AllExcludingSelf:
      return visitAllValid(vector, sender, true, hardware, outcome, pass);
    case X2avicTargetSet.Physical:
      return visitPhysical(destination, vector, sender, hardware, outcome, pass);
    default:
      return visitX2apicLogical(destination, vector, sender, hardware, outcome, pass);
  }
}

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
  const vector = beginAvicIpi(icrLow, senderPageBase, hardware, outcome);
  if (vector < 0) return;
  const destination = icrHigh >>> 0;
  const set = decodeX2avicTargetSet(icrLow, destination);
  if (!visitX2avicTargetSet(set, destination, vector, sender, hardware, outcome, Pass.Validate)) return;
  visitX2avicTargetSet(set, destination, vector, sender, hardware, outcome, Pass.Deliver);
  if (outcome.exit === NO_EXIT && outcome.notRunningTargets > 0) {
    outcome.exit = AvicIncompleteIpiCause.TargetNotRunning;
    if (set === X2avicTargetSet.AllIncludingSelf || set === X2avicTargetSet.AllExcludingSelf) outcome.exitIndex = 0;
  }
}
