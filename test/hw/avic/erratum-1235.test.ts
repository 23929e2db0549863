// The AMD erratum #1235 model in the IPI delivery driver (src/hw/avic/erratum-1235.ts): a sender
// that reads IsRunning = 0 less than the window after the owner cleared it acts on the stale 1
// (doorbell at the kept host id, no exit); an older clear, or the model off, gives the cause-1 exit.

import { describe, expect, it } from 'vitest';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { encodeInterruptCommand } from '../../../src/hw/apic/interrupt-command.js';
import { AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { AvicIpiOutcome, NO_EXIT, deliverAvicIpi } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { deliverX2avicIpi } from '../../../src/hw/avic/x2avic-ipi-delivery.js';
import { FakeAvicHardware } from './fake-avic-hardware.js';

const VECTOR = 0xa5;
const WINDOW_NS = 100_000;
/** The VM clock the fake hardware reads (ns); the tests move it. */
let nowNs = 0;

/** vCPU 0 sends, vCPU 1 was running on its host CPU and cleared IsRunning at `clearedAtNs` (its put / blocking). */
function setUp(erratum: boolean, clearedAtNs: number): FakeAvicHardware {
  const hardware = new FakeAvicHardware(2, 0x1ff);
  if (erratum) hardware.erratum1235 = { windowNs: WINDOW_NS, readClockNs: () => nowNs };
  hardware.addVcpu(0, { running: true });
  hardware.addVcpu(1, { running: true });
  hardware.physicalTable.setIsRunning(1, false, hardware.hostOf(1), clearedAtNs);
  return hardware;
}

function sendTo1(hardware: FakeAvicHardware, x2apic = false): AvicIpiOutcome {
  const outcome = new AvicIpiOutcome();
  const { low, high } = encodeInterruptCommand({ vector: VECTOR, destination: 1 });
  if (x2apic) deliverX2avicIpi(low, 1, apicId(0), hardware.pageBase(0), hardware, outcome);
  else deliverAvicIpi(low, high, apicId(0), hardware.pageBase(0), hardware, outcome);
  return outcome;
}

describe('erratum #1235 model: a recent IsRunning clear is missed by the sender', () => {
  it("erratum on, clear younger than the window: the IRR bit is set, the kept host id's doorbell rings, no exit", () => {
    nowNs = 5_000_000;
    const hardware = setUp(true, nowNs - WINDOW_NS + 1);
    const outcome = sendTo1(hardware);
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irr(1, VECTOR)).toBe(true);
    expect(hardware.doorbells).toEqual([hardware.hostOf(1)]);
    expect([outcome.doorbellsRung, outcome.notRunningTargets, outcome.staleIsRunningReads]).toEqual([1, 0, 1]);
  });

  it('the same through x2AVIC (the shared target walk)', () => {
    nowNs = 5_000_000;
    const hardware = setUp(true, nowNs);
    const outcome = sendTo1(hardware, true);
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.doorbells).toEqual([hardware.hostOf(1)]);
    expect(outcome.staleIsRunningReads).toBe(1);
  });

  it('erratum on, clear as old as the window: cause 1 (target not running), no doorbell', () => {
    nowNs = 5_000_000;
    const hardware = setUp(true, nowNs - WINDOW_NS);
    const outcome = sendTo1(hardware);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(outcome.exitIndex).toBe(1);
    expect(hardware.irr(1, VECTOR)).toBe(true);
    expect(hardware.doorbells).toEqual([]);
    expect(outcome.staleIsRunningReads).toBe(0);
  });

  it('erratum off: a clear stamped a moment ago still gives cause 1', () => {
    nowNs = 5_000_000;
    const hardware = setUp(false, nowNs);
    const outcome = sendTo1(hardware);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(hardware.doorbells).toEqual([]);
    expect(outcome.staleIsRunningReads).toBe(0);
  });

  it('a clear of a bit that was not set is no clear: nothing stale to see (IPI virtualization off never sets it)', () => {
    nowNs = 5_000_000;
    const hardware = new FakeAvicHardware(2);
    hardware.erratum1235 = { windowNs: WINDOW_NS, readClockNs: () => nowNs };
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(1);
    hardware.physicalTable.setIsRunning(1, false, hardware.hostOf(1), nowNs);
    const outcome = sendTo1(hardware);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(outcome.staleIsRunningReads).toBe(0);
  });

  it("an entry never cleared is not stale, even in the VM's first window", () => {
    nowNs = 10;
    const hardware = new FakeAvicHardware(2);
    hardware.erratum1235 = { windowNs: WINDOW_NS, readClockNs: () => nowNs };
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(1);
    expect(sendTo1(hardware).exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
  });
});
