// The ftrace text converter alone (src/kvm/report/ftrace-text.ts), on hand-made event lists: the
// lines `cat /sys/kernel/tracing/trace` prints for the same events on a KVM host (the kernel's
// context columns, TP_printk of each tracepoint with the kernel's own printf quirks), merged by
// time across vCPUs, and sched_switch paired per host CPU.
import { describe, expect, it } from 'vitest';
import { buildFtraceText, FTRACE_HEADER_LINES } from '../../../src/kvm/report/ftrace-text.js';
import {
  kvmAvicIncompleteIpi,
  kvmAvicKickVcpuSlowpath,
  kvmAvicUnacceleratedAccess,
  kvmExit,
} from '../../../src/kvm/report/ftrace-events.js';
import { TaskSwitchState, TraceEventKind, TraceRecorder } from '../../../src/kvm/report/trace-recorder.js';

/** A recorder whose clock is set before each record. */
function recorder(): { trace: TraceRecorder; at: (ns: number) => TraceRecorder } {
  let now = 0;
  const trace = new TraceRecorder(() => now);
  return {
    trace,
    at: (ns) => {
      now = ns;
      return trace;
    },
  };
}

const body = (lines: readonly string[]): string[] => lines.slice(FTRACE_HEADER_LINES);

describe('buildFtraceText', () => {
  it('two vCPUs on two host CPUs: one time-ordered stream of KVM tracepoints and sched_switch lines', () => {
    const v0 = recorder();
    v0.at(1000).vcpuLoad(0);
    v0.at(2000).record(TraceEventKind.GuestEntry, 0x1000);
    v0.at(5000).record(TraceEventKind.VmExit, 0x401, 0x1010, 0x40f1, 0x0100_0000, 1, 1);
    v0.at(6000).record(TraceEventKind.AvicIncompleteIpi, 0x0100_0000, 0x40f1, 1, 1);
    v0.at(7000).record(TraceEventKind.VcpuWaking, 1, 1);
    v0.at(8000).record(TraceEventKind.GuestEntry, 0x1010);
    v0.at(8500).record(TraceEventKind.AvicDoorbell, 1, 1);
    const v1 = recorder();
    v1.at(1500).vcpuLoad(1);
    v1.at(2500).record(TraceEventKind.GuestEntry, 0x2000);
    v1.at(3000).record(TraceEventKind.VmExit, 0x78, 0x2004);
    v1.at(3100).record(TraceEventKind.HaltBegin);
    v1.at(3500).vcpuPut(TaskSwitchState.Sleeping);
    v1.at(7500).vcpuLoad(1);
    v1.at(7600).record(TraceEventKind.HaltEnd, 1);
    v1.at(7700).record(TraceEventKind.GuestEntry, 0x2004);
    v1.at(9000).record(TraceEventKind.VmExit, 0x402, 0x2010, 0xb0, 1, 0, 0);
    v1.at(9100).record(TraceEventKind.UnacceleratedAccessExit, 0xb0, 1, 1, 0);
    // Neither an emulated MMIO access nor the hardware's own IPI work has a KVM tracepoint.
    v1.at(9300).record(TraceEventKind.UnacceleratedAccessExit, 0x80, 2, 1, 0);
    v1.at(9400).record(TraceEventKind.IpiSent, 0x40f1, 0);

    const text = buildFtraceText([
      { vcpu: 0, events: v0.trace.take(), dropped: 0 },
      { vcpu: 1, events: v1.trace.take(), dropped: 0 },
    ]);

    expect(body(text.lines)).toEqual([
      '          <idle>-0       [000] .....     0.000001: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 0/KVM next_pid=1000 next_prio=120',
      '          <idle>-0       [001] .....     0.000002: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 1/KVM next_pid=1001 next_prio=120',
      '       CPU 0/KVM-1000    [000] .....     0.000002: kvm_entry: vcpu 0, rip 0x1000',
      '       CPU 1/KVM-1001    [001] .....     0.000003: kvm_entry: vcpu 1, rip 0x2000',
      '       CPU 1/KVM-1001    [001] .....     0.000003: kvm_exit: vcpu 1 reason hlt rip 0x2004 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000',
      '       CPU 1/KVM-1001    [001] .....     0.000004: sched_switch: prev_comm=CPU 1/KVM prev_pid=1001 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120',
      '       CPU 0/KVM-1000    [000] .....     0.000005: kvm_exit: vcpu 0 reason avic_incomplete_ipi rip 0x1010 info1 0x01000000000040f1 info2 0x0000000100000001 intr_info 0x00000000 error_code 0x00000000',
      '       CPU 0/KVM-1000    [000] .....     0.000006: kvm_avic_incomplete_ipi: vcpu=0, icrh:icrl=0x01000000:000040f1, id=1, index=1',
      '       CPU 0/KVM-1000    [000] .....     0.000007: sched_waking: comm=CPU 1/KVM pid=1001 prio=120 target_cpu=001',
      '          <idle>-0       [001] .....     0.000008: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 1/KVM next_pid=1001 next_prio=120',
      '       CPU 1/KVM-1001    [001] .....     0.000008: kvm_vcpu_wakeup: wait time 4500 ns, polling valid',
      '       CPU 1/KVM-1001    [001] .....     0.000008: kvm_entry: vcpu 1, rip 0x2004',
      '       CPU 0/KVM-1000    [000] .....     0.000008: kvm_entry: vcpu 0, rip 0x1010',
      '       CPU 0/KVM-1000    [000] .....     0.000009: kvm_avic_doorbell: vcpuid=1, apicid=1',
      '       CPU 1/KVM-1001    [001] .....     0.000009: kvm_exit: vcpu 1 reason avic_unaccelerated_access rip 0x2010 info1 0x00000001000000b0 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000',
      '       CPU 1/KVM-1001    [001] .....     0.000009: kvm_avic_unaccelerated_access: vcpu=1, offset=0xb0(APIC_EOI), trap, write, vec=0x0',
    ]);
    expect(text.entries).toBe(16);
  });

  it("the header is the nop tracer's, with the line count, the events the buffers could not hold and the host CPUs", () => {
    const v0 = recorder();
    v0.at(1000).vcpuLoad(2);
    const text = buildFtraceText([{ vcpu: 0, events: v0.trace.take(), dropped: 5 }]);
    expect(text.lines.slice(0, FTRACE_HEADER_LINES)).toEqual([
      '# tracer: nop',
      '#',
      '# entries-in-buffer/entries-written: 1/6   #P:3',
      '#',
      '#                                _-----=> irqs-off/BH-disabled',
      '#                               / _----=> need-resched',
      '#                              | / _---=> hardirq/softirq',
      '#                              || / _--=> preempt-depth',
      '#                              ||| / _-=> migrate-disable',
      '#                              |||| /     delay',
      '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
      '#              | |         |   |||||     |         |',
    ]);
  });

  it('a halt that polled and never slept is "poll" (kvm_vcpu_halt\'s waited is false)', () => {
    const v0 = recorder();
    v0.at(1000).vcpuLoad(0);
    v0.at(2000).record(TraceEventKind.HaltBegin);
    v0.at(2_001_499).record(TraceEventKind.HaltEnd, 0);
    expect(body(buildFtraceText([{ vcpu: 0, events: v0.trace.take(), dropped: 0 }]).lines)[1]).toBe(
      '       CPU 0/KVM-1000    [000] .....     0.002001: kvm_vcpu_wakeup: poll time 1999499 ns, polling valid',
    );
  });

  describe('sched_switch per host CPU', () => {
    it("a put followed at once by another vCPU's load on the same CPU is one switch between the two tasks; a longer gap goes through idle", () => {
      const v0 = recorder();
      v0.at(1000).vcpuLoad(0);
      v0.at(50_000).vcpuPut(TaskSwitchState.Preempted);
      v0.at(200_000).vcpuLoad(0);
      const v1 = recorder();
      v1.at(55_000).vcpuLoad(0);
      v1.at(100_000).vcpuPut(TaskSwitchState.Sleeping);
      expect(
        body(
          buildFtraceText([
            { vcpu: 0, events: v0.trace.take(), dropped: 0 },
            { vcpu: 1, events: v1.trace.take(), dropped: 0 },
          ]).lines,
        ),
      ).toEqual([
        '          <idle>-0       [000] .....     0.000001: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 0/KVM next_pid=1000 next_prio=120',
        '       CPU 0/KVM-1000    [000] .....     0.000055: sched_switch: prev_comm=CPU 0/KVM prev_pid=1000 prev_prio=120 prev_state=R+ ==> next_comm=CPU 1/KVM next_pid=1001 next_prio=120',
        '       CPU 1/KVM-1001    [000] .....     0.000100: sched_switch: prev_comm=CPU 1/KVM prev_pid=1001 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120',
        '          <idle>-0       [000] .....     0.000200: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 0/KVM next_pid=1000 next_prio=120',
      ]);
    });

    it('a put task that is loaded elsewhere before the next load on its CPU is switched to idle there (never on two CPUs at once)', () => {
      const v0 = recorder();
      v0.at(1000).vcpuLoad(0);
      v0.at(10_000).vcpuPut(TaskSwitchState.Preempted);
      v0.at(12_000).vcpuLoad(1);
      const v1 = recorder();
      v1.at(15_000).vcpuLoad(0);
      expect(
        body(
          buildFtraceText([
            { vcpu: 0, events: v0.trace.take(), dropped: 0 },
            { vcpu: 1, events: v1.trace.take(), dropped: 0 },
          ]).lines,
        ),
      ).toEqual([
        '          <idle>-0       [000] .....     0.000001: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 0/KVM next_pid=1000 next_prio=120',
        '       CPU 0/KVM-1000    [000] .....     0.000010: sched_switch: prev_comm=CPU 0/KVM prev_pid=1000 prev_prio=120 prev_state=R+ ==> next_comm=swapper/0 next_pid=0 next_prio=120',
        '          <idle>-0       [001] .....     0.000012: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 0/KVM next_pid=1000 next_prio=120',
        '          <idle>-0       [000] .....     0.000015: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 1/KVM next_pid=1001 next_prio=120',
      ]);
    });
  });
});

describe("tracepoint text (TP_printk with the kernel's vsnprintf: %#x always has its 0x, and the width counts it)", () => {
  it('kvm_avic_incomplete_ipi: %#010x of a zero ICR high is 0x00000000', () => {
    expect(kvmAvicIncompleteIpi(3, 0, 0x0008_40fd, 0, 255)).toBe('vcpu=3, icrh:icrl=0x00000000:000840fd, id=0, index=255');
  });

  it('kvm_avic_kick_vcpu_slowpath: %#08x leaves six digits after 0x, and grows for more', () => {
    expect(kvmAvicKickVcpuSlowpath(0, 0x000c_40fd, 0)).toBe('icrh:icrl=0x000000:000c40fd, index=0');
    expect(kvmAvicKickVcpuSlowpath(0xff00_0000, 0x40fd, 255)).toBe('icrh:icrl=0xff000000:000040fd, index=255');
  });

  it("kvm_avic_unaccelerated_access: the register's APIC_ name, or its offset again when KVM has none", () => {
    expect(kvmAvicUnacceleratedAccess(0, 0x310, false, true, 0)).toBe('vcpu=0, offset=0x310(APIC_ICR2), fault, write, vec=0x0');
    expect(kvmAvicUnacceleratedAccess(1, 0x3a0, false, false, 0x30)).toBe('vcpu=1, offset=0x3a0(0x3a0), fault, read, vec=0x30');
  });

  it('kvm_exit: an exit code without a name in SVM_EXIT_REASONS prints as hex', () => {
    expect(kvmExit(0, 0x7f, 0x10, 0, 0, 0, 0)).toBe(
      'vcpu 0 reason shutdown rip 0x10 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000',
    );
    expect(kvmExit(0, 0x500, 0x10, 0, 0, 0, 0)).toMatch(/^vcpu 0 reason 0x500 rip /);
  });
});
