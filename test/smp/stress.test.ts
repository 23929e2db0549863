// The SMP acceptance runs, with real workers on this 2-core machine.
import { describe, expect, it } from 'vitest';
import { example, runGuest, summary } from './smp-support.js';

describe('halter and sender in the manner of KVM selftest xapic_ipi_test', () => {
  it('100,000 IPIs to a halting vCPU: every one received, every halt woken, nothing lost', async () => {
    const ipis = 100_000;
    const report = await runGuest(example('halter-sender.s', { IPI_COUNT: ipis }), { vcpus: 2 }, { timeoutSeconds: 120 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.exit.reason).toBe('all-done');
    const [halter, sender] = report.perVcpu;
    // Report slots: 0 sent, 1 received, 2 halts, 3 wakes (the final stop IPI makes each IPI_COUNT + 1).
    expect(sender!.guest.reports.slice(0, 4)).toEqual([ipis + 1, ipis + 1, ipis + 1, ipis + 1]);
    expect(halter!.guest.reports.slice(1, 4)).toEqual([ipis + 1, ipis + 1, ipis + 1]);
    expect(report.ipis).toMatchObject({ sent: ipis + 1, delivered: ipis + 1, lost: 0, coalesced: 0 });
    expect(report.lostWakeups).toBe(0);
    // Every IPI found the halter either running (doorbell) or not (cause 1): the two add up.
    expect(sender!.counters.doorbellsRung + sender!.counters.incompleteIpiExits[1]!).toBe(ipis + 1);
    expect(halter!.counters.haltExits).toBe(ipis + 1);
  });

  it('the same with halt-polling off, so the halter really sleeps: cause 1 and a wake-up each time', async () => {
    const ipis = 5_000;
    const report = await runGuest(
      example('halter-sender.s', { IPI_COUNT: ipis }),
      { vcpus: 2, haltPolling: false },
      { timeoutSeconds: 120 },
    );
    expect(report.ok, summary(report)).toBe(true);
    const [halter, sender] = report.perVcpu;
    expect(sender!.guest.reports.slice(0, 4)).toEqual([ipis + 1, ipis + 1, ipis + 1, ipis + 1]);
    expect(sender!.counters.incompleteIpiExits[1]).toBeGreaterThan(0);
    expect(halter!.counters.blocks).toBeGreaterThan(0);
    expect(report.lostWakeups).toBe(0);
  });

  it('the same with IPI virtualization off (erratum #1235 mode): every IPI exits, none is lost', async () => {
    const ipis = 5_000;
    const report = await runGuest(
      example('halter-sender.s', { IPI_COUNT: ipis }),
      { vcpus: 2, ipiVirtualization: false },
      { timeoutSeconds: 120 },
    );
    expect(report.ok, summary(report)).toBe(true);
    const sender = report.perVcpu[1]!;
    expect(sender.counters.doorbellsRung).toBe(0);
    expect(sender.counters.incompleteIpiExits[1]).toBe(ipis + 1);
    expect(report.ipis.lost).toBe(0);
  });
});

describe('guest atomics on shared RAM', () => {
  it('a spinlock guarding a shared counter across 4 vCPUs gives the exact total', async () => {
    const iterations = 20_000;
    const report = await runGuest(example('spinlock-counter.s', { ITERATIONS: iterations }), { vcpus: 4 }, { timeoutSeconds: 120 });
    expect(report.ok, summary(report)).toBe(true);
    const totals = report.perVcpu.map((vcpu) => vcpu.guest.reports[0]).filter((total) => total !== 0);
    expect(totals).toEqual([4 * iterations]);
  });
});

describe('all-to-all IPI storm', () => {
  it('8 vCPUs on 2 host cores finish an all-to-all storm with no loss and no hang', async () => {
    const rounds = 500;
    const report = await runGuest(example('all-to-all.s', { ROUNDS: rounds }), { vcpus: 8 }, { timeoutSeconds: 120 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.exit.reason).toBe('all-done');
    expect(report.ipis.sent).toBe(8 * 7 * rounds);
    expect(report.ipis.lost).toBe(0);
    // sent = accepted + coalesced; accepted = delivered + pending.
    expect(report.ipis.accepted + report.ipis.coalesced).toBe(report.ipis.sent);
    expect(report.ipis.delivered + report.ipis.pending).toBe(report.ipis.accepted);
    const sent = report.perVcpu.map((vcpu) => vcpu.guest.reports[0]);
    expect(sent).toEqual(new Array(8).fill(7 * rounds));
    const received = report.perVcpu.reduce((total, vcpu) => total + vcpu.guest.reports[1]!, 0);
    expect(received).toBe(report.ipis.delivered);
  });
});
