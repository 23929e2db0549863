// RDMSR/WRMSR of the x2APIC registers (MSRs 0x800-0x8FF) and of IA32_APIC_BASE (0x1B), the
// hypervisor side (KVM kvm_x2apic_msr_read / kvm_x2apic_msr_write, kvm_apic_set_base). The #GP rules
// and the state machine are pure (src/hw/apic/x2apic-register.ts, apic-base.ts); this file asks them,
// then acts on the vCPU's page through LocalApicEmulation.
//
// Two AVIC flavours (VmConfig.x2avic):
//  * x2AVIC (the default): for a vCPU in x2APIC mode with AVIC active KVM sets int_ctl bit 30 and
//    stops intercepting the MSRs of x2avic_passthrough_msrs (avic_set_x2apic_msr_interception), and
//    x2AVIC handles an access to one of them as xAVIC handles the same register in the APIC page
//    (AMD APM vol. 2, 15.29): reads, TPR and EOI writes complete with no exit, an ICR write is the
//    hardware IPI path (src/hw/avic/x2avic-ipi-delivery.ts) with the same incomplete-IPI exits as
//    xAPIC, the other writes trap and the current-count read faults (AVIC_NOACCEL, as for xAPIC:
//    classifyApicAccess). Everything else is intercepted, an MSR exit: IA32_APIC_BASE, the LVT
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
// The vCPU's APIC mode is the control-block word apicMode (VcpuApicMode), written by the owning vCPU
// after the ID and LDR it implies, read by software-path senders and the main thread's map rebuild.

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
import { ApicAccessKind } from '../../hw/apic/apic-access.js';
import { X2AVIC_PASSTHROUGH_MSRS } from '../../hw/apic/apic-register-table.js';
import { TraceEventKind } from '../report/trace-recorder.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { Vcpu } from '../vcpu/vcpu.js';

/** The control block's apicMode word. 0 is the reset state, so a fresh (zeroed) block reads xAPIC. */
export const VcpuApicMode = {
  Xapic: 0,
  X2apic: 1,
} as const;
export type VcpuApicMode = (typeof VcpuApicMode)[keyof typeof VcpuApicMode];

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

function generalProtection(cpu: GuestCpu, what: string, reason: string): void {
  cpu.raiseGeneralProtection(GuestFaultKind.GeneralProtection, `${what}: ${reason}`);
}

/** IA32_APIC_BASE as the guest reads it: the base, EN, EXTD in x2APIC mode, BSP on vCPU 0. */
export function apicBaseLow(vcpu: Vcpu): number {
  const extended = vcpu.apic.x2apicMode ? APIC_BASE_X2APIC_ENABLE : 0;
  return (APIC_DEFAULT_PHYSICAL_BASE | APIC_BASE_GLOBAL_ENABLE | extended | (vcpu.index === 0 ? APIC_BASE_BSP : 0)) | 0;
}

/**
 * WRMSR 0x1B. The pure classifier decides #GP; of the legal changes this model performs xAPIC ->
 * x2APIC (the ID becomes the 32-bit vCPU index, the LDR is derived and read-only, DFR is gone) and
 * rewrites of the current value. Disabling the APIC, and moving its base (which would set
 * APIC_BASE_MODIFIED), stop the vCPU with an "unknown MSR" fault saying they are not modelled.
 */
export function writeApicBase(vcpu: Vcpu, cpu: GuestCpu, low: number, high: number): void {
  const what = `wrmsr IA32_APIC_BASE (0x1b) = ${hex(high)}:${hex(low)}`;
  const result = classifyApicBaseWrite(apicBaseLow(vcpu), 0, low, high, { x2apicSupported: true, physicalAddressBits: GUEST_PHYSICAL_ADDRESS_BITS });
  if (result.fault !== ApicBaseWriteFault.None) {
    generalProtection(cpu, what, APIC_BASE_FAULT_TEXT[result.fault]);
    return;
  }
  if (result.effects === ApicBaseEffect.None) return;
  const modelled = ApicBaseEffect.SetX2apicIdAndLogicalDestination | ApicBaseEffect.ModeChanged;
  if (result.oldMode === ApicMode.Xapic && result.newMode === ApicMode.X2apic && (result.effects & ~modelled) === 0) {
    vcpu.apic.enterX2apicMode();
    return;
  }
  cpu.raiseFault(GuestFaultKind.UnknownMsr, `${what}: disabling or relocating the APIC is not modelled (only xAPIC -> x2APIC is)`);
}

/** KVM's x2avic_passthrough_msrs, derived from the register table (apic-register-table.ts). */
export { X2AVIC_PASSTHROUGH_MSRS };

/** Whether an RDMSR/WRMSR of x2APIC `msr` reaches the x2AVIC hardware instead of exiting. */
export function x2avicPassesThrough(vcpu: Vcpu, msr: number): boolean {
  return X2AVIC_PASSTHROUGH_MSRS.has(msr) && vcpu.apic.x2avicAccelerates;
}

/** RDMSR 0x800-0x8FF: the register's page slot in EAX, EDX = 0 except for the ICR (0x830). */
export function readX2apicMsr(vcpu: Vcpu, cpu: GuestCpu, msr: number): number {
  const fault = x2apicMsrReadFault(msr, vcpu.apic.x2apicMode);
  if (fault !== X2apicMsrFault.None) {
    generalProtection(cpu, `rdmsr ${hex(msr)}`, X2APIC_FAULT_TEXT[fault]);
    return 0;
  }
  const offset = xapicOffsetForX2apicMsr(msr);
  cpu.msrHighWord = msr === X2apicMsr.InterruptCommand ? vcpu.apic.read(ApicRegister.InterruptCommandHigh) : 0;
  return vcpu.apic.readRegister(offset);
}

/**
 * RDMSR of an x2APIC MSR x2AVIC passes through (x2avicPassesThrough): #GP as for any x2APIC read;
 * the current count faults (AVIC_NOACCEL, emulated); every other register is read from the page
 * with no exit.
 */
export function readX2apicMsrPassedThrough(vcpu: Vcpu, cpu: GuestCpu, msr: number): number {
  const offset = xapicOffsetForX2apicMsr(msr);
  if (x2apicMsrReadFault(msr, true) === X2apicMsrFault.None && vcpu.classifyAccess(offset, false) === ApicAccessKind.Fault) {
    vcpu.count(VcpuStatistic.unacceleratedAccessFaultExits);
    vcpu.trace?.record(TraceEventKind.UnacceleratedAccessExit, offset, 0);
    vcpu.beginExitHandling();
    const value = readX2apicMsr(vcpu, cpu, msr);
    vcpu.endExitHandling();
    return value;
  }
  return readX2apicMsr(vcpu, cpu, msr);
}

/**
 * WRMSR of an x2APIC MSR x2AVIC passes through, in guest mode: the hardware's #GP checks (AMD also
 * faults an ICR write with BUSY set, where KVM's emulation clears it), then what AVIC does with the
 * register (classifyApicAccess): TPR and edge EOI complete with no exit, ICR is the hardware IPI
 * path, a level EOI and the other writable registers trap (AVIC_NOACCEL; KVM applies the effect,
 * kvm_apic_write_nodecode).
 */
export function writeX2apicMsrPassedThrough(vcpu: Vcpu, cpu: GuestCpu, msr: number, low: number, high: number): void {
  const fault = x2apicMsrWriteFault(msr, low, high, true, ApicImplementation.AmdAvic);
  if (fault !== X2apicMsrFault.None) {
    generalProtection(cpu, `wrmsr ${hex(msr)} = ${hex(high)}:${hex(low)} (x2AVIC)`, X2APIC_FAULT_TEXT[fault]);
    return;
  }
  const offset = xapicOffsetForX2apicMsr(msr);
  const kind = vcpu.classifyAccess(offset, true);
  switch (kind) {
    case ApicAccessKind.InterruptCommand:
      vcpu.apic.sendAcceleratedX2apicInterruptCommand(low | 0, high | 0);
      return;
    case ApicAccessKind.AcceleratedTaskPriority:
    case ApicAccessKind.AcceleratedEndOfInterrupt:
      vcpu.apic.writeRegister(offset, low | 0);
      return;
    default: {
      const trap = kind === ApicAccessKind.Trap;
      vcpu.count(trap ? VcpuStatistic.unacceleratedAccessTrapExits : VcpuStatistic.unacceleratedAccessFaultExits);
      vcpu.trace?.record(TraceEventKind.UnacceleratedAccessExit, offset, trap ? 1 : 0);
      vcpu.beginExitHandling();
      vcpu.apic.writeRegister(offset, low | 0);
      vcpu.endExitHandling();
    }
  }
}

/** WRMSR 0x800-0x8FF, inside an exit (KVM intercepts them): #GP checks, then the register's effect. */
export function writeX2apicMsr(vcpu: Vcpu, cpu: GuestCpu, msr: number, low: number, high: number): void {
  const fault = x2apicMsrWriteFault(msr, low, high, vcpu.apic.x2apicMode, ApicImplementation.KvmEmulated);
  if (fault !== X2apicMsrFault.None) {
    generalProtection(cpu, `wrmsr ${hex(msr)} = ${hex(high)}:${hex(low)}`, X2APIC_FAULT_TEXT[fault]);
    return;
  }
  switch (msr) {
    case X2apicMsr.InterruptCommand:
      // One 64-bit register: the 32-bit destination is EDX. KVM clears BUSY (it has no delay).
      vcpu.apic.sendX2apicInterruptCommand(x2apicInterruptCommandStoredLow(low) | 0, high | 0);
      return;
    case X2apicMsr.SelfIpi:
      vcpu.apic.sendSelfIpi(low & 0xff);
      return;
    default:
      vcpu.apic.writeRegister(xapicOffsetForX2apicMsr(msr), low | 0);
  }
}
