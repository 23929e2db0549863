// The halt and block decisions (src/kvm/vcpu/vcpu-sleep.ts) alone, without threads: the halt-poll
// window's policy, and what halt(), block() and park() do in order when the event is already there
// (nothing here waits: those races are the SMP tests' business).
import { describe, expect, it } from 'vitest';
import {
  HALT_POLL_MAX_NS,
  HALT_POLL_START_NS,
  HaltOutcome,
  HaltPollWindow,
  ParkOutcome,
  VcpuSleep,
  type LoadedHostCpu,
  type VcpuSleepHost,
} from '../../../src/kvm/vcpu/vcpu-sleep.js';
import { TaskState } from '../../../src/host/run-queue.js';
import { VcpuRequest, VcpuRunState, VcpuWaitReason } from '../../../src/kvm/control/vcpu-run-state.js';
import { createdViews, controlWord, FakeCounters } from '../vcpu-parts.js';

describe("HaltPollWindow (kvm_vcpu_halt's grow and shrink)", () => {
  it('polls only when enabled and while nothing else is runnable on the host CPU (single_task_running)', () => {
    expect(new HaltPollWindow(true).shouldPoll(true)).toBe(true);
    expect(new HaltPollWindow(true).shouldPoll(false)).toBe(false);
    expect(new HaltPollWindow(false).shouldPoll(true)).toBe(false);
  });

  it('a halt within the window leaves it; a longer one below the maximum doubles it; one above the maximum halves it', () => {
    const window = new HaltPollWindow(true);
    expect(window.ns).toBe(HALT_POLL_START_NS);
    window.adapt(HALT_POLL_START_NS / 2);
    expect(window.ns).toBe(HALT_POLL_START_NS);
    window.adapt(HALT_POLL_START_NS + 1);
    expect(window.ns).toBe(2 * HALT_POLL_START_NS);
    for (let i = 0; i < 10; i++) window.adapt(HALT_POLL_MAX_NS - 1);
    expect(window.ns).toBe(HALT_POLL_MAX_NS);
    window.adapt(HALT_POLL_MAX_NS + 1);
    expect(window.ns).toBe(HALT_POLL_MAX_NS / 2);
  });

  it('disabled, it never changes', () => {
    const window = new HaltPollWindow(false);
    window.adapt(HALT_POLL_START_NS * 3);
    expect(window.ns).toBe(HALT_POLL_START_NS);
  });
});

/** Records every call the sleeping paths make on their host, in order. */
function setUp(options: { haltPolling?: boolean; events?: () => boolean; canTakeInterrupt?: boolean } = {}) {
  const views = createdViews(1);
  Atomics.store(views.control, views.headerIndex('hostCpus'), 1);
  views.runQueues.setState(0, TaskState.Running);
  const calls: string[] = [];
  const counters = new FakeCounters();
  let held = true;
  const host: VcpuSleepHost = {
    views,
    index: 0,
    haltPolling: options.haltPolling ?? false,
    trace: undefined,
    counters,
    srcu: {
      readLock: (site) => {
        held = true;
        calls.push(`srcu lock: ${site}`);
      },
      readUnlock: () => {
        held = false;
        calls.push('srcu unlock');
      },
      get held() {
        return held;
      },
    },
    timer: { poll: () => false },
    events: { hasEvents: () => (options.events ?? (() => true))(), canTakeInterrupt: () => options.canTakeInterrupt ?? true },
    avic: {
      blocking: () => calls.push('avic blocking'),
      unblocking: () => calls.push('avic unblocking'),
      put: () => calls.push('avic put'),
    },
  };
  const loaded: LoadedHostCpu = { cpu: views.hostCpus.own(0), singleTaskRunning: () => true };
  return { views, calls, counters, sleep: new VcpuSleep(host), loaded };
}

describe('VcpuSleep', () => {
  it('halt with an event already pending returns at once: still halted unless it can be taken', () => {
    const taken = setUp({ canTakeInterrupt: true });
    expect(taken.sleep.halt(taken.loaded)).toBe(HaltOutcome.Running);
    const masked = setUp({ canTakeInterrupt: false });
    expect(masked.sleep.halt(masked.loaded)).toBe(HaltOutcome.Halted);
    expect([...taken.calls, ...masked.calls]).toEqual([]);
  });

  it('halt-polling that finds the event: no block, SRCU dropped around the poll, counted', () => {
    let checks = 0;
    const { calls, counters, sleep, loaded } = setUp({ haltPolling: true, events: () => ++checks > 1 });
    expect(sleep.halt(loaded)).toBe(HaltOutcome.Running);
    expect(calls).toEqual(['srcu unlock', 'srcu lock: kvm_vcpu_halt: srcu_read_lock after polling']);
    expect(counters.nonZero()).toEqual({ haltPollSuccesses: 1 });
  });

  it('block with no event: IsRunning cleared before Blocked is published, then the task commits Blocked', () => {
    const { views, calls, counters, sleep } = setUp({ events: () => false });
    expect(sleep.block(VcpuWaitReason.Halted)).toBe(true);
    expect(calls).toEqual(['avic blocking']);
    expect(counters.nonZero()).toEqual({ blocks: 1 });
    expect(controlWord(views, 0, 'runState')).toBe(VcpuRunState.Blocked);
    expect(views.runQueues.state(0)).toBe(TaskState.Blocked);
  });

  it('block that finds an event in its re-check: back to Running, avic load last, the task still running', () => {
    const { views, calls, sleep } = setUp({ events: () => true });
    expect(sleep.block(VcpuWaitReason.Halted)).toBe(false);
    expect(calls).toEqual(['avic blocking', 'avic unblocking']);
    expect(controlWord(views, 0, 'runState')).toBe(VcpuRunState.Running);
    expect(controlWord(views, 0, 'waitReason')).toBe(VcpuWaitReason.None);
    expect(views.runQueues.state(0)).toBe(TaskState.Running);
  });

  it('park with Stop already requested: put, out of SRCU, Paused published, then told to stop', () => {
    const { views, calls, sleep } = setUp();
    views.addRequest(0, VcpuRequest.Pause | VcpuRequest.Stop);
    expect(sleep.park()).toBe(ParkOutcome.Stop);
    expect(calls).toEqual(['avic put', 'srcu unlock']);
    expect(controlWord(views, 0, 'runState')).toBe(VcpuRunState.Paused);
  });

  it('park for a pause: acknowledged and blocked (put, off the run queue)', () => {
    const { views, sleep } = setUp();
    views.addRequest(0, VcpuRequest.Pause | VcpuRequest.PauseAcknowledge);
    expect(sleep.park()).toBe(ParkOutcome.Paused);
    expect(controlWord(views, 0, 'requests') & VcpuRequest.PauseAcknowledge).toBe(0);
    expect(views.runQueues.state(0)).toBe(TaskState.Blocked);
  });

  it('park for a pause already lifted (resume came first) returns to Running with IsRunning set again', () => {
    const { views, calls, sleep } = setUp();
    expect(sleep.park()).toBe(ParkOutcome.Running);
    expect(calls.at(-1)).toBe('srcu lock: vcpu_run: srcu_read_lock after a pause');
    expect(calls).toContain('avic unblocking');
    expect(controlWord(views, 0, 'runState')).toBe(VcpuRunState.Running);
  });
});
