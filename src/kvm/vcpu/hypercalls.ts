// The guest's channel to the host (src/guest/hypercall.ts lists the numbers): results, counters,
// latency samples, log lines, and "done" / "abort". Guest mistakes (a slot out of range, an unknown
// number) are ignored and counted, never thrown.
//
// These are the emulator's instrumentation calls, not KVM hypercalls, and they run without the
// exit-handling SRCU read section on purpose: none reads a memslot or guest memory (KVM's rule, locking.rst:
// memslot readers must be SRCU readers), only registers and this vCPU's own control-buffer fields,
// and LatencySample runs once per measured IPI, where a validated read section would cost more than
// the operation being measured.

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { GuestFaultKind } from '../../guest/guest-fault.js';
import { Hypercall } from '../../guest/hypercall.js';
import { hostThread } from '../../host/host-thread.js';
import { VirtualTimeCost } from '../../host/virtual-time-costs.js';
import { GUEST_REPORT_SLOTS } from '../control/vm-layout.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { LatencyHistogram } from '../report/latency-histogram.js';

/** What the hypercalls touch: this vCPU's report fields and counters, other vCPUs' run states. */
export interface HypercallHost {
  readonly views: Pick<VmControlViews, 'control' | 'controlFloat64' | 'guestReportIndex' | 'controlBlockIndex' | 'createdVcpus'>;
  readonly index: number;
  readonly counters: { recordLatencySample(nanoseconds: number): void; resetLatencySamples(): number };
  /** This vCPU's latency samples (the report's percentiles), recorded here since the last reset. */
  readonly latency: LatencyHistogram;
  /** The reset count its samples belong to (VcpuExitReport.latencyEpoch); a vCPU built after a move reads it from its counters. */
  latencyEpoch: number;
}

/** Returns true for Done: the caller ends the vCPU's run after this instruction. */
export function handleHypercall(host: HypercallHost, cpu: Pick<GuestCpu, 'registers' | 'raiseFault'>, number: number): boolean {
  const registers = cpu.registers;
  const first = registers[1]!;
  const second = registers[2]!;
  const views = host.views;
  const float64 = views.controlFloat64;
  // Handled in place, but the host's time passes as for the VMMCALL exit KVM takes (kvm_emulate_hypercall).
  hostThread().advance(VirtualTimeCost.vmexitRoundTripNs);
  registers[0] = 0;
  switch (number) {
    case Hypercall.Done:
      float64[views.guestReportIndex(host.index, 'doneStatus')] = (first >>> 0) + 1;
      return true;
    case Hypercall.Report:
      if (first >>> 0 < GUEST_REPORT_SLOTS) float64[views.guestReportIndex(host.index, 'reports') + first] = second >>> 0;
      else registers[0] = -1;
      return false;
    case Hypercall.Count:
      if (first >>> 0 < GUEST_REPORT_SLOTS) float64[views.guestReportIndex(host.index, 'counters') + first]! += second >>> 0;
      else registers[0] = -1;
      return false;
    case Hypercall.LatencySample: {
      const sample = first >>> 0;
      host.counters.recordLatencySample(sample);
      host.latency.recordValue(sample);
      return false;
    }
    case Hypercall.LatencyReset:
      host.latency.reset();
      host.latencyEpoch = host.counters.resetLatencySamples();
      return false;
    case Hypercall.Print:
      process.stderr.write(`[vCPU ${host.index}] ${first >>> 0} (0x${(first >>> 0).toString(16)}) ${second >>> 0}\n`);
      return false;
    case Hypercall.Abort:
      cpu.raiseFault(
        GuestFaultKind.GuestAbort,
        `guest assertion failed: code ${first >>> 0}, value ${second >>> 0} (0x${(second >>> 0).toString(16)})`,
      );
      return false;
    case Hypercall.VcpuRunState:
      registers[0] = first >>> 0 < views.createdVcpus() ? Atomics.load(views.control, views.controlBlockIndex(first, 'runState')) : -1;
      return false;
    default:
      registers[0] = -1;
      return false;
  }
}
