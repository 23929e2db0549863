// The trace recorder alone (src/kvm/report/trace-recorder.ts): the host CPU stamped on each record,
// load/put pairing, and the KVM delivery paths' tracepoints it decides from the targets' control
// words (svm_complete_interrupt_delivery), over real control views.
import { describe, expect, it } from 'vitest';
import { VcpuMode, VcpuRunState } from '../../../src/kvm/control/vcpu-run-state.js';
import type { VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { TaskSwitchState, TraceEventKind, TraceEvents, TraceRecorder } from '../../../src/kvm/report/trace-recorder.js';
import { createdViews } from '../vcpu-parts.js';

/** Each record as [kind, cpu, a, b, c]. */
function records(trace: TraceRecorder): number[][] {
  const events = new TraceEvents(trace.take());
  return Array.from({ length: events.count }, (_, index) => [
    events.kind(index),
    events.cpu(index),
    events.field(index, 0),
    events.field(index, 1),
    events.field(index, 2),
  ]);
}

function setWord(views: VmControlViews, vcpu: number, field: 'mode' | 'runState' | 'apicMode' | 'hostThreadSlot', value: number): void {
  Atomics.store(views.control, views.controlBlockIndex(vcpu, field), value);
}

describe('TraceRecorder', () => {
  it('stamps the host CPU of the last load on every record; a second load or put in a row records nothing', () => {
    const trace = new TraceRecorder(() => 0);
    trace.vcpuLoad(3);
    trace.vcpuLoad(3);
    trace.record(TraceEventKind.GuestEntry, 0x1000);
    trace.vcpuPut(TaskSwitchState.Sleeping);
    trace.vcpuPut(TaskSwitchState.Sleeping);
    trace.vcpuLoad(1);
    trace.record(TraceEventKind.GuestEntry, 0x1004);
    expect(records(trace)).toEqual([
      [TraceEventKind.VcpuLoad, 3, 0, 0, 0],
      [TraceEventKind.GuestEntry, 3, 0x1000, 0, 0],
      [TraceEventKind.VcpuPut, 3, TaskSwitchState.Sleeping, 0, 0],
      [TraceEventKind.VcpuLoad, 1, 0, 0, 0],
      [TraceEventKind.GuestEntry, 1, 0x1004, 0, 0],
    ]);
  });

  it('keeps 32-bit values whole (an ICR high of 0xffffffff)', () => {
    const trace = new TraceRecorder(() => 0);
    trace.record(TraceEventKind.VmExit, 0x401, 0x10, 0x000c_40fd, 0xffff_ffff, 0, 1);
    const events = new TraceEvents(trace.take());
    expect([0, 1, 2, 3, 4, 5].map((field) => events.field(0, field))).toEqual([0x401, 0x10, 0x000c_40fd, 0xffff_ffff, 0, 1]);
  });

  describe('interruptDelivery (svm_complete_interrupt_delivery)', () => {
    it("a target in guest mode on another host CPU: kvm_avic_doorbell with that CPU's id", () => {
      const views = createdViews(3);
      const trace = new TraceRecorder(() => 0, views);
      trace.vcpuLoad(0);
      setWord(views, 2, 'mode', VcpuMode.InGuestMode);
      trace.interruptDelivery(2);
      expect(records(trace).slice(1)).toEqual([[TraceEventKind.AvicDoorbell, 0, 2, 2, 0]]);
    });

    it('with AVIC inhibited, a target in guest mode is kicked, not rung: nothing traced', () => {
      const views = createdViews(2);
      Atomics.store(views.control, views.headerIndex('apicvInhibitReasons'), 1);
      const trace = new TraceRecorder(() => 0, views);
      setWord(views, 1, 'mode', VcpuMode.InGuestMode);
      trace.interruptDelivery(1);
      expect(records(trace)).toEqual([]);
    });

    it('a blocked target is woken: sched_waking with the host CPU it is loaded on', () => {
      const views = createdViews(2);
      const trace = new TraceRecorder(() => 0, views);
      setWord(views, 1, 'runState', VcpuRunState.Blocked);
      setWord(views, 1, 'hostThreadSlot', 5);
      trace.interruptDelivery(1);
      expect(records(trace)).toEqual([[TraceEventKind.VcpuWaking, 0, 1, 5, 0]]);
    });

    it('a running target outside guest mode needs neither (it sees the IRR at its next entry)', () => {
      const views = createdViews(2);
      const trace = new TraceRecorder(() => 0, views);
      trace.interruptDelivery(1);
      expect(records(trace)).toEqual([]);
    });
  });
});
