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
import { GUEST_REPORT_SLOTS } from '../control/vm-layout.js';
import type { Vcpu } from './vcpu.js';

export function handleHypercall(vcpu: Vcpu, cpu: GuestCpu, number: number): void {
  const registers = cpu.registers;
  const first = registers[1]!;
  const second = registers[2]!;
  const float64 = vcpu.memory.controlFloat64;
  registers[0] = 0;
  switch (number) {
    case Hypercall.Done:
      float64[vcpu.memory.guestReportIndex(vcpu.index, 'doneStatus')] = (first >>> 0) + 1;
      vcpu.markDone();
      return;
    case Hypercall.Report:
      if (first >>> 0 < GUEST_REPORT_SLOTS) float64[vcpu.memory.guestReportIndex(vcpu.index, 'reports') + first] = second >>> 0;
      else registers[0] = -1;
      return;
    case Hypercall.Count:
      if (first >>> 0 < GUEST_REPORT_SLOTS) float64[vcpu.memory.guestReportIndex(vcpu.index, 'counters') + first]! += second >>> 0;
      else registers[0] = -1;
      return;
    case Hypercall.LatencySample: {
      const sample = first >>> 0;
      vcpu.recordLatencySample(sample);
      return;
    }
    case Hypercall.Print:
      process.stderr.write(`[vCPU ${vcpu.index}] ${first >>> 0} (0x${(first >>> 0).toString(16)}) ${second >>> 0}\n`);
      return;
    case Hypercall.Abort:
      cpu.raiseFault(GuestFaultKind.GuestAbort, `guest assertion failed: code ${first >>> 0}, value ${second >>> 0} (0x${(second >>> 0).toString(16)})`);
      return;
    case Hypercall.VcpuRunState:
      registers[0] = first >>> 0 < vcpu.memory.createdVcpus()
        ? Atomics.load(vcpu.memory.control, vcpu.memory.controlBlockIndex(first, 'runState'))
        : -1;
      return;
    default:
      registers[0] = -1;
      return;
  }
}
