// What x2AVIC hardware does on a guest WRMSR of the x2APIC ICR (MSR 0x830) or SELF IPI (0x83F)
// when KVM runs the vCPU with int_ctl bits 31 and 30 set (AMD APM vol. 2, 15.29; KVM
// avic_activate_vmcb, avic_kick_target_vcpus_fast): the one driver of avic-ipi-delivery.ts
// (deliverToTargetSet) after the x2APIC target decoder (avic-ipi-decoders.ts). So everything except where the
// targets come from is the xAVIC algorithm: the same two passes (validate every target, then set
// IRR bits), the same IsRunning read after the IRR OR (O1 in docs/architecture.md#orderings), the
// same "never doorbell yourself", the same incomplete-IPI causes 0-4.
//
// The three differences from xAVIC (svm.h X2AVIC_MAX_PHYSICAL_ID and X2AVIC_4K_MAX_PHYSICAL_ID;
// KVM avic_kick_target_vcpus_fast and avic_get_max_physical_id):
//  * the destination is the full 32-bit ICR[63:32], and a physical destination indexes the
//    physical APIC ID table directly, up to the VMCB max index (0x1FF at most, 0xFFF with the 4K
//    extension X2AVIC_EXT; x2avic.ts); an index above it is an invalid target (cause 2, software
//    re-emulates, exactly as for a not-Valid entry);
//  * the broadcast is 0xFFFFFFFF (physical and logical alike), not 0xFF;
//  * a logical destination does not use the logical APIC ID table: x2APIC LDRs are read-only and
//    derived from the ID (cluster = ID >> 4, member bit = ID & 15), so member bit i of cluster c
//    names physical index c * 16 + i. The DFR does not exist in x2APIC mode, so there is no flat
//    model and nothing to read from the sender's page. Each named index must be Valid, else
//    cause 2 with that index in EXITINFO2 [I: the APM's wording for the index reported in the
//    x2AVIC logical case was not available; KVM does not use it for x2APIC logical kicks].
//
// An empty member mask names nobody: no IRR is touched and no exit is taken [I] (KVM's own
// fast path returns early for it, "no destinations in the cluster").
//
// Like deliverAvicIpi it allocates nothing and writes its result into a caller-owned outcome.

import type { ApicId } from '../apic/apic-id.js';
import { beginAvicIpi, deliverToTargetSet, type AvicHardware, type AvicIpiOutcome } from './avic-ipi-delivery.js';
import { x2apicDestination, x2apicTargetSet } from './avic-ipi-decoders.js';

/**
 * The x2AVIC hardware's handling of a WRMSR to the x2APIC ICR by vCPU `sender` (its physical table
 * index, = its x2APIC ID), whose backing page is at word `senderPageBase` of hardware.pageWords.
 * `icrLow` is EAX, `icrHigh` EDX (the 32-bit destination). `hardware.maxPhysicalIndex` must be
 * the x2AVIC VMCB max index (avicMaxPhysicalIndex(AvicMode.X2avic, ...)). The SELF IPI MSR is
 * this call with ICR = self shorthand | vector (KVM sends it the same way in software).
 * The caller has already made the #GP checks of the MSR write (reserved bits).
 */
export function deliverX2avicIpi(
  icrLow: number,
  icrHigh: number,
  sender: ApicId,
  senderPageBase: number,
  hardware: AvicHardware,
  outcome: AvicIpiOutcome,
): void {
  const vector = beginAvicIpi(icrLow, senderPageBase, hardware, outcome);
  if (vector < 0) return;
  const destination = x2apicDestination(icrHigh);
  deliverToTargetSet(x2apicTargetSet(icrLow, destination), destination, vector, sender, hardware, outcome);
}
