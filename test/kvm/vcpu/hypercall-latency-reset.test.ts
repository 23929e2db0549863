// Hypercall LatencyReset (HC_LATENCY_RESET): a guest discards the latency samples it recorded so far,
// a warm-up's, and the report keeps only those after its last reset: the histogram and the counters.
import { describe, expect, it } from 'vitest';
import { runGuest } from '../../smp/smp-support.js';

// Three samples of 5 us, a reset, then two of 1 ms: only the last two are reported.
const RESET = `
        .entry start
start:  li r4, 3
warm:   li r1, 5000
        hypercall HC_LATENCY_SAMPLE
        sub r4, r4, 1
        bnez r4, warm
        hypercall HC_LATENCY_RESET
        li r1, 1000000
        hypercall HC_LATENCY_SAMPLE
        hypercall HC_LATENCY_SAMPLE
        li r1, 0
        hypercall HC_DONE`;

describe('HC_LATENCY_RESET', () => {
  it('drops the samples before it from the histogram and the counters', async () => {
    const report = await runGuest(RESET, { vcpus: 1 });
    expect(report.exit.reason).toBe('all-done');
    const vcpu = report.perVcpu[0]!;
    expect(vcpu.latencyNs?.count).toBe(2);
    expect(vcpu.latencyNs?.min).toBeGreaterThanOrEqual(999_000);
    expect(vcpu.counters.latencySamples).toBe(2);
    expect(vcpu.counters.latencyMinNs).toBe(1_000_000);
    expect(vcpu.counters.latencyEpoch).toBe(1);
  });
});
