// Physical APIC ID table sizes per AVIC mode (AMD APM vol. 2, 15.29; svm.h AVIC_MAX_PHYSICAL_ID
// and X2AVIC_MAX_PHYSICAL_ID; KVM avic_get_max_physical_id). xAVIC indexes 0..0xFE (0xFF is the
// xAPIC broadcast); x2AVIC indexes 0..0x1FF in the same 4 KiB table of 8-byte entries; the newer
// "4K" x2AVIC extension (0..0xFFF, 32 KiB) is not modelled. The VMCB max index is the highest
// index the hardware may use, which KVM clamps to the highest vCPU ID the VM can have.
//
// Callers: the kvm layer sets AvicHardware.maxPhysicalIndex = avicMaxPhysicalIndex(mode, vcpus)
// and, when a vCPU enters x2APIC mode, re-derives it for AvicMode.X2avic. The table region
// (src/kvm/control/vm-layout.ts) holds PHYSICAL_APIC_ID_TABLE_ENTRIES (physical-apic-id-table.ts).

import { X2AVIC_MAX_PHYSICAL_ID, XAPIC_BROADCAST_ID, XAPIC_MAX_PHYSICAL_ID } from '../apic/apic-id.js';
import { X2APIC_BROADCAST_ID } from '../apic/x2apic-id.js';
import { PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES } from './physical-apic-id-table.js';

export { PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES };

export const AvicMode = {
  /** int_ctl bit 31 only: xAPIC guests, logical table in use. */
  Xavic: 0,
  /** int_ctl bits 31 and 30: x2APIC guests, no logical table (IDs are arithmetic, avic_kick_target_vcpus_fast). */
  X2avic: 1,
} as const;
export type AvicMode = (typeof AvicMode)[keyof typeof AvicMode];

/** svm.h AVIC_MAX_PHYSICAL_ID: 0xFE. */
export const AVIC_MAX_PHYSICAL_ID = XAPIC_MAX_PHYSICAL_ID;
/** svm.h X2AVIC_MAX_PHYSICAL_ID: 0x1FF. */
export const X2AVIC_MAX_PHYSICAL_INDEX = X2AVIC_MAX_PHYSICAL_ID;

/** Highest physical table index the hardware can use in `mode`. */
export function maxPhysicalIndexFor(mode: AvicMode): number {
  return mode === AvicMode.X2avic ? X2AVIC_MAX_PHYSICAL_INDEX : AVIC_MAX_PHYSICAL_ID;
}

/** Usable entries in `mode`: 255 (xAVIC, 0..0xFE) or 512 (x2AVIC). */
export function physicalTableEntriesFor(mode: AvicMode): number {
  return maxPhysicalIndexFor(mode) + 1;
}

/** Table bytes the hardware may touch in `mode` (always within one 4 KiB page here). */
export function physicalTableBytesFor(mode: AvicMode): number {
  return physicalTableEntriesFor(mode) * PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES;
}

/**
 * The VMCB max physical index for a VM of `vcpuCount` vCPUs whose IDs are 0..vcpuCount-1: the
 * smaller of the mode's limit and the highest ID (avic_get_max_physical_id). Throws RangeError
 * for vcpuCount < 1; a VM with more vCPUs than the mode allows must inhibit AVIC instead
 * (APICV_INHIBIT_REASON_PHYSICAL_ID_TOO_BIG), which vcpuCountFitsAvicMode tells the caller.
 */
export function avicMaxPhysicalIndex(mode: AvicMode, vcpuCount: number): number {
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1) throw new RangeError(`vCPU count must be a positive integer, got ${vcpuCount}`);
  return Math.min(maxPhysicalIndexFor(mode), vcpuCount - 1);
}

/** True when every vCPU ID 0..vcpuCount-1 has a table index in `mode`. */
export function vcpuCountFitsAvicMode(mode: AvicMode, vcpuCount: number): boolean {
  return vcpuCount >= 1 && vcpuCount - 1 <= maxPhysicalIndexFor(mode);
}

/** The physical broadcast destination of `mode`: 0xFF (xAPIC) or 0xFFFFFFFF (x2APIC). */
export function physicalBroadcastDestination(mode: AvicMode): number {
  return mode === AvicMode.X2avic ? X2APIC_BROADCAST_ID : XAPIC_BROADCAST_ID;
}

/**
 * Whether a physical destination names a table index in `mode`: not the broadcast, and within
 * 0..maxPhysicalIndex. A destination above it is an invalid target (cause 2) for x2AVIC, the same
 * as a not-Valid entry; callers test the broadcast first.
 */
export function isPhysicalIndexInRange(mode: AvicMode, destination: number, maxPhysicalIndex: number): boolean {
  const value = destination >>> 0;
  return value !== physicalBroadcastDestination(mode) && value <= Math.min(maxPhysicalIndex, maxPhysicalIndexFor(mode));
}
