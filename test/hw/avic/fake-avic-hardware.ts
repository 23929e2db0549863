// An in-memory AvicHardware for tests: every backing page in one Int32Array, the tables in their
// own arrays, and a doorbell that records whom it rang.

import { apicId, hostPhysicalApicId, XAPIC_MAX_PHYSICAL_ID, type ApicId, type HostPhysicalApicId } from '../../../src/hw/apic/apic-id.js';
import { APIC_PAGE_WORDS, ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { isIrrSet, resetApicPage, writeApicRegister } from '../../../src/hw/apic/apic-backing-page.js';
import { PhysicalApicIdTable } from '../../../src/hw/avic/physical-apic-id-table.js';
import { LogicalApicIdTable, logicalApicIdTableIndex } from '../../../src/hw/avic/logical-apic-id-table.js';
import type { AvicHardware } from '../../../src/hw/avic/avic-ipi-delivery.js';
import type { Erratum1235 } from '../../../src/hw/avic/erratum-1235.js';

/** Backing pages live at this fake host-physical address and up (above 4 GiB to use bits 51:32). */
export const FIRST_PAGE_POINTER = 0x1_0000_0000;
export const FLAT = -1;
export const CLUSTER = 0x0fffffff;

export class FakeAvicHardware implements AvicHardware {
  readonly physicalTable: PhysicalApicIdTable;
  readonly logicalTable = new LogicalApicIdTable(new Int32Array(1024), 0);
  readonly maxPhysicalIndex: number;
  readonly pageWords: Int32Array;
  readonly pageCount: number;
  readonly doorbells: HostPhysicalApicId[] = [];
  /** The AMD erratum #1235 model: off unless a test sets it. */
  erratum1235: Erratum1235 | undefined = undefined;

  /** `tableEntries`: the physical table's size (512, one page, unless a test needs the 4K extension's). */
  constructor(pageCount: number, maxPhysicalIndex: number = XAPIC_MAX_PHYSICAL_ID, tableEntries = 512) {
    this.physicalTable = new PhysicalApicIdTable(new Int32Array(tableEntries * 2), 0, tableEntries);
    this.pageCount = pageCount;
    this.maxPhysicalIndex = maxPhysicalIndex;
    this.pageWords = new Int32Array(new SharedArrayBuffer(pageCount * APIC_PAGE_WORDS * 4));
  }

  resolveBackingPage(backingPagePointer: number): number {
    const page = (backingPagePointer - FIRST_PAGE_POINTER) / 4096;
    return Number.isInteger(page) && page >= 0 && page < this.pageCount ? page * APIC_PAGE_WORDS : -1;
  }

  ringDoorbell(host: HostPhysicalApicId): void {
    this.doorbells.push(host);
  }

  /** Page k belongs to APIC ID k; its host ID is 0x100 + k (within 12 bits) so doorbells are easy to read. */
  pageBase(id: number): number {
    return id * APIC_PAGE_WORDS;
  }

  hostOf(id: number): HostPhysicalApicId {
    return hostPhysicalApicId((0x100 + id) & 0xfff);
  }

  /** Creates vCPU `id` (reset page + Valid entry), running or not, with optional LDR/DFR. */
  addVcpu(id: number, options: { running?: boolean; ldr?: number; dfr?: number; pointer?: number } = {}): ApicId {
    const apic = apicId(id);
    resetApicPage(this.pageWords, this.pageBase(id), apic);
    const dfr = options.dfr ?? FLAT;
    writeApicRegister(this.pageWords, this.pageBase(id), ApicRegister.DestinationFormat, dfr);
    if (options.ldr !== undefined) {
      writeApicRegister(this.pageWords, this.pageBase(id), ApicRegister.LogicalDestination, options.ldr);
      const index = logicalApicIdTableIndex(options.ldr, dfr);
      if (index >= 0) this.logicalTable.storeEntry(index, id);
    }
    this.physicalTable.storeEntry(id, {
      hostPhysicalApicId: this.hostOf(id),
      backingPagePointer: options.pointer ?? FIRST_PAGE_POINTER + id * 4096,
      isRunning: false,
      isValid: true,
    });
    if (options.running === true) this.physicalTable.setIsRunning(id, true, this.hostOf(id));
    return apic;
  }

  irr(id: number, vector: number): boolean {
    return isIrrSet(this.pageWords, this.pageBase(id), vector);
  }

  /** Vcpus (by page) with `vector` set in IRR. */
  irrHolders(vector: number): number[] {
    const holders: number[] = [];
    for (let id = 0; id < this.pageCount; id++) if (this.irr(id, vector)) holders.push(id);
    return holders;
  }
}
