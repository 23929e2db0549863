import { describe, it, expect } from 'vitest';
import {
  LogicalApicIdTable,
  decodeLogicalApicIdTableEntry,
  encodeLogicalApicIdTableEntry,
  logicalApicIdTableIndex,
} from '../../../src/hw/avic/logical-apic-id-table.js';

const FLAT = 0xffffffff | 0;
const CLUSTER = 0x0fffffff;
const ldr = (logicalId: number): number => (logicalId << 24) | 0;

describe('logical APIC ID table entry (svm.h AVIC_LOGICAL_ID_ENTRY_*, avic_get_logical_id_entry)', () => {
  it('holds the guest physical APIC ID in bits 7:0 and Valid in bit 31', () => {
    expect(encodeLogicalApicIdTableEntry({ guestPhysicalApicId: 0x5a, isValid: true }) >>> 0).toBe(0x8000_005a);
    expect(encodeLogicalApicIdTableEntry({ guestPhysicalApicId: 0x5a, isValid: false })).toBe(0x5a);
    expect(decodeLogicalApicIdTableEntry(0x8000_00fe | 0)).toEqual({ guestPhysicalApicId: 0xfe, isValid: true });
    expect(decodeLogicalApicIdTableEntry(0x7fff_ff03)).toEqual({ guestPhysicalApicId: 3, isValid: false });
  });

  it('storeEntry writes a Valid entry and invalidate clears only bit 31', () => {
    const words = new Int32Array(8 + 1024);
    const table = new LogicalApicIdTable(words, 8);
    table.storeEntry(37, 12);
    expect(words[8 + 37]! >>> 0).toBe(0x8000_000c);
    table.invalidate(37);
    expect(table.load(37)).toBe(12);
    expect(() => table.storeEntry(1024, 0)).toThrow(RangeError);
  });
});

describe('logical table index from LDR and DFR (KVM avic_get_logical_id_entry)', () => {
  it('flat: the position of the single set bit', () => {
    expect(logicalApicIdTableIndex(ldr(0x01), FLAT)).toBe(0);
    expect(logicalApicIdTableIndex(ldr(0x10), FLAT)).toBe(4);
    expect(logicalApicIdTableIndex(ldr(0x80), FLAT)).toBe(7);
  });

  it('flat: zero or several bits name no entry', () => {
    expect(logicalApicIdTableIndex(0, FLAT)).toBe(-1);
    expect(logicalApicIdTableIndex(ldr(0x03), FLAT)).toBe(-1);
  });

  it('cluster: cluster * 4 + member bit; LDR bits 23:0 are ignored', () => {
    expect(logicalApicIdTableIndex(ldr(0x01), CLUSTER)).toBe(0);
    expect(logicalApicIdTableIndex(ldr(0x28), CLUSTER)).toBe(11);
    expect(logicalApicIdTableIndex(ldr(0xe4) | 0xffffff, CLUSTER)).toBe(58);
  });

  it('cluster: cluster 15, zero or several member bits name no entry', () => {
    expect(logicalApicIdTableIndex(ldr(0xf1), CLUSTER)).toBe(-1);
    expect(logicalApicIdTableIndex(ldr(0x30), CLUSTER)).toBe(-1);
    expect(logicalApicIdTableIndex(ldr(0x35), CLUSTER)).toBe(-1);
  });

  it('a reserved DFR model names no entry', () => {
    expect(logicalApicIdTableIndex(ldr(0x01), 0x8fffffff | 0)).toBe(-1);
  });
});
