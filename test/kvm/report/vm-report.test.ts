// The run report built from a plain record (VmReportInput) over the VM's memory, without a VM or
// worker threads: the IPI balance computes `lost`, and only an unexpected lockdep report fails the run.
import { describe, expect, it } from 'vitest';
import { buildVmReport, type VmReportInput } from '../../../src/kvm/report/vm-report.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { setIrrAtomic } from '../../../src/hw/apic/apic-backing-page.js';

const LOCKDEP_REPORT = { kind: 'circular', cycle: ['a', 'b'], text: 'possible circular locking dependency' };

function input(memory: VmControlViews, overrides: Partial<VmReportInput> = {}): VmReportInput {
  return {
    memory,
    createdVcpus: 2,
    config: { policy: 'upstream', ipiVirtualization: true, maxVcpus: 2, hostCpus: 2, quantumUs: 1500, hostIdlePollUs: 0 },
    creation: { hotAdds: 0, hotAddMs: [], apicAccessMemslotResizes: 0, backingPagesReinitialised: 0, strandedIrrBits: 0 },
    memslots: { updates: 2, gracePeriods: 0, gracePeriodMsTotal: 0, gracePeriodMsMax: 0 },
    lockdep: { enabled: false },
    lockReportExpected: false,
    sourceOf: () => undefined,
    ...overrides,
  };
}

/** Two created vCPUs with their APIC pages where vCPU creation puts them (upstream: region 0). */
function vmMemory(): VmControlViews {
  const memory = new VmControlViews(allocateVmBuffers(2, 1 << 16));
  for (const vcpu of [0, 1])
    Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'apicPageBase'), memory.apicPageRegionBase(0, vcpu));
  return memory;
}

function count(memory: VmControlViews, vcpu: number, name: 'ipisSent' | 'ipisAccepted' | 'interruptsDelivered', value: number): void {
  memory.controlFloat64[memory.statisticIndex(vcpu, name)] = value;
}

const DONE = { reason: 'done', latencyHistogram: undefined };
const TIMING = { durationSeconds: 2, startupSeconds: 1 };
const EXIT = { reason: 'all-done', detail: 'every vCPU reported done' } as const;

describe('buildVmReport, from a plain record', () => {
  it('balances the IPIs: an accepted IPI neither delivered nor pending is lost, and fails the run', () => {
    const memory = vmMemory();
    count(memory, 0, 'ipisSent', 3);
    count(memory, 1, 'ipisAccepted', 3);
    count(memory, 1, 'interruptsDelivered', 1);
    expect(setIrrAtomic(memory.apicPageWords, memory.apicPageBase(1), 0x40)).toBe(true);
    const report = buildVmReport(input(memory), EXIT, [DONE, DONE], TIMING);
    expect(report.ipis).toMatchObject({ sent: 3, accepted: 3, delivered: 1, pending: 1, lost: 1 });
    expect(report.perVcpu[1]?.pendingVectors).toEqual([0x40]);
    expect(report.ipisPerSecond).toBe(1);
    expect(report.ok).toBe(false);
  });

  it('a lockdep report fails the run unless the run injected a replay that expects one', () => {
    const memory = vmMemory();
    const lockdep = { enabled: true, report: LOCKDEP_REPORT };
    expect(buildVmReport(input(memory), EXIT, [DONE, DONE], TIMING).ok).toBe(true);
    expect(buildVmReport(input(memory, { lockdep }), EXIT, [DONE, DONE], TIMING).ok).toBe(false);
    expect(buildVmReport(input(memory, { lockdep, lockReportExpected: true }), EXIT, [DONE, DONE], TIMING).ok).toBe(true);
  });

  it("names a vCPU that never finished or failed, and copies the record's statistics", () => {
    const memory = vmMemory();
    const creation = { hotAdds: 2, hotAddMs: [5, 1, 3], apicAccessMemslotResizes: 0, backingPagesReinitialised: 0, strandedIrrBits: 0 };
    const report = buildVmReport(input(memory, { creation }), EXIT, [new Error('worker died'), undefined], TIMING);
    expect(report.perVcpu.map((vcpu) => vcpu.exit)).toEqual(['error', 'did not finish']);
    expect(report.errors).toEqual([{ vcpu: 0, message: 'worker died' }]);
    expect(report.vcpuCreation).toMatchObject({ created: 2, maxVcpus: 2, hotAdds: 2, hotAddMsMedian: 3, hotAddMsMax: 5 });
    expect(report.memslots).toEqual({ updates: 2, gracePeriods: 0, gracePeriodMsTotal: 0, gracePeriodMsMax: 0 });
  });
});
