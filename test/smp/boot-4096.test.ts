// A 4096-vCPU VM boots through INIT-SIPI-SIPI in x2APIC mode and runs a storm with nothing lost
// (examples/x2apic-smp-boot-storm.s): vCPU 0 alone has an entry point and starts the other 4095
// with broadcast INIT and start-up IPIs written to the x2APIC ICR (MSR 0x830); each switches to
// x2APIC mode, checks in, and then every vCPU sends fixed IPIs to the next TARGETS vCPUs by x2APIC
// ID (4095 is out of reach of any 8-bit xAPIC destination). Run on the default host CPUs, with
// x2AVIC and its 4K extension addressing every vCPU (no AVIC inhibit).
import { describe, expect, it } from 'vitest';
import type { ProgramImage } from '../../src/guest/assembler.js';
import { createGuest, example, summary } from './smp-support.js';

const VCPUS = 4096;
/** The test's own bound; the guest aborts the VM itself if a barrier is not reached in time. */
const TIMEOUT_SECONDS = 240;

function constant(program: ProgramImage, name: string): number {
  const value = program.symbols.get(name);
  if (value === undefined) throw new Error(`x2apic-smp-boot-storm.s defines no ${name}`);
  return value;
}

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);

describe('4096 vCPUs: INIT-SIPI-SIPI in x2APIC mode, then an IPI storm', () => {
  it(
    'every application vCPU is started once and checks in, every IPI the guests sent is accounted for, none lost',
    async () => {
      const { vm, program } = await createGuest(example('x2apic-smp-boot-storm.s'), { vcpus: VCPUS }, 'x2apic-smp-boot-storm.s');
      const report = await vm.run({ timeoutSeconds: TIMEOUT_SECONDS });
      expect(report.exit.reason, summary(report)).toBe('all-done');
      expect(report.faults.length + report.errors.length, summary(report)).toBe(0);
      expect(report.ok, summary(report)).toBe(true);
      expect(report.vcpus).toBe(VCPUS);

      const perVcpu = report.perVcpu;
      expect(perVcpu.length).toBe(VCPUS);
      // Slot 3 of the BSP: every vCPU checked in exactly once (itself included).
      expect(perVcpu[0]!.guest.reports[3]).toBe(VCPUS);
      const applicationVcpus = perVcpu.slice(1);
      // Each application vCPU took one INIT and was started by one start-up IPI (the second one was
      // ignored, or merged with the first while both were pending), and took both wake-ups.
      expect(
        applicationVcpus.filter(({ counters }) => counters.initsTaken !== 1 || counters.startUpsTaken !== 1).map(({ vcpu }) => vcpu),
      ).toEqual([]);
      expect(applicationVcpus.filter(({ guest }) => guest.reports[2] !== 2 || !guest.done).map(({ vcpu }) => vcpu)).toEqual([]);
      expect([perVcpu[0]!.counters.initsTaken, perVcpu[0]!.counters.startUpsTaken, perVcpu[0]!.guest.reports[2]]).toEqual([0, 0, 0]);

      // Sent: what the guests counted, one message per destination: the BSP's INIT, two start-up
      // IPIs and two wake-ups to each of the 4095 others, and the storm.
      const targets = constant(program, 'TARGETS');
      const rounds = constant(program, 'ROUNDS');
      const stormSent = VCPUS * targets * rounds;
      const guestSent = sum(perVcpu.map(({ guest }) => guest.reports[0]!));
      expect(guestSent).toBe(5 * (VCPUS - 1) + stormSent);
      const { ipis } = report;
      expect(ipis.sent).toBe(guestSent);

      // The balance, term by term: sent = accepted + coalesced + dropped and
      // accepted (+ timer interrupts) = delivered + pending + discarded by INIT + NMIs merged + lost.
      const dropped = ipis.dropped.illegalVector + ipis.dropped.invalidTarget + ipis.dropped.unsupported;
      expect(dropped).toBe(0);
      expect(ipis.sent).toBe(ipis.accepted + ipis.coalesced + dropped);
      expect([ipis.timerInterrupts, ipis.discardedByInit, ipis.nmisMerged, ipis.pending, ipis.lost]).toEqual([0, 0, 0, 0, 0]);
      expect(ipis.accepted).toBe(ipis.delivered + ipis.pending + ipis.lost);

      // Delivered: what the guests' handlers counted, plus the INITs and start-up IPIs the vCPUs took.
      const stormReceived = sum(perVcpu.map(({ guest }) => guest.reports[1]!));
      const wakesReceived = sum(perVcpu.map(({ guest }) => guest.reports[2]!));
      const bootEvents = sum(perVcpu.map(({ counters }) => counters.initsTaken + counters.startUpsTaken + counters.startUpsIgnored));
      expect(wakesReceived).toBe(2 * (VCPUS - 1));
      expect(ipis.delivered).toBe(stormReceived + wakesReceived + bootEvents);
      // A storm IPI can merge with one still pending at its target, never more than were sent.
      expect(stormReceived).toBeGreaterThan(0);
      expect(stormReceived).toBeLessThanOrEqual(stormSent);
    },
    (TIMEOUT_SECONDS + 30) * 1000,
  );
});
