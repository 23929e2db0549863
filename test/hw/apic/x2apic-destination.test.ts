import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DFR_CLUSTER, DFR_FLAT } from '../../../src/hw/apic/apic-backing-page.js';
import { DestinationMode, DestinationShorthand } from '../../../src/hw/apic/interrupt-command.js';
import {
  forEachX2apicLogicalTarget,
  matchesDestinationInMode,
  matchesX2apicDestination,
  matchesX2apicLogicalDestination,
} from '../../../src/hw/apic/x2apic-destination.js';
import { X2APIC_BROADCAST_ID, x2apicLogicalDestination } from '../../../src/hw/apic/x2apic-id.js';

const { Physical, Logical } = DestinationMode;
const { None, Self, AllIncludingSelf, AllExcludingSelf } = DestinationShorthand;
const id32 = fc.integer({ min: 0, max: 0xfffffffe });

describe('x2APIC physical destinations (32-bit ids)', () => {
  it('matches exactly the target id, above 0xFF too', () => {
    fc.assert(
      fc.property(id32, id32, (target, destination) => {
        expect(matchesX2apicDestination(target, 0, None, Physical, destination)).toBe(target === destination);
      }),
    );
    expect(matchesX2apicDestination(0x1ff, 0, None, Physical, 0x1ff)).toBe(true);
    // 0xFF is an ordinary id in x2APIC mode, not a broadcast.
    expect(matchesX2apicDestination(3, 0, None, Physical, 0xff)).toBe(false);
  });

  it('0xFFFFFFFF is the broadcast in both destination modes', () => {
    fc.assert(
      fc.property(id32, (target) => {
        expect(matchesX2apicDestination(target, 0, None, Physical, X2APIC_BROADCAST_ID)).toBe(true);
        expect(matchesX2apicDestination(target, 0, None, Logical, X2APIC_BROADCAST_ID)).toBe(true);
      }),
    );
  });
});

describe('x2APIC logical destinations (16-bit cluster, 16-bit member mask)', () => {
  it('a target matches when the cluster is equal and its member bit is in the mask', () => {
    fc.assert(
      fc.property(id32, fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), (target, cluster, mask) => {
        const destination = ((cluster << 16) | mask) >>> 0;
        fc.pre(destination !== X2APIC_BROADCAST_ID);
        const expected = Math.floor(target / 16) % 0x10000 === cluster && (mask & (1 << (target % 16))) !== 0;
        expect(matchesX2apicDestination(target, 0, None, Logical, destination)).toBe(expected);
      }),
    );
  });

  it('the derived LDR matches a destination equal to itself', () => {
    fc.assert(
      fc.property(id32, (id) => {
        expect(matchesX2apicLogicalDestination(x2apicLogicalDestination(id), x2apicLogicalDestination(id))).toBe(true);
      }),
    );
  });

  it('forEachX2apicLogicalTarget names cluster * 16 + bit for each set bit, and the matcher agrees', () => {
    const destination = 0x0002_8005; // cluster 2, members 0, 2, 15
    const seen: number[] = [];
    expect(forEachX2apicLogicalTarget(destination, (id) => seen.push(id))).toBe(3);
    expect(seen).toEqual([0x20, 0x22, 0x2f]);
    for (let id = 0; id < 0x40; id++) expect(matchesX2apicDestination(id, 0, None, Logical, destination)).toBe(seen.includes(id));
  });
});

describe('shorthands ignore the destination', () => {
  it('self, all including self, all excluding self', () => {
    fc.assert(
      fc.property(id32, id32, id32, (target, sender, destination) => {
        expect(matchesX2apicDestination(target, sender, Self, Physical, destination)).toBe(target === sender);
        expect(matchesX2apicDestination(target, sender, AllIncludingSelf, Logical, destination)).toBe(true);
        expect(matchesX2apicDestination(target, sender, AllExcludingSelf, Physical, destination)).toBe(target !== sender);
      }),
    );
  });
});

describe('matchesDestinationInMode keeps the xAPIC rules for xAPIC targets', () => {
  it('xAPIC: 0xFF broadcast, flat bitmap, cluster nibble; x2APIC: the 32-bit rules', () => {
    const flat = { x2apic: false, apicId: 2, logicalDestination: 0x04000000, destinationFormat: DFR_FLAT };
    const cluster = { x2apic: false, apicId: 5, logicalDestination: 0x21000000, destinationFormat: DFR_CLUSTER };
    expect(matchesDestinationInMode(flat, 0, None, Physical, 0xff)).toBe(true);
    expect(matchesDestinationInMode(flat, 0, None, Physical, 2)).toBe(true);
    expect(matchesDestinationInMode(flat, 0, None, Logical, 0x06)).toBe(true);
    expect(matchesDestinationInMode(flat, 0, None, Logical, 0x01)).toBe(false);
    expect(matchesDestinationInMode(cluster, 0, None, Logical, 0x23)).toBe(true);
    expect(matchesDestinationInMode(cluster, 0, None, Logical, 0x13)).toBe(false);
    const x2 = { x2apic: true, apicId: 0x105, logicalDestination: 0, destinationFormat: 0 };
    expect(matchesDestinationInMode(x2, 0, None, Physical, 0x105)).toBe(true);
    expect(matchesDestinationInMode(x2, 0, None, Physical, 0x05)).toBe(false);
    expect(matchesDestinationInMode(x2, 0, None, Logical, 0x0010_0020)).toBe(true);
  });
});
