// A model of AMD erratum #1235 (AMD Revision Guide for Family 17h processors: Zen1 and Zen2 parts).
// During the emulation of a guest ICR write, the sending CPU's AVIC may not yet see a recent clear
// of the target's IsRunning bit (AMD APM vol. 2, 15.29: the physical APIC ID table entry) made by
// the host CPU that ran the target: it acts on the old IsRunning = 1, takes no
// AVIC_INCOMPLETE_IPI exit and rings the doorbell of the host CPU the entry still names. When the
// target was blocking, the doorbell wakes nobody (a blocked vCPU is woken only by KVM's wake-up,
// which the missing exit would have sent: avic_incomplete_ipi_interception ->
// avic_kick_target_vcpus -> kvm_vcpu_wake_up), so it stays blocked with the vector in its IRR.
// KVM's work-around: avic_hardware_setup turns enable_ipiv off on Family 17h, so IsRunning is never
// set in the table and every IPI to another vCPU exits (`--no-ipiv` here).
//
// The model (VmConfig.erratum1235): the entry's owner stamps, on the VM clock, each clear of a set
// IsRunning bit (PhysicalApicIdTable.setIsRunning, stamp before the clear); a sender that reads
// IsRunning = 0 with a stamp younger than the window W acts as if it had read 1. W stands for the
// store-to-load visibility window the missing ordering opens: on silicon a few hundred cycles, here
// stretched to the emulator's time scale (vm-config.ts says why its default is what it is). Off,
// the driver pays one branch on the not-running path and nothing else.

import type { PhysicalApicIdTable } from './physical-apic-id-table.js';

/** The sending hardware's erratum, when the model is on (AvicHardware.erratum1235). */
export interface Erratum1235 {
  /** W in ns: a clear younger than this is not yet seen by the sender. */
  readonly windowNs: number;
  /** The VM clock in ns, the clock the owners stamp their clears with. */
  readonly readClockNs: () => number;
}

/**
 * The sender just read IsRunning = 0 in entry `index`: does the erratum make it act on the old 1?
 * True when the owner's last clear (stamped before it, so the load that saw the clear sees the
 * stamp) is younger than the window. An entry never cleared has stamp 0: never stale.
 */
export function missesIsRunningClear(table: PhysicalApicIdTable, index: number, erratum: Erratum1235): boolean {
  const clearedAtNs = table.isRunningClearedAtNs(index);
  return clearedAtNs > 0 && erratum.readClockNs() - clearedAtNs < erratum.windowNs;
}
