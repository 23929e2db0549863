// Where a vCPU's AVIC backing page lives and what creating a vCPU costs. Two designs are modelled
// (docs/lock-scenarios.md, rfc-v2-hot-add; avic_init_backing_page for upstream):
//   upstream  merged in 2016 (44a95dae1d22): the backing page is the lapic's own register page, fixed
//             for the vCPU's life; the VM needs one 4 KiB APIC-access memslot, created once.
//   rfc-v2    the first RFC ("PART1 RFC v2 05/10", March 2016): backing pages are carved from the
//             APIC-access private memslot, which is resized to (id + 1) pages under slots_lock
//             whenever a vCPU with a higher id is created; every existing vCPU's backing page is then
//             released and re-initialised in the new memory while the other vCPUs run.
//
// Host memory: the upstream pages sit at LAPIC_PAGES_HOST_PHYSICAL_BASE (region 0 of apicPages).
// A resized rfc-v2 memslot is new host memory; the emulator models "new memory" by alternating
// between two regions of apicPages, each at its own host-physical base, so a pointer read before a
// resize still names the released pages, as a stale pointer would on the real machine.

import { APIC_PAGE_BYTES } from '../../hw/apic/apic-register.js';

export const BackingPagePolicyName = {
  /** The lapic's own page; one APIC-access page created once (KVM since 44a95dae1d22). */
  Upstream: 'upstream',
  /** Pages carved from a memslot grown per vCPU id, re-initialised on every growth (the 2016 RFC). */
  RfcV2: 'rfc-v2',
} as const;
export type BackingPagePolicyName = (typeof BackingPagePolicyName)[keyof typeof BackingPagePolicyName];

export const BACKING_PAGE_POLICY_NAMES: readonly BackingPagePolicyName[] = Object.values(BackingPagePolicyName);

/**
 * Host-physical address at which the emulator places the lapic register pages. Above 4 GiB on
 * purpose, so the 40-bit backing-page pointer field (bits 51:12) is exercised beyond 32 bits.
 */
export const LAPIC_PAGES_HOST_PHYSICAL_BASE = 0x1_0000_0000;
/** rfc-v2: host-physical base of the memory behind the APIC-access memslot, per region. */
export const RFC_V2_MEMSLOT_HOST_PHYSICAL_BASE = 0x2_0000_0000;
/** rfc-v2: distance between the two regions' host-physical bases (more than 512 pages). */
export const RFC_V2_REGION_STRIDE = 0x100_0000;

export interface BackingPagePolicy {
  readonly name: BackingPagePolicyName;
  /** Whether creating a higher vCPU id resizes the APIC-access memslot and re-initialises every page. */
  readonly growsWithVcpuId: boolean;
  /** The host-physical backing-page pointer of vCPU `vcpu`'s page in region `region`. */
  backingPagePointer(vcpu: number, region: number): number;
  /**
   * The "hardware" view of a pointer: word index of the page in the APIC page buffer, or -1 when the
   * pointer names no backing page (AVIC incomplete-IPI cause 3).
   */
  resolveBackingPage(pointer: number): number;
}

const APIC_PAGE_WORDS = APIC_PAGE_BYTES / 4;

function pageIndex(pointer: number, base: number, pages: number): number {
  const offset = pointer - base;
  if (offset < 0 || offset % APIC_PAGE_BYTES !== 0) return -1;
  const page = offset / APIC_PAGE_BYTES;
  return page < pages ? page : -1;
}

/** `vcpuCount` is the VM's capacity (created and hot-add slots). */
export function upstreamBackingPagePolicy(vcpuCount: number): BackingPagePolicy {
  return {
    name: BackingPagePolicyName.Upstream,
    growsWithVcpuId: false,
    backingPagePointer: (vcpu) => LAPIC_PAGES_HOST_PHYSICAL_BASE + vcpu * APIC_PAGE_BYTES,
    resolveBackingPage: (pointer) => {
      const page = pageIndex(pointer, LAPIC_PAGES_HOST_PHYSICAL_BASE, vcpuCount);
      return page < 0 ? -1 : page * APIC_PAGE_WORDS;
    },
  };
}

export function rfcV2BackingPagePolicy(vcpuCount: number): BackingPagePolicy {
  return {
    name: BackingPagePolicyName.RfcV2,
    growsWithVcpuId: true,
    backingPagePointer: (vcpu, region) => RFC_V2_MEMSLOT_HOST_PHYSICAL_BASE + region * RFC_V2_REGION_STRIDE + vcpu * APIC_PAGE_BYTES,
    resolveBackingPage: (pointer) => {
      const region = Math.floor((pointer - RFC_V2_MEMSLOT_HOST_PHYSICAL_BASE) / RFC_V2_REGION_STRIDE);
      if (region !== 0 && region !== 1) return -1;
      const page = pageIndex(pointer, RFC_V2_MEMSLOT_HOST_PHYSICAL_BASE + region * RFC_V2_REGION_STRIDE, vcpuCount);
      return page < 0 ? -1 : (region * vcpuCount + page) * APIC_PAGE_WORDS;
    },
  };
}

export function backingPagePolicy(name: BackingPagePolicyName, vcpuCount: number): BackingPagePolicy {
  switch (name) {
    case BackingPagePolicyName.Upstream:
      return upstreamBackingPagePolicy(vcpuCount);
    case BackingPagePolicyName.RfcV2:
      return rfcV2BackingPagePolicy(vcpuCount);
  }
}
