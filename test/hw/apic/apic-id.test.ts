import { describe, it, expect } from 'vitest';
import { apicId, hostPhysicalApicId, X2AVIC_MAX_PHYSICAL_ID, XAPIC_BROADCAST_ID, XAPIC_MAX_PHYSICAL_ID } from '../../../src/hw/apic/apic-id.js';

describe('APIC identifiers', () => {
  it('xAVIC indices stop at 0xFE, 0xFF is the broadcast ID, x2AVIC goes to 0x1FF', () => {
    expect(XAPIC_MAX_PHYSICAL_ID).toBe(0xfe);
    expect(XAPIC_BROADCAST_ID).toBe(0xff);
    expect(X2AVIC_MAX_PHYSICAL_ID).toBe(0x1ff);
  });

  it('apicId accepts 0..0x1FF and rejects negatives, fractions and larger values', () => {
    expect(apicId(0)).toBe(0);
    expect(apicId(0x1ff)).toBe(0x1ff);
    expect(() => apicId(-1)).toThrow(RangeError);
    expect(() => apicId(1.5)).toThrow(RangeError);
    expect(() => apicId(0x200)).toThrow(/guest physical APIC ID: 512/);
  });

  it('hostPhysicalApicId accepts the 12-bit entry field 0..0xFFF only', () => {
    expect(hostPhysicalApicId(0xfff)).toBe(0xfff);
    expect(() => hostPhysicalApicId(0x1000)).toThrow(RangeError);
    expect(() => hostPhysicalApicId(Number.NaN)).toThrow(RangeError);
  });
});
