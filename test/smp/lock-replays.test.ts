// The replays of docs/lock-scenarios.md on a real VM with the validator on (issue 4 item 5): vCPUs run the storm
// program and send IPIs while the vCPU side (their first exit handler) and the main side take the
// VM's locks. Each buggy variant produces its report, first seen where the cycle closes, and backs
// out so the run ends normally; each fixed variant runs clean under the same load.
import { describe, expect, it } from 'vitest';
import { normalizeReport, runReplay } from './lock-replays-support.js';

const BUGGY: readonly { name: string; cycle: string[]; reporter: string }[] = [
  {
    name: 's1',
    cycle: ['kvm->slots_lock', 'kvm->srcu', 'kvm->slots_lock'],
    reporter: 'vCPU 0/worker N is trying to acquire lock:\n(kvm->slots_lock){W}, at: avic_update_access_page (S1: inside kvm->srcu)',
  },
  {
    name: 's3',
    cycle: ['kvm->slots_lock', 'kvm->srcu', 'kvm->slots_lock'],
    reporter: 'vCPU 0/worker N is trying to acquire lock:\n(kvm->slots_lock){W}, at: kvm_inhibit_apic_access_page (SRCU not dropped)',
  },
  {
    name: 's4',
    cycle: ['kvm->lock', 'kvm->srcu', 'kvm->lock'],
    reporter: 'vCPU 0/worker N is trying to acquire lock:\n(kvm->lock){W}, at: kvm_xen_set_evtchn: kvm->lock (inside kvm->srcu)',
  },
  {
    name: 's5',
    cycle: ['cpu_hotplug_lock', 'kvm_lock', 'kvm->slots_lock', 'kvm->srcu', 'cpu_hotplug_lock'],
    reporter:
      'vCPU 0/worker N is trying to acquire lock:\n(cpu_hotplug_lock){r}, at: kvm_lapic_set_base: static_branch_inc: cpus_read_lock',
  },
  {
    name: 'abba',
    cycle: ['kvm->irq_lock', 'kvm->slots_arch_lock', 'kvm->irq_lock'],
    reporter: 'vCPU 1/worker N is trying to acquire lock:\n(kvm->irq_lock){W}, at: abba: vCPU 1 takes kvm->irq_lock second',
  },
];

describe('lock replays with the validator: each buggy variant is reported, then backs out', () => {
  it.each(BUGGY)('$name: possible deadlock $cycle, the run still ends with every IPI delivered', async ({ name, cycle, reporter }) => {
    const outcome = await runReplay(name, true);
    expect(outcome.verdict, outcome.report).toBe('possible-deadlock');
    expect(outcome.cycle).toEqual(cycle);
    expect(outcome.problems).toEqual([]);
    expect(outcome.vmReport?.exit.reason).toBe('all-done');
    expect(outcome.ipis?.sent).toBeGreaterThan(0);
    expect(outcome.ipis?.lost).toBe(0);
    // An injected buggy replay expects its report: the run is otherwise fine.
    expect(outcome.vmReport?.ok).toBe(true);
    const text = normalizeReport(outcome.report);
    expect(text).toContain('WARNING: possible circular locking dependency detected');
    expect(text).toContain(reporter);
    expect(text).toMatchSnapshot();
  });
});

describe('the fixed variants run clean under the same load', () => {
  it.each(['s1-fixed', 's3-fixed', 's4-fixed', 's5-fixed'])('%s: no report, nothing stuck, no IPI lost', async (name) => {
    const outcome = await runReplay(name, true);
    expect(outcome.verdict, outcome.report).toBe('clean');
    expect(outcome.cycle).toEqual([]);
    expect(outcome.report).toBe('');
    expect(outcome.problems).toEqual([]);
    expect(outcome.vmReport?.ok).toBe(true);
    expect(outcome.vmReport?.lockdep?.enabled).toBe(true);
    expect(outcome.ipis?.sent).toBeGreaterThan(0);
    expect(outcome.ipis?.lost).toBe(0);
  });
});

describe('rfc-v2 hot-add: the 2016 RFC re-initialising pages under slots_lock, against upstream', () => {
  it("rfc-v2-hot-add: slots_lock -> vcpu->mutex against KVM_RUN's vcpu->mutex -> slots_lock is reported, from the hot-add, before anything waits", async () => {
    const outcome = await runReplay('rfc-v2-hot-add', true);
    expect(outcome.verdict, outcome.report).toBe('possible-deadlock');
    expect(outcome.cycle).toEqual(['vcpu->mutex', 'kvm->slots_lock', 'vcpu->mutex']);
    // Lost IPIs are the RFC design's own cost here (pages re-initialised under senders), not a problem.
    expect(outcome.problems).toEqual([]);
    expect(outcome.vmReport?.exit.reason).toBe('all-done');
    expect(outcome.vmReport?.vcpus).toBe(3);
    expect(outcome.vmReport?.vcpuCreation).toMatchObject({ hotAdds: 1, apicAccessMemslotResizes: 2, backingPagesReinitialised: 3 });
    const text = normalizeReport(outcome.report);
    expect(text).toContain('main/KVM_CREATE_VCPU 2 is trying to acquire lock:\nvcpu0->mutex (vcpu->mutex){W}');
    expect(text).toMatchSnapshot();
  });

  it('rfc-v2-hot-add-fixed (upstream): the same load and hot-add run clean, nothing moved, nothing lost', async () => {
    const outcome = await runReplay('rfc-v2-hot-add-fixed', true);
    expect(outcome.verdict, outcome.report).toBe('clean');
    expect(outcome.problems).toEqual([]);
    expect(outcome.ipis?.lost).toBe(0);
    expect(outcome.vmReport?.ok).toBe(true);
    expect(outcome.vmReport?.vcpuCreation).toMatchObject({ hotAdds: 1, apicAccessMemslotResizes: 0, backingPagesReinitialised: 0 });
  });
});
