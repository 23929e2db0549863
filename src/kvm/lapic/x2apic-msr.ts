// RDMSR/WRMSR of the x2APIC registers (MSRs 0x800-0x8FF) and of IA32_APIC_BASE (0x1B), the
// hypervisor side (KVM kvm_x2apic_msr_read / kvm_x2apic_msr_write, kvm_apic_set_base). The #GP rules
// and the state machine are pure (src/hw/apic/x2apic-register.ts, apic-base.ts); this file asks them,
// then acts on the vCPU's page through the register emulation (LocalApicEmulation, as X2apicMsrApic).
//
// Two AVIC flavours (VmConfig.x2avic):
//  * x2AVIC (the default): for a vCPU in x2APIC mode with AVIC active KVM sets int_ctl bit 30 and
//    stops intercepting the MSRs of x2avic_passthrough_msrs (avic_set_x2apic_msr_interception), and
//    x2AVIC handles an access to one of them as xAVIC handles the same register in the APIC page
//    (AMD APM vol. 2, 15.29): reads, TPR and EOI writes complete with no exit, an ICR write is the
//    hardware IPI path (src/hw/avic/x2avic-ipi-delivery.ts) with the same incomplete-IPI exits as
//    xAPIC, the other writes trap and the current-count read faults (AVIC_NOACCEL, as for xAPIC:
//    src/hw/avic/avic-apic-access.ts), after the hardware's own #GP checks (x2avicMsrReadFaults,
//    x2avicMsrWriteFaults). Everything else is intercepted, an MSR exit: IA32_APIC_BASE, the LVT
//    timer (KVM keeps it intercepted: TSC-deadline mode is not virtualized), SELF IPI (not in the
//    list, so KVM sends it in software) and all but the first MSR of ISR, TMR and IRR (the list
//    names X2APIC_MSR(APIC_ISR) etc., one MSR each).
//  * "hybrid AVIC" (x2avic: false; avic_activate_vmcb's comment): AVIC stays on for xAPIC vCPUs, and KVM intercepts the
//    x2APIC MSRs of the x2APIC ones, so every x2APIC register access is emulated and every ICR or
//    SELF IPI write takes the software IPI path (apic-software-ipi.ts). Not modelled: the sticky
//    deletion of the APIC-access memslot that hybrid mode causes in KVM (kvm_inhibit_apic_access_page,
//    docs/lock-scenarios.md s3).
//
// #GP: the instruction does not complete and the guest takes vector 13 (GuestCpu
// raiseGeneralProtection); only with no handler there does it become a guest fault of kind
// GeneralProtection, naming the MSR, the value and the rule, that stops the VM (docs/guest-isa.md §12).
//
// The vCPU's APIC mode is the control-block word apicMode (VcpuApicMode, vcpu-run-state.ts), written
// by the owning vCPU after the ID and LDR it implies, read by software-path senders and the main
// thread's map rebuild.

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { GuestFaultKind } from '../../guest/guest-fault.js';
import { ApicRegister, APIC_DEFAULT_PHYSICAL_BASE } from '../../hw/apic/apic-register.js';
import {
  ApicBaseEffect,
  ApicBaseWriteFault,
  ApicMode,
  APIC_BASE_BSP,
  APIC_BASE_GLOBAL_ENABLE,
  APIC_BASE_X2APIC_ENABLE,
  classifyApicBaseWrite,
} from '../../hw/apic/apic-base.js';
import {
  X2apicMsr,
  X2apicMsrFault,
  x2apicMsrReadFault,
  x2apicMsrWriteFault,
  xapicOffsetForX2apicMsr,
} from '../../hw/apic/x2apic-register.js';
import { ApicImplementation, x2apicInterruptCommandStoredLow } from '../../hw/apic/interrupt-command-readback.js';
import type { LocalApicEmulation } from './local-apic-emulation.js';
import { X2AVIC_PASSTHROUGH_MSRS } from '../../hw/apic/apic-register-table.js';

/** The register emulation as the MSR handlers use it. */
export type X2apicMsrApic = Pick<
  LocalApicEmulation,
  'index' | 'x2apicMode' | 'read' | 'readRegister' | 'writeRegister' | 'enterX2apicMode' | 'sendX2apicInterruptCommand' | 'sendSelfIpi'
>;

/** The guest CPU as the MSR handlers use it: #GP, a stopping fault, the high half of RDMSR. */
export type X2apicMsrCpu = Pick<GuestCpu, 'raiseGeneralProtection' | 'raiseFault' | 'msrHighWord'>;

/** The guest is a 32-bit machine: MAXPHYADDR 32, so every bit of the APIC base's high half is reserved. */
const GUEST_PHYSICAL_ADDRESS_BITS = 32;

const X2APIC_FAULT_TEXT: Readonly<Record<X2apicMsrFault, string>> = {
  [X2apicMsrFault.None]: 'no fault',
  [X2apicMsrFault.NotInX2apicMode]: 'the APIC is not in x2APIC mode',
  [X2apicMsrFault.ReservedRegister]: 'no x2APIC register at this MSR',
  [X2apicMsrFault.ReadOfWriteOnly]: 'the register is write-only',
  [X2apicMsrFault.WriteToReadOnly]: 'the register is read-only',
  [X2apicMsrFault.ReservedBits]: 'reserved bits are set',
  [X2apicMsrFault.NonZeroEndOfInterrupt]: 'EOI must be written with 0',
  [X2apicMsrFault.NonZeroErrorStatus]: 'ESR must be written with 0',
  [X2apicMsrFault.IcrBusyBitSet]: 'the ICR delivery-status bit is set',
};

const APIC_BASE_FAULT_TEXT: Readonly<Record<ApicBaseWriteFault, string>> = {
  [ApicBaseWriteFault.None]: 'no fault',
  [ApicBaseWriteFault.ReservedBits]: 'reserved bits are set (bits 7:0, 9, or above MAXPHYADDR 32)',
  [ApicBaseWriteFault.InvalidState]: 'x2APIC enable without global enable is an invalid state',
  [ApicBaseWriteFault.X2apicToXapic]: 'x2APIC -> xAPIC must pass through disabled',
  [ApicBaseWriteFault.DisabledToX2apic]: 'disabled -> x2APIC must pass through xAPIC',
};

const hex = (value: number): string => `0x${(value >>> 0).toString(16)}`;

function generalProtection(cpu: X2apicMsrCpu, what: string, reason: string): void {
  cpu.raiseGeneralProtection(GuestFaultKind.GeneralProtection, `${what}: ${reason}`);
}

/** IA32_APIC_BASE as the guest reads it: the base, EN, EXTD in x2APIC mode, BSP on vCPU 0. */
export function apicBaseLow(apic: Pick<X2apicMsrApic, 'index' | 'x2apicMode'>): number {
  const extended = apic.x2apicMode ? APIC_BASE_X2APIC_ENABLE : 0;
  return APIC_DEFAULT_PHYSICAL_BASE | APIC_BASE_GLOBAL_ENABLE | extended | (apic.index === 0 ? APIC_BASE_BSP : 0) | 0;
}

/**
 * WRMSR 0x1B. The pure classifier decides #GP; of the legal changes this model performs xAPIC ->
 * x2APIC (the ID becomes the 32-bit vCPU index, the LDR is derived and read-only, DFR is gone) and
 * rewrites of the current value. Disabling the APIC, and moving its base (which would set
 * APIC_BASE_MODIFIED), stop the vCPU with an "unknown MSR" fault saying they are not modelled.
 */
export function writeApicBase(apic: X2apicMsrApic, cpu: X2apicMsrCpu, low: number, high: number): void {
  const what = `wrmsr IA32_APIC_BASE (0x1b) = ${hex(high)}:${hex(low)}`;
  const result = classifyApicBaseWrite(apicBaseLow(apic), 0, low, high, {
    x2apicSupported: true,
    physicalAddressBits: GUEST_PHYSICAL_ADDRESS_BITS,
  });
  if (result.fault !== ApicBaseWriteFault.None) {
    generalProtection(cpu, what, APIC_BASE_FAULT_TEXT[result.fault]);
    return;
  }
  if (result.effects === ApicBaseEffect.None) return;
  const modelled = ApicBaseEffect.SetX2apicIdAndLogicalDestination | ApicBaseEffect.ModeChanged;
  if (result.oldMode === ApicMode.Xapic && result.newMode === ApicMode.X2apic && (result.effects & ~modelled) === 0) {
    apic.enterX2apicMode();
    return;
  }
  cpu.raiseFault(GuestFaultKind.UnknownMsr, `${what}: disabling or relocating the APIC is not modelled (only xAPIC -> x2APIC is)`);
}

/** KVM's x2avic_passthrough_msrs, derived from the register table (apic-register-table.ts). */
export { X2AVIC_PASSTHROUGH_MSRS };

/** RDMSR 0x800-0x8FF: the register's page slot in EAX, EDX = 0 except for the ICR (0x830). */
export function readX2apicMsr(apic: X2apicMsrApic, cpu: X2apicMsrCpu, msr: number): number {
  const fault = x2apicMsrReadFault(msr, apic.x2apicMode);
  if (fault !== X2apicMsrFault.None) {
    generalProtection(cpu, `rdmsr ${hex(msr)}`, X2APIC_FAULT_TEXT[fault]);
    return 0;
  }
  cpu.msrHighWord = msr === X2apicMsr.InterruptCommand ? apic.read(ApicRegister.InterruptCommandHigh) : 0;
  return apic.readRegister(xapicOffsetForX2apicMsr(msr));
}

/**
 * The x2AVIC hardware's #GP checks on an RDMSR of an MSR it passes through, as for any x2APIC read.
 * Returns true (with #GP raised) if the read faults; otherwise AVIC handles it.
 */
export function x2avicMsrReadFaults(cpu: X2apicMsrCpu, msr: number): boolean {
  const fault = x2apicMsrReadFault(msr, true);
  if (fault === X2apicMsrFault.None) return false;
  generalProtection(cpu, `rdmsr ${hex(msr)}`, X2APIC_FAULT_TEXT[fault]);
  return true;
}

/**
 * The x2AVIC hardware's #GP checks on a WRMSR of an MSR it passes through (AMD also faults an ICR
 * write with BUSY set, where KVM's emulation clears it). Returns true (with #GP raised) if the write
 * faults; otherwise AVIC handles it.
 */
export function x2avicMsrWriteFaults(cpu: X2apicMsrCpu, msr: number, low: number, high: number): boolean {
  const fault = x2apicMsrWriteFault(msr, low, high, true, ApicImplementation.AmdAvic);
  if (fault === X2apicMsrFault.None) return false;
  generalProtection(cpu, `wrmsr ${hex(msr)} = ${hex(high)}:${hex(low)} (x2AVIC)`, X2APIC_FAULT_TEXT[fault]);
  return true;
}

/** WRMSR 0x800-0x8FF, inside an exit (KVM intercepts them): #GP checks, then the register's effect. */
export function writeX2apicMsr(apic: X2apicMsrApic, cpu: X2apicMsrCpu, msr: number, low: number, high: number): void {
  const fault = x2apicMsrWriteFault(msr, low, high, apic.x2apicMode, ApicImplementation.KvmEmulated);
  if (fault !== X2apicMsrFault.None) {
    generalProtection(cpu, `wrmsr ${hex(msr)} = ${hex(high)}:${hex(low)}`, X2APIC_FAULT_TEXT[fault]);
    return;
  }
  switch (msr) {
    case X2apicMsr.InterruptCommand:
      // One 64-bit register: the 32-bit destination is EDX. KVM clears BUSY (it has no delay).
      apic.sendX2apicInterruptCommand(x2apicInterruptCommandStoredLow(low) | 0, high | 0);
      return;
    case X2apicMsr.SelfIpi:
      apic.sendSelfIpi(low & 0xff);
      return;
    default:
      apic.writeRegister(xapicOffsetForX2apicMsr(msr), low | 0);
  }
}
