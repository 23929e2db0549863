// What a vCPU is built from (VcpuStartup: its host CPU assembles it from HostCpuStartup and the
// vCPU's control-block words), what it may hook in
// (VcpuFirstExitContext, VcpuFirstExitHook), and what it gives back when the vCPU finishes (VcpuExitReport).

import type { GuestFault } from '../../guest/guest-fault.js';
import type { BackingPagePolicyName } from '../control/backing-page-policy.js';
import type { KvmLocksShared, VcpuLocks } from '../control/kvm-locks.js';
import type { VmBuffers } from '../control/vm-control-views.js';
import { encodeLatencyHistogram, type LatencyHistogram } from '../report/latency-histogram.js';
import type { TraceRecorder } from '../report/trace-recorder.js';

export interface VcpuStartup {
  readonly buffers: VmBuffers;
  readonly vcpu: number;
  readonly policy: BackingPagePolicyName;
  /** enable_ipiv: false models KVM's erratum #1235 work-around (IsRunning never shown to hardware). */
  readonly ipiVirtualization: boolean;
  /** KVM uses x2AVIC (VmConfig.x2avic): the x2APIC MSRs it passes through go to the hardware first. */
  readonly x2avic: boolean;
  readonly haltPolling: boolean;
  /** process.hrtime origin of the VM clock, in nanoseconds, as a decimal string (bigint is not cloneable everywhere). */
  readonly clockOriginNs: string;
  readonly entryPoint: number;
  /** No entry point: an application processor in wait-for-SIPI until INIT and a start-up IPI (vcpu-boot.ts). */
  readonly waitForStartUp: boolean;
  readonly stackTop: number;
  /** Record trace events (--trace). */
  readonly trace: boolean;
  /** The VM's instrumented locks (lockdep region and instance ids). */
  readonly locks: KvmLocksShared;
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

export interface VcpuExitReport {
  readonly vcpu: number;
  readonly reason: 'done' | 'stopped' | 'fault';
  readonly fault?: GuestFault;
  /** This vCPU's latency samples (HDR histogram, compressed). */
  readonly latencyHistogram: string;
  readonly trace?: { readonly events: Float64Array; readonly dropped: number };
}

/** The report of a vCPU that finished for `reason`; a guest fault makes it 'fault'. */
export function vcpuExitReport(
  vcpu: number,
  reason: VcpuExitReport['reason'],
  fault: GuestFault | undefined,
  latency: LatencyHistogram,
  trace: TraceRecorder | undefined,
): VcpuExitReport {
  const common = {
    vcpu,
    latencyHistogram: encodeLatencyHistogram(latency),
    ...(trace === undefined ? {} : { trace: { events: trace.take(), dropped: trace.dropped } }),
  };
  return fault === undefined ? { ...common, reason } : { ...common, reason: 'fault', fault };
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
