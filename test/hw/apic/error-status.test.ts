import { describe, it, expect } from 'vitest';
import { ErrorStatusBit, errorStatusMask, ERROR_STATUS_DEFINED_MASK } from '../../../src/hw/apic/error-status.js';

describe('Error Status Register bits (SDM 11.5.3)', () => {
  it('places each error at its SDM bit', () => {
    expect(errorStatusMask(ErrorStatusBit.SendChecksum)).toBe(0x01);
    expect(errorStatusMask(ErrorStatusBit.ReceiveChecksum)).toBe(0x02);
    expect(errorStatusMask(ErrorStatusBit.SendAccept)).toBe(0x04);
    expect(errorStatusMask(ErrorStatusBit.ReceiveAccept)).toBe(0x08);
    expect(errorStatusMask(ErrorStatusBit.RedirectableIpi)).toBe(0x10);
    expect(errorStatusMask(ErrorStatusBit.SendIllegalVector)).toBe(0x20);
    expect(errorStatusMask(ErrorStatusBit.ReceivedIllegalVector)).toBe(0x40);
    expect(errorStatusMask(ErrorStatusBit.IllegalRegisterAddress)).toBe(0x80);
  });

  it('defines bits 7:0 only', () => {
    const all = Object.values(ErrorStatusBit).reduce<number>((mask, bit) => mask | errorStatusMask(bit), 0);
    expect(all).toBe(ERROR_STATUS_DEFINED_MASK);
  });
});
