// Hot-adding vCPUs while IPIs fly (the hot-add scenario, programs/hot-add.s) under both backing-page
// policies, on real workers. The two hot-adds come at a third and two thirds of a 0.6 s run: each
// takes milliseconds, and thousands of IPIs fly around it either way.
import { describe, expect, it } from 'vitest';
import { assembleScenario, runScenario } from '../../src/scenarios/run-scenario.js';
import { resolveParameters } from '../../src/scenarios/scenario-parameters.js';
import { Vm } from '../../src/kvm/vm/vm.js';
import { hotAdd } from '../../src/scenarios/hot-add.js';
import { summary } from './smp-support.js';

describe('hot-add while every vCPU sends IPIs', () => {
  it('upstream: each added vCPU becomes a target and runs; nothing is lost and no page moves', async () => {
    const { result } = await runScenario(hotAdd, { vcpus: 2, hotAdd: 2, seconds: 0.6, seed: 3 });
    const report = result.report;
    expect(
      result.checks.filter((check) => !check.ok),
      summary(report),
    ).toEqual([]);
    expect(result.ok).toBe(true);
    expect(report.vcpus).toBe(4);
    expect(report.ipis.lost).toBe(0);
    expect(report.vcpuCreation).toMatchObject({
      hotAdds: 2,
      apicAccessMemslotResizes: 0,
      backingPagesReinitialised: 0,
      strandedIrrBits: 0,
    });
    // The added vCPUs were announced (online_vcpus) and others sent to them.
    expect(report.perVcpu[2]!.counters.interruptsDelivered + report.perVcpu[3]!.counters.interruptsDelivered).toBeGreaterThan(0);
  });

  it('rfc-v2: every higher id resizes the APIC-access memslot and re-initialises every page under the senders; the balance accounts for what was stranded', async () => {
    const { result } = await runScenario(hotAdd, { vcpus: 2, hotAdd: 2, seconds: 0.6, seed: 3 }, { vmConfig: { policy: 'rfc-v2' } });
    const report = result.report;
    expect(report.exit.reason, summary(report)).toBe('all-done');
    expect(report.vcpus).toBe(4);
    // One resize for vCPU 1 at VM creation, then one per hot-add; 1 + 2 + 3 pages moved.
    expect(report.vcpuCreation).toMatchObject({ hotAdds: 2, apicAccessMemslotResizes: 3, backingPagesReinitialised: 6 });
    expect(report.vcpuCreation.backingPageReloads).toBeGreaterThan(0);
    expect(report.vcpuCreation.backingPageReloads).toBeLessThanOrEqual(6);
    // Each resize after the start publishes a memslot set that removes memory: two grace periods.
    expect(report.memslots.gracePeriods).toBe(4);
    // A stranded IRR bit is an accepted IPI nobody takes: lost covers it (and any bit posted to
    // released memory after it was counted). The run fails exactly when something was lost.
    expect(report.ipis.lost).toBeGreaterThanOrEqual(report.vcpuCreation.strandedIrrBits);
    expect(result.ok).toBe(report.ipis.lost === 0 && result.checks.every((check) => check.ok));
    expect(result.checks.find((check) => check.name === 'receipts add up')?.ok).toBe(true);
  });
});

describe('hot-add calls that overlap', () => {
  it('are serialised: back-to-back calls create consecutive ids, and each new vCPU gets a worker and runs', async () => {
    const parameters = resolveParameters(hotAdd, { vcpus: 2, ipis: 40_000, seed: 5 });
    const program = assembleScenario(hotAdd, parameters, new Map([['MAX_VCPUS', 5]]));
    const vm = await Vm.create({ vcpus: 2, maxVcpus: 5 });
    vm.loadProgram({
      origin: program.origin,
      bytes: program.bytes,
      ...(program.entryPoints.default === undefined ? {} : { entryPoint: program.entryPoints.default }),
    });
    vm.start();
    const ending = vm.wait({ timeoutSeconds: 60 });
    await vm.whenAllRunning();
    // No await in between: three KVM_CREATE_VCPU calls in flight at once.
    const ids = await Promise.all([vm.hotAddVcpu(), vm.hotAddVcpu(), vm.hotAddVcpu()]);
    expect(ids).toEqual([2, 3, 4]);
    const report = await ending;
    expect(report.exit.reason, summary(report)).toBe('all-done');
    expect(report.vcpus).toBe(5);
    expect(report.perVcpu.map((entry) => entry.exit)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(report.ipis.lost).toBe(0);
  });
});
