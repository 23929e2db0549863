// What the AVIC hardware does with a guest access to the APIC page (AMD APM vol. 2, 15.29). The answer depends
// only on the offset, the direction and, for EOI, on whether the highest in-service vector is
// level-triggered, which is why the page is an argument. The classification does not act: the
// caller performs the access (or not) and any follow-up, so this stays allocation-free.

import { ApicRegister } from './apic-register.js';
import { highestIsrVector, isLevelTriggered } from './apic-backing-page.js';

export const ApicAccessKind = {
  /** Read from / write to the backing page, nothing else happens. */
  Accelerated: 0,
  /** TPR write: the page is updated, then pending interrupts must be re-evaluated against PPR. */
  AcceleratedTaskPriority: 1,
  /** EOI write with an edge-triggered (or no) vector in service: the EOI is done, no exit (APM 15.29.9.2). */
  AcceleratedEndOfInterrupt: 2,
  /** ICR low write: the AVIC IPI path (avic-ipi-delivery.ts), which may end in an AVIC_INCOMPLETE_IPI exit. */
  InterruptCommand: 3,
  /** Write reaches the page, then an AVIC_NOACCEL trap exit; software applies the side effects. */
  Trap: 4,
  /** AVIC_NOACCEL fault exit before the access: software decodes and emulates the instruction. */
  Fault: 5,
} as const;
export type ApicAccessKind = (typeof ApicAccessKind)[keyof typeof ApicAccessKind];

/** The last register slot in the page (0x3F0). */
const LAST_REGISTER_OFFSET = 0x3f0;

/**
 * KVM's is_avic_unaccelerated_access_trap() (every avic.c version has the same list): the writes that
 * complete in the page and then trap. KVM's list also holds ICR low; here ICR low has its own
 * kind (InterruptCommand) because AVIC handles it before any NOACCEL exit could happen, and EOI
 * traps only when the in-service vector is level-triggered (see classifyApicAccess).
 */
export function isAvicUnacceleratedAccessTrap(offset: number): boolean {
  switch (offset) {
    case ApicRegister.Id:
    case ApicRegister.EndOfInterrupt:
    case ApicRegister.RemoteRead:
    case ApicRegister.LogicalDestination:
    case ApicRegister.DestinationFormat:
    case ApicRegister.SpuriousInterruptVector:
    case ApicRegister.ErrorStatus:
    case ApicRegister.InterruptCommandLow:
    case ApicRegister.LvtTimer:
    case ApicRegister.LvtThermal:
    case ApicRegister.LvtPerformanceCounter:
    case ApicRegister.LvtLint0:
    case ApicRegister.LvtLint1:
    case ApicRegister.LvtError:
    case ApicRegister.TimerInitialCount:
    case ApicRegister.TimerDivideConfiguration:
      return true;
    default:
      return false;
  }
}

/**
 * Classifies one 32-bit guest access at byte `offset` of the APIC page of the vCPU whose backing
 * page is at `base`. Misaligned offsets (not at the start of a 16-byte slot) and offsets past
 * 0x3F0 fault; the emulator then reports them as it sees fit (ESR IllegalRegisterAddress).
 */
export function classifyApicAccess(offset: number, isWrite: boolean, words: Int32Array, base: number): ApicAccessKind {
  if ((offset & 0xf) !== 0 || offset < 0 || offset > LAST_REGISTER_OFFSET) return ApicAccessKind.Fault;
  if (!isWrite) {
    // The current count is computed by software from a clock the page does not hold (not in KVM's trap list, so a fault).
    return offset === ApicRegister.TimerCurrentCount ? ApicAccessKind.Fault : ApicAccessKind.Accelerated;
  }
  switch (offset) {
    case ApicRegister.TaskPriority:
      return ApicAccessKind.AcceleratedTaskPriority;
    case ApicRegister.EndOfInterrupt: {
      // AMD APM vol. 2, 15.29.9.2 (AVIC_NOACCEL): a level-triggered in-service vector needs the
      // hypervisor (IOAPIC EOI broadcast), so the write traps; otherwise hardware completes it.
      const inService = highestIsrVector(words, base);
      return inService >= 0 && isLevelTriggered(words, base, inService) ? ApicAccessKind.Trap : ApicAccessKind.AcceleratedEndOfInterrupt;
    }
    case ApicRegister.InterruptCommandLow:
      return ApicAccessKind.InterruptCommand;
    case ApicRegister.InterruptCommandHigh:
      // Stored in the page with no exit: guests write it before every IPI (not in KVM's trap list).
      return ApicAccessKind.Accelerated;
    default:
      return isAvicUnacceleratedAccessTrap(offset) ? ApicAccessKind.Trap : ApicAccessKind.Fault;
  }
}
