// The VM's control views: typed views over its shared control buffer (the header, per-vCPU control
// blocks and counters, the AVIC physical and logical APIC ID tables, the memslot table, SRCU, the
// host CPUs, their run queues and the vCPU tasks) and over its APIC pages, with the index arithmetic of their layout
// (vm-layout.ts). Built the same way on the main thread and in every vCPU worker from the
// structured-cloneable VmBuffers descriptor. Guest RAM is not viewed here: the guest CPU maps it.

import { float64IndexOf, int32IndexOf, type BufferLayout } from '../../host/shared-layout.js';
import { pendingDeliverableVector } from '../../hw/apic/apic-backing-page.js';
import { APIC_PAGE_BYTES, APIC_PAGE_WORDS } from '../../hw/apic/apic-register.js';
import { PHYSICAL_APIC_ID_TABLE_ENTRIES, PhysicalApicIdTable } from '../../hw/avic/physical-apic-id-table.js';
import { LogicalApicIdTable } from '../../hw/avic/logical-apic-id-table.js';
import { MemslotSnapshot } from '../../memory/memslot-snapshot.js';
import { Srcu } from '../../host/srcu.js';
import { HostCpus, type HostCpuStateField } from '../../host/host-cpu.js';
import { RunQueues } from '../../host/run-queue.js';
import { VcpuSaveArea, VcpuSaveAreaView } from './vcpu-save-area.js';
import { VcpuScheduling } from './vcpu-scheduling.js';
import { VcpuControlBlock, VcpuGuestReport, VcpuStatistics, VmHeader, vmControlLayout, type VmControlRegion } from './vm-layout.js';

/** Regions of per-vCPU APIC pages in apicPages (vm-layout.ts: the rfc-v2 policy alternates them). */
export const APIC_PAGE_REGIONS = 2;

/** Everything a worker needs to map the VM; sent in the task payload (buffers are shared, not copied). */
export interface VmBuffers {
  readonly vcpuCount: number;
  /** Entries of the physical APIC ID table region (vm-layout.ts): 512 per page, 1 to 8 pages. */
  readonly physicalApicIdTableEntries: number;
  readonly ram: SharedArrayBuffer;
  readonly apicPages: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
}

/** How big the VM's sized regions are; the defaults are the largest a VM of up to 512 vCPUs needs. */
export interface VmBufferSizes {
  /** Default PHYSICAL_APIC_ID_TABLE_ENTRIES (one page); VMs size it with physicalApicIdTableBytes (x2avic.ts). */
  readonly physicalApicIdTableEntries?: number;
  /** Regions of APIC pages: 2 for rfc-v2 (the default), 1 under the upstream policy, which never uses region 1. */
  readonly apicPageRegions?: number;
}

export function allocateVmBuffers(vcpuCount: number, ramBytes: number, sizes: VmBufferSizes = {}): VmBuffers {
  const physicalApicIdTableEntries = sizes.physicalApicIdTableEntries ?? PHYSICAL_APIC_ID_TABLE_ENTRIES;
  const layout = vmControlLayout(vcpuCount, physicalApicIdTableEntries);
  return {
    vcpuCount,
    physicalApicIdTableEntries,
    ram: new SharedArrayBuffer(ramBytes),
    apicPages: new SharedArrayBuffer((sizes.apicPageRegions ?? APIC_PAGE_REGIONS) * vcpuCount * APIC_PAGE_BYTES),
    control: new SharedArrayBuffer(layout.byteSize),
  };
}

/** All shared bytes of the VM: guest RAM, the APIC pages and the control buffer. */
export function vmSharedBytes(buffers: VmBuffers): number {
  return buffers.ram.byteLength + buffers.apicPages.byteLength + buffers.control.byteLength;
}

/** One thread's views of the VM's control plane (everything shared but guest RAM). */
export class VmControlViews {
  readonly buffers: VmBuffers;
  readonly layout: BufferLayout<VmControlRegion>;
  readonly control: Int32Array;
  readonly controlFloat64: Float64Array;
  /** All APIC register pages: region r's page of vCPU i starts at word (r * vcpuCount + i) * 1024 (one region under upstream). */
  readonly apicPageWords: Int32Array;
  readonly physicalApicIdTable: PhysicalApicIdTable;
  readonly logicalApicIdTable: LogicalApicIdTable;
  readonly memslots: MemslotSnapshot;
  readonly srcu: Srcu;
  /** The host CPUs (src/host/host-cpu.ts): doorbell and wake words, what each has loaded, counters. */
  readonly hostCpus: HostCpus;
  /** The vCPU tasks and the host CPUs' run queues (src/host/run-queue.ts). */
  readonly runQueues: RunQueues;
  /** KVM's block / wake protocol over them (vcpu-scheduling.ts): kvm_vcpu_wake_up, kvm_vcpu_kick. */
  readonly scheduling: VcpuScheduling;

  // Hot indices, computed once from the layout: the IPI path rings doorbells and sets requests
  // millions of times a second, and the layout arithmetic showed up at 15% of a sender's profile.
  readonly #requests: Int32Array;
  readonly #hostThreadSlot: Int32Array;
  readonly #apicPageBase: Int32Array;
  readonly #createdVcpus: number;

  constructor(buffers: VmBuffers) {
    this.buffers = buffers;
    this.layout = vmControlLayout(buffers.vcpuCount, buffers.physicalApicIdTableEntries);
    if (buffers.control.byteLength !== this.layout.byteSize) throw new RangeError('control buffer does not match its layout');
    this.control = new Int32Array(buffers.control);
    this.controlFloat64 = new Float64Array(buffers.control);
    this.apicPageWords = new Int32Array(buffers.apicPages);
    this.physicalApicIdTable = new PhysicalApicIdTable(
      this.control,
      this.layout.regionOffsets.physicalApicIdTable >> 2,
      buffers.physicalApicIdTableEntries,
      new Float64Array(buffers.control, this.layout.regionOffsets.physicalApicIdTableClearedAt, buffers.physicalApicIdTableEntries),
    );
    this.logicalApicIdTable = new LogicalApicIdTable(this.control, this.layout.regionOffsets.logicalApicIdTable >> 2);
    this.memslots = new MemslotSnapshot(this.control, this.layout.regionOffsets.memslots >> 2);
    this.srcu = new Srcu(this.control, this.layout.regionOffsets.srcu >> 2, buffers.vcpuCount + 1);
    const count = buffers.vcpuCount;
    const offsets = this.layout.regionOffsets;
    this.hostCpus = new HostCpus(this.control, offsets.hostCpus, offsets.hostCpuStatistics, count);
    this.runQueues = new RunQueues(this.control, offsets.hostTasks, offsets.runQueues, count);
    this.#requests = Int32Array.from({ length: count }, (_, vcpu) => this.controlBlockIndex(vcpu, 'requests'));
    this.#hostThreadSlot = Int32Array.from({ length: count }, (_, vcpu) => this.controlBlockIndex(vcpu, 'hostThreadSlot'));
    this.#apicPageBase = Int32Array.from({ length: count }, (_, vcpu) => this.controlBlockIndex(vcpu, 'apicPageBase'));
    this.#createdVcpus = this.headerIndex('createdVcpus');
    const hostSlots = this.#hostThreadSlot;
    this.scheduling = new VcpuScheduling(this.hostCpus, this.runQueues, {
      control: this.control,
      hostSlotIndex: (vcpu) => hostSlots[vcpu]!,
      hostCpuCountIndex: this.headerIndex('hostCpus'),
      interruptPending: (vcpu) => pendingDeliverableVector(this.apicPageWords, this.apicPageBase(vcpu)) >= 0,
    });
  }

  /** vCPU `vcpu`'s save area (vcpu-save-area.ts): its state while it moves between host CPUs. */
  saveArea(vcpu: number): VcpuSaveAreaView {
    return new VcpuSaveAreaView(this.control, this.layout.regionOffsets.vcpuSaveAreas + vcpu * VcpuSaveArea.byteSize);
  }

  get vcpuCount(): number {
    return this.buffers.vcpuCount;
  }

  headerIndex(field: keyof typeof VmHeader.fieldOffsets): number {
    return int32IndexOf(this.layout, 'header', VmHeader, 0, field);
  }

  hostCpuIndex(host: number, field: HostCpuStateField): number {
    return this.hostCpus.index(host, field);
  }

  controlBlockIndex(vcpu: number, field: keyof typeof VcpuControlBlock.fieldOffsets): number {
    return int32IndexOf(this.layout, 'vcpuControlBlocks', VcpuControlBlock, vcpu, field);
  }

  statisticIndex(vcpu: number, field: keyof typeof VcpuStatistics.fieldOffsets): number {
    return float64IndexOf(this.layout, 'vcpuStatistics', VcpuStatistics, vcpu, field);
  }

  guestReportIndex(vcpu: number, field: keyof typeof VcpuGuestReport.fieldOffsets): number {
    return float64IndexOf(this.layout, 'vcpuGuestReports', VcpuGuestReport, vcpu, field);
  }

  /** Word index of vCPU i's page in region r (where the page lives; not whether it is current). */
  apicPageRegionBase(region: number, vcpu: number): number {
    return (region * this.buffers.vcpuCount + vcpu) * APIC_PAGE_WORDS;
  }

  /**
   * Word index of vCPU i's current APIC register page (the one its physical table entry points to).
   * Fixed under the upstream policy; moved by the main thread under rfc-v2 (it stores the new base
   * before it rewrites the table entry, so software delivery never lags the hardware's view).
   */
  apicPageBase(vcpu: number): number {
    return Atomics.load(this.control, this.#apicPageBase[vcpu]!);
  }

  /** vCPUs 0..n-1 exist (KVM's online_vcpus); the rest are slots for hot-add. */
  createdVcpus(): number {
    return Atomics.load(this.control, this.#createdVcpus);
  }

  /** Rings a host CPU's AVIC doorbell: only the vCPU in guest mode there notices; it wakes nothing. */
  ringDoorbell(host: number): void {
    this.hostCpus.ring(host);
  }

  /** Wakes the main thread's service loop. */
  ringMainDoorbell(): void {
    const index = this.headerIndex('mainDoorbell');
    Atomics.add(this.control, index, 1);
    Atomics.notify(this.control, index);
  }

  addRequest(vcpu: number, request: number): void {
    Atomics.or(this.control, this.#requests[vcpu]!, request);
  }

  /**
   * Sets a request and makes the vCPU look at it (kvm_make_request + kvm_vcpu_kick): the bit first,
   * then the wake-up (O4, O10).
   */
  kick(vcpu: number, request: number): void {
    if (request !== 0) this.addRequest(vcpu, request);
    this.scheduling.kick(vcpu);
  }

  /** Kicks until endKicks notify each host CPU once, at the end (VcpuScheduling.beginWakeUps). */
  beginKicks(): void {
    this.scheduling.beginWakeUps();
  }

  endKicks(): void {
    this.scheduling.endWakeUps();
  }
}
