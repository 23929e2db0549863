// The halt and block decisions (src/kvm/vcpu/vcpu-sleep.ts) alone, without threads: the halt-poll
// window's policy, and what halt(), block() and park() do in order when the event is already there
// (no test here waits for a ring: those races are the SMP tests' business).
import { describe, expect, it } from 'vitest';
import { HALT_POLL_MAX_NS, HALT_POLL_START_NS, HaltPollWindow, VcpuSleep, type VcpuSleepHost } from '../../../src/kvm/vcpu/vcpu-sleep.js';
import { VcpuRequest, VcpuRunState, VcpuWaitReason } from '../../../src/kvm/control/vcpu-run-state.js';
import { createdViews, controlWord, FakeCounters } from '../vcpu-parts.js';

describe('HaltPollWindow (kvm_vcpu_halt\'s grow and shrink)', () => {
  it('polls only when enabled and while runnable vCPUs fit the host cores', () => {
    expect(new HaltPollWindow(true, 2).shouldPoll(2)).toBe(true);
    expect(new HaltPollWindow(true, 2).shouldPoll(3)).toBe(false);
    expect(new HaltPollWindow(false, 2).shouldPoll(1)).toBe(false);
  });

  it('a halt within the window leaves it; a longer one below the maximum doubles it; one above the maximum halves it', () => {
    const window = new HaltPollWindow(true, 2);
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
    const window = new HaltPollWindow(false, 2);
    window.adapt(HALT_POLL_START_NS * 3);
    expect(window.ns).toBe(HALT_POLL_START_NS);
  });
});

/** Records every call the sleeping paths make on their host, in order. */
function setUp(options: { haltPolling?: boolean; events?: () => boolean; canTakeInterrupt?: boolean } = {}) {
  const views = createdViews(1);
  const calls: string[] = [];
  const counters = new FakeCounters();
  let eventChecks = 0;
  const host: VcpuSleepHost = {
    views, index: 0, haltPolling: options.haltPolling ?? false, hostCores: 2, trace: undefined, counters,
    srcu: { readLock: (site) => calls.push(`srcu lock: ${site}`), readUnlock: () => calls.push('srcu unlock'), assertNotReader: () => calls.push('assert not reader') },
    timer: { poll: () => false, remainingNs: () => Infinity },
    events: {
      hasEvents: () => { eventChecks++; return (options.events ?? (() => true))(); },
      canTakeInterrupt: () => options.canTakeInterrupt ?? true,
    },
    avic: { blocking: () => calls.push('avic blocking'), unblocking: () => calls.push('avic unblocking'), put: () => calls.push('avic put') },
  };
  const hostCpu = views.doorbellLines.claim(0);
  return { views, calls, counters, sleep: new VcpuSleep(host), hostCpu, eventChecks: () => eventChecks };
}

describe('VcpuSleep', () => {
  it('halt with an event already pending returns at once: still halted unless it can be taken', () => {
    const taken = setUp({ canTakeInterrupt: true });
    expect(taken.sleep.halt(taken.hostCpu)).toBe(false);
    const masked = setUp({ canTakeInterrupt: false });
    expect(masked.sleep.halt(masked.hostCpu)).toBe(true);
    expect([...taken.calls, ...masked.calls]).toEqual([]);
  });

  it('halt-polling that finds the event: no block, SRCU dropped around the poll, counted', () => {
    let checks = 0;
    const { calls, counters, sleep, hostCpu } = setUp({ haltPolling: true, events: () => ++checks > 1 });
    expect(sleep.halt(hostCpu)).toBe(false);
    expect(calls).toEqual(['srcu unlock', 'srcu lock: kvm_vcpu_halt: srcu_read_lock after polling']);
    expect(counters.nonZero()).toEqual({ haltPollSuccesses: 1 });
  });

  it('block: IsRunning cleared before Blocked is published and SRCU dropped; back: Running, then avic load last', () => {
    const { views, calls, counters, sleep, hostCpu } = setUp();
    sleep.block(VcpuWaitReason.Halted, hostCpu);
    expect(calls).toEqual(['avic blocking', 'srcu unlock', 'assert not reader', 'srcu lock: vcpu_block: srcu_read_lock after waking', 'avic unblocking']);
    expect(counters.nonZero()).toEqual({ blocks: 1 });
    expect(controlWord(views, 0, 'runState')).toBe(VcpuRunState.Running);
    expect(controlWord(views, 0, 'waitReason')).toBe(VcpuWaitReason.None);
  });

  it('park with Stop already requested: put, out of SRCU, Paused published, then told to stop', () => {
    const { views, calls, sleep, hostCpu } = setUp();
    views.addRequest(0, VcpuRequest.Pause | VcpuRequest.Stop);
    expect(sleep.park(hostCpu)).toBe(true);
    expect(calls).toEqual(['avic put', 'srcu unlock', 'srcu lock: vcpu_run: srcu_read_lock after a pause']);
    expect(controlWord(views, 0, 'runState')).toBe(VcpuRunState.Paused);
  });

  it('park for a pause already lifted (resume came first) returns to Running with IsRunning set again', () => {
    const { views, calls, sleep, hostCpu } = setUp();
    expect(sleep.park(hostCpu)).toBe(false);
    expect(calls.at(-1)).toBe('avic unblocking');
    expect(controlWord(views, 0, 'runState')).toBe(VcpuRunState.Running);
  });
});
