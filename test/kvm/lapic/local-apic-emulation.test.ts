// The local APIC register emulation (src/kvm/lapic/local-apic-emulation.ts) alone, through its
// narrow host: what software applies after a trap (kvm_apic_write_nodecode), what it does with a
// faulting write (ESR for a reserved register, nothing for a read-only one), the MMIO emulation of an
// inhibited AVIC, and the xAPIC -> x2APIC switch.
import { describe, expect, it } from 'vitest';
import { acknowledgeInterrupt, isIsrSet, isLevelTriggered, setIrrAtomic, setTriggerMode } from '../../../src/hw/apic/apic-backing-page.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { ICR_DELIVERY_STATUS_BUSY, encodeInterruptCommand } from '../../../src/hw/apic/interrupt-command.js';
import { ErrorStatusBit, errorStatusMask } from '../../../src/hw/apic/error-status.js';
import { VcpuApicMode, VcpuWaitReason } from '../../../src/kvm/control/vcpu-run-state.js';
import { LocalApicEmulation } from '../../../src/kvm/lapic/local-apic-emulation.js';
import { isReadOnlyRegister as isReadOnlyApicRegister } from '../../../src/hw/apic/apic-register-table.js';
import { createdViews, controlWord, FakeCounters, FakeCpu, pageOf } from '../vcpu-parts.js';

const VECTOR = 0x61;

class FakeTimer {
  readonly writes: [number, number][] = [];
  currentCount = 1234;
  write(offset: number, value: number): void {
    this.writes.push([offset, value]);
  }
  readCurrentCount(): number {
    return this.currentCount;
  }
}

function setUp(): {
  views: ReturnType<typeof createdViews>;
  apic: LocalApicEmulation;
  page: ReturnType<typeof pageOf>;
  counters: FakeCounters;
  cpu: FakeCpu;
  timer: FakeTimer;
} {
  const views = createdViews(2);
  // The main thread has rebuilt the APIC map far ahead: a rebuild request returns at once.
  Atomics.store(views.control, views.headerIndex('apicMapGeneration'), 1000);
  const page = pageOf(views, 0);
  const counters = new FakeCounters();
  const cpu = new FakeCpu();
  const timer = new FakeTimer();
  const apic = new LocalApicEmulation({ views, index: 0, page, cpu, counters, trace: undefined, timer });
  return { views, apic, page, counters, cpu, timer };
}

const mapRequests = (views: ReturnType<typeof createdViews>): number => Atomics.load(views.control, views.headerIndex('apicMapRequests'));

describe('trapped writes (kvm_apic_write_nodecode): the value is already in the page', () => {
  it.each([
    ['ID', ApicRegister.Id],
    ['LDR', ApicRegister.LogicalDestination],
    ['DFR', ApicRegister.DestinationFormat],
  ])('%s asks the main thread for an APIC map rebuild and waits for it', (_name, offset) => {
    const { views, apic } = setUp();
    const mainDoorbell = Atomics.load(views.control, views.headerIndex('mainDoorbell'));
    apic.applyTrappedWrite(offset);
    expect(mapRequests(views)).toBe(1);
    expect(Atomics.load(views.control, views.headerIndex('mainDoorbell'))).toBe(mainDoorbell + 1);
    expect(controlWord(views, 0, 'waitReason')).toBe(VcpuWaitReason.None);
  });

  it('ESR latches the errors accumulated since the last ESR write, and starts anew', () => {
    const { views, apic, page } = setUp();
    Atomics.or(views.control, views.controlBlockIndex(0, 'pendingErrorStatus'), errorStatusMask(ErrorStatusBit.SendIllegalVector));
    page.write(ApicRegister.ErrorStatus, 0x1234);
    apic.applyTrappedWrite(ApicRegister.ErrorStatus);
    expect(page.read(ApicRegister.ErrorStatus)).toBe(errorStatusMask(ErrorStatusBit.SendIllegalVector));
    expect(controlWord(views, 0, 'pendingErrorStatus')).toBe(0);
  });

  it('SVR makes the CPU re-evaluate (a software enable may let a vector in)', () => {
    const { apic, cpu } = setUp();
    apic.applyTrappedWrite(ApicRegister.SpuriousInterruptVector);
    expect(cpu.evaluations).toBe(1);
  });

  it.each([ApicRegister.LvtTimer, ApicRegister.TimerInitialCount, ApicRegister.TimerDivideConfiguration])(
    'timer register 0x%s goes to the timer with the page value',
    (offset) => {
      const { apic, page, timer } = setUp();
      page.write(offset, 0x77);
      apic.applyTrappedWrite(offset);
      expect(timer.writes).toEqual([[offset, 0x77]]);
    },
  );

  it('a level EOI (the only EOI that traps): ISR and the TMR bit cleared, re-evaluate', () => {
    const { apic, page, cpu } = setUp();
    setTriggerMode(page.words, page.base, VECTOR, true);
    setIrrAtomic(page.words, page.base, VECTOR);
    acknowledgeInterrupt(page.words, page.base, VECTOR);
    apic.applyTrappedWrite(ApicRegister.EndOfInterrupt);
    expect(isIsrSet(page.words, page.base, VECTOR)).toBe(false);
    expect(isLevelTriggered(page.words, page.base, VECTOR)).toBe(false);
    expect(cpu.evaluations).toBe(1);
  });

  it('an LVT entry other than the timer keeps its value and asks nothing', () => {
    const { views, apic, cpu, timer } = setUp();
    apic.applyTrappedWrite(ApicRegister.LvtError);
    expect([cpu.evaluations, timer.writes.length, mapRequests(views)]).toEqual([0, 0, 0]);
  });
});

describe('faulting writes', () => {
  it('read-only registers are ignored; reserved ones latch "illegal register address" for the next ESR write', () => {
    const { views, apic } = setUp();
    for (const offset of [
      ApicRegister.Version,
      ApicRegister.ProcessorPriority,
      ApicRegister.ArbitrationPriority,
      ApicRegister.InService,
      ApicRegister.TimerCurrentCount,
    ]) {
      expect(isReadOnlyApicRegister(offset)).toBe(true);
      apic.emulateFaultingWrite(offset, 1);
    }
    expect(controlWord(views, 0, 'pendingErrorStatus')).toBe(0);
    apic.emulateFaultingWrite(0x3c0, 1);
    expect(controlWord(views, 0, 'pendingErrorStatus')).toBe(errorStatusMask(ErrorStatusBit.IllegalRegisterAddress));
  });

  it('a faulting read of the current count asks the timer', () => {
    const { apic } = setUp();
    expect(apic.readRegister(ApicRegister.TimerCurrentCount)).toBe(1234);
  });
});

describe('MMIO emulation while AVIC is inhibited (apic_mmio_write)', () => {
  it('counts the exit; TPR is stored and PPR follows', () => {
    const { apic, page, counters } = setUp();
    apic.emulateMmioAccess(ApicRegister.TaskPriority, true, 0x1f0);
    expect(page.read(ApicRegister.TaskPriority)).toBe(0xf0);
    expect(page.read(ApicRegister.ProcessorPriority)).toBe(0xf0);
    expect(counters.get('apicMmioEmulationExits')).toBe(1);
  });

  it('ICR high keeps bits 31:24; an ICR-low write is sent by software with BUSY clear', () => {
    const { views, apic, page, counters } = setUp();
    apic.emulateMmioAccess(ApicRegister.InterruptCommandHigh, true, 0x01ffffff);
    expect(page.read(ApicRegister.InterruptCommandHigh)).toBe(0x01000000);
    const { low } = encodeInterruptCommand({ vector: VECTOR, destination: 1, busy: true });
    apic.emulateMmioAccess(ApicRegister.InterruptCommandLow, true, low | 0);
    expect(page.read(ApicRegister.InterruptCommandLow) & ICR_DELIVERY_STATUS_BUSY).toBe(0);
    expect(counters.get('interruptCommandsWhileInhibited')).toBe(1);
    expect(counters.get('ipisAccepted')).toBe(1);
    expect(setIrrAtomic(views.apicPageWords, views.apicPageBase(1), VECTOR)).toBe(false);
  });

  it('a read returns the register', () => {
    const { apic, page } = setUp();
    page.write(ApicRegister.LvtLint0, 0x700);
    expect(apic.emulateMmioAccess(ApicRegister.LvtLint0, false, 0)).toBe(0x700);
  });
});

describe('xAPIC -> x2APIC', () => {
  it('the ID becomes the index, the LDR is derived, then the mode word is published', () => {
    const views = createdViews(20);
    const page = pageOf(views, 17);
    const apic = new LocalApicEmulation({
      views,
      index: 17,
      page,
      cpu: new FakeCpu(),
      counters: new FakeCounters(),
      trace: undefined,
      timer: new FakeTimer(),
    });
    apic.enterX2apicMode();
    expect(apic.x2apicMode).toBe(true);
    expect(page.read(ApicRegister.Id)).toBe(17);
    // Cluster 17 >> 4 = 1 in bits 31:16, member bit 17 & 15 = 1.
    expect(page.read(ApicRegister.LogicalDestination)).toBe((1 << 16) | (1 << 1));
    expect(controlWord(views, 17, 'apicMode')).toBe(VcpuApicMode.X2apic);
  });
});
