// avic_unaccelerated_access_interception (src/kvm/svm/avic-unaccelerated-access.ts) alone: trap vs
// fault, what software does for each, and what is counted and traced.
import { describe, expect, it } from 'vitest';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { AvicExitInfo } from '../../../src/hw/avic/avic-exit.js';
import { TraceEventKind, TraceEvents, TraceRecorder } from '../../../src/kvm/report/trace-recorder.js';
import { avicUnacceleratedAccessInterception } from '../../../src/kvm/svm/avic-unaccelerated-access.js';
import { FakeCounters } from '../vcpu-parts.js';

class FakeLapic {
  readonly calls: string[] = [];
  applyTrappedWrite(offset: number): void {
    this.calls.push(`trap 0x${offset.toString(16)}`);
  }
  readRegister(offset: number): number {
    this.calls.push(`read 0x${offset.toString(16)}`);
    return 0x5a;
  }
  emulateFaultingWrite(offset: number, value: number): void {
    this.calls.push(`fault-write 0x${offset.toString(16)} = ${value}`);
  }
}

function handle(
  offset: number,
  isWrite: boolean,
  value = 0,
): { result: number; lapic: FakeLapic; counters: FakeCounters; trace: TraceRecorder } {
  const exit = new AvicExitInfo();
  exit.setUnacceleratedAccess(offset, isWrite, 0);
  const lapic = new FakeLapic();
  const counters = new FakeCounters();
  const trace = new TraceRecorder(() => 0);
  const result = avicUnacceleratedAccessInterception(exit, offset, value, { counters, trace, lapic });
  return { result, lapic, counters, trace };
}

describe('avic_unaccelerated_access_interception', () => {
  it.each([ApicRegister.Id, ApicRegister.LogicalDestination, ApicRegister.ErrorStatus, ApicRegister.LvtTimer, ApicRegister.EndOfInterrupt])(
    'a write to trap register 0x%s: software applies its side effects, counted as a trap',
    (offset) => {
      const { result, lapic, counters } = handle(offset, true, 9);
      expect(result).toBe(0);
      expect(lapic.calls).toEqual([`trap 0x${offset.toString(16)}`]);
      expect(counters.nonZero()).toEqual({ unacceleratedAccessTrapExits: 1 });
    },
  );

  it('a faulting read is emulated: the register value is the result, counted as a fault', () => {
    const { result, lapic, counters } = handle(ApicRegister.TimerCurrentCount, false);
    expect(result).toBe(0x5a);
    expect(lapic.calls).toEqual(['read 0x390']);
    expect(counters.nonZero()).toEqual({ unacceleratedAccessFaultExits: 1 });
  });

  it("a read exit is always a fault, even at a trap register's offset (KVM: only writes trap)", () => {
    const { result, lapic, counters } = handle(ApicRegister.LvtTimer, false);
    expect(result).toBe(0x5a);
    expect(lapic.calls).toEqual(['read 0x320']);
    expect(counters.nonZero()).toEqual({ unacceleratedAccessFaultExits: 1 });
  });

  it('a faulting write is emulated with its value (read-only or reserved register)', () => {
    const { lapic, counters } = handle(ApicRegister.Version, true, 7);
    expect(lapic.calls).toEqual(['fault-write 0x30 = 7']);
    expect(counters.nonZero()).toEqual({ unacceleratedAccessFaultExits: 1 });
  });

  it("a write inside a trap register's slot (EOI + 4) is a fault, not a trap", () => {
    const { lapic } = handle(ApicRegister.EndOfInterrupt + 4, true, 1);
    expect(lapic.calls).toEqual(['fault-write 0xb4 = 1']);
  });

  it('traces the offset and trap (1) or fault (0)', () => {
    const trap = new TraceEvents(handle(ApicRegister.LvtError, true).trace.take());
    const fault = new TraceEvents(handle(ApicRegister.TimerCurrentCount, false).trace.take());
    expect([trap.kind(0), trap.field(0, 0), trap.field(0, 1)]).toEqual([TraceEventKind.UnacceleratedAccessExit, ApicRegister.LvtError, 1]);
    expect([fault.kind(0), fault.field(0, 0), fault.field(0, 1)]).toEqual([
      TraceEventKind.UnacceleratedAccessExit,
      ApicRegister.TimerCurrentCount,
      0,
    ]);
  });
});
