import { describe, it, expect } from 'vitest';
import {
  apicId,
  hostPhysicalApicId,
  X2AVIC_4K_MAX_PHYSICAL_ID,
  X2AVIC_MAX_PHYSICAL_ID,
  XAPIC_BROADCAST_ID,
  XAPIC_MAX_PHYSICAL_ID,
} from '../../../src/hw/apic/apic-id.js';

describe('APIC identifiers', () => {
  it('xAVIC indices stop at 0xFE, 0xFF is the broadcast ID, x2AVIC goes to 0x1FF, 0xFFF with the 4K extension', () => {
    expect(XAPIC_MAX_PHYSICAL_ID).toBe(0xfe);
    expect(XAPIC_BROADCAST_ID).toBe(0xff);
    expect(X2AVIC_MAX_PHYSICAL_ID).toBe(0x1ff);
    expect(X2AVIC_4K_MAX_PHYSICAL_ID).toBe(0xfff);
  });

  it('apicId accepts 0..0xFFF and rejects negatives, fractions and larger values', () => {
    expect(apicId(0)).toBe(0);
    expect(apicId(0x200)).toBe(0x200);
    expect(apicId(0xfff)).toBe(0xfff);
    expect(() => apicId(-1)).toThrow(RangeError);
    expect(() => apicId(1.5)).toThrow(RangeError);
    expect(() => apicId(0x1000)).toThrow(/guest physical APIC ID: 4096/);
  });

  it('hostPhysicalApicId accepts the 12-bit entry field 0..0xFFF only', () => {
    expect(hostPhysicalApicId(0xfff)).toBe(0xfff);
    expect(() => hostPhysicalApicId(0x1000)).toThrow(RangeError);
    expect(() => hostPhysicalApicId(Number.NaN)).toThrow(RangeError);
  });
});
