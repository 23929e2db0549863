// Scenario S1 (docs/lock-scenarios.md) on the real run loop: vCPU 0, handling an exit (kvm->srcu read held),
// takes kvm->slots_lock and synchronizes kvm->srcu, as the 2020 APICv toggle did. The grace period
// would wait for vCPU 0's own read section forever.
import { describe, expect, it } from 'vitest';
import { summary } from './smp-support.js';
import { createStormVm } from './lockdep-support.js';

describe('S1: the APICv toggle from inside an SRCU read section', () => {
  it('the validator reports kvm->srcu / kvm->slots_lock before anything hangs, and the run ends', async () => {
    const { vm } = await createStormVm({ vcpus: 2, lockdep: true, ipiVirtualization: false, injectLockBug: 's1' }, 20_000);
    const report = await vm.run({ timeoutSeconds: 60, watchdogSeconds: 5 });
    expect(report.exit.reason, summary(report)).toBe('all-done');
    expect(report.ipis.lost).toBe(0);
    const splat = report.lockdep?.report;
    expect(splat?.kind).toBe('circular-dependency');
    expect(splat?.cycle).toEqual(['kvm->slots_lock', 'kvm->srcu', 'kvm->slots_lock']);
    expect(splat?.text).toContain('WARNING: possible circular locking dependency detected');
    expect(splat?.text).toContain('vCPU 0/worker');
    expect(splat?.text).toContain('avic_update_access_page (S1: inside kvm->srcu)');
    expect(vm.locks.slotsLock.holder()).toBeUndefined();
  });

  it('without the validator the vCPU hangs in synchronize; the watchdog prints the wait-for graph and tears the run down', async () => {
    const { vm } = await createStormVm({ vcpus: 2, ipiVirtualization: false, injectLockBug: 's1' }, 20_000);
    const started = performance.now();
    // The run waits out both bounds: the watchdog judges vCPU 0 only once it slept that long on a
    // cycle of waits (there is none without the deadlock), and the stop waits for a vCPU that never
    // stops. Half a second each shows what a second each did.
    const report = await vm.run({ timeoutSeconds: 60, watchdogSeconds: 0.5, stopTimeoutSeconds: 0.5 });
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(report.exit.reason, summary(report)).toBe('watchdog');
    expect(report.exit.detail).toContain('vCPU 0 made no progress');
    expect(report.exit.detail).toMatch(/vCPU 0\/worker \d+ waits \(\d+ ms\) for a grace period of kvm->srcu, held by vCPU 0\/worker/);
    expect(report.exit.detail).toContain('DEADLOCK: a cycle of waits');
    expect(report.lockdep).toEqual({ enabled: false });
  });
});
