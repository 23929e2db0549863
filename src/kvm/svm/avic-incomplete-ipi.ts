// The AVIC_INCOMPLETE_IPI #VMEXIT (AMD APM vol. 2, 15.29; KVM avic_incomplete_ipi_interception and
// avic_kick_target_vcpus in svm/avic.c), for xAVIC and x2AVIC alike: the hardware took an ICR write
// and could not finish it. EXITINFO1 is the ICR as written (low, high: for x2APIC the high half is
// the 32-bit destination), EXITINFO2[63:32] the cause. Also here: the model's account of what the
// hardware delivered for every ICR write (counters and trace), which no exit reports.

import { AvicIncompleteIpiCause, incompleteIpiCause, incompleteIpiIndex, type AvicExitInfo } from '../../hw/avic/avic-exit.js';
import { NO_EXIT, type AvicIpiOutcome } from '../../hw/avic/avic-ipi-delivery.js';
import {
  DestinationMode,
  DestinationShorthand,
  interruptCommandDestinationMode,
  interruptCommandShorthand,
} from '../../hw/apic/interrupt-command.js';
import { InjectedBugFlag } from '../control/injected-bugs.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { kickVcpu } from '../lapic/apic-software-ipi.js';
import { avicKickTargetsFast } from './avic-kick-targets.js';
import { TraceEventKind, type TraceRecorder } from '../report/trace-recorder.js';

/** What the handler needs from the sending vCPU. */
export interface IncompleteIpiHost {
  readonly index: number;
  readonly counters: VcpuCounting;
  /**
   * kvm_vcpu_kick of the targets (cause 1), batched (beginKicks/endKicks); the created vCPUs
   * (kvm_get_vcpu_by_id) and the logical APIC ID table for the fast path (avic-kick-targets.ts) and
   * the injected x2avic-logical-kick.
   */
  readonly views: Pick<VmControlViews, 'kick'> &
    Partial<Pick<VmControlViews, 'beginKicks' | 'endKicks'>> & {
      createdVcpus?(): number;
      readonly logicalApicIdTable?: { load(index: number): number };
    };
  /** The local APIC's software side: KVM's destination matching, and kvm_apic_send_ipi. */
  readonly lapic: {
    collectTargets(icrLow: number, icrHigh: number): readonly number[];
    emulateIcrClearingBusy(icrLow: number, icrHigh: number): void;
    /** The sender is in x2APIC mode (apic_x2apic_mode), for the fast path and the injected x2avic-logical-kick. */
    readonly x2apicMode?: boolean;
    /** The sender's APIC register at byte `offset` (its DFR, for the fast path of an xAPIC logical IPI). */
    read?(offset: number): number;
  };
  /** Debug only: the bug zoo's flags (VmHeader.injectedBugs, read once by the vCPU; docs/bug-zoo.md). */
  readonly injectedBugs?: number;
  /** Present only when tracing (--trace). */
  readonly trace?: TraceRecorder | undefined;
}

/**
 * avic_incomplete_ipi_interception: count the exit by cause, then wake the not-running targets
 * (cause 1: their IRR bits are already set), drop the IPI (cause 3) or emulate the whole IPI in
 * software (causes 0, 2 and 4).
 */
export function avicIncompleteIpiInterception(exit: AvicExitInfo, host: IncompleteIpiHost): void {
  const icrLow = exit.exitInfo1Low | 0;
  const icrHigh = exit.exitInfo1High | 0;
  const cause = incompleteIpiCause(exit.exitInfo2High);
  const counters = host.counters;
  host.trace?.record(TraceEventKind.AvicIncompleteIpi, icrHigh, icrLow, cause, incompleteIpiIndex(exit.exitInfo2Low));
  counters.count(VcpuStatistic.incompleteIpiExits + cause);
  const injected = host.injectedBugs ?? 0;
  switch (cause) {
    case AvicIncompleteIpiCause.TargetNotRunning:
      // The injected not-running-reemulated (Linux 5.0-5.1) wrote the ICR again instead: a second
      // IPI on top of the IRR bits the hardware set, taken twice by a target that took the first.
      if ((injected & InjectedBugFlag.NotRunningReemulated) !== 0) {
        host.lapic.emulateIcrClearingBusy(icrLow, icrHigh);
        break;
      }
      // The IRR bits are already set: only wake the targets.
      avicKickTargetVcpus(icrLow, icrHigh, incompleteIpiIndex(exit.exitInfo2Low), host);
      break;
    case AvicIncompleteIpiCause.InvalidTarget:
      // The injected invalid-target-ignored (KVM before 6.3) did nothing here: the hardware, which
      // validates every target first, set no IRR bit, so the valid targets lost the IPI too.
      if ((injected & InjectedBugFlag.InvalidTargetIgnored) !== 0) {
        countDropped(host);
        break;
      }
      host.lapic.emulateIcrClearingBusy(icrLow, icrHigh);
      break;
    case AvicIncompleteIpiCause.InvalidBackingPage:
      // KVM only warns; the IPI goes nowhere. Counted as dropped so the totals still add up.
      countDropped(host);
      break;
    default:
      // Cause 0 (and 2 above): full software emulation (kvm_apic_send_ipi), a stuck busy bit cleared first.
      // Cause 4 (vector < 16): KVM drops it silently; the emulation drops it too but latches the
      // architectural ESR bits on both sides (docs/amd-intel-differences.md).
      host.lapic.emulateIcrClearingBusy(icrLow, icrHigh);
      break;
  }
}

/** An ICR write that went nowhere, counted as one dropped message so the totals still add up. */
function countDropped(host: IncompleteIpiHost): void {
  host.counters.count(VcpuStatistic.ipiCommands);
  host.counters.count(VcpuStatistic.ipisSent);
  host.counters.count(VcpuStatistic.ipisDroppedInvalidTarget);
}

/** Reused by the fast path (one vCPU's exits run on one thread at a time: no allocation per exit). */
const fastTargets: number[] = [];

/**
 * avic_kick_target_vcpus: kvm_vcpu_kick every vCPU the ICR names but the sender: the targets
 * avic_kick_target_vcpus_fast decodes (avic-kick-targets.ts) where it applies, else the walk over
 * every vCPU (kvm_apic_match_dest), traced as kvm_avic_kick_vcpu_slowpath. A host without the
 * fast path's inputs (the sender's APIC mode, the created vCPUs) always walks.
 */
export function avicKickTargetVcpus(icrLow: number, icrHigh: number, index: number, host: IncompleteIpiHost): void {
  if (((host.injectedBugs ?? 0) & InjectedBugFlag.X2apicLogicalKick) !== 0 && x2apicLogicalKickFastPath(icrLow, icrHigh, host)) return;
  // One notify per host CPU, after every target is queued (ttwu_queue_wakelist; VcpuScheduling.beginWakeUps).
  host.views.beginKicks?.();
  try {
    kickTargets(icrLow, icrHigh, index, host);
  } finally {
    host.views.endKicks?.();
  }
}

function kickTargets(icrLow: number, icrHigh: number, index: number, host: IncompleteIpiHost): void {
  const { lapic, views } = host;
  const created = views.createdVcpus?.();
  if (
    created !== undefined &&
    lapic.x2apicMode !== undefined &&
    lapic.read !== undefined &&
    views.logicalApicIdTable !== undefined &&
    avicKickTargetsFast(icrLow, icrHigh, index, lapic.x2apicMode, lapic as Required<typeof lapic>, views.logicalApicIdTable, fastTargets)
  ) {
    for (const target of fastTargets) {
      // kvm_get_vcpu_by_id: no such vCPU, nothing to wake.
      if (target >= created || target === host.index) continue;
      host.trace?.interruptDelivery(target);
      kickVcpu(host.views, host.counters, target);
    }
    return;
  }
  host.trace?.record(TraceEventKind.AvicKickSlowPath, icrHigh, icrLow, index);
  for (const target of host.lapic.collectTargets(icrLow, icrHigh)) {
    if (target === host.index) continue;
    host.trace?.interruptDelivery(target);
    kickVcpu(host.views, host.counters, target);
  }
}

/**
 * The model's account of one ICR write the hardware took (`ipi`, its outcome): the doorbells it
 * rang, and, when it finished the IPI or left only the wake-ups (cause 1), the messages it
 * delivered; the other causes are counted by the software emulation. Traced with the destination
 * the trace shows (ICR[63:56] in xAPIC, ICR[39:32] of the x2APIC destination).
 */
export function accountAvicIpi(
  ipi: AvicIpiOutcome,
  icrLow: number,
  tracedDestination: number,
  counters: VcpuCounting,
  trace: TraceRecorder | undefined,
): void {
  trace?.record(TraceEventKind.IpiSent, icrLow, (tracedDestination & 0xff) | ((ipi.exit + 1) << 8));
  counters.count(VcpuStatistic.doorbellsRung, ipi.doorbellsRung);
  if (ipi.staleIsRunningReads !== 0) counters.count(VcpuStatistic.erratumStaleIsRunningReads, ipi.staleIsRunningReads);
  if (ipi.exit === NO_EXIT || ipi.exit === AvicIncompleteIpiCause.TargetNotRunning) {
    counters.count(VcpuStatistic.ipiCommands);
    counters.count(VcpuStatistic.ipisSent, ipi.targets);
    counters.count(VcpuStatistic.ipisAccepted, ipi.accepted);
    counters.count(VcpuStatistic.ipisCoalesced, ipi.coalesced);
  }
}

/**
 * The injected x2avic-logical-kick: avic_kick_target_vcpus_fast of Linux 6.0-6.2 for an x2APIC
 * logical destination, which took the 16-bit mask from the cluster half (dest & 0xFFFF0000, fixed
 * by "KVM: SVM: Fix x2APIC Logical ID calculation for avic_kick_target_vcpus_fast"). An empty mask
 * (any cluster-0 destination) "handles" the IPI by waking nobody; a one-bit mask wakes vCPU
 * cluster * 16 + its bit (16 or more: not the target); only a many-bit mask fell back to the slow
 * path. Returns true when the fast path handled the exit (the slow path is skipped).
 */
function x2apicLogicalKickFastPath(icrLow: number, icrHigh: number, host: IncompleteIpiHost): boolean {
  if (host.lapic.x2apicMode !== true) return false;
  if (interruptCommandShorthand(icrLow) !== DestinationShorthand.None) return false;
  if (interruptCommandDestinationMode(icrLow) !== DestinationMode.Logical) return false;
  const destination = icrHigh >>> 0;
  const bitmap = (destination & 0xffff0000) >>> 0;
  const cluster = (destination >>> 16) << 4;
  if (bitmap === 0) return true;
  if ((bitmap & (bitmap - 1)) !== 0) return false;
  const target = cluster + (31 - Math.clz32(bitmap));
  // kvm_get_vcpu_by_id: no such vCPU, nothing to wake (and still handled).
  if (target < (host.views.createdVcpus?.() ?? 0) && target !== host.index) {
    host.trace?.interruptDelivery(target);
    kickVcpu(host.views, host.counters, target);
  }
  return true;
}
