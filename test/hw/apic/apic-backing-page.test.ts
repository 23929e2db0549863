import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { ApicRegister, APIC_PAGE_WORDS } from '../../../src/hw/apic/apic-register.js';
import {
  acknowledgeInterrupt,
  endOfInterrupt,
  highestIrrVector,
  highestIsrVector,
  isIrrSet,
  isIsrSet,
  isLevelTriggered,
  pendingDeliverableVector,
  readApicRegister,
  resetApicPage,
  setIrrAtomic,
  setTriggerMode,
  updateProcessorPriority,
  writeApicRegister,
} from '../../../src/hw/apic/apic-backing-page.js';

/** Two pages; the page under test is the second one, so a wrong `base` shows up. */
function makePage(): { words: Int32Array; base: number } {
  const words = new Int32Array(new SharedArrayBuffer(2 * APIC_PAGE_WORDS * 4));
  const base = APIC_PAGE_WORDS;
  resetApicPage(words, base, apicId(3));
  return { words, base };
}

const reg = (page: { words: Int32Array; base: number }, offset: number): number => readApicRegister(page.words, page.base, offset) >>> 0;

describe('xAPIC reset state as left by firmware', () => {
  it('sets ID, version, flat DFR, enabled SVR with spurious 0xFF, masked LVTs and clear vectors', () => {
    const page = makePage();
    expect(reg(page, ApicRegister.Id)).toBe(0x0300_0000);
    expect(reg(page, ApicRegister.Version)).toBe(0x0005_0014);
    expect(reg(page, ApicRegister.TaskPriority)).toBe(0);
    expect(reg(page, ApicRegister.ProcessorPriority)).toBe(0);
    expect(reg(page, ApicRegister.LogicalDestination)).toBe(0);
    expect(reg(page, ApicRegister.DestinationFormat)).toBe(0xffff_ffff);
    expect(reg(page, ApicRegister.SpuriousInterruptVector)).toBe(0x1ff);
    expect(reg(page, ApicRegister.ErrorStatus)).toBe(0);
    for (const lvt of [0x320, 0x330, 0x340, 0x350, 0x360, 0x370]) expect(reg(page, lvt)).toBe(0x10000);
    for (let i = 0; i < 8; i++) {
      expect(reg(page, ApicRegister.InService + 0x10 * i)).toBe(0);
      expect(reg(page, ApicRegister.TriggerMode + 0x10 * i)).toBe(0);
      expect(reg(page, ApicRegister.InterruptRequest + 0x10 * i)).toBe(0);
    }
    expect(page.words.subarray(0, APIC_PAGE_WORDS).every((w) => w === 0)).toBe(true);
  });
});

describe('IRR', () => {
  it('vector v is bit v & 31 of register IRR + 0x10 * (v >> 5)', () => {
    const page = makePage();
    setIrrAtomic(page.words, page.base, 0x45);
    expect(reg(page, 0x220)).toBe(1 << 5);
    setIrrAtomic(page.words, page.base, 0xff);
    expect(reg(page, 0x270)).toBe(0x8000_0000);
  });

  it('setIrrAtomic reports a newly set bit, then a coalesced one', () => {
    const page = makePage();
    expect(setIrrAtomic(page.words, page.base, 0x30)).toBe(true);
    expect(setIrrAtomic(page.words, page.base, 0x30)).toBe(false);
    expect(setIrrAtomic(page.words, page.base, 0x31)).toBe(true);
    expect(reg(page, 0x210)).toBe(0x0003_0000);
  });

  it('highestIrrVector scans from the top and returns -1 when empty', () => {
    const page = makePage();
    expect(highestIrrVector(page.words, page.base)).toBe(-1);
    setIrrAtomic(page.words, page.base, 0x21);
    setIrrAtomic(page.words, page.base, 0x9f);
    setIrrAtomic(page.words, page.base, 0x80);
    expect(highestIrrVector(page.words, page.base)).toBe(0x9f);
    setIrrAtomic(page.words, page.base, 0xff);
    expect(highestIrrVector(page.words, page.base)).toBe(0xff);
  });
});

describe('PPR (SDM 11.8.3.1)', () => {
  it('is TPR when TPR class >= in-service class, else the in-service class with a zero low nibble', () => {
    const page = makePage();
    writeApicRegister(page.words, page.base, ApicRegister.TaskPriority, 0x35);
    expect(updateProcessorPriority(page.words, page.base)).toBe(0x35);
    setIrrAtomic(page.words, page.base, 0x6a);
    acknowledgeInterrupt(page.words, page.base, 0x6a);
    expect(reg(page, ApicRegister.ProcessorPriority)).toBe(0x60);
    writeApicRegister(page.words, page.base, ApicRegister.TaskPriority, 0x6f);
    expect(updateProcessorPriority(page.words, page.base)).toBe(0x6f);
    writeApicRegister(page.words, page.base, ApicRegister.TaskPriority, 0x61);
    expect(updateProcessorPriority(page.words, page.base)).toBe(0x61);
  });
});

describe('deliverability', () => {
  it('requires the IRR class to be above the PPR class', () => {
    const page = makePage();
    writeApicRegister(page.words, page.base, ApicRegister.TaskPriority, 0x50);
    setIrrAtomic(page.words, page.base, 0x5f);
    expect(pendingDeliverableVector(page.words, page.base)).toBe(-1);
    setIrrAtomic(page.words, page.base, 0x60);
    expect(pendingDeliverableVector(page.words, page.base)).toBe(0x60);
  });

  it('a vector in service blocks its own class and lower ones', () => {
    const page = makePage();
    setIrrAtomic(page.words, page.base, 0x41);
    acknowledgeInterrupt(page.words, page.base, 0x41);
    setIrrAtomic(page.words, page.base, 0x4f);
    expect(pendingDeliverableVector(page.words, page.base)).toBe(-1);
    setIrrAtomic(page.words, page.base, 0x50);
    expect(pendingDeliverableVector(page.words, page.base)).toBe(0x50);
  });

  it('a software-disabled APIC delivers nothing', () => {
    const page = makePage();
    writeApicRegister(page.words, page.base, ApicRegister.SpuriousInterruptVector, 0xff);
    setIrrAtomic(page.words, page.base, 0xf0);
    expect(pendingDeliverableVector(page.words, page.base)).toBe(-1);
    writeApicRegister(page.words, page.base, ApicRegister.SpuriousInterruptVector, 0x1ff);
    expect(pendingDeliverableVector(page.words, page.base)).toBe(0xf0);
  });
});

describe('acknowledge and EOI', () => {
  it('acknowledge moves the bit from IRR to ISR and keeps other IRR bits in the same word', () => {
    const page = makePage();
    setIrrAtomic(page.words, page.base, 0x40);
    setIrrAtomic(page.words, page.base, 0x41);
    acknowledgeInterrupt(page.words, page.base, 0x41);
    expect(isIrrSet(page.words, page.base, 0x41)).toBe(false);
    expect(isIrrSet(page.words, page.base, 0x40)).toBe(true);
    expect(isIsrSet(page.words, page.base, 0x41)).toBe(true);
    expect(highestIsrVector(page.words, page.base)).toBe(0x41);
  });

  it('EOI clears only the highest ISR bit and recomputes PPR', () => {
    const page = makePage();
    for (const vector of [0x30, 0x80]) {
      setIrrAtomic(page.words, page.base, vector);
      acknowledgeInterrupt(page.words, page.base, vector);
    }
    expect(reg(page, ApicRegister.ProcessorPriority)).toBe(0x80);
    expect(endOfInterrupt(page.words, page.base)).toBe(0x80);
    expect(isIsrSet(page.words, page.base, 0x30)).toBe(true);
    expect(isIsrSet(page.words, page.base, 0x80)).toBe(false);
    expect(reg(page, ApicRegister.ProcessorPriority)).toBe(0x30);
    expect(endOfInterrupt(page.words, page.base)).toBe(0x30);
    expect(reg(page, ApicRegister.ProcessorPriority)).toBe(0);
    expect(endOfInterrupt(page.words, page.base)).toBe(-1);
  });

  it('the TMR bit tells a level-triggered EOI from an edge one', () => {
    const page = makePage();
    setTriggerMode(page.words, page.base, 0x91, true);
    expect(reg(page, 0x180 + 0x40)).toBe(1 << 17);
    expect(isLevelTriggered(page.words, page.base, 0x91)).toBe(true);
    expect(isLevelTriggered(page.words, page.base, 0x90)).toBe(false);
    setTriggerMode(page.words, page.base, 0x91, false);
    expect(isLevelTriggered(page.words, page.base, 0x91)).toBe(false);
  });
});

describe('IRR scan property', () => {
  it('highestIrrVector is the largest vector set, for any set of vectors', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 16, max: 255 }), { maxLength: 20 }), (vectors) => {
        const page = makePage();
        for (const vector of vectors) expect(setIrrAtomic(page.words, page.base, vector)).toBe(true);
        expect(highestIrrVector(page.words, page.base)).toBe(vectors.length === 0 ? -1 : Math.max(...vectors));
      }),
    );
  });
});
