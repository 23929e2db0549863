// VmConfig.pauseFilterCount (KVM's kvm_amd.pause_filter_count): the default, the 16-bit VMCB field's
// range, and that a VM's vCPUs use the count it sets (a spinner with the default never reaches the
// window in a short spin; with a small count it takes pause-loop exits).
import { describe, expect, it } from 'vitest';
import { PAUSE_LOOP_WINDOW } from '../../../src/guest/guest-cpu.js';
import { validateConfig } from '../../../src/kvm/vm/vm-config.js';
import { runGuest } from '../../smp/smp-support.js';

describe('VmConfig pauseFilterCount', () => {
  it('defaults to PAUSE_LOOP_WINDOW and takes 1..65535', () => {
    expect(validateConfig({ vcpus: 2 }).pauseFilterCount).toBe(PAUSE_LOOP_WINDOW);
    expect(validateConfig({ vcpus: 2, pauseFilterCount: 1 }).pauseFilterCount).toBe(1);
    expect(validateConfig({ vcpus: 2, pauseFilterCount: 65535 }).pauseFilterCount).toBe(65535);
  });

  it('refuses a count outside the VMCB field', () => {
    for (const pauseFilterCount of [0, -1, 65536, 2.5, Number.NaN]) {
      expect(() => validateConfig({ vcpus: 2, pauseFilterCount })).toThrow(/pauseFilterCount must be an integer from 1 to 65535/);
    }
  });

  // 1,000 pauses in a loop, then done: fewer than the default window, ten windows of 100.
  const SPIN_1000 = `
        .entry start
start:  li r1, 1000
spin:   pause
        sub r1, r1, 1
        bnez r1, spin
        hypercall HC_DONE`;

  it("reaches the vCPUs: a VM's own count sets when its spinners take pause-loop exits", async () => {
    const byDefault = await runGuest(SPIN_1000, { vcpus: 1 });
    const small = await runGuest(SPIN_1000, { vcpus: 1, pauseFilterCount: 100 });
    expect(byDefault.exit.reason).toBe('all-done');
    expect(small.exit.reason).toBe('all-done');
    expect(byDefault.exits.pauseLoop).toBe(0);
    // Ten windows of 100, fewer if a slice ended mid-window (the count restarts each entry).
    expect(small.exits.pauseLoop).toBeGreaterThan(0);
    expect(small.exits.pauseLoop).toBeLessThanOrEqual(10);
  });
});
