// Test doubles for the vCPU's pieces, without worker threads: real control views over small buffers
// with the vCPUs created as the main thread would (reset page, Valid entry, counted), counters that
// remember what was counted, a CPU that remembers what it was asked.

import { TaskState } from '../../src/host/run-queue.js';
import { apicId, hostPhysicalApicId } from '../../src/hw/apic/apic-id.js';
import { resetApicPage } from '../../src/hw/apic/apic-backing-page.js';
import { allocateVmBuffers, VmControlViews } from '../../src/kvm/control/vm-control-views.js';
import { VcpuRunState } from '../../src/kvm/control/vcpu-run-state.js';
import { VcpuStatistic } from '../../src/kvm/control/vm-layout.js';
import type { VcpuCounting } from '../../src/kvm/control/vcpu-counters.js';
import { ApicRegisterPage } from '../../src/kvm/lapic/apic-register-page.js';

/**
 * A VM's control views with `vcpus` vCPUs created: reset pages, Valid physical table entries, and
 * each vCPU loaded on host thread slot = its index (so a kick rings that slot's doorbell line).
 */
export function createdViews(vcpus: number): VmControlViews {
  const views = new VmControlViews(allocateVmBuffers(vcpus, 1 << 16));
  const control = views.control;
  for (let vcpu = 0; vcpu < vcpus; vcpu++) {
    const base = views.apicPageRegionBase(0, vcpu);
    resetApicPage(views.apicPageWords, base, apicId(vcpu));
    Atomics.store(control, views.controlBlockIndex(vcpu, 'apicPageBase'), base);
    Atomics.store(control, views.controlBlockIndex(vcpu, 'runState'), VcpuRunState.Running);
    Atomics.store(control, views.controlBlockIndex(vcpu, 'hostThreadSlot'), vcpu);
    views.runQueues.setState(vcpu, TaskState.Running);
    views.physicalApicIdTable.storeEntry(apicId(vcpu), {
      hostPhysicalApicId: hostPhysicalApicId(vcpu),
      backingPagePointer: 0x1_0000_0000 + vcpu * 4096,
      isRunning: false,
      isValid: true,
    });
  }
  Atomics.store(control, views.headerIndex('createdVcpus'), vcpus);
  Atomics.store(control, views.headerIndex('hostCpus'), vcpus);
  return views;
}

/** vCPU `vcpu`'s APIC page as its own pieces see it. */
export function pageOf(views: VmControlViews, vcpu: number): ApicRegisterPage {
  return new ApicRegisterPage(views.apicPageWords, views.apicPageBase(vcpu));
}

const STATISTIC_NAMES = new Map(Object.entries(VcpuStatistic).map(([name, offset]) => [offset, name]));

/** Counters that remember, by VcpuStatistic name (incompleteIpiExits + cause as incompleteIpiExits[cause]). */
export class FakeCounters implements VcpuCounting {
  readonly counts = new Map<string, number>();

  count(statistic: number, amount = 1): void {
    const cause = statistic - VcpuStatistic.incompleteIpiExits;
    const name = cause >= 0 && cause < 5 ? `incompleteIpiExits[${cause}]` : (STATISTIC_NAMES.get(statistic) ?? `statistic ${statistic}`);
    this.counts.set(name, (this.counts.get(name) ?? 0) + amount);
  }

  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  /** The non-zero counts, for whole-record comparisons. */
  nonZero(): Record<string, number> {
    return Object.fromEntries([...this.counts].filter(([, value]) => value !== 0));
  }
}

/** A CPU that counts its interrupt-evaluation and exit requests. */
export class FakeCpu {
  evaluations = 0;
  exits = 0;

  requestInterruptEvaluation(): void {
    this.evaluations++;
  }

  requestExit(): void {
    this.exits++;
  }
}

export const ring = (views: VmControlViews, slot: number): number => Atomics.load(views.control, views.hostCpuIndex(slot, 'ring'));
export const requestsOf = (views: VmControlViews, vcpu: number): number =>
  Atomics.load(views.control, views.controlBlockIndex(vcpu, 'requests'));
export const controlWord = (views: VmControlViews, vcpu: number, field: Parameters<VmControlViews['controlBlockIndex']>[1]): number =>
  Atomics.load(views.control, views.controlBlockIndex(vcpu, field));
