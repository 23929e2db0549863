import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { hostPhysicalApicId } from '../../../src/hw/apic/apic-id.js';
import {
  PhysicalApicIdTable,
  decodePhysicalApicIdTableEntry,
  encodePhysicalApicIdTableEntry,
  physicalApicIdTableEntryFromBigInt,
  physicalApicIdTableEntryToBigInt,
  type PhysicalApicIdTableEntry,
} from '../../../src/hw/avic/physical-apic-id-table.js';

const bit = (n: bigint): bigint => 1n << n;
const entryBigInt = (entry: PhysicalApicIdTableEntry): bigint => physicalApicIdTableEntryToBigInt(...encodePhysicalApicIdTableEntry(entry));

const base: PhysicalApicIdTableEntry = {
  hostPhysicalApicId: hostPhysicalApicId(0),
  backingPagePointer: 0,
  isRunning: false,
  isValid: false,
};

describe('physical APIC ID table entry layout (svm.h AVIC_PHYSICAL_ID_ENTRY_*)', () => {
  it('IsRunning is bit 62 and Valid bit 63 of the physical APIC ID table entry', () => {
    expect(entryBigInt({ ...base, isRunning: true })).toBe(bit(62n));
    expect(entryBigInt({ ...base, isValid: true })).toBe(bit(63n));
  });

  it('the host physical APIC ID is bits 11:0', () => {
    expect(entryBigInt({ ...base, hostPhysicalApicId: hostPhysicalApicId(0xabc) })).toBe(0xabcn);
  });

  it('the backing page pointer is bits 51:12, taken as the address itself', () => {
    expect(entryBigInt({ ...base, backingPagePointer: 0x000f_ffff_ffff_f000 })).toBe(0x000f_ffff_ffff_f000n);
    expect(entryBigInt({ ...base, backingPagePointer: 0x1_2345_6000 })).toBe(0x1_2345_6000n);
  });

  it('splits into a low word (bits 31:0) and a high word (bits 63:32) as Int32 values', () => {
    const [low, high] = encodePhysicalApicIdTableEntry({
      hostPhysicalApicId: hostPhysicalApicId(7),
      backingPagePointer: 0x3_8000_1000,
      isRunning: true,
      isValid: true,
    });
    expect(low >>> 0).toBe(0x8000_1007);
    expect(high >>> 0).toBe(0xc000_0003);
    expect(low).toBe(0x8000_1007 | 0);
  });

  it('rejects pointers that are not page aligned or do not fit 52 bits', () => {
    expect(() => encodePhysicalApicIdTableEntry({ ...base, backingPagePointer: 0x1234 })).toThrow(RangeError);
    expect(() => encodePhysicalApicIdTableEntry({ ...base, backingPagePointer: 2 ** 52 })).toThrow(RangeError);
  });

  const arbitraryEntry = fc.record({
    hostPhysicalApicId: fc.integer({ min: 0, max: 0xfff }).map(hostPhysicalApicId),
    backingPagePointer: fc.integer({ min: 0, max: 2 ** 40 - 1 }).map((page) => page * 4096),
    isRunning: fc.boolean(),
    isValid: fc.boolean(),
  });

  it('encode, BigInt and decode agree with the svm.h bit positions for every entry', () => {
    fc.assert(
      fc.property(arbitraryEntry, (entry) => {
        const value = entryBigInt(entry);
        expect(value & 0xfffn).toBe(BigInt(entry.hostPhysicalApicId));
        expect((value >> 12n) & ((1n << 40n) - 1n)).toBe(BigInt(entry.backingPagePointer / 4096));
        expect((value >> 62n) & 1n).toBe(entry.isRunning ? 1n : 0n);
        expect(value >> 63n).toBe(entry.isValid ? 1n : 0n);
        expect((value >> 52n) & 0x3ffn).toBe(0n);
        const [low, high] = physicalApicIdTableEntryFromBigInt(value);
        expect(decodePhysicalApicIdTableEntry(low, high)).toEqual(entry);
      }),
    );
  });
});

describe('PhysicalApicIdTable over Int32 words', () => {
  const entry: PhysicalApicIdTableEntry = {
    hostPhysicalApicId: hostPhysicalApicId(0x21),
    backingPagePointer: 0x7_0000_5000,
    isRunning: false,
    isValid: true,
  };

  it('stores entry i at tableBase + 2i (low) and + 2i + 1 (high)', () => {
    const words = new Int32Array(16 + 512 * 2);
    const table = new PhysicalApicIdTable(words, 16);
    table.storeEntry(3, entry);
    expect(words[16 + 6]! >>> 0).toBe(0x0000_5021);
    expect(words[16 + 7]! >>> 0).toBe(0x8000_0007);
    expect(table.load(3)).toEqual(entry);
    expect(table.isValid(3)).toBe(true);
    expect(table.isValid(2)).toBe(false);
    expect(table.backingPagePointer(3)).toBe(0x7_0000_5000);
  });

  it('setIsRunning flips bit 62 and the host ID, keeping Valid and the pointer', () => {
    const table = new PhysicalApicIdTable(new Int32Array(1024), 0);
    table.storeEntry(5, entry);
    table.setIsRunning(5, true, hostPhysicalApicId(0x9));
    expect(table.load(5)).toEqual({ ...entry, hostPhysicalApicId: 0x9, isRunning: true });
    expect(physicalApicIdTableEntryToBigInt(table.loadLowWord(5), table.loadHighWord(5))).toBe(bit(63n) | bit(62n) | 0x7_0000_5009n);
    table.setIsRunning(5, false, hostPhysicalApicId(0x9));
    expect(table.isRunning(5)).toBe(false);
    expect(table.hostPhysicalApicId(5)).toBe(0x9);
    expect(table.isValid(5)).toBe(true);
  });

  it('invalidate clears Valid and IsRunning only', () => {
    const table = new PhysicalApicIdTable(new Int32Array(1024), 0);
    table.storeEntry(1, { ...entry, isRunning: true });
    table.invalidate(1);
    expect(table.load(1)).toEqual({ ...entry, isValid: false, isRunning: false });
  });

  it('refuses a region outside its array and indices outside the table', () => {
    expect(() => new PhysicalApicIdTable(new Int32Array(1000), 0)).toThrow(RangeError);
    const table = new PhysicalApicIdTable(new Int32Array(1024), 0);
    expect(() => table.storeEntry(512, entry)).toThrow(RangeError);
  });

  it("a vCPU whose ID is past the table loads and puts without touching the words after it (__avic_vcpu_load's size check)", () => {
    // 4 entries (8 words), then 8 words of whatever the buffer holds next (the logical table in a VM).
    const words = new Int32Array(16).fill(0x5a5a5a5a);
    const table = new PhysicalApicIdTable(words, 0, 4);
    table.setIsRunning(4, true, hostPhysicalApicId(7));
    table.setIsRunning(5, false, hostPhysicalApicId(7));
    expect([...words.subarray(8)]).toEqual(new Array(8).fill(0x5a5a5a5a));
  });
});
