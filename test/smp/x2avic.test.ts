// x2AVIC through real vCPU workers (issue 5 item 4; spec §1.5, §1.6, §2.8): every vCPU switches to
// x2APIC, then vCPU 0 sends physical, logical-cluster, broadcast and shorthand x2APIC IPIs by WRMSR
// 0x830. With x2avic (the default) the hardware model delivers them (IRR set, doorbell rung); the
// receivers spin (IsRunning stays 1, also across pause-loop yields), so no incomplete-IPI exit may
// happen. With x2avic false ("hybrid AVIC") KVM intercepts every x2APIC ICR write and sends it in
// software: no doorbell, a kick per target instead. Both runs must deliver every IPI exactly.
import { describe, expect, it } from 'vitest';
import { runGuest, summary } from './smp-support.js';
import { ALL_EXCLUDING, FIXED, LOGICAL, SELF, X2APIC_ACCESS, countsBySlot, formsProgram, ipiBalance, type Step } from './ipi-forms-program.js';

const REPEAT = 20;
const steps: readonly Step[] = [
  { name: 'physical, x2APIC ID 2', icr: FIXED, destination: 2, slot: 0, repeat: REPEAT, handled: 1, expect: [0, 0, REPEAT, 0] },
  { name: 'physical, x2APIC ID 3', icr: FIXED, destination: 3, slot: 1, repeat: REPEAT, handled: 1, expect: [0, 0, 0, REPEAT] },
  { name: 'physical broadcast 0xFFFFFFFF', icr: FIXED, destination: 0xffffffff, slot: 2, repeat: REPEAT, handled: 4, expect: [REPEAT, REPEAT, REPEAT, REPEAT] },
  { name: 'logical cluster 0, members 1 and 3', icr: FIXED | LOGICAL, destination: 0x0000000a, slot: 3, repeat: REPEAT, handled: 2, expect: [0, REPEAT, 0, REPEAT] },
  { name: 'logical broadcast 0xFFFFFFFF', icr: FIXED | LOGICAL, destination: 0xffffffff, slot: 4, handled: 4, expect: [1, 1, 1, 1] },
  { name: 'all excluding self', icr: FIXED | ALL_EXCLUDING, destination: 0, slot: 5, repeat: REPEAT, handled: 3, expect: [0, REPEAT, REPEAT, REPEAT] },
  { name: 'self shorthand', icr: FIXED | SELF, destination: 0, slot: 6, repeat: REPEAT, handled: 1, expect: [REPEAT, 0, 0, 0] },
];
/** IPI messages the steps send to other vCPUs (each needs a doorbell or a kick). */
const REMOTE_MESSAGES = REPEAT * (1 + 1 + 3 + 2 + 3) + 3;
const ALL_MESSAGES = REPEAT * (1 + 1 + 4 + 2 + 3 + 1) + 4;

describe('x2APIC IPIs with and without x2AVIC', () => {
  it('x2AVIC accelerates every form: no incomplete-IPI exit, a doorbell per remote message, none lost', async () => {
    const report = await runGuest(formsProgram(steps, X2APIC_ACCESS), { vcpus: 4 });
    expect(report.ok, summary(report)).toBe(true);
    for (const step of steps) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    expect(report.exits.incompleteIpi).toEqual({ invalidInterruptType: 0, targetNotRunning: 0, invalidTarget: 0, invalidBackingPage: 0, invalidIpiVector: 0 });
    const sender = report.perVcpu[0]!.counters;
    expect(sender.doorbellsRung).toBe(REMOTE_MESSAGES);
    expect(sender.kicksSent).toBe(0);
    expect(report.ipis.sent).toBe(ALL_MESSAGES);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });

  it('hybrid AVIC (x2avic: false) sends every x2APIC IPI in software: kicks, no doorbell, none lost', async () => {
    const report = await runGuest(formsProgram(steps, X2APIC_ACCESS), { vcpus: 4, x2avic: false });
    expect(report.ok, summary(report)).toBe(true);
    for (const step of steps) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    // The hardware never saw these ICR writes, so it took no incomplete-IPI exit either.
    expect(report.exits.incompleteIpi).toEqual({ invalidInterruptType: 0, targetNotRunning: 0, invalidTarget: 0, invalidBackingPage: 0, invalidIpiVector: 0 });
    const sender = report.perVcpu[0]!.counters;
    expect(sender.doorbellsRung).toBe(0);
    expect(sender.kicksSent).toBe(REMOTE_MESSAGES);
    expect(report.ipis.sent).toBe(ALL_MESSAGES);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });

  it('x2AVIC exits to software for what it cannot accelerate: an NMI (cause 0) and a missing ID (cause 2)', async () => {
    const nmiAndMissing: readonly Step[] = [
      { name: 'NMI to x2APIC ID 1', icr: 0x400, destination: 1, slot: 9, handled: 1, expect: [0, 1] },
      { name: 'physical x2APIC ID 300: nobody', icr: FIXED, destination: 300, slot: 0, handled: 0, expect: [0, 0] },
    ];
    const report = await runGuest(formsProgram(nmiAndMissing, X2APIC_ACCESS), { vcpus: 2 });
    expect(report.ok, summary(report)).toBe(true);
    for (const step of nmiAndMissing) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    expect(report.exits.incompleteIpi.invalidInterruptType).toBe(1);
    expect(report.exits.incompleteIpi.invalidTarget).toBe(1);
    expect(report.ipis.dropped.invalidTarget).toBe(1);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });
});
