// The watchdog on a busy VM with many more runnable vCPUs than host cores (this machine has 2): the
// OS leaves most vCPU threads waiting for a core for far longer than the watchdog's bound, which is
// slowness, not a hang. With the bound at half a second, a 24-vCPU storm ends normally.
import { describe, expect, it } from 'vitest';
import { summary } from './smp-support.js';
import { createStormVm } from './lockdep-support.js';

describe('the watchdog on an oversubscribed host', () => {
  it('a 24-vCPU storm with a 0.5 s watchdog: no vCPU is reported stuck, the run ends with every vCPU done', async () => {
    const vcpus = 24;
    const { vm } = await createStormVm({ vcpus }, vcpus * 50);
    const report = await vm.run({ timeoutSeconds: 120, watchdogSeconds: 0.5 });
    expect(report.exit.reason, summary(report)).toBe('all-done');
    expect(report.ok, summary(report)).toBe(true);
    expect(report.ipis.lost).toBe(0);
  });
});
