import { describe, it, expect } from 'vitest';
import { DestinationMode, DestinationShorthand } from '../../../src/hw/apic/interrupt-command.js';
import { matchesDestination } from '../../../src/hw/apic/apic-destination.js';

const FLAT = -1;
const CLUSTER = 0x0fffffff;
const { None, Self, AllIncludingSelf, AllExcludingSelf } = DestinationShorthand;
const { Physical, Logical } = DestinationMode;

describe('software destination matching (kvm_apic_match_dest, xAPIC)', () => {
  it('shorthands ignore the destination field', () => {
    expect(matchesDestination(2, 0, FLAT, 2, Self, Physical, 7)).toBe(true);
    expect(matchesDestination(3, 0, FLAT, 2, Self, Physical, 3)).toBe(false);
    expect(matchesDestination(2, 0, FLAT, 2, AllIncludingSelf, Physical, 0)).toBe(true);
    expect(matchesDestination(2, 0, FLAT, 2, AllExcludingSelf, Physical, 2)).toBe(false);
    expect(matchesDestination(3, 0, FLAT, 2, AllExcludingSelf, Physical, 0)).toBe(true);
  });

  it('physical: the ID or 0xFF', () => {
    expect(matchesDestination(5, 0, FLAT, 0, None, Physical, 5)).toBe(true);
    expect(matchesDestination(5, 0, FLAT, 0, None, Physical, 4)).toBe(false);
    expect(matchesDestination(5, 0, FLAT, 0, None, Physical, 0xff)).toBe(true);
  });

  it('logical flat: LDR bits overlap the MDA', () => {
    const ldr = 0x04 << 24;
    expect(matchesDestination(9, ldr, FLAT, 0, None, Logical, 0x06)).toBe(true);
    expect(matchesDestination(9, ldr, FLAT, 0, None, Logical, 0x03)).toBe(false);
    expect(matchesDestination(9, 0, FLAT, 0, None, Logical, 0x7f)).toBe(false);
    expect(matchesDestination(9, 0, FLAT, 0, None, Logical, 0xff)).toBe(true);
  });

  it('logical cluster: same cluster and overlapping members; only 0xFF is broadcast', () => {
    const ldr = 0x32 << 24;
    expect(matchesDestination(9, ldr, CLUSTER, 0, None, Logical, 0x33)).toBe(true);
    expect(matchesDestination(9, ldr, CLUSTER, 0, None, Logical, 0x31)).toBe(false);
    expect(matchesDestination(9, ldr, CLUSTER, 0, None, Logical, 0x22)).toBe(false);
    expect(matchesDestination(9, ldr, CLUSTER, 0, None, Logical, 0xff)).toBe(true);
    expect(matchesDestination(9, ldr, CLUSTER, 0, None, Logical, 0xf2)).toBe(false);
  });

  it('a reserved DFR model matches no logical destination but the broadcast', () => {
    expect(matchesDestination(9, 0x01 << 24, 0x5fffffff, 0, None, Logical, 0x01)).toBe(false);
    expect(matchesDestination(9, 0x01 << 24, 0x5fffffff, 0, None, Logical, 0xff)).toBe(true);
  });
});
