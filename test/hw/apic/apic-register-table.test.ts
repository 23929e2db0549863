// The register table against the manuals' tables, written out here independently of it: the AVIC
// access table (AMD APM vol. 2, 15.29, with KVM's is_avic_unaccelerated_access_trap), the x2APIC
// MSR table (Intel SDM vol. 3 §11.12.1.2 table 11-6), the xAPIC table (SDM table 11-1), KVM's
// x2avic_passthrough_msrs and the RESET values (SDM §11.4.7.1, kvm_lapic_reset). Every
// function derived from the table is checked for every slot of the page.

import { describe, it, expect } from 'vitest';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { APIC_PAGE_WORDS } from '../../../src/hw/apic/apic-register.js';
import { resetApicPage } from '../../../src/hw/apic/apic-backing-page.js';
import { ApicAccessKind, classifyApicAccess, isAvicUnacceleratedAccessTrap } from '../../../src/hw/apic/apic-access.js';
import {
  APIC_REGISTER_TABLE,
  RegisterAccess,
  X2AVIC_PASSTHROUGH_MSRS,
  apicRegisterRow,
  isReadOnlyRegister,
} from '../../../src/hw/apic/apic-register-table.js';
import { X2apicMsrFault, x2apicMsrReadFault, x2apicMsrWriteFault, xapicRegisterAccess } from '../../../src/hw/apic/x2apic-register.js';

const {
  Accelerated: A,
  AcceleratedTaskPriority: TPR,
  AcceleratedEndOfInterrupt: EOI,
  InterruptCommand: ICR,
  Trap: T,
  Fault: F,
} = ApicAccessKind;
const hex = (value: number): string => `0x${value.toString(16)}`;
const slots = Array.from({ length: 64 }, (_, slot) => slot << 4);
const range = (first: number, count: number): number[] => Array.from({ length: count }, (_, i) => first + i * 0x10);

/** AVIC write handling per offset (APM 15.29): every offset not named here faults. */
const AVIC_WRITES = new Map<number, ApicAccessKind>([
  [0x020, T],
  [0x080, TPR],
  [0x0b0, EOI],
  [0x0c0, T],
  [0x0d0, T],
  [0x0e0, T],
  [0x0f0, T],
  [0x280, T],
  [0x300, ICR],
  [0x310, A],
  [0x320, T],
  [0x330, T],
  [0x340, T],
  [0x350, T],
  [0x360, T],
  [0x370, T],
  [0x380, T],
  [0x3e0, T],
]);

/** KVM's is_avic_unaccelerated_access_trap list (avic.c), verbatim. */
const KVM_TRAP_LIST = [0x020, 0x0b0, 0x0c0, 0x0d0, 0x0e0, 0x0f0, 0x280, 0x300, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x380, 0x3e0];

/** SDM table 11-6: the x2APIC MSRs and their access; every other MSR of 0x800..0x83F is reserved. */
const { ReadWrite: RW, ReadOnly: RO, WriteOnly: WO, Reserved: RSV } = RegisterAccess;
const SDM_X2APIC_MSRS = new Map<number, RegisterAccess>([
  [0x802, RO],
  [0x803, RO],
  [0x808, RW],
  [0x80a, RO],
  [0x80b, WO],
  [0x80d, RO],
  [0x80f, RW],
  ...Array.from({ length: 24 }, (_, i) => [0x810 + i, RO] as [number, RegisterAccess]),
  [0x828, RW],
  [0x830, RW],
  [0x832, RW],
  [0x833, RW],
  [0x834, RW],
  [0x835, RW],
  [0x836, RW],
  [0x837, RW],
  [0x838, RW],
  [0x839, RO],
  [0x83e, RW],
  [0x83f, WO],
]);

/** SDM table 11-1: the xAPIC registers (no CMCI, no SELF IPI). */
const SDM_XAPIC = new Map<number, RegisterAccess>([
  [0x020, RW],
  [0x030, RO],
  [0x080, RW],
  [0x090, RO],
  [0x0a0, RO],
  [0x0b0, WO],
  [0x0c0, RO],
  [0x0d0, RW],
  [0x0e0, RW],
  [0x0f0, RW],
  ...range(0x100, 24).map((offset) => [offset, RO] as [number, RegisterAccess]),
  [0x280, RW],
  [0x300, RW],
  [0x310, RW],
  ...range(0x320, 7).map((offset) => [offset, RW] as [number, RegisterAccess]),
  [0x390, RO],
  [0x3e0, RW],
]);

/** KVM's x2avic_passthrough_msrs (svm/avic.c), verbatim as MSR numbers. */
const KVM_X2AVIC_PASSTHROUGH = [
  0x802, 0x803, 0x808, 0x809, 0x80a, 0x80b, 0x80c, 0x80d, 0x80e, 0x80f, 0x810, 0x818, 0x820, 0x828, 0x830, 0x831, 0x833, 0x834, 0x835,
  0x836, 0x837, 0x838, 0x839, 0x83e,
];

function resetPage(): Int32Array {
  const words = new Int32Array(APIC_PAGE_WORDS);
  resetApicPage(words, 0, apicId(5));
  return words;
}

describe('AVIC access classification against the APM 15.29 access table', () => {
  it('every slot: reads come from the page except the current count; writes trap, accelerate or fault as listed', () => {
    const words = resetPage();
    for (const offset of slots) {
      expect(classifyApicAccess(offset, false, words, 0), `read ${hex(offset)}`).toBe(offset === 0x390 ? F : A);
      expect(classifyApicAccess(offset, true, words, 0), `write ${hex(offset)}`).toBe(AVIC_WRITES.get(offset) ?? F);
    }
  });

  it("the trap list derived from the table is exactly KVM's is_avic_unaccelerated_access_trap", () => {
    expect(slots.filter(isAvicUnacceleratedAccessTrap)).toEqual(KVM_TRAP_LIST);
  });
});

describe('x2APIC MSR #GP rules against the SDM table 11-6', () => {
  it('every MSR 0x800..0x83F: reads and writes fault exactly as its access says', () => {
    for (let msr = 0x800; msr <= 0x83f; msr++) {
      const access = SDM_X2APIC_MSRS.get(msr) ?? RSV;
      const read = access === RSV ? X2apicMsrFault.ReservedRegister : access === WO ? X2apicMsrFault.ReadOfWriteOnly : X2apicMsrFault.None;
      const write = access === RSV ? X2apicMsrFault.ReservedRegister : access === RO ? X2apicMsrFault.WriteToReadOnly : X2apicMsrFault.None;
      expect(x2apicMsrReadFault(msr, true), `rdmsr ${hex(msr)}`).toBe(read);
      expect(x2apicMsrWriteFault(msr, 0, 0, true), `wrmsr ${hex(msr)}`).toBe(write);
    }
  });

  it('LVT CMCI (0x82F) exists only when the CPU reports it', () => {
    expect(x2apicMsrReadFault(0x82f, true, false)).toBe(X2apicMsrFault.ReservedRegister);
    expect(x2apicMsrReadFault(0x82f, true, true)).toBe(X2apicMsrFault.None);
    expect(x2apicMsrWriteFault(0x82f, 0, 0, true, undefined, true)).toBe(X2apicMsrFault.None);
  });
});

describe("xAPIC access and the MMIO emulation's read-only check (SDM table 11-1)", () => {
  it('every slot has the access of table 11-1', () => {
    for (const offset of slots) expect(xapicRegisterAccess(offset), hex(offset)).toBe(SDM_XAPIC.get(offset) ?? RSV);
  });

  it('a write to a read-only register is ignored: version, APR, PPR, RRD, every ISR/TMR/IRR word, the current count', () => {
    const readOnly = [0x030, 0x090, 0x0a0, 0x0c0, ...range(0x100, 24), 0x390];
    for (const offset of slots) expect(isReadOnlyRegister(offset), hex(offset)).toBe(readOnly.includes(offset));
    // The 256-bit registers are read-only in every word of their slots; other slots only at their start.
    expect(isReadOnlyRegister(0x104)).toBe(true);
    expect(isReadOnlyRegister(0x27c)).toBe(true);
    expect(isReadOnlyRegister(0x034)).toBe(false);
    expect(isReadOnlyRegister(0x400)).toBe(false);
  });
});

describe('x2AVIC pass-through and reset values', () => {
  it("the pass-through set derived from the table is exactly KVM's x2avic_passthrough_msrs", () => {
    expect([...X2AVIC_PASSTHROUGH_MSRS].sort((a, b) => a - b)).toEqual(KVM_X2AVIC_PASSTHROUGH);
  });

  it('after reset and firmware: version 0x50014, DFR flat, SVR 0x1FF, LVTs masked, the ID, zero elsewhere', () => {
    const words = resetPage();
    const expected = new Map<number, number>([
      [0x020, 5 << 24],
      [0x030, 0x50014],
      [0x0e0, -1],
      [0x0f0, 0x1ff],
      ...range(0x320, 6).map((offset) => [offset, 0x10000] as [number, number]),
    ]);
    for (let word = 0; word < APIC_PAGE_WORDS; word++) expect(words[word], hex(word * 4)).toBe(expected.get(word * 4) ?? 0);
  });

  it('rows are unique, slot-aligned and named; reserved slots have no row', () => {
    expect(new Set(APIC_REGISTER_TABLE.map((row) => row.offset)).size).toBe(APIC_REGISTER_TABLE.length);
    expect(apicRegisterRow(0x040)).toBeUndefined();
    expect(apicRegisterRow(0x084)).toBeUndefined();
    expect(apicRegisterRow(0x300)?.name).toBe('APIC_ICR');
  });
});
