// avic_incomplete_ipi_interception (src/kvm/svm/avic-incomplete-ipi.ts) alone, per cause: what it
// emulates, whom it kicks, what it counts; and the account of what the hardware delivered.
import { describe, expect, it } from 'vitest';
import { AvicExitInfo, AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { AvicIpiOutcome, NO_EXIT } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { VcpuRunState } from '../../../src/kvm/control/vcpu-run-state.js';
import { TraceEventKind, TraceEvents, TraceRecorder } from '../../../src/kvm/report/trace-recorder.js';
import { accountAvicIpi, avicIncompleteIpiInterception, type IncompleteIpiHost } from '../../../src/kvm/svm/avic-incomplete-ipi.js';
import { createdViews, FakeCounters } from '../vcpu-parts.js';

const ICR_LOW = 0x000c4050;
const ICR_HIGH = 0x02000000;

class FakeLapic {
  targets: number[] = [0, 1, 2];
  readonly emulated: [number, number][] = [];
  readonly collected: [number, number][] = [];
  collectTargets(icrLow: number, icrHigh: number): readonly number[] {
    this.collected.push([icrLow, icrHigh]);
    return this.targets;
  }
  emulateIcrClearingBusy(icrLow: number, icrHigh: number): void {
    this.emulated.push([icrLow, icrHigh]);
  }
}

function setUp(cause: AvicIncompleteIpiCause): {
  exit: AvicExitInfo;
  host: IncompleteIpiHost;
  lapic: FakeLapic;
  counters: FakeCounters;
  kicked: number[];
} {
  const exit = new AvicExitInfo();
  exit.setIncompleteIpi(ICR_LOW, ICR_HIGH, cause, 2);
  const lapic = new FakeLapic();
  const counters = new FakeCounters();
  const kicked: number[] = [];
  const host: IncompleteIpiHost = {
    index: 0,
    counters,
    lapic,
    views: {
      kick: (vcpu, request) => {
        expect(request).toBe(0);
        kicked.push(vcpu);
      },
    },
  };
  return { exit, host, lapic, counters, kicked };
}

describe('avic_incomplete_ipi_interception', () => {
  it('cause 1 (target not running): kicks every named vCPU but the sender, emulates nothing', () => {
    const { exit, host, lapic, counters, kicked } = setUp(AvicIncompleteIpiCause.TargetNotRunning);
    avicIncompleteIpiInterception(exit, host);
    expect(lapic.collected).toEqual([[ICR_LOW, ICR_HIGH]]);
    expect(kicked).toEqual([1, 2]);
    expect(lapic.emulated).toEqual([]);
    expect(counters.nonZero()).toEqual({ 'incompleteIpiExits[1]': 1, kicksSent: 2 });
  });

  it.each([AvicIncompleteIpiCause.InvalidInterruptType, AvicIncompleteIpiCause.InvalidTarget, AvicIncompleteIpiCause.InvalidIpiVector])(
    'cause %i: the whole IPI goes to the software path with the ICR from EXITINFO1, nobody kicked here',
    (cause) => {
      const { exit, host, lapic, counters, kicked } = setUp(cause);
      avicIncompleteIpiInterception(exit, host);
      expect(lapic.emulated).toEqual([[ICR_LOW, ICR_HIGH]]);
      expect(kicked).toEqual([]);
      expect(counters.nonZero()).toEqual({ [`incompleteIpiExits[${cause}]`]: 1 });
    },
  );

  it('a negative ICR half (bit 31 set) reaches the software path as the guest wrote it', () => {
    const { exit, host, lapic } = setUp(AvicIncompleteIpiCause.InvalidTarget);
    exit.setIncompleteIpi(ICR_LOW, 0xff000000, AvicIncompleteIpiCause.InvalidTarget, 0);
    avicIncompleteIpiInterception(exit, host);
    expect(lapic.emulated).toEqual([[ICR_LOW, 0xff000000 | 0]]);
  });

  it('cause 3 (invalid backing page): KVM warns; the IPI is counted sent and dropped, nothing else', () => {
    const { exit, host, lapic, counters, kicked } = setUp(AvicIncompleteIpiCause.InvalidBackingPage);
    avicIncompleteIpiInterception(exit, host);
    expect([lapic.emulated, kicked]).toEqual([[], []]);
    expect(counters.nonZero()).toEqual({ 'incompleteIpiExits[3]': 1, ipiCommands: 1, ipisSent: 1, ipisDroppedInvalidTarget: 1 });
  });
});

describe('avic_incomplete_ipi_interception traces what KVM traces', () => {
  it("cause 1 with a shorthand: kvm_avic_incomplete_ipi from the exit info, the kick slow path, and the blocked target's wake-up", () => {
    const { exit, host } = setUp(AvicIncompleteIpiCause.TargetNotRunning);
    const views = createdViews(3);
    Atomics.store(views.control, views.controlBlockIndex(2, 'runState'), VcpuRunState.Blocked);
    const trace = new TraceRecorder(() => 0, views);
    avicIncompleteIpiInterception(exit, { ...host, trace });
    const events = new TraceEvents(trace.take());
    const recorded = Array.from({ length: events.count }, (_, index) => [
      events.kind(index),
      ...[0, 1, 2, 3].map((field) => events.field(index, field)),
    ]);
    expect(recorded).toEqual([
      [TraceEventKind.AvicIncompleteIpi, ICR_HIGH, ICR_LOW, AvicIncompleteIpiCause.TargetNotRunning, 2],
      [TraceEventKind.AvicKickSlowPath, ICR_HIGH, ICR_LOW, 2, 0],
      [TraceEventKind.VcpuWaking, 2, 2, 0, 0],
    ]);
  });
});

describe('accountAvicIpi', () => {
  function outcome(exit: number): AvicIpiOutcome {
    const ipi = new AvicIpiOutcome();
    Object.assign(ipi, { exit, targets: 3, accepted: 2, coalesced: 1, doorbellsRung: 2 });
    return ipi;
  }

  it.each([NO_EXIT, AvicIncompleteIpiCause.TargetNotRunning])('exit %i: the hardware delivered, so its messages are counted', (exit) => {
    const counters = new FakeCounters();
    accountAvicIpi(outcome(exit), ICR_LOW, 2, counters, undefined);
    expect(counters.nonZero()).toEqual({ doorbellsRung: 2, ipiCommands: 1, ipisSent: 3, ipisAccepted: 2, ipisCoalesced: 1 });
  });

  it.each([AvicIncompleteIpiCause.InvalidInterruptType, AvicIncompleteIpiCause.InvalidTarget, AvicIncompleteIpiCause.InvalidBackingPage])(
    'cause %i: only the doorbells (the handler or the software path counts the messages)',
    (exit) => {
      const counters = new FakeCounters();
      accountAvicIpi(outcome(exit), ICR_LOW, 2, counters, undefined);
      expect(counters.nonZero()).toEqual({ doorbellsRung: 2 });
    },
  );
});
