// What a vCPU is built from (VcpuStartup: its host CPU assembles it from HostCpuStartup and the
// vCPU's control-block words), what it may hook in
// (VcpuFirstExitContext, VcpuFirstExitHook), and what it gives back when the vCPU finishes (VcpuExitReport).

import type { GuestFault } from '../../guest/guest-fault.js';
import type { BackingPagePolicyName } from '../control/backing-page-policy.js';
import type { KvmLocksShared, VcpuLocks } from '../control/kvm-locks.js';
import type { VmBuffers, VmControlViews } from '../control/vm-control-views.js';
import { encodeLatencyHistogram, mergeLatencyHistograms, type LatencyHistogram } from '../report/latency-histogram.js';
import { TaskSwitchState, TRACE_EVENT_FIELDS, type TraceRecorder } from '../report/trace-recorder.js';

export interface VcpuStartup {
  readonly buffers: VmBuffers;
  readonly vcpu: number;
  readonly policy: BackingPagePolicyName;
  /** enable_ipiv: false models KVM's erratum #1235 work-around (IsRunning never shown to hardware). */
  readonly ipiVirtualization: boolean;
  /** KVM uses x2AVIC (VmConfig.x2avic): the x2APIC MSRs it passes through go to the hardware first. */
  readonly x2avic: boolean;
  /** The CPU has the x2AVIC 4K extension (VmConfig.x2avicExtended): the x2AVIC max index reaches 0xFFF. */
  readonly x2avicExtended: boolean;
  readonly haltPolling: boolean;
  /** Pauses before a pause-loop exit (VmConfig.pauseFilterCount). */
  readonly pauseFilterCount: number;
  /** Origin of the VM clock on the host clock (nowMs x 1e6, src/host/host-thread.ts), in nanoseconds, as a decimal string (bigint is not cloneable everywhere). */
  readonly clockOriginNs: string;
  readonly entryPoint: number;
  /** No entry point: an application processor in wait-for-SIPI until INIT and a start-up IPI (vcpu-boot.ts). */
  readonly waitForStartUp: boolean;
  readonly stackTop: number;
  /** Record trace events (--trace). */
  readonly trace: boolean;
  /** The VM's instrumented locks (lockdep region and instance ids). */
  readonly locks: KvmLocksShared;
  /**
   * Views of `buffers` already built in this thread: the host CPU passes its own, so that its vCPUs
   * share them (building views walks every vCPU: one per vCPU made a VM's boot O(vCPUs^2)). Absent:
   * the vCPU builds its own. Never cloned: the host CPU assembles the startup in its worker.
   */
  readonly views?: VmControlViews;
}

/** Why runSlice returned: what the host CPU does next with the vCPU (host-cpu-loop.ts). */
export const SliceEnd = {
  /** The quantum is over; still runnable (the host CPU preempts it if another vCPU is runnable). */
  QuantumEnd: 0,
  /** A pause-loop exit with another vCPU runnable here: a directed yield (kvm_vcpu_on_spin). */
  Yielded: 1,
  /** It blocked (halted or waiting for SIPI): off the run queue until a wake-up. */
  Blocked: 2,
  /** Parked by the main thread's pause: off the run queue until resume or stop wakes it. */
  Paused: 3,
  /** Its run is over (done, stopped, fault): exitReport holds the report. */
  Finished: 4,
} as const;
export type SliceEnd = (typeof SliceEnd)[keyof typeof SliceEnd];

/** The state a trace's sched_switch gives a vCPU put at the end of a slice. */
export function taskSwitchStateAtPut(end: SliceEnd): TaskSwitchState {
  if (end === SliceEnd.QuantumEnd) return TaskSwitchState.Preempted;
  return end === SliceEnd.Yielded ? TaskSwitchState.Runnable : TaskSwitchState.Sleeping;
}

export interface VcpuExitReport {
  readonly vcpu: number;
  /** 'moved': not an end, what one worker recorded before the vCPU moved on (mergeVcpuExitReports). */
  readonly reason: 'done' | 'stopped' | 'fault' | 'moved';
  readonly fault?: GuestFault;
  /** This vCPU's latency samples (HDR histogram, compressed). */
  readonly latencyHistogram: string;
  /**
   * The guest's latency resets (hypercall LatencyReset) before these samples: a worker the vCPU
   * left before a later reset reports an older epoch, and its samples are dropped on merge.
   */
  readonly latencyEpoch: number;
  readonly trace?: { readonly events: Float64Array; readonly dropped: number };
}

/** The report of a vCPU that finished for `reason`; a guest fault makes it 'fault'. */
export function vcpuExitReport(
  vcpu: number,
  reason: VcpuExitReport['reason'],
  fault: GuestFault | undefined,
  latency: LatencyHistogram,
  latencyEpoch: number,
  trace: TraceRecorder | undefined,
): VcpuExitReport {
  const common = {
    vcpu,
    latencyHistogram: encodeLatencyHistogram(latency),
    latencyEpoch,
    ...(trace === undefined ? {} : { trace: { events: trace.take(), dropped: trace.dropped } }),
  };
  return fault === undefined ? { ...common, reason } : { ...common, reason: 'fault', fault };
}

/**
 * One vCPU's reports from the workers it ran in (a migrated vCPU leaves one per worker it left, with
 * reason 'moved'): the latency samples merged, the trace events in time order, the end from the
 * report that has one. Order-independent: host CPUs report in any order.
 */
export function mergeVcpuExitReports(earlier: VcpuExitReport | Error | undefined, next: VcpuExitReport): VcpuExitReport | Error {
  if (earlier === undefined) return next;
  if (earlier instanceof Error) return earlier;
  const end = next.reason === 'moved' ? earlier : next;
  const trace =
    earlier.trace === undefined || next.trace === undefined
      ? (earlier.trace ?? next.trace)
      : { events: mergeTraceEvents(earlier.trace.events, next.trace.events), dropped: earlier.trace.dropped + next.trace.dropped };
  // Only the samples after the guest's last reset count: epochs only grow, so the higher one is the latest.
  const latencyEpoch = Math.max(earlier.latencyEpoch, next.latencyEpoch);
  const kept = [earlier, next].filter((report) => report.latencyEpoch === latencyEpoch).map((report) => report.latencyHistogram);
  return {
    ...end,
    latencyHistogram: kept.length === 1 ? kept[0]! : encodeLatencyHistogram(mergeLatencyHistograms(kept)),
    latencyEpoch,
    ...(trace === undefined ? {} : { trace }),
  };
}

/** Two recorders' events (TRACE_EVENT_FIELDS doubles each, the time first) in one time-ordered array. */
function mergeTraceEvents(first: Float64Array, second: Float64Array): Float64Array {
  const all = new Float64Array(first.length + second.length);
  all.set(first);
  all.set(second, first.length);
  const order = Array.from({ length: all.length / TRACE_EVENT_FIELDS }, (_, event) => event).sort(
    (a, b) => all[a * TRACE_EVENT_FIELDS]! - all[b * TRACE_EVENT_FIELDS]! || a - b,
  );
  const merged = new Float64Array(all.length);
  for (const [position, event] of order.entries())
    merged.set(all.subarray(event * TRACE_EVENT_FIELDS, (event + 1) * TRACE_EVENT_FIELDS), position * TRACE_EVENT_FIELDS);
  return merged;
}

/** What a first-exit hook is lent: the vCPU's locks and its own SRCU read section (vcpu->srcu_idx). */
export interface VcpuFirstExitContext {
  readonly locks: VcpuLocks;
  readonly vcpu: number;
  /** srcu_read_unlock(&kvm->srcu, vcpu->srcu_idx), as the run loop does before it blocks. */
  readonly dropSrcu: () => void;
  /** srcu_read_lock again, into vcpu->srcu_idx. */
  readonly retakeSrcu: (site: string) => void;
}

/**
 * Debug only: supplied by the worker (a lock replay's vCPU part, docs/lock-scenarios.md) and called
 * once, at the vCPU's first exit, inside vcpu->mutex (KVM_RUN) and the exit handler's kvm->srcu read
 * section, where KVM runs the paths such a hook stands for. The core knows nothing else of it.
 */
export type VcpuFirstExitHook = (context: VcpuFirstExitContext) => void;
