// One target of an AVIC IPI (AMD APM vol. 2, 15.29): what the hardware does with one physical APIC
// ID table entry in each of the two passes (validate: Valid and a resolvable backing page; deliver:
// IRR Atomics.or, then IsRunning, then the doorbell), and the outcome the passes fill in. Shared by
// the driver (avic-ipi-delivery.ts) and the per-mode target decoders (avic-ipi-decoders.ts).
//
// Hot path: allocation-free, no BigInt; everything it does not do itself it reports in the
// caller-owned AvicIpiOutcome.

import { setIrrAtomic } from '../apic/apic-backing-page.js';
import type { ApicId, HostPhysicalApicId } from '../apic/apic-id.js';
import { AvicIncompleteIpiCause } from './avic-exit.js';
import { missesIsRunningClear, type Erratum1235 } from './erratum-1235.js';
import type { LogicalApicIdTable } from './logical-apic-id-table.js';
import {
  physicalEntryBackingPagePointer,
  physicalEntryHostPhysicalApicId,
  physicalEntryIsRunning,
  physicalEntryIsValid,
  type PhysicalApicIdTable,
} from './physical-apic-id-table.js';

/**
 * The places in the sender's hardware where another thread may act between two of its accesses
 * (a deterministic run switches threads there; src/hw knows no threads, the kvm layer wires them).
 */
export interface AvicRacePoints {
  /** After the IRR bit is set, before IsRunning is read. */
  irrSet(): void;
  /** After IsRunning is read, before the doorbell or the exit acts on it. */
  isRunningRead(): void;
}

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
  /** AMD erratum #1235 (erratum-1235.ts): set when the model is on; undefined on a correct part. */
  readonly erratum1235?: Erratum1235 | undefined;
  /**
   * Debug only, the bug zoo's isrunning-before-irr (docs/bug-zoo.md): read IsRunning before setting
   * the IRR bit, the order that loses a wake-up. Undefined or false on every real part.
   */
  readonly isRunningBeforeIrr?: boolean | undefined;
  /** Where other threads may interleave (undefined: nowhere to switch, as in unit tests). */
  readonly racePoints?: AvicRacePoints | undefined;
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
  /** Targets whose IsRunning = 0 the erratum #1235 model missed (acted on as 1: doorbell, no exit). */
  staleIsRunningReads = 0;
  selfTargeted = false;

  reset(): void {
    this.exit = NO_EXIT;
    this.exitIndex = 0;
    this.targets = 0;
    this.accepted = 0;
    this.coalesced = 0;
    this.doorbellsRung = 0;
    this.notRunningTargets = 0;
    this.staleIsRunningReads = 0;
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
  // The injected isrunning-before-irr reads IsRunning here, first: the target may clear it, re-check
  // an IRR still empty and block before the bit below lands, and the doorbell then wakes nobody.
  let earlyHigh = 0;
  if (hardware.isRunningBeforeIrr === true) {
    earlyHigh = table.loadHighWord(index);
    // The injected bug's window: the target may clear IsRunning, re-check an empty IRR and block here.
    hardware.racePoints?.isRunningRead();
  }
  if (setIrrAtomic(hardware.pageWords, pageBase, vector)) outcome.accepted++;
  else outcome.coalesced++;
  if (index === sender) outcome.selfTargeted = true;
  // The target may clear IsRunning and re-check its IRR here (O1's window).
  hardware.racePoints?.irrSet();
  // IRR before IsRunning (O1 in docs/architecture.md#orderings): the seq-cst Atomics.or above and this Atomics.load
  // form the sender's full fence; it pairs with the target's "clear IsRunning, then re-check
  // IRR" before it blocks. Either the target sees our bit, or we see IsRunning = 0 and exit.
  let running = physicalEntryIsRunning(hardware.isRunningBeforeIrr === true ? earlyHigh : table.loadHighWord(index));
  // AMD erratum #1235: a recent clear not yet seen reads as the old 1. Off, one branch on this path.
  const erratum = hardware.erratum1235;
  if (!running && erratum !== undefined && missesIsRunningClear(table, index, erratum)) {
    running = true;
    outcome.staleIsRunningReads++;
  }
  // The target may be put or loaded after the read: a doorbell to a CPU it left, an exit for one it reached.
  hardware.racePoints?.isRunningRead();
  if (!running) {
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
export function visitAllValid(
  vector: number,
  sender: ApicId,
  excludeSelf: boolean,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
  pass: Pass,
): boolean {
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
export function visitPhysical(
  destination: number,
  vector: number,
  sender: ApicId,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
  pass: Pass,
): boolean {
  const cause = visitTarget(destination, destination, vector, sender, hardware, outcome, pass);
  return cause === NO_EXIT || recordExit(outcome, cause, destination);
}
