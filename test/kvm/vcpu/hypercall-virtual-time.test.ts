// An instrumentation hypercall is handled in place (hypercalls.ts), but under KVM it is a VMMCALL
// exit: in a deterministic run the host's virtual clock moves by one exit round trip per call, so
// a guest that polls through hypercalls still reaches the end of its quantum (docs/deterministic.md).
import { describe, expect, it } from 'vitest';
import { VirtualTimeCost } from '../../../src/host/virtual-time-costs.js';
import { runGuest } from '../../smp/smp-support.js';

const CALLS = 2000;

// CALLS run-state queries of vCPU 0 itself, then done: a few instructions each.
const POLL = `
        .entry start
start:  li r4, ${CALLS}
poll:   li r1, 0
        hypercall HC_VCPU_RUN_STATE
        sub r4, r4, 1
        bnez r4, poll
        hypercall HC_DONE`;

describe('hypercalls in virtual time', () => {
  it('each hypercall costs a #VMEXIT round trip of virtual time in a deterministic run', async () => {
    const report = await runGuest(POLL, { vcpus: 1, deterministic: { seed: 1, strategy: 'random' } });
    expect(report.exit.reason).toBe('all-done');
    expect(report.exits.hypercall).toBe(CALLS + 1);
    expect(report.schedule!.virtualNs).toBeGreaterThanOrEqual((CALLS + 1) * VirtualTimeCost.vmexitRoundTripNs);
  });
});
