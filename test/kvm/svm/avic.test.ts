// One vCPU's AVIC state (src/kvm/svm/avic.ts) alone: avic_vcpu_load / put / blocking / unblocking
// in its physical APIC ID table entry, and the APICv refresh that follows the VM's inhibit bitmap.
import { describe, expect, it } from 'vitest';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { hostThreadSlot, vcpuIndex } from '../../../src/host/identifiers.js';
import { ApicvInhibitReason } from '../../../src/kvm/control/apic-inhibit.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';
import { AvicVcpu, createAvicVmcb } from '../../../src/kvm/svm/avic.js';
import { createdViews, controlWord, requestsOf, ring } from '../vcpu-parts.js';

class FakeLock {
  readonly calls: string[] = [];
  readLock(site: string): void {
    this.calls.push(`lock ${site}`);
  }
  readUnlock(): void {
    this.calls.push('unlock');
  }
}

function setUp(ipiVirtualization = true): { views: ReturnType<typeof createdViews>; avic: AvicVcpu } {
  const views = createdViews(2);
  return { views, avic: new AvicVcpu(views, vcpuIndex(1), ipiVirtualization) };
}

const entry = (views: ReturnType<typeof createdViews>): { running: boolean; host: number } => ({
  running: views.physicalApicIdTable.isRunning(1),
  host: views.physicalApicIdTable.hostPhysicalApicId(1),
});

describe('load, put, blocking', () => {
  it('load publishes the host CPU (control word and entry) and IsRunning; put clears IsRunning and keeps the host id', () => {
    const { views, avic } = setUp();
    avic.load(hostThreadSlot(5));
    expect(controlWord(views, 1, 'hostThreadSlot')).toBe(5);
    expect(entry(views)).toEqual({ running: true, host: 5 });
    avic.put();
    expect(entry(views)).toEqual({ running: false, host: 5 });
    avic.unblocking();
    expect(entry(views)).toEqual({ running: true, host: 5 });
    avic.blocking();
    expect(entry(views)).toEqual({ running: false, host: 5 });
  });

  it('without IPI virtualization (erratum #1235 work-around) IsRunning is never shown', () => {
    const { views, avic } = setUp(false);
    avic.load(hostThreadSlot(3));
    expect(entry(views)).toEqual({ running: false, host: 3 });
  });
});

describe('APICv refresh (kvm_vcpu_update_apicv)', () => {
  it('follows the inhibit bitmap: stale when it changed, IsRunning cleared on deactivation and set again on activation', () => {
    const { views, avic } = setUp();
    avic.load(hostThreadSlot(1));
    const lock = new FakeLock();
    expect(avic.apicvStale()).toBe(false);
    Atomics.or(views.control, views.headerIndex('apicvInhibitReasons'), ApicvInhibitReason.ApicIdModified);
    views.addRequest(1, VcpuRequest.ApicvUpdate);
    expect(avic.apicvStale()).toBe(true);
    avic.updateApicv(lock);
    expect([avic.apicvActive, avic.apicvStale(), entry(views).running]).toEqual([false, false, false]);
    expect(requestsOf(views, 1) & VcpuRequest.ApicvUpdate).toBe(0);
    expect(lock.calls).toEqual(['lock __kvm_vcpu_update_apicv: down_read', 'unlock']);
    // Inhibited, a load shows no IsRunning.
    avic.load(hostThreadSlot(1));
    expect(entry(views).running).toBe(false);
    Atomics.store(views.control, views.headerIndex('apicvInhibitReasons'), 0);
    avic.updateApicv(lock);
    expect([avic.apicvActive, entry(views).running]).toEqual([true, true]);
  });
});

describe('createAvicVmcb', () => {
  it("the VMCB's doorbell rings the host CPU's doorbell line; the two modes differ only in the max index", () => {
    const views = createdViews(2);
    const vmcb = createAvicVmcb(views, vcpuIndex(0), 'upstream', views.apicPageBase(0), false);
    expect(vmcb.physicalId).toBe(apicId(0));
    expect(vmcb.backingPage).toBe(views.apicPageBase(0));
    const before = ring(views, 1);
    vmcb.xavic.ringDoorbell(views.physicalApicIdTable.hostPhysicalApicId(1));
    expect(ring(views, 1)).toBe(before + 1);
    expect(vmcb.x2avic.physicalTable).toBe(vmcb.xavic.physicalTable);
    expect(vmcb.x2avic.maxPhysicalIndex).toBeGreaterThanOrEqual(vmcb.xavic.maxPhysicalIndex);
  });
});

describe('the AMD erratum #1235 model (VmHeader.erratum1235WindowNs)', () => {
  const withWindow = (windowNs: number): ReturnType<typeof createdViews> => {
    const views = createdViews(2);
    Atomics.store(views.control, views.headerIndex('erratum1235WindowNs'), windowNs);
    return views;
  };

  it("on: put and blocking stamp the clear of a set IsRunning with the VM clock, and the VMCB's hardware has the erratum", () => {
    const views = withWindow(100_000);
    let now = 7_000;
    const avic = new AvicVcpu(views, vcpuIndex(1), true, () => now);
    avic.load(hostThreadSlot(1));
    avic.put();
    expect(views.physicalApicIdTable.isRunningClearedAtNs(1)).toBe(7_000);
    now = 9_000;
    avic.put(); // already clear: nothing the hardware could miss, the stamp stays
    expect(views.physicalApicIdTable.isRunningClearedAtNs(1)).toBe(7_000);
    avic.unblocking();
    avic.blocking();
    expect(views.physicalApicIdTable.isRunningClearedAtNs(1)).toBe(9_000);
    const vmcb = createAvicVmcb(views, vcpuIndex(0), 'upstream', views.apicPageBase(0), false, () => now);
    expect(vmcb.xavic.erratum1235?.windowNs).toBe(100_000);
    expect(vmcb.x2avic.erratum1235?.readClockNs()).toBe(9_000);
  });

  it('off (window 0), or without IPI virtualization: no stamp, and no erratum in the hardware', () => {
    const off = createdViews(2);
    const avic = new AvicVcpu(off, vcpuIndex(1), true, () => 5_000);
    avic.load(hostThreadSlot(1));
    avic.put();
    expect(off.physicalApicIdTable.isRunningClearedAtNs(1)).toBe(0);
    expect(createAvicVmcb(off, vcpuIndex(0), 'upstream', off.apicPageBase(0), false, () => 5_000).xavic.erratum1235).toBeUndefined();
    const workAround = withWindow(100_000);
    const shown = new AvicVcpu(workAround, vcpuIndex(1), false, () => 5_000);
    shown.load(hostThreadSlot(1));
    shown.put();
    expect(workAround.physicalApicIdTable.isRunningClearedAtNs(1)).toBe(0);
  });
});
