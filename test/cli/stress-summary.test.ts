// The stress summary from a ScenarioResult, without running a VM: the pass/fail rule (anything lost
// or any failed check fails the run), the units, and the ✓/✗ check lines.

import { describe, expect, it } from 'vitest';
import type { VmReport } from '../../src/kvm/report/vm-report.js';
import type { ScenarioResult } from '../../src/scenarios/scenario.js';
import { formatStressSummary, summarizeStress } from '../../src/cli/stress-summary.js';
import { formatMicroseconds } from '../../src/cli/text-table.js';

function counters(overrides: Partial<Record<string, number>> = {}): VmReport['perVcpu'][number]['counters'] {
  const zero = {
    ipiCommands: 0,
    ipisSent: 0,
    ipisAccepted: 0,
    ipisCoalesced: 0,
    ipisDroppedIllegalVector: 0,
    ipisDroppedInvalidTarget: 0,
    ipisDroppedUnsupported: 0,
    interruptsDelivered: 0,
    nmisDelivered: 0,
    doorbellsRung: 0,
    unacceleratedAccessTrapExits: 0,
    unacceleratedAccessFaultExits: 0,
    haltExits: 0,
    haltPollSuccesses: 0,
    blocks: 0,
    wakeups: 0,
    kicksSent: 0,
    lostWakeups: 0,
    pauseLoopExits: 0,
    hypercalls: 0,
    msrAccesses: 0,
    slices: 0,
    instructions: 0,
    latencySamples: 0,
    latencySumNs: 0,
    latencyMinNs: 0,
    latencyMaxNs: 0,
  };
  return { ...zero, ...overrides, incompleteIpiExits: [0, 3, 0, 0, 0] } as VmReport['perVcpu'][number]['counters'];
}

function result(lost: number, checksOk: boolean): ScenarioResult {
  const report = {
    vcpus: 1,
    policy: 'upstream',
    ipiVirtualization: true,
    durationSeconds: 0.5,
    exit: { reason: 'all-done', detail: 'every vCPU reported done' },
    ok: lost === 0,
    ipis: {
      commands: 10,
      sent: 10,
      accepted: 10,
      coalesced: 0,
      dropped: { illegalVector: 0, invalidTarget: 0, unsupported: 0 },
      delivered: 10 - lost,
      pending: 0,
      lost,
    },
    ipisPerSecond: 20,
    latencyNs: { count: 10, min: 400, mean: 900, p50: 431, p90: 5595, p99: 45_120, p999: 1_204_000, max: 1_204_000 },
    exits: {
      incompleteIpi: { invalidInterruptType: 0, targetNotRunning: 3, invalidTarget: 0, invalidBackingPage: 0, invalidIpiVector: 0 },
      unacceleratedAccess: { trap: 0, fault: 0 },
      halt: 2,
      pauseLoop: 0,
      hypercall: 0,
      msr: 0,
    },
    doorbells: 7,
    wakeups: 2,
    lostWakeups: 0,
    instructions: 100,
    faults: [],
    errors: [],
    vcpuCreation: {
      created: 1,
      maxVcpus: 1,
      hotAdds: 0,
      hotAddMsMedian: 0,
      hotAddMsMax: 0,
      apicAccessMemslotResizes: 0,
      backingPagesReinitialised: 0,
      backingPageReloads: 0,
      strandedIrrBits: 0,
    },
    memslots: { updates: 2, gracePeriods: 0, gracePeriodMsTotal: 0, gracePeriodMsMax: 0 },
    hostCpus: [],
    perVcpu: [
      {
        vcpu: 0,
        runState: 'finished',
        waitReason: 'none',
        exit: 'done',
        counters: counters({ ipisSent: 10, interruptsDelivered: 10 - lost, doorbellsRung: 7, haltExits: 2, wakeups: 2 }),
        guest: { reports: [], counters: [], done: true },
        pendingVectors: [],
        scheduling: { hostCpu: 0, loadedMs: 480.25, runnableWaitMs: 12.345 },
      },
    ],
  } as unknown as VmReport;
  const checks = [{ name: 'every IPI handled', ok: checksOk, detail: checksOk ? '10 of 10' : '9 of 10' }];
  return { scenario: 'ack', parameters: { vcpus: 1, ipis: 10, seed: 3 }, report, checks, ok: report.ok && checksOk };
}

describe('summarizeStress', () => {
  it('passes when nothing is lost and every check passes', () => {
    const summary = summarizeStress(result(0, true), { haltPolling: true });
    expect(summary.ok).toBe(true);
    expect(summary.seed).toBe(3);
    expect(summary.requested).toEqual({ ipis: 10, seconds: null });
    expect(summary.perVcpu[0]).toMatchObject({ vcpu: 0, sent: 10, received: 10, doorbells: 7, halts: 2, wakeups: 2, latencyNs: null });
    expect(summary.perVcpu[0]!.exits.incompleteIpi.targetNotRunning).toBe(3);
  });

  it('fails when an IPI is lost', () => {
    expect(summarizeStress(result(1, true), { haltPolling: true }).ok).toBe(false);
  });

  it('fails when a check fails, and marks it ✗ with its detail', () => {
    const summary = summarizeStress(result(0, false), { haltPolling: true });
    expect(summary.ok).toBe(false);
    const text = formatStressSummary(summary);
    expect(text).toMatch(/^FAILED: ack on 1 vCPUs, seed 3, 10 IPIs;/);
    expect(text).toContain('  ✗ every IPI handled: 9 of 10');
  });

  it('prints latency in µs with about three significant digits', () => {
    const text = formatStressSummary(summarizeStress(result(0, true), { haltPolling: true, latencyMeasures: 'ICR write to ack' }));
    expect(text).toContain('p50 0.43 µs   p99 45.1 µs   max 1,204 µs');
    expect(text).toContain('one sample = ICR write to ack');
  });
});

describe('per-vCPU scheduling', () => {
  it("carries each vCPU's host CPU, loaded and runnable-wait time, as run's report does", () => {
    const summary = summarizeStress(result(0, true), { haltPolling: true });
    expect(summary.perVcpu[0]!.scheduling).toEqual({ hostCpu: 0, loadedMs: 480.25, runnableWaitMs: 12.345 });
  });

  it("prints them as the per-vCPU table's last columns, the wait in ms", () => {
    const lines = formatStressSummary(summarizeStress(result(0, true), { haltPolling: true })).split('\n');
    const header = lines.findIndex((line) => line.startsWith('vCPU '));
    expect(lines[header]).toMatch(/max µs +host CPU +runnable wait ms$/);
    expect(lines[header + 2]).toMatch(/ 0 +12\.3$/); // after the rule under the header
  });
});

describe('formatMicroseconds', () => {
  it.each([
    [431, '0.43'],
    [5_600, '5.60'],
    [45_120, '45.1'],
    [1_204_000, '1,204'],
    [undefined, '-'],
  ])('%s ns -> %s µs', (nanoseconds, text) => {
    expect(formatMicroseconds(nanoseconds)).toBe(text);
  });
});
