// Where a vCPU's AVIC backing page lives and what creating a vCPU costs. Two designs are modelled
// (spec §2.10): `upstream`, merged in 2016, where the backing page is the lapic's own register page
// and the VM needs one 4 KiB APIC-access memslot, created once; and `rfc-v2`, the first RFC, which
// carved backing pages out of the APIC-access memslot and grew it under slots_lock for every new
// vCPU id (a later issue adds it behind this same interface).

import { APIC_PAGE_BYTES, APIC_PAGE_WORDS } from '../hw/apic/apic-register.js';

export const BackingPagePolicyName = {
  /** The lapic's own page; one APIC-access page created once (KVM since 44a95dae1d22). */
  Upstream: 'upstream',
} as const;
export type BackingPagePolicyName = (typeof BackingPagePolicyName)[keyof typeof BackingPagePolicyName];

/**
 * Host-physical address at which the emulator places the lapic register pages. Above 4 GiB on
 * purpose, so the 40-bit backing-page pointer field (bits 51:12) is exercised beyond 32 bits.
 */
export const LAPIC_PAGES_HOST_PHYSICAL_BASE = 0x1_0000_0000;

export interface BackingPagePolicy {
  readonly name: BackingPagePolicyName;
  /** The host-physical backing-page pointer written into vCPU `vcpu`'s physical table entry. */
  backingPagePointer(vcpu: number): number;
  /**
   * The "hardware" view of a pointer: word index of the page in the APIC page buffer, or -1 when the
   * pointer names no backing page (AVIC incomplete-IPI cause 3).
   */
  resolveBackingPage(pointer: number): number;
}

export function upstreamBackingPagePolicy(vcpuCount: number): BackingPagePolicy {
  return {
    name: BackingPagePolicyName.Upstream,
    backingPagePointer: (vcpu) => LAPIC_PAGES_HOST_PHYSICAL_BASE + vcpu * APIC_PAGE_BYTES,
    resolveBackingPage: (pointer) => {
      const offset = pointer - LAPIC_PAGES_HOST_PHYSICAL_BASE;
      if (offset < 0 || offset % APIC_PAGE_BYTES !== 0) return -1;
      const page = offset / APIC_PAGE_BYTES;
      return page < vcpuCount ? page * APIC_PAGE_WORDS : -1;
    },
  };
}

export function backingPagePolicy(name: BackingPagePolicyName, vcpuCount: number): BackingPagePolicy {
  switch (name) {
    case BackingPagePolicyName.Upstream:
      return upstreamBackingPagePolicy(vcpuCount);
  }
}
