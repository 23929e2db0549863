// APIC identifiers (AMD APM vol. 2, 15.29; svm.h AVIC_PHYSICAL_ID_ENTRY_*). Two different numbers are both called "APIC ID" in AVIC:
// the guest's physical APIC ID, which indexes the physical APIC ID table, and the host physical
// APIC ID stored in a table entry, which names the host CPU to doorbell. They get different brands
// so one is never passed where the other is meant.

declare const apicIdBrand: unique symbol;
declare const hostPhysicalApicIdBrand: unique symbol;

/** Guest physical APIC ID: the index into the physical APIC ID table (KVM assumes == vCPU ID). */
export type ApicId = number & { readonly [apicIdBrand]: true };
/** Host physical APIC ID: bits 11:0 of a physical table entry; the doorbell's argument (AVIC doorbell MSR 0xC001011B). */
export type HostPhysicalApicId = number & { readonly [hostPhysicalApicIdBrand]: true };

/** Highest xAVIC physical table index; 0xFF is the xAPIC broadcast destination (svm.h AVIC_MAX_PHYSICAL_ID). */
export const XAPIC_MAX_PHYSICAL_ID = 0xfe;
/** xAPIC physical broadcast destination (ICR[63:56] = 0xFF). */
export const XAPIC_BROADCAST_ID = 0xff;
/** Highest x2AVIC physical table index without the extension (svm.h X2AVIC_MAX_PHYSICAL_ID). */
export const X2AVIC_MAX_PHYSICAL_ID = 0x1ff;
/**
 * Highest x2AVIC physical table index with the "4K" extension, X86_FEATURE_X2AVIC_EXT (CPUID
 * 0x8000000A ECX bit 6; svm.h X2AVIC_4K_MAX_PHYSICAL_ID): the largest guest physical APIC ID any
 * AVIC mode addresses, and the most vCPUs a VM may have here.
 */
export const X2AVIC_4K_MAX_PHYSICAL_ID = 0xfff;
/** Width of the host physical APIC ID field in a table entry: GENMASK(11,0) (svm.h). */
export const HOST_PHYSICAL_APIC_ID_MAX = 0xfff;

/**
 * Checked constructor. Accepts 0..X2AVIC_4K_MAX_PHYSICAL_ID: 0xFF is a broadcast destination in
 * xAPIC mode but an ordinary table index in x2AVIC, so the caller checks the limit of its mode.
 */
export function apicId(value: number): ApicId {
  if (!Number.isInteger(value) || value < 0 || value > X2AVIC_4K_MAX_PHYSICAL_ID) {
    throw new RangeError(`not a guest physical APIC ID: ${value}`);
  }
  return value as ApicId;
}

/** Checked constructor: 0..0xFFF, the width of the entry field (svm.h). */
export function hostPhysicalApicId(value: number): HostPhysicalApicId {
  if (!Number.isInteger(value) || value < 0 || value > HOST_PHYSICAL_APIC_ID_MAX) {
    throw new RangeError(`not a host physical APIC ID: ${value}`);
  }
  return value as HostPhysicalApicId;
}
