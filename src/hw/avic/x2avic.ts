// Physical APIC ID table sizes per AVIC mode (AMD APM vol. 2, 15.29; svm.h AVIC_MAX_PHYSICAL_ID,
// X2AVIC_MAX_PHYSICAL_ID and X2AVIC_4K_MAX_PHYSICAL_ID; KVM avic_hardware_setup,
// __avic_get_max_physical_id, avic_get_physical_id_table_order). xAVIC indexes 0..0xFE (0xFF is
// the xAPIC broadcast); x2AVIC indexes 0..0x1FF, or 0..0xFFF on a CPU with the "4K" extension
// (X86_FEATURE_X2AVIC_EXT, CPUID 0x8000000A ECX bit 6), whose table then spans up to 8 pages of
// 8-byte entries. The VMCB max index (avic_physical_id bits 11:0, AVIC_PHYSICAL_MAX_INDEX_MASK)
// is the highest index the hardware may use, which KVM clamps to the highest vCPU ID the VM can have.
//
// Callers: the kvm layer sizes the VM's table with physicalApicIdTableBytes (at VM creation, as
// KVM allocates it at the first vCPU's avic_vcpu_precreate), sets AvicHardware.maxPhysicalIndex =
// avicMaxPhysicalIndex(mode, vcpus, extended) per vCPU mode, and inhibits AVIC
// (PHYSICAL_ID_TOO_BIG) for a vCPU ID above avicReachMaxId, as avic_init_backing_page does.

import { X2AVIC_4K_MAX_PHYSICAL_ID, X2AVIC_MAX_PHYSICAL_ID, XAPIC_BROADCAST_ID, XAPIC_MAX_PHYSICAL_ID } from '../apic/apic-id.js';
import { APIC_PAGE_BYTES } from '../apic/apic-register.js';
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
/** svm.h X2AVIC_4K_MAX_PHYSICAL_ID: 0xFFF, with X86_FEATURE_X2AVIC_EXT. */
export const X2AVIC_4K_MAX_PHYSICAL_INDEX = X2AVIC_4K_MAX_PHYSICAL_ID;
/** svm.h AVIC_PHYSICAL_MAX_INDEX_MASK, GENMASK_ULL(11, 0): the VMCB field every max index fits. */
export const AVIC_PHYSICAL_MAX_INDEX_MASK = 0xfff;

/** KVM's x2avic_max_physical_id (avic_hardware_setup): 0xFFF with the extension, else 0x1FF. */
export function x2avicMaxPhysicalId(extended: boolean): number {
  return extended ? X2AVIC_4K_MAX_PHYSICAL_INDEX : X2AVIC_MAX_PHYSICAL_INDEX;
}

/** Highest physical table index the hardware can use in `mode` (x2AVIC: with or without the extension). */
export function maxPhysicalIndexFor(mode: AvicMode, extended = false): number {
  return mode === AvicMode.X2avic ? x2avicMaxPhysicalId(extended) : AVIC_MAX_PHYSICAL_ID;
}

/** Usable entries in `mode`: 255 (xAVIC, 0..0xFE), 512 (x2AVIC) or 4096 (x2AVIC with the extension). */
export function physicalTableEntriesFor(mode: AvicMode, extended = false): number {
  return maxPhysicalIndexFor(mode, extended) + 1;
}

/** Table bytes the hardware may touch in `mode`: one page, or 32 KiB (8 pages) with the extension. */
export function physicalTableBytesFor(mode: AvicMode, extended = false): number {
  return physicalTableEntriesFor(mode, extended) * PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES;
}

/**
 * The VMCB max physical index for a VM of `vcpuCount` vCPUs whose IDs are 0..vcpuCount-1: the
 * smaller of the mode's limit and the highest ID (avic_get_max_physical_id). Throws RangeError
 * for vcpuCount < 1; a vCPU ID above what the VM's AVIC reaches inhibits AVIC instead
 * (APICV_INHIBIT_REASON_PHYSICAL_ID_TOO_BIG; avicReachMaxId).
 */
export function avicMaxPhysicalIndex(mode: AvicMode, vcpuCount: number, extended = false): number {
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1) throw new RangeError(`vCPU count must be a positive integer, got ${vcpuCount}`);
  return Math.min(maxPhysicalIndexFor(mode, extended), vcpuCount - 1);
}

/** True when every vCPU ID 0..vcpuCount-1 has a table index in `mode`. */
export function vcpuCountFitsAvicMode(mode: AvicMode, vcpuCount: number, extended = false): boolean {
  return vcpuCount >= 1 && vcpuCount - 1 <= maxPhysicalIndexFor(mode, extended);
}

/** The AVIC a VM runs with: whether KVM uses x2AVIC, and whether the CPU has the 4K extension. */
export interface AvicCapability {
  readonly x2avic: boolean;
  readonly x2avicExtended: boolean;
}

/**
 * The highest vCPU ID the VM's AVIC addresses (avic_init_backing_page's max_id): x2avic_max_physical_id
 * when KVM uses x2AVIC, else AVIC_MAX_PHYSICAL_ID. A vCPU with a higher ID gets no table entry and
 * sets PHYSICAL_ID_TOO_BIG for the VM.
 */
export function avicReachMaxId(capability: AvicCapability): number {
  return capability.x2avic ? x2avicMaxPhysicalId(capability.x2avicExtended) : AVIC_MAX_PHYSICAL_ID;
}

/**
 * __avic_get_max_physical_id(kvm, NULL): the highest index the VM's table must hold, the mode's
 * reach clamped by max_vcpu_ids (KVM_CAP_MAX_VCPU_ID, here the VM's vCPU capacity).
 */
export function avicTableMaxPhysicalId(capability: AvicCapability, maxVcpuIds: number): number {
  if (!Number.isInteger(maxVcpuIds) || maxVcpuIds < 1) throw new RangeError(`max vCPU IDs must be a positive integer, got ${maxVcpuIds}`);
  return Math.min(maxVcpuIds - 1, avicReachMaxId(capability));
}

/** avic_get_physical_id_table_order: get_order((max_id + 1) * 8), the table's size in pages as a power of two. */
export function physicalApicIdTableOrder(capability: AvicCapability, maxVcpuIds: number): number {
  const pages = Math.ceil(((avicTableMaxPhysicalId(capability, maxVcpuIds) + 1) * PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES) / APIC_PAGE_BYTES);
  return 31 - Math.clz32(pages) + ((pages & (pages - 1)) === 0 ? 0 : 1);
}

/** The table's bytes: PAGE_SIZE << order, contiguous and page-aligned (__get_free_pages): 4 KiB up to 32 KiB. */
export function physicalApicIdTableBytes(capability: AvicCapability, maxVcpuIds: number): number {
  return APIC_PAGE_BYTES << physicalApicIdTableOrder(capability, maxVcpuIds);
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
export function isPhysicalIndexInRange(mode: AvicMode, destination: number, maxPhysicalIndex: number, extended = false): boolean {
  const value = destination >>> 0;
  return value !== physicalBroadcastDestination(mode) && value <= Math.min(maxPhysicalIndex, maxPhysicalIndexFor(mode, extended));
}
