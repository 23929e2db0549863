// Lowest-priority arbitration: which one of the matched destinations takes a LowestPriority
// message (Intel SDM vol. 3 §11.6.2.4; AMD APM vol. 2 §16.6; KVM kvm_irq_delivery_to_apic and
// kvm_apic_map_get_dest_lapic). The vendors and KVM each do something different; the policy is
// an argument and docs/amd-intel-differences.md compares them.
//
//   KvmArbitrationCounter (avic-smp's default, KVM with vector_hashing=false): each vCPU keeps a
//     counter (apic_arb_prio) bumped on every LowestPriority message it accepts; the candidate
//     with the smallest counter wins, the first one in vCPU order on a tie (kvm_apic_compare_prio
//     only replaces the current choice when strictly smaller). TPR and PPR play no part.
//   KvmVectorHashing (KVM's default for posted interrupts, vector_hashing=true): the
//     (vector mod n)-th candidate, n = number of candidates, in vCPU order.
//   ProcessorPriority (the architectural intent): a focus processor (vector already in service or
//     pending there) wins outright; otherwise the lowest processor priority class (PPR[7:4];
//     the P6 APR and the Pentium 4 chipset's TPR copy approximate the same thing); on a tie the
//     lowest vCPU index, a deterministic stand-in for the APIC bus arbitration ID.
//
// Pure: candidates in, one index out. The slow path only (AVIC exits with cause 0 for every
// LowestPriority IPI), so the small allocations of callers building the list are fine.

export const LowestPriorityPolicy = { KvmArbitrationCounter: 0, KvmVectorHashing: 1, ProcessorPriority: 2 } as const;
export type LowestPriorityPolicy = (typeof LowestPriorityPolicy)[keyof typeof LowestPriorityPolicy];

/** One matched, software-enabled destination. Give candidates in ascending vCPU index order. */
export interface LowestPriorityCandidate {
  /** The caller's handle (vCPU index); returned as-is. */
  readonly vcpuIndex: number;
  /** KVM's apic_arb_prio for this vCPU (KvmArbitrationCounter). */
  readonly arbitrationCounter: number;
  /** PPR (ProcessorPriority); compute with processorPriority() from the target's page. */
  readonly processorPriority: number;
  /** The vector is in this candidate's ISR or IRR already (ProcessorPriority only). */
  readonly isFocus: boolean;
}

/**
 * The vcpuIndex of the winner, or -1 when there are no candidates (the message is dropped, as in
 * KVM). After delivering, a KvmArbitrationCounter caller increments the winner's counter (KVM
 * does it in __apic_accept_irq for APIC_DM_LOWEST) and zeroes it on vCPU reset or state restore.
 */
export function selectLowestPriorityTarget(
  policy: LowestPriorityPolicy,
  vector: number,
  candidates: readonly LowestPriorityCandidate[],
): number {
  if (candidates.length === 0) return -1;
  switch (policy) {
    case LowestPriorityPolicy.KvmVectorHashing:
      return candidates[vector % candidates.length]!.vcpuIndex;
    case LowestPriorityPolicy.KvmArbitrationCounter:
      return lowestBy(candidates, (candidate) => candidate.arbitrationCounter);
    default: {
      const focus = candidates.find((candidate) => candidate.isFocus);
      if (focus !== undefined) return focus.vcpuIndex;
      return lowestBy(candidates, (candidate) => (candidate.processorPriority & 0xf0) >>> 4);
    }
  }
}

/** First candidate with the strictly smallest key: ties go to the earliest (lowest index). */
function lowestBy(candidates: readonly LowestPriorityCandidate[], key: (candidate: LowestPriorityCandidate) => number): number {
  let best = candidates[0]!;
  let bestKey = key(best);
  for (let i = 1; i < candidates.length; i++) {
    const candidate = candidates[i]!;
    const candidateKey = key(candidate);
    if (candidateKey < bestKey) {
      best = candidate;
      bestKey = candidateKey;
    }
  }
  return best.vcpuIndex;
}

/**
 * KVM turns a LowestPriority message to the physical broadcast into Fixed (it logs "phys broadcast
 * and lowest prio" and delivers to all). Callers ask this before arbitrating: true means deliver
 * as Fixed to every match instead of choosing one.
 */
export function lowestPriorityBecomesFixed(physicalDestination: boolean, broadcast: boolean): boolean {
  return physicalDestination && broadcast;
}
