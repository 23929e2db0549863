// The logical APIC ID table (AMD APM vol. 2, 15.29; svm.h AVIC_LOGICAL_ID_ENTRY_*): 32-bit entries indexed from a logical APIC
// ID, each naming a guest physical APIC ID. xAPIC only; x2AVIC derives logical IDs from x2APIC IDs.
//
// Writers: the main thread only (it rebuilds the table when a guest LDR/DFR write traps, kvm_recalculate_apic_map),
// with Atomics.store. Readers: IPI senders, with Atomics.load. An LDR change first invalidates the
// old index (atomic clear of bit 31), then stores the new one; a sender in that window sees the
// old mapping or an invalid entry, and an invalid entry makes the IPI exit with cause 2, which
// software re-emulates (O8 in docs/architecture.md#orderings).

import { DestinationFormatModel, LOGICAL_BROADCAST_CLUSTER, destinationFormatModel } from '../apic/destination-format.js';

/** svm.h AVIC_LOGICAL_ID_ENTRY_GUEST_PHYSICAL_ID_MASK. */
export const AVIC_LOGICAL_ID_ENTRY_GUEST_PHYSICAL_ID_MASK = 0xff;
/** svm.h AVIC_LOGICAL_ID_ENTRY_VALID_MASK (bit 31). */
export const AVIC_LOGICAL_ID_ENTRY_VALID_MASK = 1 << 31;
/** The table is one 4 KiB page of 32-bit entries; xAPIC uses indices 0..59. */
export const LOGICAL_APIC_ID_TABLE_ENTRIES = 1024;

export interface LogicalApicIdTableEntry {
  readonly guestPhysicalApicId: number;
  readonly isValid: boolean;
}

export function logicalEntryIsValid(entry: number): boolean {
  return (entry & AVIC_LOGICAL_ID_ENTRY_VALID_MASK) !== 0;
}

export function logicalEntryGuestPhysicalApicId(entry: number): number {
  return entry & AVIC_LOGICAL_ID_ENTRY_GUEST_PHYSICAL_ID_MASK;
}

/** Encodes an entry as the Int32 value the table holds. */
export function encodeLogicalApicIdTableEntry(entry: LogicalApicIdTableEntry): number {
  return (
    (entry.guestPhysicalApicId & AVIC_LOGICAL_ID_ENTRY_GUEST_PHYSICAL_ID_MASK) | (entry.isValid ? AVIC_LOGICAL_ID_ENTRY_VALID_MASK : 0)
  );
}

export function decodeLogicalApicIdTableEntry(entry: number): LogicalApicIdTableEntry {
  return { guestPhysicalApicId: logicalEntryGuestPhysicalApicId(entry), isValid: logicalEntryIsValid(entry) };
}

/** Position of the single set bit of `bits`, or -1 if none or several are set. */
function singleBitPosition(bits: number): number {
  return bits !== 0 && (bits & (bits - 1)) === 0 ? 31 - Math.clz32(bits) : -1;
}

/**
 * The table index for a vCPU's LDR under a DFR (KVM avic_get_logical_id_entry), or -1 when
 * the LDR names no entry: a logical ID of zero or with several member bits (KVM refuses those,
 * is_power_of_2), cluster 15, or a reserved DFR model.
 *   flat:    index = position of the set bit in LDR[31:24] (0..7)
 *   cluster: index = cluster * 4 + position of the set bit in LDR[27:24] (cluster 0..14)
 */
export function logicalApicIdTableIndex(ldr: number, dfr: number): number {
  const logicalId = ldr >>> 24;
  const model = destinationFormatModel(dfr);
  if (model === DestinationFormatModel.Flat) return singleBitPosition(logicalId);
  if (model === -1) return -1;
  const cluster = logicalId >>> 4;
  if (cluster === LOGICAL_BROADCAST_CLUSTER) return -1;
  const member = singleBitPosition(logicalId & 0xf);
  return member < 0 ? -1 : (cluster << 2) + member;
}

/** The table over LOGICAL_APIC_ID_TABLE_ENTRIES words of `words` starting at `logicalBase`. */
export class LogicalApicIdTable {
  readonly words: Int32Array;
  readonly logicalBase: number;

  constructor(words: Int32Array, logicalBase: number) {
    if (logicalBase < 0 || logicalBase + LOGICAL_APIC_ID_TABLE_ENTRIES > words.length) {
      throw new RangeError(`logical APIC ID table at word ${logicalBase} is outside its ${words.length}-word array`);
    }
    this.words = words;
    this.logicalBase = logicalBase;
  }

  /** The raw entry (Atomics.load; senders call this on the IPI path). */
  load(index: number): number {
    return Atomics.load(this.words, this.logicalBase + index);
  }

  /** Main thread only: a Valid entry naming `guestPhysicalApicId` (KVM avic_ldr_write). */
  storeEntry(index: number, guestPhysicalApicId: number): void {
    this.checkIndex(index);
    Atomics.store(this.words, this.logicalBase + index, encodeLogicalApicIdTableEntry({ guestPhysicalApicId, isValid: true }));
  }

  /** Main thread only: atomic clear of Valid (KVM avic_invalidate_logical_id_entry). */
  invalidate(index: number): void {
    this.checkIndex(index);
    Atomics.and(this.words, this.logicalBase + index, ~AVIC_LOGICAL_ID_ENTRY_VALID_MASK);
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= LOGICAL_APIC_ID_TABLE_ENTRIES) {
      throw new RangeError(`logical APIC ID table index out of range: ${index}`);
    }
  }
}
