import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { ApicImplementation } from '../../../src/hw/apic/interrupt-command-readback.js';
import {
  APIC_SELF_IPI_OFFSET,
  RegisterAccess,
  X2apicMsr,
  X2apicMsrFault,
  x2apicMsrForOffset,
  x2apicMsrReadFault,
  x2apicMsrWriteFault,
  x2apicRegisterAccess,
  xapicOffsetForX2apicMsr,
  xapicRegisterAccess,
} from '../../../src/hw/apic/x2apic-register.js';
import { x2apicId, x2apicLogicalDestination, X2APIC_BROADCAST_ID } from '../../../src/hw/apic/x2apic-id.js';

describe('x2APIC MSR <-> xAPIC offset (SDM table 11-6)', () => {
  it('index = 0x800 + offset >> 4, and back, for every slot', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3f }), (slot) => {
        const offset = slot << 4;
        expect(x2apicMsrForOffset(offset)).toBe(0x800 + slot);
        expect(xapicOffsetForX2apicMsr(x2apicMsrForOffset(offset))).toBe(offset);
      }),
    );
    expect(x2apicMsrForOffset(ApicRegister.InterruptCommandLow)).toBe(X2apicMsr.InterruptCommand);
    expect(x2apicMsrForOffset(ApicRegister.Id)).toBe(X2apicMsr.Id);
    expect(x2apicMsrForOffset(APIC_SELF_IPI_OFFSET)).toBe(X2apicMsr.SelfIpi);
  });
});

describe('which x2APIC registers exist and how they may be accessed', () => {
  it('ICR high (0x831), DFR (0x80E), APR (0x809) and RRD (0x80C) do not exist in x2APIC mode', () => {
    for (const msr of [0x831, 0x80e, 0x809, 0x80c, 0x800, 0x801, 0x804, 0x840, 0x8ff]) {
      expect(x2apicMsrReadFault(msr, true), `rdmsr ${msr.toString(16)}`).toBe(X2apicMsrFault.ReservedRegister);
      expect(x2apicMsrWriteFault(msr, 0, 0, true), `wrmsr ${msr.toString(16)}`).toBe(X2apicMsrFault.ReservedRegister);
    }
  });

  it('but DFR, APR and ICR high exist in xAPIC mode, and SELF IPI does not', () => {
    expect(xapicRegisterAccess(ApicRegister.DestinationFormat)).toBe(RegisterAccess.ReadWrite);
    expect(xapicRegisterAccess(ApicRegister.InterruptCommandHigh)).toBe(RegisterAccess.ReadWrite);
    expect(xapicRegisterAccess(ApicRegister.ArbitrationPriority)).toBe(RegisterAccess.ReadOnly);
    expect(xapicRegisterAccess(ApicRegister.Id)).toBe(RegisterAccess.ReadWrite);
    expect(xapicRegisterAccess(ApicRegister.LogicalDestination)).toBe(RegisterAccess.ReadWrite);
    expect(xapicRegisterAccess(APIC_SELF_IPI_OFFSET)).toBe(RegisterAccess.Reserved);
    expect(xapicRegisterAccess(0x40)).toBe(RegisterAccess.Reserved);
  });

  it('ID, version, PPR, LDR, ISR/TMR/IRR and the current count are read-only: WRMSR #GPs', () => {
    const readOnly: number[] = [
      X2apicMsr.Id,
      X2apicMsr.Version,
      X2apicMsr.ProcessorPriority,
      X2apicMsr.LogicalDestination,
      X2apicMsr.TimerCurrentCount,
    ];
    for (let i = 0; i < 8; i++) readOnly.push(0x810 + i, 0x818 + i, 0x820 + i);
    for (const msr of readOnly) {
      expect(x2apicMsrReadFault(msr, true)).toBe(X2apicMsrFault.None);
      expect(x2apicMsrWriteFault(msr, 0, 0, true)).toBe(X2apicMsrFault.WriteToReadOnly);
    }
  });

  it('EOI and SELF IPI are write-only: RDMSR #GPs', () => {
    expect(x2apicMsrReadFault(X2apicMsr.EndOfInterrupt, true)).toBe(X2apicMsrFault.ReadOfWriteOnly);
    expect(x2apicMsrReadFault(X2apicMsr.SelfIpi, true)).toBe(X2apicMsrFault.ReadOfWriteOnly);
    expect(x2apicMsrWriteFault(X2apicMsr.SelfIpi, 0x40, 0, true)).toBe(X2apicMsrFault.None);
  });

  it('LVT CMCI exists only when CMCI is reported', () => {
    expect(x2apicMsrReadFault(X2apicMsr.LvtCmci, true)).toBe(X2apicMsrFault.ReservedRegister);
    expect(x2apicMsrReadFault(X2apicMsr.LvtCmci, true, true)).toBe(X2apicMsrFault.None);
    expect(x2apicRegisterAccess(0x2f0, true)).toBe(RegisterAccess.ReadWrite);
  });

  it('every x2APIC MSR #GPs outside x2APIC mode', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x800, max: 0x8ff }), (msr) => {
        expect(x2apicMsrReadFault(msr, false)).toBe(X2apicMsrFault.NotInX2apicMode);
        expect(x2apicMsrWriteFault(msr, 0, 0, false)).toBe(X2apicMsrFault.NotInX2apicMode);
      }),
    );
  });
});

describe('reserved-bit #GP on WRMSR', () => {
  it('bits 63:32 of a 32-bit register', () => {
    expect(x2apicMsrWriteFault(X2apicMsr.TaskPriority, 0x20, 1, true)).toBe(X2apicMsrFault.ReservedBits);
    expect(x2apicMsrWriteFault(X2apicMsr.TaskPriority, 0x20, 0, true)).toBe(X2apicMsrFault.None);
  });

  it('SELF IPI: only bits 7:0 may be set', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (value) => {
        const expected = value > 0xff ? X2apicMsrFault.ReservedBits : X2apicMsrFault.None;
        expect(x2apicMsrWriteFault(X2apicMsr.SelfIpi, value, 0, true)).toBe(expected);
      }),
    );
  });

  it('ESR must be written with 0', () => {
    expect(x2apicMsrWriteFault(X2apicMsr.ErrorStatus, 0, 0, true)).toBe(X2apicMsrFault.None);
    expect(x2apicMsrWriteFault(X2apicMsr.ErrorStatus, 1, 0, true)).toBe(X2apicMsrFault.NonZeroErrorStatus);
  });

  it('EOI must be written with 0 on hardware (SDM); KVM accepts any value', () => {
    expect(x2apicMsrWriteFault(X2apicMsr.EndOfInterrupt, 0, 0, true, ApicImplementation.IntelHardware)).toBe(X2apicMsrFault.None);
    expect(x2apicMsrWriteFault(X2apicMsr.EndOfInterrupt, 5, 0, true, ApicImplementation.IntelHardware)).toBe(
      X2apicMsrFault.NonZeroEndOfInterrupt,
    );
    expect(x2apicMsrWriteFault(X2apicMsr.EndOfInterrupt, 5, 0, true, ApicImplementation.AmdAvic)).toBe(
      X2apicMsrFault.NonZeroEndOfInterrupt,
    );
    expect(x2apicMsrWriteFault(X2apicMsr.EndOfInterrupt, 5, 0, true, ApicImplementation.KvmEmulated)).toBe(X2apicMsrFault.None);
  });

  it('ICR: reserved bits 31:20, 17:16 and 13 #GP; the destination half never does', () => {
    const reservedBits = [13, 16, 17, 20, 24, 31];
    for (const bit of reservedBits) {
      expect(x2apicMsrWriteFault(X2apicMsr.InterruptCommand, (1 << bit) >>> 0, 0, true), `bit ${bit}`).toBe(X2apicMsrFault.ReservedBits);
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (destination) => {
        expect(x2apicMsrWriteFault(X2apicMsr.InterruptCommand, 0x40fe, destination, true)).toBe(X2apicMsrFault.None);
      }),
    );
  });

  it('ICR BUSY (bit 12): #GP on AMD, ignored by Intel and KVM', () => {
    const busy = 0x1000 | 0x4030;
    expect(x2apicMsrWriteFault(X2apicMsr.InterruptCommand, busy, 0, true, ApicImplementation.AmdAvic)).toBe(X2apicMsrFault.IcrBusyBitSet);
    expect(x2apicMsrWriteFault(X2apicMsr.InterruptCommand, busy, 0, true, ApicImplementation.IntelHardware)).toBe(X2apicMsrFault.None);
    expect(x2apicMsrWriteFault(X2apicMsr.InterruptCommand, busy, 0, true, ApicImplementation.KvmEmulated)).toBe(X2apicMsrFault.None);
  });
});

describe('x2APIC IDs and the derived LDR (SDM §11.12.10.2)', () => {
  it('cluster = id >> 4 in bits 31:16, bit (id & 15) in bits 15:0, for every 32-bit id', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffffffe }), (id) => {
        const ldr = x2apicLogicalDestination(x2apicId(id));
        expect(ldr >>> 16).toBe(Math.floor(id / 16) & 0xffff);
        expect(ldr & 0xffff).toBe(1 << (id % 16));
      }),
    );
    expect(x2apicLogicalDestination(x2apicId(0))).toBe(0x00000001);
    expect(x2apicLogicalDestination(x2apicId(0x21))).toBe(0x00020002);
    expect(x2apicLogicalDestination(x2apicId(0x1ff))).toBe(0x001f8000);
  });

  it('x2apicId accepts 32-bit values and rejects the broadcast and non-integers', () => {
    expect(x2apicId(0xfffffffe)).toBe(0xfffffffe);
    expect(() => x2apicId(X2APIC_BROADCAST_ID)).toThrow(RangeError);
    expect(() => x2apicId(-1)).toThrow(RangeError);
    expect(() => x2apicId(1.5)).toThrow(RangeError);
  });
});
