// The same replays with the validator off (issue 4 items 3 and 5): nothing backs out, the threads
// really deadlock, and the main thread's watchdog names the stuck vCPU, prints the wait-for graph
// with its cycle, and tears the run down within its bound.
//
// Each run waits out both of its bounds: the watchdog's (a vCPU judged only once it slept that long
// on a cycle of waits, which cannot happen without a deadlock) and the stop's (the deadlocked
// threads never stop; the others stop within milliseconds, and one that did not would only be
// listed as stuck too). Half a second each says the same as a second each.
import { describe, expect, it } from 'vitest';
import { normalizeReport, type ReplayBounds, runReplay } from './lock-replays-support.js';

const BOUNDS: ReplayBounds = { watchdogSeconds: 0.5, stopTimeoutSeconds: 0.5 };

const CASES: readonly { name: string; cycle: string[]; waits: string[] }[] = [
  {
    name: 'abba',
    cycle: ['kvm->slots_arch_lock', 'kvm->irq_lock', 'kvm->slots_arch_lock'],
    waits: [
      'vCPU 0/worker N waits (T ms) for lock kvm->slots_arch_lock, held by vCPU 1/worker N',
      'vCPU 1/worker N waits (T ms) for lock kvm->irq_lock, held by vCPU 0/worker N',
    ],
  },
  {
    name: 's4',
    cycle: ['kvm->lock', 'kvm->srcu', 'kvm->lock'],
    waits: [
      'vCPU 0/worker N waits (T ms) for lock kvm->lock, held by main/KVM_SET_MSR_FILTER',
      'main/KVM_SET_MSR_FILTER waits (T ms) for a grace period of kvm->srcu, held by vCPU 0/worker N',
    ],
  },
  {
    name: 's5',
    cycle: ['cpu_hotplug_lock', 'kvm_lock', 'kvm->slots_lock', 'kvm->srcu', 'cpu_hotplug_lock'],
    waits: [
      'vCPU 0/worker N waits (T ms) for read lock cpu_hotplug_lock, held by main/kvmclock_cpufreq_notifier',
      'main/set_nx_huge_pages waits (T ms) for lock kvm->slots_lock, held by main/KVM_SET_USER_MEMORY_REGION',
    ],
  },
  {
    name: 'rfc-v2-hot-add',
    cycle: ['kvm->slots_lock', 'vcpu->mutex', 'kvm->slots_lock'],
    waits: [
      'vCPU 0/worker N waits (T ms) for lock kvm->slots_lock, held by main/KVM_CREATE_VCPU 2',
      'main/KVM_CREATE_VCPU 2 waits (T ms) for lock vcpu0->mutex (vcpu->mutex), held by vCPU 0/worker N',
    ],
  },
];

describe('lock replays without the validator: a real deadlock, caught by the watchdog', () => {
  it.each(CASES)('$name: verdict deadlock, the wait-for cycle $cycle, torn down within the bound', async ({ name, cycle, waits }) => {
    const started = performance.now();
    const outcome = await runReplay(name, false, BOUNDS);
    // watchdog 0.5 s + stop 0.5 s + worker start-up and teardown, far below the hang's own 20 s bound
    // (generous: a loaded 2-core host stretches start-up and teardown).
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(outcome.verdict, outcome.report).toBe('deadlock');
    expect(outcome.cycle).toEqual(cycle);
    expect(outcome.problems).toEqual([]);
    expect(outcome.vmReport?.exit.reason).toBe('watchdog');
    expect(outcome.vmReport?.ok).toBe(false);
    expect(outcome.vmReport?.lockdep).toEqual({ enabled: false });
    const text = normalizeReport(outcome.report);
    expect(text).toMatch(/vCPU \d made no progress for T s/);
    // The watchdog names what the stuck vCPU waits for and what it holds (its KVM_RUN mutex at least),
    // from the locks' own words: the validator is off.
    expect(text).toMatch(
      /made no progress for T s \(vCPU \d is running, waiting for: (lock|read lock|write lock|a grace period of) [^;]+; holds: [^;]*vcpu\d->mutex \(vcpu->mutex\)/,
    );
    for (const wait of waits) expect(text).toContain(wait);
    expect(text).toContain('DEADLOCK: a cycle of waits:');
  });
});
