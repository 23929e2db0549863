// VmConfig.hostIdlePollUs: an idle host CPU polls its wake word before its thread sleeps (Linux's
// idle poll loop; docs/architecture.md, O9). The default and its range, and that in a VM the poll
// takes a blocked vCPU's wake-up while the vCPU itself still blocks and is woken only by KVM's
// wake-up path (the doorbell wakes nothing: the poll watches the wake word, never the vCPU's IRR).
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST_IDLE_POLL_US, validateConfig } from '../../src/kvm/vm/vm-config.js';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { runScenario } from '../../src/scenarios/run-scenario.js';

describe('VmConfig hostIdlePollUs', () => {
  it('polls by default only in a parallel run whose host CPUs fit the cores', () => {
    const cores = os.availableParallelism();
    expect(validateConfig({ vcpus: 2, hostCpus: 1 }).hostIdlePollUs).toBe(DEFAULT_HOST_IDLE_POLL_US);
    expect(validateConfig({ vcpus: cores, hostCpus: cores }).hostIdlePollUs).toBe(DEFAULT_HOST_IDLE_POLL_US);
    // More host CPU threads than cores: a polling one would keep a busy one off its core.
    expect(validateConfig({ vcpus: cores + 1, hostCpus: cores + 1 }).hostIdlePollUs).toBe(0);
    expect(validateConfig({ vcpus: 2, hostCpus: 2, deterministic: { seed: 1, strategy: 'random' } }).hostIdlePollUs).toBe(0);
    expect(validateConfig({ vcpus: cores + 1, hostCpus: cores + 1, hostIdlePollUs: 50 }).hostIdlePollUs).toBe(50);
  });

  it('refuses a window out of range, and any poll in a deterministic run', () => {
    for (const hostIdlePollUs of [-1, 100_001, Number.NaN, '5' as unknown as number]) {
      expect(() => validateConfig({ vcpus: 2, hostIdlePollUs })).toThrow(
        /hostIdlePollUs must be a number of microseconds from 0 to 100000/,
      );
    }
    expect(() => validateConfig({ vcpus: 2, hostIdlePollUs: 10, deterministic: { seed: 1, strategy: 'random' } })).toThrow(
      /hostIdlePollUs is for parallel runs/,
    );
  });
});

describe('an idle host CPU that polls', () => {
  // ack-halt: vCPU 1 halts with halt-polling off (so it really blocks each time), vCPU 0 sends it an
  // IPI once it is blocked and waits for the handler's ack. Each on its own host CPU.
  const run = (hostIdlePollUs: number, gapNs = 0) =>
    runScenario(
      SCENARIOS.get('ack-halt')!,
      { vcpus: 2, ipis: 500, seed: 1 },
      { vmConfig: { hostCpus: 2, hostIdlePollUs }, defines: new Map([['GAP_NS', gapNs]]) },
    );

  it("takes a blocked vCPU's wake-up without an OS wake-up; the vCPU still blocks and is woken by KVM's wake-up", async () => {
    // The longest window, so that even a slow host's sender comes back inside it.
    const { result } = await run(100_000);
    const report = result.report;
    expect(result.ok, JSON.stringify(result.checks.filter((check) => !check.ok))).toBe(true);
    expect(report.hostIdlePollUs).toBe(100_000);
    const target = report.hostCpus[1]!;
    expect(target.idlePollWakeups).toBeGreaterThan(0);
    expect(target.idlePollMs).toBeGreaterThan(0);
    expect(target.idlePollMs).toBeLessThanOrEqual(target.idleMs);
    // Every IPI reached a blocked target and woke it through the wake-up path, none by the doorbell.
    expect(report.perVcpu[1]!.counters.wakeups).toBeGreaterThan(0);
    expect(report.lostWakeups).toBe(0);
    expect(report.ipis.lost).toBe(0);
  });

  it('stops polling when its idle periods outlast the window, as kvm_vcpu_halt shrinks halt_poll_ns', async () => {
    // 1 ms between an IPI and the next: every idle period of the target's host CPU is ten times the
    // 100 us maximum, so the window halves at each one and is soon 0.
    const { result } = await run(100, 1_000_000);
    expect(result.ok, JSON.stringify(result.checks.filter((check) => !check.ok))).toBe(true);
    const target = result.report.hostCpus[1]!;
    const wakeups = result.report.perVcpu[1]!.counters.wakeups;
    expect(wakeups).toBeGreaterThan(100);
    // A full window before every sleep would be wake-ups x 0.1 ms; the shrinking window polls a few times at most.
    expect(target.idlePollMs).toBeLessThan(1);
  });

  it('polls nothing with a window of 0: every idle period is a sleep', async () => {
    const { result } = await run(0);
    expect(result.ok, JSON.stringify(result.checks.filter((check) => !check.ok))).toBe(true);
    expect(result.report.hostIdlePollUs).toBe(0);
    for (const cpu of result.report.hostCpus) {
      expect(cpu.idlePollWakeups).toBe(0);
      expect(cpu.idlePollMs).toBe(0);
    }
    expect(result.report.perVcpu[1]!.counters.wakeups).toBeGreaterThan(0);
  });
});
