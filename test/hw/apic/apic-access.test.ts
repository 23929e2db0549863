import { describe, it, expect } from 'vitest';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { APIC_PAGE_WORDS } from '../../../src/hw/apic/apic-register.js';
import { acknowledgeInterrupt, resetApicPage, setIrrAtomic, setTriggerMode } from '../../../src/hw/apic/apic-backing-page.js';
import { ApicAccessKind, classifyApicAccess, isAvicUnacceleratedAccessTrap } from '../../../src/hw/apic/apic-access.js';

function makePage(): Int32Array {
  const words = new Int32Array(APIC_PAGE_WORDS);
  resetApicPage(words, 0, apicId(0));
  return words;
}

const write = (offset: number, words = makePage()): ApicAccessKind => classifyApicAccess(offset, true, words, 0);
const read = (offset: number): ApicAccessKind => classifyApicAccess(offset, false, makePage(), 0);

describe('AVIC handling of guest APIC page accesses (APM 15.29, is_avic_unaccelerated_access_trap)', () => {
  it('writes to the 14 always-trapping registers of the KVM trap list reach the page and trap', () => {
    const trapList = [0x020, 0x0c0, 0x0d0, 0x0e0, 0x0f0, 0x280, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x380, 0x3e0];
    for (const offset of trapList) expect(write(offset), `offset 0x${offset.toString(16)}`).toBe(ApicAccessKind.Trap);
    expect(isAvicUnacceleratedAccessTrap(0x300)).toBe(true);
    expect(isAvicUnacceleratedAccessTrap(0x0b0)).toBe(true);
    expect(isAvicUnacceleratedAccessTrap(0x080)).toBe(false);
  });

  it('a TPR write is accelerated and asks for priority re-evaluation', () => {
    expect(write(0x080)).toBe(ApicAccessKind.AcceleratedTaskPriority);
  });

  it('an EOI is accelerated for an edge vector or an empty ISR, and traps for a level vector', () => {
    expect(write(0x0b0)).toBe(ApicAccessKind.AcceleratedEndOfInterrupt);
    const words = makePage();
    setIrrAtomic(words, 0, 0x41);
    acknowledgeInterrupt(words, 0, 0x41);
    expect(write(0x0b0, words)).toBe(ApicAccessKind.AcceleratedEndOfInterrupt);
    setTriggerMode(words, 0, 0x61, true);
    setIrrAtomic(words, 0, 0x61);
    acknowledgeInterrupt(words, 0, 0x61);
    expect(write(0x0b0, words)).toBe(ApicAccessKind.Trap);
  });

  it('an ICR low write takes the IPI path; an ICR high write just lands in the page', () => {
    expect(write(0x300)).toBe(ApicAccessKind.InterruptCommand);
    expect(write(0x310)).toBe(ApicAccessKind.Accelerated);
  });

  it('writes outside the trap list fault: version, APR, PPR, ISR, TMR, IRR, current count, unused slots', () => {
    for (const offset of [0x000, 0x030, 0x090, 0x0a0, 0x100, 0x170, 0x180, 0x200, 0x270, 0x290, 0x390, 0x3f0]) {
      expect(write(offset), `offset 0x${offset.toString(16)}`).toBe(ApicAccessKind.Fault);
    }
  });

  it('reads come from the page except the timer current count, which faults', () => {
    for (const offset of [0x020, 0x030, 0x080, 0x0a0, 0x0d0, 0x0e0, 0x0f0, 0x100, 0x200, 0x280, 0x300, 0x310, 0x380, 0x3e0]) {
      expect(read(offset), `offset 0x${offset.toString(16)}`).toBe(ApicAccessKind.Accelerated);
    }
    expect(read(0x390)).toBe(ApicAccessKind.Fault);
  });

  it('misaligned and out-of-page offsets fault in both directions', () => {
    for (const offset of [0x084, 0x301, 0x400, -0x10]) {
      expect(read(offset)).toBe(ApicAccessKind.Fault);
      expect(write(offset)).toBe(ApicAccessKind.Fault);
    }
  });
});
