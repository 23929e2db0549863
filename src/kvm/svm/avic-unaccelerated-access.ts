// The AVIC_UNACCELERATED_ACCESS #VMEXIT (AMD APM vol. 2, 15.29, AVIC_NOACCEL; KVM
// avic_unaccelerated_access_interception in svm/avic.c): an APIC register access AVIC did not
// complete, from the xAPIC page or an x2APIC MSR x2AVIC passes through. A trap comes after the write
// reached the page: software applies its side effects (kvm_apic_write_nodecode). A fault comes
// before anything happened: software emulates the instruction's access.

import { isAvicUnacceleratedAccessTrap } from '../../hw/apic/apic-access.js';
import { unacceleratedAccessIsWrite, type AvicExitInfo } from '../../hw/avic/avic-exit.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import { TraceEventKind, type TraceRecorder } from '../report/trace-recorder.js';

/** What the handler needs from the vCPU. */
export interface UnacceleratedAccessHost {
  readonly counters: VcpuCounting;
  readonly trace: TraceRecorder | undefined;
  /** The register emulation (local-apic-emulation.ts). */
  readonly lapic: {
    applyTrappedWrite(offset: number): void;
    readRegister(offset: number): number;
    emulateFaultingWrite(offset: number, value: number): void;
  };
}

/**
 * avic_unaccelerated_access_interception. EXITINFO1 says whether the access was a write; `offset`
 * and `value` are the access as the instruction made it (EXITINFO1 keeps only bits 11:4 of the
 * offset; KVM's emulator decodes the instruction for a fault, as the model does here). Trap or fault
 * follows from the offset, as in KVM (is_avic_unaccelerated_access_trap). Returns the value an
 * emulated read produces.
 */
export function avicUnacceleratedAccessInterception(
  exit: AvicExitInfo,
  offset: number,
  value: number,
  host: UnacceleratedAccessHost,
): number {
  const write = unacceleratedAccessIsWrite(exit.exitInfo1High);
  const trap = write && isAvicUnacceleratedAccessTrap(offset);
  host.counters.count(trap ? VcpuStatistic.unacceleratedAccessTrapExits : VcpuStatistic.unacceleratedAccessFaultExits);
  host.trace?.record(TraceEventKind.UnacceleratedAccessExit, offset, trap ? 1 : 0, write ? 1 : 0, exit.exitInfo2Low);
  if (trap) {
    host.lapic.applyTrappedWrite(offset);
    return 0;
  }
  if (!write) return host.lapic.readRegister(offset);
  host.lapic.emulateFaultingWrite(offset, value);
  return 0;
}
