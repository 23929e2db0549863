// The x2APIC MSRs and IA32_APIC_BASE (src/kvm/lapic/x2apic-msr.ts) alone, on a fake register
// emulation and CPU: the #GP rules (KVM's and the x2AVIC hardware's), what an intercepted access does,
// and which MSRs x2AVIC passes through.
import { describe, expect, it } from 'vitest';
import { GuestFaultKind } from '../../../src/guest/guest-fault.js';
import { APIC_BASE_GLOBAL_ENABLE, APIC_BASE_X2APIC_ENABLE } from '../../../src/hw/apic/apic-base.js';
import { APIC_DEFAULT_PHYSICAL_BASE, ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { ICR_DELIVERY_STATUS_BUSY } from '../../../src/hw/apic/interrupt-command.js';
import { X2apicMsr } from '../../../src/hw/apic/x2apic-register.js';
import {
  apicBaseLow,
  readX2apicMsr,
  writeApicBase,
  writeX2apicMsr,
  X2AVIC_PASSTHROUGH_MSRS,
  x2avicMsrReadFaults,
  x2avicMsrWriteFaults,
  type X2apicMsrApic,
  type X2apicMsrCpu,
} from '../../../src/kvm/lapic/x2apic-msr.js';

class FakeApic implements X2apicMsrApic {
  readonly calls: string[] = [];
  readonly registers = new Map<number, number>([
    [ApicRegister.InterruptCommandHigh, 7],
    [ApicRegister.InterruptCommandLow, 0x40],
  ]);
  readonly index: number;
  x2apicMode: boolean;
  constructor(index: number, x2apicMode: boolean) {
    this.index = index;
    this.x2apicMode = x2apicMode;
  }
  read(offset: number): number {
    return this.registers.get(offset) ?? 0;
  }
  readRegister(offset: number): number {
    return this.read(offset);
  }
  writeRegister(offset: number, value: number): void {
    this.calls.push(`write 0x${offset.toString(16)} = 0x${value.toString(16)}`);
  }
  enterX2apicMode(): void {
    this.calls.push('enter x2APIC');
    this.x2apicMode = true;
  }
  sendX2apicInterruptCommand(low: number, high: number): void {
    this.calls.push(`icr 0x${(low >>> 0).toString(16)}:0x${(high >>> 0).toString(16)}`);
  }
  sendSelfIpi(vector: number): void {
    this.calls.push(`self ${vector}`);
  }
}

class FakeCpu implements X2apicMsrCpu {
  msrHighWord = -1;
  readonly gp: string[] = [];
  readonly faults: string[] = [];
  raiseGeneralProtection(kind: GuestFaultKind, detail: string): void {
    this.gp.push(`${kind}: ${detail}`);
  }
  raiseFault(kind: GuestFaultKind, detail: string): void {
    this.faults.push(`${kind}: ${detail}`);
  }
}

describe('intercepted RDMSR', () => {
  it('#GP outside x2APIC mode, naming the rule', () => {
    const cpu = new FakeCpu();
    expect(readX2apicMsr(new FakeApic(0, false), cpu, X2apicMsr.TaskPriority)).toBe(0);
    expect(cpu.gp).toEqual([`${GuestFaultKind.GeneralProtection}: rdmsr 0x808: the APIC is not in x2APIC mode`]);
  });

  it('ICR: the low half in EAX, ICR[63:32] in EDX; other registers have EDX = 0', () => {
    const apic = new FakeApic(0, true);
    const cpu = new FakeCpu();
    expect(readX2apicMsr(apic, cpu, X2apicMsr.InterruptCommand)).toBe(0x40);
    expect(cpu.msrHighWord).toBe(7);
    readX2apicMsr(apic, cpu, X2apicMsr.TaskPriority);
    expect(cpu.msrHighWord).toBe(0);
  });

  it('#GP for a write-only register (EOI) and a reserved one', () => {
    const cpu = new FakeCpu();
    readX2apicMsr(new FakeApic(0, true), cpu, X2apicMsr.EndOfInterrupt);
    readX2apicMsr(new FakeApic(0, true), cpu, 0x831);
    expect(cpu.gp).toHaveLength(2);
  });
});

describe("intercepted WRMSR (KVM's checks)", () => {
  it('ICR: KVM clears BUSY and sends it in software with the 32-bit destination', () => {
    const apic = new FakeApic(0, true);
    const cpu = new FakeCpu();
    writeX2apicMsr(apic, cpu, X2apicMsr.InterruptCommand, 0x40 | ICR_DELIVERY_STATUS_BUSY, 0x123);
    expect(cpu.gp).toEqual([]);
    expect(apic.calls).toEqual(['icr 0x40:0x123']);
  });

  it('SELF IPI goes to software; bits above the vector are #GP', () => {
    const apic = new FakeApic(0, true);
    const cpu = new FakeCpu();
    writeX2apicMsr(apic, cpu, X2apicMsr.SelfIpi, 0x33, 0);
    writeX2apicMsr(apic, cpu, X2apicMsr.SelfIpi, 0x133, 0);
    expect(apic.calls).toEqual(['self 51']);
    expect(cpu.gp).toHaveLength(1);
  });

  it('ESR must be written with 0; a read-only register and a non-zero EDX are #GP', () => {
    const apic = new FakeApic(0, true);
    const cpu = new FakeCpu();
    writeX2apicMsr(apic, cpu, X2apicMsr.ErrorStatus, 1, 0);
    writeX2apicMsr(apic, cpu, X2apicMsr.Version, 0, 0);
    writeX2apicMsr(apic, cpu, X2apicMsr.LvtError, 0x20, 1);
    expect(cpu.gp.map((text) => text.split(': ').at(-1))).toEqual([
      'ESR must be written with 0',
      'the register is read-only',
      'reserved bits are set',
    ]);
    writeX2apicMsr(apic, cpu, X2apicMsr.LvtError, 0x20, 0);
    expect(apic.calls).toEqual(['write 0x370 = 0x20']);
  });
});

describe("x2AVIC's own #GP checks on the MSRs it passes through", () => {
  it("a BUSY ICR write is #GP on AMD (KVM's emulation would clear it)", () => {
    const cpu = new FakeCpu();
    expect(x2avicMsrWriteFaults(cpu, X2apicMsr.InterruptCommand, 0x40 | ICR_DELIVERY_STATUS_BUSY, 1)).toBe(true);
    expect(x2avicMsrWriteFaults(cpu, X2apicMsr.InterruptCommand, 0x40, 1)).toBe(false);
    expect(cpu.gp).toHaveLength(1);
    expect(cpu.gp[0]).toContain('(x2AVIC)');
  });

  it('a non-zero EOI is #GP on AMD; reading EOI (write-only) is #GP', () => {
    const cpu = new FakeCpu();
    expect(x2avicMsrWriteFaults(cpu, X2apicMsr.EndOfInterrupt, 1, 0)).toBe(true);
    expect(x2avicMsrReadFaults(cpu, X2apicMsr.EndOfInterrupt)).toBe(true);
    expect(x2avicMsrReadFaults(cpu, X2apicMsr.TaskPriority)).toBe(false);
  });
});

describe('which MSRs x2AVIC passes through (x2avic_passthrough_msrs)', () => {
  it('the ICR, TPR, EOI and the first ISR/TMR/IRR MSRs; not SELF IPI, the LVT timer or the other ISR MSRs', () => {
    for (const msr of [
      X2apicMsr.InterruptCommand,
      X2apicMsr.TaskPriority,
      X2apicMsr.EndOfInterrupt,
      X2apicMsr.InService,
      X2apicMsr.TriggerMode,
      X2apicMsr.InterruptRequest,
      X2apicMsr.TimerCurrentCount,
    ]) {
      expect(X2AVIC_PASSTHROUGH_MSRS.has(msr)).toBe(true);
    }
    for (const msr of [X2apicMsr.SelfIpi, X2apicMsr.LvtTimer, X2apicMsr.InService + 1, X2apicMsr.LvtCmci]) {
      expect(X2AVIC_PASSTHROUGH_MSRS.has(msr)).toBe(false);
    }
  });
});

describe('IA32_APIC_BASE', () => {
  it('reads the default base, EN, EXTD in x2APIC mode, BSP on vCPU 0', () => {
    expect(apicBaseLow({ index: 0, x2apicMode: false }) >>> 0).toBe((APIC_DEFAULT_PHYSICAL_BASE | APIC_BASE_GLOBAL_ENABLE | 0x100) >>> 0);
    expect(apicBaseLow({ index: 1, x2apicMode: true }) >>> 0).toBe(
      (APIC_DEFAULT_PHYSICAL_BASE | APIC_BASE_GLOBAL_ENABLE | APIC_BASE_X2APIC_ENABLE) >>> 0,
    );
  });

  it('xAPIC -> x2APIC is performed; x2APIC -> xAPIC directly is #GP; disabling is a stopping fault (not modelled)', () => {
    const apic = new FakeApic(1, false);
    const cpu = new FakeCpu();
    writeApicBase(apic, cpu, apicBaseLow(apic) | APIC_BASE_X2APIC_ENABLE, 0);
    expect(apic.calls).toEqual(['enter x2APIC']);
    writeApicBase(apic, cpu, apicBaseLow(apic) & ~APIC_BASE_X2APIC_ENABLE, 0);
    expect(cpu.gp).toHaveLength(1);
    writeApicBase(apic, cpu, 0, 0);
    expect(cpu.faults).toHaveLength(1);
  });
});
