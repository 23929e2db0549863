// What the AVIC hardware does when a guest writes the ICR with AVIC on (AMD APM vol. 2, 15.29): one
// two-pass driver for xAVIC and x2AVIC (deliverToTargetSet). The modes differ only in where the
// target set comes from, so each has a decoder (avic-ipi-decoders.ts): the destination field
// (ICR[63:56] or ICR[63:32]), the set's shape (broadcast 0xFF or 0xFFFFFFFF, the DFR's flat or
// cluster model or always cluster) and the logical walk (the logical APIC ID table, or cluster
// arithmetic). Everything else is shared: the per-target step (avic-ipi-target.ts), the passes and
// the cause-1 fix-up. Each mode's entry point (deliverAvicIpi here, deliverX2avicIpi in
// x2avic-ipi-delivery.ts) calls its own decoder directly and then the driver, so every call on the
// hottest path of the emulator stays monomorphic and inlinable.
//
// The driver runs in the sender's worker, millions of times a second: it allocates nothing,
// uses no BigInt, and writes its result into a caller-owned AvicIpiOutcome. It acts on shared
// memory only as the hardware does (IRR Atomics.or, doorbell); everything else it reports, and
// the kvm layer turns a reported cause into the AVIC_INCOMPLETE_IPI exit handling.
//
// Two passes over the target set: first validate every target, then set IRR bits. Model choice
// [I]: the hardware checks all targets before touching any IRR, so a cause-2 or cause-3 exit has
// set nothing, and KVM's software re-emulation of cause 2 (avic_incomplete_ipi_interception) does not count
// a delivery twice. If a target turns invalid between the passes (a concurrent LDR rewrite,
// O8 in docs/architecture.md#orderings, or vCPU teardown) the second pass skips it and still reports cause 2/3, so software
// re-emulates the whole IPI: re-setting IRR bits is idempotent, a lost IPI is not.

import { FIRST_LEGAL_VECTOR, setIrrAtomic } from '../apic/apic-backing-page.js';
import type { ApicId } from '../apic/apic-id.js';
import {
  DeliveryMode,
  DestinationShorthand,
  TriggerMode,
  interruptCommandDeliveryMode,
  interruptCommandDestination,
  interruptCommandShorthand,
  interruptCommandTriggerMode,
  interruptCommandVector,
} from '../apic/interrupt-command.js';
import { AvicIncompleteIpiCause } from './avic-exit.js';
import { NO_EXIT, Pass, recordExit, visitAllValid, visitPhysical, type AvicHardware, type AvicIpiOutcome } from './avic-ipi-target.js';
import { TargetSet, visitX2apicLogical, visitXapicLogical, xapicTargetSet } from './avic-ipi-decoders.js';

// The driver's callers (vcpu.ts, the tests) keep importing the outcome and the hardware view from here.
export { AvicIpiOutcome, NO_EXIT, type AvicHardware } from './avic-ipi-target.js';

/** One pass over the decoded target set. */
function visitTargetSet(
  set: TargetSet,
  destination: number,
  vector: number,
  sender: ApicId,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
  pass: Pass,
): boolean {
  switch (set) {
    case TargetSet.AllIncludingSelf:
      return visitAllValid(vector, sender, false, hardware, outcome, pass);
    case TargetSet.AllExcludingSelf:
      return visitAllValid(vector, sender, true, hardware, outcome, pass);
    case TargetSet.Physical:
      return visitPhysical(destination, vector, sender, hardware, outcome, pass);
    case TargetSet.LogicalFlat:
      return visitXapicLogical(destination, false, vector, sender, hardware, outcome, pass);
    case TargetSet.LogicalCluster:
      return visitXapicLogical(destination, true, vector, sender, hardware, outcome, pass);
    case TargetSet.X2apicLogical:
      return visitX2apicLogical(destination, vector, sender, hardware, outcome, pass);
    default:
      return true;
  }
}

/**
 * What xAVIC and x2AVIC do first with an ICR write (APM 15.29: Fixed and edge only; the self shorthand): reset
 * `outcome`; only Fixed + edge is accelerated (else cause 0), a vector below 16 is cause 4, and a
 * self IPI goes to the sender's own page with no table lookup, IsRunning check or doorbell. Returns
 * the vector when the destination still has to be walked, or -1 when the IPI is settled.
 */
export function beginAvicIpi(icrLow: number, senderPageBase: number, hardware: AvicHardware, outcome: AvicIpiOutcome): number {
  outcome.reset();
  if (interruptCommandDeliveryMode(icrLow) !== DeliveryMode.Fixed || interruptCommandTriggerMode(icrLow) !== TriggerMode.Edge) {
    recordExit(outcome, AvicIncompleteIpiCause.InvalidInterruptType, 0);
    return -1;
  }
  const vector = interruptCommandVector(icrLow);
  if (vector < FIRST_LEGAL_VECTOR) {
    recordExit(outcome, AvicIncompleteIpiCause.InvalidIpiVector, 0);
    return -1;
  }
  if (interruptCommandShorthand(icrLow) === DestinationShorthand.Self) {
    outcome.targets = 1;
    if (setIrrAtomic(hardware.pageWords, senderPageBase, vector)) outcome.accepted = 1;
    else outcome.coalesced = 1;
    outcome.selfTargeted = true;
    return -1;
  }
  return vector;
}

/**
 * The one two-pass driver, after the decoder of the sender's mode has decoded the target set
 * (`set`, `destination`) of an IPI with `vector` that beginAvicIpi did not settle: validate pass,
 * deliver pass, then the cause-1 fix-up. Writes into `outcome`.
 */
export function deliverToTargetSet(
  set: TargetSet,
  destination: number,
  vector: number,
  sender: ApicId,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
): void {
  if (!visitTargetSet(set, destination, vector, sender, hardware, outcome, Pass.Validate)) return;
  visitTargetSet(set, destination, vector, sender, hardware, outcome, Pass.Deliver);
  // Step 4: some IRR bits landed in vCPUs that are not running; software must wake them (avic_kick_target_vcpus).
  if (outcome.exit === NO_EXIT && outcome.notRunningTargets > 0) {
    outcome.exit = AvicIncompleteIpiCause.TargetNotRunning;
    if (set === TargetSet.AllIncludingSelf || set === TargetSet.AllExcludingSelf) outcome.exitIndex = 0;
  }
}

/**
 * The hardware's handling of a guest ICR-low write (`icrLow`, with `icrHigh` already in the page)
 * by vCPU `sender`, whose backing page (VMCB avic_backing_page) is at word `senderPageBase` of
 * hardware.pageWords. Writes the result into `outcome` (reset first).
 */
export function deliverAvicIpi(
  icrLow: number,
  icrHigh: number,
  sender: ApicId,
  senderPageBase: number,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
): void {
  const vector = beginAvicIpi(icrLow, senderPageBase, hardware, outcome);
  if (vector < 0) return;
  const destination = interruptCommandDestination(icrHigh);
  deliverToTargetSet(xapicTargetSet(icrLow, destination, senderPageBase, hardware), destination, vector, sender, hardware, outcome);
}
