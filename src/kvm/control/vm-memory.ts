// Typed views over the VM's three SharedArrayBuffers, built the same way on the main thread and in
// every vCPU worker from the structured-cloneable VmBuffers descriptor.

import { float64IndexOf, int32IndexOf, type BufferLayout } from '../../host/shared-layout.js';
import { APIC_PAGE_BYTES, APIC_PAGE_WORDS } from '../../hw/apic/apic-register.js';
import { PHYSICAL_APIC_ID_TABLE_ENTRIES, PhysicalApicIdTable } from '../../hw/avic/physical-apic-id-table.js';
import { LogicalApicIdTable } from '../../hw/avic/logical-apic-id-table.js';
import { MemslotSnapshot } from '../../memory/memslot-snapshot.js';
import { Srcu } from '../../host/srcu.js';
import {
  HostThreadDoorbell,
  VcpuControlBlock,
  VcpuGuestReport,
  VcpuStatistics,
  VmHeader,
  vmControlLayout,
  type VmControlRegion,
} from './vm-layout.js';

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

export class VmMemory {
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

  // Hot indices, computed once from the layout: the IPI path rings doorbells and sets requests
  // millions of times a second, and the layout arithmetic showed up at 15% of a sender's profile.
  readonly #doorbellRing: Int32Array;
  readonly #doorbellSleeping: Int32Array;
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
    this.physicalApicIdTable = new PhysicalApicIdTable(this.control, this.layout.regionOffsets.physicalApicIdTable >> 2, buffers.physicalApicIdTableEntries);
    this.logicalApicIdTable = new LogicalApicIdTable(this.control, this.layout.regionOffsets.logicalApicIdTable >> 2);
    this.memslots = new MemslotSnapshot(this.control, this.layout.regionOffsets.memslots >> 2);
    this.srcu = new Srcu(this.control, this.layout.regionOffsets.srcu >> 2, buffers.vcpuCount + 1);
    const count = buffers.vcpuCount;
    this.#doorbellRing = Int32Array.from({ length: count }, (_, slot) => this.doorbellIndex(slot, 'ring'));
    this.#doorbellSleeping = Int32Array.from({ length: count }, (_, slot) => this.doorbellIndex(slot, 'sleeping'));
    this.#requests = Int32Array.from({ length: count }, (_, vcpu) => this.controlBlockIndex(vcpu, 'requests'));
    this.#hostThreadSlot = Int32Array.from({ length: count }, (_, vcpu) => this.controlBlockIndex(vcpu, 'hostThreadSlot'));
    this.#apicPageBase = Int32Array.from({ length: count }, (_, vcpu) => this.controlBlockIndex(vcpu, 'apicPageBase'));
    this.#createdVcpus = this.headerIndex('createdVcpus');
  }

  get vcpuCount(): number {
    return this.buffers.vcpuCount;
  }

  headerIndex(field: keyof typeof VmHeader.fieldOffsets): number {
    return int32IndexOf(this.layout, 'header', VmHeader, 0, field);
  }

  doorbellIndex(slot: number, field: keyof typeof HostThreadDoorbell.fieldOffsets): number {
    return int32IndexOf(this.layout, 'doorbells', HostThreadDoorbell, slot, field);
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

  /** Rings a host thread's doorbell: the AVIC doorbell and KVM's wake-up share this line. */
  ringDoorbell(slot: number): void {
    Atomics.add(this.control, this.#doorbellRing[slot]!, 1);
    // Pairs with the sleeper's "sleeping = 1, then Atomics.wait(ring, seen)": either it sees our add
    // (the wait returns not-equal) or we see sleeping = 1 and notify.
    if (Atomics.load(this.control, this.#doorbellSleeping[slot]!) !== 0) {
      Atomics.notify(this.control, this.#doorbellRing[slot]!, 1);
    }
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

  /** Sets a request and makes the vCPU look at it (kvm_make_request + kvm_vcpu_kick). */
  kick(vcpu: number, request: number): void {
    this.addRequest(vcpu, request);
    const slot = Atomics.load(this.control, this.#hostThreadSlot[vcpu]!);
    if (slot >= 0) this.ringDoorbell(slot);
  }
}

