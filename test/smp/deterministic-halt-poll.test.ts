// Halt-polling in a deterministic run: every pass of the poll loop is a scheduling point, where the
// other threads may run and move the virtual clock, so the loop must look at its deadline on every
// pass (HostThread.pointMaySwitch). Looking only every 256 passes, as the parallel run does to save
// clock reads, let one halt poll for 256 of the other thread's turns: under PCT, with the sender
// spinning for whole quanta, about 1 s of virtual time, past the example's 1 s wait for the halter
// to block, so the guest aborted.
import { describe, expect, it } from 'vitest';
import { HALT_POLL_MAX_NS } from '../../src/kvm/vcpu/vcpu-sleep.js';
import { example, runGuest, summary } from './smp-support.js';

describe('halt-polling in a deterministic run', () => {
  it('stops at its window: the x2APIC halter example passes under PCT with halt-polling on', async () => {
    const report = await runGuest(example('x2apic-logical-halter.s', { ROUNDS: 20 }), {
      vcpus: 2,
      x2avic: true,
      inject: 'x2avic-logical-kick-fixed',
      deterministic: { seed: 1, strategy: 'pct' },
    });
    expect(report.exit.reason, summary(report)).toBe('all-done');
    const pollMs = report.hostCpus.reduce((total, cpu) => total + cpu.haltPollMs, 0);
    // Each halt polls for its window (at most HALT_POLL_MAX_NS) plus the turns the other thread takes
    // between its passes, a few quanta (1.5 ms) at most; looking every 256 passes it was ~1,000 ms.
    expect(pollMs / Math.max(1, report.exits.halt)).toBeLessThan(HALT_POLL_MAX_NS / 1e6 + 10);
  });
});
