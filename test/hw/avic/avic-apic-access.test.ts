// The AVIC hardware step (src/hw/avic/avic-apic-access.ts) alone, on an in-memory AvicHardware: what
// it completes, and the exit it leaves in the VMCB's exit fields when it cannot.
import { describe, expect, it } from 'vitest';
import { ApicAccessKind } from '../../../src/hw/apic/apic-access.js';
import { acknowledgeInterrupt, isIrrSet, isIsrSet, setIrrAtomic, setTriggerMode } from '../../../src/hw/apic/apic-backing-page.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { DeliveryMode, encodeInterruptCommand } from '../../../src/hw/apic/interrupt-command.js';
import { avicApicRead, avicApicWrite, AvicVmcb, x2avicMsrWrite } from '../../../src/hw/avic/avic-apic-access.js';
import {
  AvicExitCode,
  AvicIncompleteIpiCause,
  incompleteIpiCause,
  unacceleratedAccessIsWrite,
  unacceleratedAccessOffset,
} from '../../../src/hw/avic/avic-exit.js';
import { NO_EXIT } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { FakeAvicHardware } from './fake-avic-hardware.js';

const VECTOR = 0x40;

/** vCPU 0 (the one whose VMCB this is) and vCPU 1, 1 running unless told otherwise. */
function setUp(options: { targetRunning?: boolean } = {}): {
  hardware: FakeAvicHardware;
  vmcb: AvicVmcb;
  cpu: { evaluations: number; requestInterruptEvaluation(): void };
} {
  const hardware = new FakeAvicHardware(2);
  hardware.addVcpu(0, { running: true });
  hardware.addVcpu(1, { running: options.targetRunning ?? true });
  const vmcb = new AvicVmcb(apicId(0), hardware.pageBase(0), hardware, hardware);
  const cpu = {
    evaluations: 0,
    requestInterruptEvaluation(): void {
      this.evaluations++;
    },
  };
  return { hardware, vmcb, cpu };
}

const word = (hardware: FakeAvicHardware, id: number, offset: number): number => hardware.pageWords[hardware.pageBase(id) + (offset >> 2)]!;

describe('avicApicRead', () => {
  it('reads a register from the backing page with no exit', () => {
    const { hardware, vmcb } = setUp();
    expect(avicApicRead(vmcb, ApicRegister.Id)).toBe(word(hardware, 0, ApicRegister.Id));
    expect(vmcb.exit.exitCode).toBe(0);
  });

  it('faults the current-count read: AVIC_NOACCEL with the offset, a read', () => {
    const { vmcb } = setUp();
    expect(avicApicRead(vmcb, ApicRegister.TimerCurrentCount)).toBe(0);
    expect(vmcb.exit.exitCode).toBe(AvicExitCode.UnacceleratedAccess);
    expect(unacceleratedAccessOffset(vmcb.exit.exitInfo1Low)).toBe(ApicRegister.TimerCurrentCount);
    expect(unacceleratedAccessIsWrite(vmcb.exit.exitInfo1High)).toBe(false);
  });

  it('clears the previous exit: an accelerated access after an exit reports none', () => {
    const { vmcb } = setUp();
    avicApicRead(vmcb, ApicRegister.TimerCurrentCount);
    avicApicRead(vmcb, ApicRegister.TaskPriority);
    expect(vmcb.exit.exitCode).toBe(0);
  });
});

describe('avicApicWrite', () => {
  it('TPR: stored (bits 7:0), PPR follows, the CPU re-evaluates, no exit', () => {
    const { hardware, vmcb, cpu } = setUp();
    expect(avicApicWrite(vmcb, cpu, ApicRegister.TaskPriority, 0x1234)).toBe(ApicAccessKind.AcceleratedTaskPriority);
    expect(word(hardware, 0, ApicRegister.TaskPriority)).toBe(0x34);
    expect(word(hardware, 0, ApicRegister.ProcessorPriority)).toBe(0x34);
    expect(cpu.evaluations).toBe(1);
    expect(vmcb.exit.exitCode).toBe(0);
  });

  it('EOI of an edge vector completes in hardware: ISR cleared, no exit', () => {
    const { hardware, vmcb, cpu } = setUp();
    setIrrAtomic(hardware.pageWords, hardware.pageBase(0), VECTOR);
    acknowledgeInterrupt(hardware.pageWords, hardware.pageBase(0), VECTOR);
    expect(avicApicWrite(vmcb, cpu, ApicRegister.EndOfInterrupt, 0)).toBe(ApicAccessKind.AcceleratedEndOfInterrupt);
    expect(isIsrSet(hardware.pageWords, hardware.pageBase(0), VECTOR)).toBe(false);
    expect(cpu.evaluations).toBe(1);
    expect(vmcb.exit.exitCode).toBe(0);
  });

  it('EOI of a level vector traps: the write is in the page, ISR untouched, AVIC_NOACCEL write', () => {
    const { hardware, vmcb, cpu } = setUp();
    setTriggerMode(hardware.pageWords, hardware.pageBase(0), VECTOR, true);
    setIrrAtomic(hardware.pageWords, hardware.pageBase(0), VECTOR);
    acknowledgeInterrupt(hardware.pageWords, hardware.pageBase(0), VECTOR);
    expect(avicApicWrite(vmcb, cpu, ApicRegister.EndOfInterrupt, 7)).toBe(ApicAccessKind.Trap);
    expect(word(hardware, 0, ApicRegister.EndOfInterrupt)).toBe(7);
    expect(isIsrSet(hardware.pageWords, hardware.pageBase(0), VECTOR)).toBe(true);
    expect(vmcb.exit.exitCode).toBe(AvicExitCode.UnacceleratedAccess);
    expect(unacceleratedAccessIsWrite(vmcb.exit.exitInfo1High)).toBe(true);
  });

  it('a write to a read-only register faults before anything is written', () => {
    const { hardware, vmcb, cpu } = setUp();
    const before = word(hardware, 0, ApicRegister.Version);
    expect(avicApicWrite(vmcb, cpu, ApicRegister.Version, 0x1234)).toBe(ApicAccessKind.Fault);
    expect(word(hardware, 0, ApicRegister.Version)).toBe(before);
    expect(vmcb.exit.exitCode).toBe(AvicExitCode.UnacceleratedAccess);
    expect(unacceleratedAccessOffset(vmcb.exit.exitInfo1Low)).toBe(ApicRegister.Version);
  });

  it('ICR high is stored with no exit; an ICR-low write to a running target rings its doorbell, no exit', () => {
    const { hardware, vmcb, cpu } = setUp();
    const { low, high } = encodeInterruptCommand({ vector: VECTOR, destination: 1 });
    expect(avicApicWrite(vmcb, cpu, ApicRegister.InterruptCommandHigh, high | 0)).toBe(ApicAccessKind.Accelerated);
    expect(avicApicWrite(vmcb, cpu, ApicRegister.InterruptCommandLow, low | 0)).toBe(ApicAccessKind.InterruptCommand);
    expect(word(hardware, 0, ApicRegister.InterruptCommandLow)).toBe(low | 0);
    expect(isIrrSet(hardware.pageWords, hardware.pageBase(1), VECTOR)).toBe(true);
    expect(hardware.doorbells).toEqual([hardware.hostOf(1)]);
    expect(vmcb.ipi.exit).toBe(NO_EXIT);
    expect(vmcb.ipi.accepted).toBe(1);
    expect(vmcb.exit.exitCode).toBe(0);
  });

  it('an ICR-low write to a target not running leaves AVIC_INCOMPLETE_IPI cause 1 with the ICR in EXITINFO1', () => {
    const { hardware, vmcb, cpu } = setUp({ targetRunning: false });
    const { low, high } = encodeInterruptCommand({ vector: VECTOR, destination: 1 });
    avicApicWrite(vmcb, cpu, ApicRegister.InterruptCommandHigh, high | 0);
    avicApicWrite(vmcb, cpu, ApicRegister.InterruptCommandLow, low | 0);
    expect(isIrrSet(hardware.pageWords, hardware.pageBase(1), VECTOR)).toBe(true);
    expect(hardware.doorbells).toEqual([]);
    expect(vmcb.exit.exitCode).toBe(AvicExitCode.IncompleteIpi);
    expect(incompleteIpiCause(vmcb.exit.exitInfo2High)).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(vmcb.exit.exitInfo1Low).toBe(low >>> 0);
    expect(vmcb.exit.exitInfo1High).toBe(high >>> 0);
  });

  it('an NMI IPI is not accelerated: cause 0, nothing delivered', () => {
    const { hardware, vmcb, cpu } = setUp();
    const { low } = encodeInterruptCommand({ vector: VECTOR, deliveryMode: DeliveryMode.Nmi, destination: 1 });
    avicApicWrite(vmcb, cpu, ApicRegister.InterruptCommandLow, low | 0);
    expect(incompleteIpiCause(vmcb.exit.exitInfo2High)).toBe(AvicIncompleteIpiCause.InvalidInterruptType);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });

  it("a self IPI sets the sender's own IRR and makes its CPU re-evaluate, with no doorbell", () => {
    const { hardware, vmcb, cpu } = setUp();
    const { low, high } = encodeInterruptCommand({ vector: VECTOR, destination: 0 });
    avicApicWrite(vmcb, cpu, ApicRegister.InterruptCommandHigh, high | 0);
    avicApicWrite(vmcb, cpu, ApicRegister.InterruptCommandLow, low | 0);
    expect(hardware.irrHolders(VECTOR)).toEqual([0]);
    expect(cpu.evaluations).toBe(1);
    expect(hardware.doorbells).toEqual([]);
  });

  it("uses the VMCB's current backing page (a moved page is the one written)", () => {
    const hardware = new FakeAvicHardware(3);
    hardware.addVcpu(0, { running: true });
    const vmcb = new AvicVmcb(apicId(0), hardware.pageBase(0), hardware, hardware);
    vmcb.backingPage = hardware.pageBase(2);
    avicApicWrite(vmcb, { requestInterruptEvaluation: () => undefined }, ApicRegister.TaskPriority, 0x20);
    expect(word(hardware, 2, ApicRegister.TaskPriority)).toBe(0x20);
    expect(word(hardware, 0, ApicRegister.TaskPriority)).toBe(0);
  });
});

describe('x2avicMsrWrite', () => {
  it('an ICR write stores both halves (ICR[63:32] is the destination) and delivers through the x2AVIC tables', () => {
    const { hardware, vmcb, cpu } = setUp();
    expect(x2avicMsrWrite(vmcb, cpu, ApicRegister.InterruptCommandLow, VECTOR, 1)).toBe(ApicAccessKind.InterruptCommand);
    expect(word(hardware, 0, ApicRegister.InterruptCommandLow)).toBe(VECTOR);
    expect(word(hardware, 0, ApicRegister.InterruptCommandHigh)).toBe(1);
    expect(hardware.irrHolders(VECTOR)).toEqual([1]);
    expect(vmcb.exit.exitCode).toBe(0);
  });

  it('a trapping register write lands in the page, then exits', () => {
    const { hardware, vmcb, cpu } = setUp();
    expect(x2avicMsrWrite(vmcb, cpu, ApicRegister.LvtError, 0x33, 0)).toBe(ApicAccessKind.Trap);
    expect(word(hardware, 0, ApicRegister.LvtError)).toBe(0x33);
    expect(vmcb.exit.exitCode).toBe(AvicExitCode.UnacceleratedAccess);
  });
});
