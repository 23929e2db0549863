// What the AVIC hardware does when a guest writes the ICR with AVIC on (AMD APM vol. 2, 15.29): one
// two-pass driver for xAVIC and x2AVIC (deliverAvicIpiWith), and the xAPIC target decoder. The
// modes differ only in where the target set comes from, so each has a decoder (AvicTargetDecoder):
// the destination field (ICR[63:56] here, ICR[63:32] in x2avic-ipi-delivery.ts), the set's shape
// (broadcast 0xFF or 0xFFFFFFFF, the DFR's flat or cluster model or none) and the logical walk (the
// logical APIC ID table here, cluster arithmetic in x2APIC). Everything else is shared.
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

import { ApicPageWord, FIRST_LEGAL_VECTOR, setIrrAtomic } from '../apic/apic-backing-page.js';
import { XAPIC_BROADCAST_ID, type ApicId, type HostPhysicalApicId } from '../apic/apic-id.js';
import {
  DeliveryMode,
  DestinationMode,
  DestinationShorthand,
  TriggerMode,
  interruptCommandDeliveryMode,
  interruptCommandDestination,
  interruptCommandDestinationMode,
  interruptCommandShorthand,
  interruptCommandTriggerMode,
  interruptCommandVector,
} from '../apic/interrupt-command.js';
import { AvicIncompleteIpiCause } from './avic-exit.js';
import { DestinationFormatModel, LOGICAL_BROADCAST_DESTINATION, destinationFormatModel } from '../apic/destination-format.js';
import {
  logicalEntryGuestPhysicalApicId,
  logicalEntryIsValid,
  type LogicalApicIdTable,
} from './logical-apic-id-table.js';
import {
  physicalEntryBackingPagePointer,
  physicalEntryHostPhysicalApicId,
  physicalEntryIsRunning,
  physicalEntryIsValid,
  type PhysicalApicIdTable,
} from './physical-apic-id-table.js';

/** The VM-wide AVIC state one sender's "hardware" sees, plus its doorbell. */
export interface AvicHardware {
  readonly physicalTable: PhysicalApicIdTable;
  readonly logicalTable: LogicalApicIdTable;
  /** Highest usable physical table index: the VMCB max index (XAPIC_MAX_PHYSICAL_ID for xAVIC). */
  readonly maxPhysicalIndex: number;
  /** The one Int32Array holding every backing page. */
  readonly pageWords: Int32Array;
  /** Word base in pageWords of the page at `backingPagePointer`, or -1 if it names none (cause 3). */
  resolveBackingPage(backingPagePointer: number): number;
  /** MSR 0xC001011B: make that host CPU re-scan its running guest's IRR (avic_ring_doorbell). A hint only. */
  ringDoorbell(hostPhysicalApicId: HostPhysicalApicId): void;
}

/** AvicIpiOutcome.exit when the IPI needed no exit. */
export const NO_EXIT = -1;

/** The result of one deliverAvicIpi call. Allocate one per vCPU; deliverAvicIpi resets it. */
export class AvicIpiOutcome {
  /** NO_EXIT, or the AVIC_INCOMPLETE_IPI cause (EXITINFO2[63:32]). */
  exit: AvicIncompleteIpiCause | typeof NO_EXIT = NO_EXIT;
  /** EXITINFO2 table index: physical destination, logical index, or 0 for shorthand/broadcast. */
  exitIndex = 0;
  /** Destination vCPUs whose IRR was ORed. */
  targets = 0;
  /** Targets whose IRR bit was newly set. */
  accepted = 0;
  /** Targets whose IRR bit was already set (the IPI merged with a pending one). */
  coalesced = 0;
  doorbellsRung = 0;
  /** Targets whose entry showed IsRunning = 0 after their IRR was set. */
  notRunningTargets = 0;
  /** The sender's own IRR got the bit: the caller must re-evaluate its own interrupts. */
  selfTargeted = false;

  reset(): void {
    this.exit = NO_EXIT;
    this.exitIndex = 0;
    this.targets = 0;
    this.accepted = 0;
    this.coalesced = 0;
    this.doorbellsRung = 0;
    this.notRunningTargets = 0;
    this.selfTargeted = false;
  }
}

/** The two passes over a target set. */
export const Pass = { Validate: 0, Deliver: 1 } as const;
export type Pass = (typeof Pass)[keyof typeof Pass];

/** Records an exit unless one is already recorded (the first failure wins); returns false. */
export function recordExit(outcome: AvicIpiOutcome, cause: AvicIncompleteIpiCause, index: number): false {
  if (outcome.exit === NO_EXIT) {
    outcome.exit = cause;
    outcome.exitIndex = index;
  }
  return false;
}

/**
 * Validates or delivers to physical entry `index`. Returns NO_EXIT, or the cause that makes this
 * target unusable (InvalidTarget, InvalidBackingPage); the caller decides whether that is an exit
 * (named target) or a silent skip (broadcast). `reportIndex` is this target's EXITINFO2 index.
 */
export function visitTarget(
  index: number,
  reportIndex: number,
  vector: number,
  sender: ApicId,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
  pass: Pass,
): AvicIncompleteIpiCause | typeof NO_EXIT {
  const table = hardware.physicalTable;
  if (index > hardware.maxPhysicalIndex) return AvicIncompleteIpiCause.InvalidTarget;
  // High word first, then low word: pairs with the writers' low-then-high stores.
  const high = table.loadHighWord(index);
  if (!physicalEntryIsValid(high)) return AvicIncompleteIpiCause.InvalidTarget;
  const pageBase = hardware.resolveBackingPage(physicalEntryBackingPagePointer(table.loadLowWord(index), high));
  if (pageBase < 0) return AvicIncompleteIpiCause.InvalidBackingPage;
  if (pass === Pass.Validate) return NO_EXIT;

  outcome.targets++;
  if (setIrrAtomic(hardware.pageWords, pageBase, vector)) outcome.accepted++;
  else outcome.coalesced++;
  if (index === sender) outcome.selfTargeted = true;
  // IRR before IsRunning (O1 in docs/architecture.md#orderings): the seq-cst Atomics.or above and this Atomics.load
  // form the sender's full fence; it pairs with the target's "clear IsRunning, then re-check
  // IRR" before it blocks. Either the target sees our bit, or we see IsRunning = 0 and exit.
  const runningHigh = table.loadHighWord(index);
  if (!physicalEntryIsRunning(runningHigh)) {
    if (outcome.notRunningTargets === 0 && outcome.exit === NO_EXIT) outcome.exitIndex = reportIndex;
    outcome.notRunningTargets++;
  } else if (index !== sender) {
    // Never doorbell yourself (avic_ring_doorbell, commit 0532dd52dfec): the sender re-evaluates on return.
    hardware.ringDoorbell(physicalEntryHostPhysicalApicId(table.loadLowWord(index)));
    outcome.doorbellsRung++;
  }
  return NO_EXIT;
}

/** Every Valid entry 0..maxPhysicalIndex (avic_init_backing_page's comment); invalid ones are skipped with no exit. */
export function visitAllValid(vector: number, sender: ApicId, excludeSelf: boolean, hardware: AvicHardware, outcome: AvicIpiOutcome, pass: Pass): boolean {
  const last = Math.min(hardware.maxPhysicalIndex, hardware.physicalTable.entryCount - 1);
  for (let index = 0; index <= last; index++) {
    if (excludeSelf && index === sender) continue;
    const cause = visitTarget(index, index, vector, sender, hardware, outcome, pass);
    if (cause === AvicIncompleteIpiCause.InvalidBackingPage) {
      recordExit(outcome, cause, index);
      if (pass === Pass.Validate) return false;
    }
  }
  return true;
}

/** One named physical destination: it must be Valid (else cause 2). */
export function visitPhysical(destination: number, vector: number, sender: ApicId, hardware: AvicHardware, outcome: AvicIpiOutcome, pass: Pass): boolean {
  const cause = visitTarget(destination, destination, vector, sender, hardware, outcome, pass);
  return cause === NO_EXIT || recordExit(outcome, cause, destination);
}

/**
 * The shape of the target set, decoded once from the ICR (and, in xAPIC mode, the sender's DFR) so
 * the two passes share it without allocating.
 */
export const TargetSet = {
  None: 0,
  AllIncludingSelf: 1,
  AllExcludingSelf: 2,
  Physical: 3,
  LogicalFlat: 4,
  LogicalCluster: 5,
} as const;
export type TargetSet = (typeof TargetSet)[keyof typeof TargetSet];

/** What differs between xAVIC and x2AVIC: where the targets come from. */
export interface AvicTargetDecoder {
  /** The destination field of the ICR high half. */
  destination(icrHigh: number): number;
  /** The target set's shape (shorthand, broadcast, destination mode and logical model). */
  targetSet(icrLow: number, destination: number, senderPageBase: number, hardware: AvicHardware): TargetSet;
  /** One pass over a logical destination (set LogicalFlat or LogicalCluster). */
  visitLogical(destination: number, clusterModel: boolean, vector: number, sender: ApicId, hardware: AvicHardware, outcome: AvicIpiOutcome, pass: Pass): boolean;
}

function visitTargetSet(
  decoder: AvicTargetDecoder,
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
      return decoder.visitLogical(destination, false, vector, sender, hardware, outcome, pass);
    case TargetSet.LogicalCluster:
      return decoder.visitLogical(destination, true, vector, sender, hardware, outcome, pass);
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
 * The one driver: the hardware's handling of a guest ICR write (`icrLow`, with `icrHigh` already
 * in the page or EDX) by vCPU `sender`, whose backing page (VMCB avic_backing_page) is at word
 * `senderPageBase` of hardware.pageWords, with the targets decoded by `decoder`. Validate pass,
 * then deliver pass; writes the result into `outcome` (reset first).
 */
export function deliverAvicIpiWith(
  decoder: AvicTargetDecoder,
  icrLow: number,
  icrHigh: number,
  sender: ApicId,
  senderPageBase: number,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
): void {
  const vector = beginAvicIpi(icrLow, senderPageBase, hardware, outcome);
  if (vector < 0) return;
  const destination = decoder.destination(icrHigh);
  const set = decoder.targetSet(icrLow, destination, senderPageBase, hardware);
  if (!visitTargetSet(decoder, set, destination, vector, sender, hardware, outcome, Pass.Validate)) return;
  visitTargetSet(decoder, set, destination, vector, sender, hardware, outcome, Pass.Deliver);
  // Step 4: some IRR bits landed in vCPUs that are not running; software must wake them (avic_kick_target_vcpus).
  if (outcome.exit === NO_EXIT && outcome.notRunningTargets > 0) {
    outcome.exit = AvicIncompleteIpiCause.TargetNotRunning;
    if (set === TargetSet.AllIncludingSelf || set === TargetSet.AllExcludingSelf) outcome.exitIndex = 0;
  }
}

// ---- the xAPIC decoder ----

/**
 * Logical xAPIC destination through the logical table (avic_get_logical_id_entry): flat, each set bit i
 * of the MDA names entry i; cluster, each set bit b of MDA[3:0] names entry (MDA[7:4] * 4 + b).
 * Every named logical entry, and the physical entry it names, must be Valid, else cause 2 with
 * the logical index. The bits are walked lowest first without allocating.
 */
function visitXapicLogical(
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
function xapicTargetSet(icrLow: number, destination: number, senderPageBase: number, hardware: AvicHardware): TargetSet {
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

/** xAVIC: the destination is ICR[63:56], the broadcast 0xFF, logical IDs go through the logical table. */
export const XAPIC_TARGET_DECODER: AvicTargetDecoder = {
  destination: interruptCommandDestination,
  targetSet: xapicTargetSet,
  visitLogical: visitXapicLogical,
};

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
  deliverAvicIpiWith(XAPIC_TARGET_DECODER, icrLow, icrHigh, sender, senderPageBase, hardware, outcome);
}
