import { describe, it, expect } from 'vitest';
import {
  APIC_BASE_BSP,
  APIC_BASE_GLOBAL_ENABLE,
  APIC_BASE_X2APIC_ENABLE,
  ApicBaseEffect,
  ApicBaseWriteFault,
  ApicMode,
  apicBaseAddress,
  apicBaseAfterReset,
  apicModeOf,
  classifyApicBaseWrite,
  x2apicStateOnEntry,
  xapicIdRegisterValue,
  type ApicBaseWriteOptions,
} from '../../../src/hw/apic/apic-base.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';

const BASE = 0xfee00000;
const DISABLED = BASE;
const XAPIC = (BASE | APIC_BASE_GLOBAL_ENABLE) >>> 0;
const X2APIC = (BASE | APIC_BASE_GLOBAL_ENABLE | APIC_BASE_X2APIC_ENABLE) >>> 0;
const INVALID = (BASE | APIC_BASE_X2APIC_ENABLE) >>> 0;
const OPTIONS: ApicBaseWriteOptions = { x2apicSupported: true, physicalAddressBits: 48 };
const write = (from: number, to: number, options: ApicBaseWriteOptions = OPTIONS, toHigh = 0) =>
  classifyApicBaseWrite(from, 0, to, toHigh, options);

describe('IA32_APIC_BASE modes (SDM §11.12.5)', () => {
  it('EN/EXTD encode disabled, xAPIC, x2APIC and the invalid state', () => {
    expect(apicModeOf(DISABLED)).toBe(ApicMode.Disabled);
    expect(apicModeOf(XAPIC)).toBe(ApicMode.Xapic);
    expect(apicModeOf(X2APIC)).toBe(ApicMode.X2apic);
    expect(apicModeOf(INVALID)).toBe(ApicMode.Invalid);
  });

  it('reset leaves an enabled xAPIC at 0xFEE00000, BSP flag only on the bootstrap vCPU', () => {
    expect(apicBaseAfterReset(true).low).toBe((XAPIC | APIC_BASE_BSP) >>> 0);
    expect(apicBaseAfterReset(false).low).toBe(XAPIC);
    expect(apicBaseAddress(XAPIC, 0)).toBe(BASE);
  });
});

describe('legal and illegal transitions', () => {
  it('disabled -> xAPIC -> x2APIC -> disabled -> xAPIC are accepted', () => {
    expect(write(DISABLED, XAPIC).fault).toBe(ApicBaseWriteFault.None);
    expect(write(XAPIC, X2APIC).fault).toBe(ApicBaseWriteFault.None);
    expect(write(X2APIC, DISABLED).fault).toBe(ApicBaseWriteFault.None);
    expect(write(XAPIC, DISABLED).fault).toBe(ApicBaseWriteFault.None);
  });

  it('x2APIC -> xAPIC and disabled -> x2APIC #GP for the guest, not for the host', () => {
    expect(write(X2APIC, XAPIC).fault).toBe(ApicBaseWriteFault.X2apicToXapic);
    expect(write(DISABLED, X2APIC).fault).toBe(ApicBaseWriteFault.DisabledToX2apic);
    expect(write(X2APIC, XAPIC, { ...OPTIONS, hostInitiated: true }).fault).toBe(ApicBaseWriteFault.None);
    expect(write(DISABLED, X2APIC, { ...OPTIONS, hostInitiated: true }).fault).toBe(ApicBaseWriteFault.None);
  });

  it('the invalid state (EN = 0, EXTD = 1) #GPs from every mode', () => {
    for (const from of [DISABLED, XAPIC, X2APIC]) expect(write(from, INVALID).fault).toBe(ApicBaseWriteFault.InvalidState);
  });

  it('reserved bits #GP: 7:0, 9, MAXPHYADDR and up, and EXTD without x2APIC in CPUID', () => {
    for (const bit of [0, 7, 9]) expect(write(XAPIC, (XAPIC | (1 << bit)) >>> 0).fault).toBe(ApicBaseWriteFault.ReservedBits);
    expect(write(XAPIC, XAPIC, OPTIONS, 1 << 16).fault).toBe(ApicBaseWriteFault.ReservedBits);
    expect(write(XAPIC, XAPIC, OPTIONS, 1 << 15).fault).toBe(ApicBaseWriteFault.None);
    expect(write(XAPIC, X2APIC, { x2apicSupported: false, physicalAddressBits: 48 }).fault).toBe(ApicBaseWriteFault.ReservedBits);
  });

  it('writing the current value is accepted with no effects', () => {
    expect(write(XAPIC, XAPIC)).toEqual({ fault: ApicBaseWriteFault.None, oldMode: ApicMode.Xapic, newMode: ApicMode.Xapic, effects: 0 });
  });
});

describe('what each transition resets', () => {
  it('xAPIC -> x2APIC sets the x2APIC ID and the derived LDR, not the xAPIC ID', () => {
    const { effects } = write(XAPIC, X2APIC);
    expect(effects & ApicBaseEffect.SetX2apicIdAndLogicalDestination).not.toBe(0);
    expect(effects & ApicBaseEffect.SetXapicId).toBe(0);
    expect(effects & ApicBaseEffect.ModeChanged).not.toBe(0);
    expect(x2apicStateOnEntry(apicId(0x123))).toEqual({ id: 0x123, logicalDestination: 0x00120008 });
  });

  it('disabled -> xAPIC sets the xAPIC ID from the initial ID (bits 31:24)', () => {
    const { effects } = write(DISABLED, XAPIC);
    expect(effects & ApicBaseEffect.SetXapicId).not.toBe(0);
    expect(xapicIdRegisterValue(apicId(5))).toBe(0x05000000);
  });

  it('x2APIC -> disabled hardware-disables the APIC; host x2APIC -> xAPIC sets the xAPIC ID', () => {
    expect(write(X2APIC, DISABLED).effects & ApicBaseEffect.HardwareDisabled).not.toBe(0);
    expect(write(X2APIC, XAPIC, { ...OPTIONS, hostInitiated: true }).effects & ApicBaseEffect.SetXapicId).not.toBe(0);
  });

  it('an enabled APIC moved away from 0xFEE00000 reports BaseRelocated (the AVIC inhibit)', () => {
    expect(write(XAPIC, (0xfed00000 | APIC_BASE_GLOBAL_ENABLE) >>> 0).effects & ApicBaseEffect.BaseRelocated).not.toBe(0);
    expect(write(DISABLED, XAPIC).effects & ApicBaseEffect.BaseRelocated).toBe(0);
  });
});
