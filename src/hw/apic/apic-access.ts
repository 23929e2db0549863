// What the AVIC hardware does with a guest access to the APIC page (AMD APM vol. 2, 15.29). The answer depends
// only on the offset, the direction and, for EOI, on whether the highest in-service vector is
// level-triggered, which is why the page is an argument. The offset's part comes from the AVIC
// columns of the register table (apic-register-table.ts). The classification does not act: the
// caller performs the access (or not) and any follow-up, so this stays allocation-free.

import { ApicAccessKind, avicAccessKindOf } from './apic-register-table.js';
import { highestIsrVector, isLevelTriggered } from './apic-backing-page.js';

export { ApicAccessKind, isAvicUnacceleratedAccessTrap } from './apic-register-table.js';

/**
 * Classifies one 32-bit guest access at byte `offset` of the APIC page of the vCPU whose backing
 * page is at `base`. Misaligned offsets (not at the start of a 16-byte slot) and offsets past
 * 0x3F0 fault; the emulator then reports them as it sees fit (ESR IllegalRegisterAddress).
 */
export function classifyApicAccess(offset: number, isWrite: boolean, words: Int32Array, base: number): ApicAccessKind {
  const kind = avicAccessKindOf(offset, isWrite);
  if (kind !== ApicAccessKind.AcceleratedEndOfInterrupt) return kind;
  // AMD APM vol. 2, 15.29.9.2 (AVIC_NOACCEL): a level-triggered in-service vector needs the
  // hypervisor (IOAPIC EOI broadcast), so the write traps; otherwise hardware completes it.
  const inService = highestIsrVector(words, base);
  return inService >= 0 && isLevelTriggered(words, base, inService) ? ApicAccessKind.Trap : ApicAccessKind.AcceleratedEndOfInterrupt;
}
