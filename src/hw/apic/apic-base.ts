// IA32_APIC_BASE (MSR 0x1B) and the APIC mode state machine (Intel SDM vol. 3 §11.4.4 and
// §11.12.5 figure "Local x2APIC State Transitions"; AMD APM vol. 2 §16.3.1 and §16.11; KVM
// kvm_apic_set_base / __kvm_apic_set_base). The MSR is handled as two unsigned 32-bit halves like
// every other 64-bit value in src/hw.
//
//   bit 8   BSP       bootstrap processor flag
//   bit 10  EXTD      x2APIC enable
//   bit 11  EN        APIC global enable
//   bits 12..MAXPHYADDR-1   APIC base page frame; bits 0-7, 9 and MAXPHYADDR..63 are reserved
//
// Mode = (EN, EXTD): (0,0) disabled, (1,0) xAPIC, (1,1) x2APIC, (0,1) invalid. The legal moves are
// disabled <-> xAPIC, xAPIC -> x2APIC and x2APIC -> disabled. x2APIC -> xAPIC and disabled ->
// x2APIC fault for the guest (KVM lets the host do them: the `hostInitiated` flag).

import type { ApicId } from './apic-id.js';
import { APIC_DEFAULT_PHYSICAL_BASE } from './apic-register.js';
import { x2apicIdFromInitialApicId, x2apicLogicalDestination, type X2apicId } from './x2apic-id.js';

export const IA32_APIC_BASE_MSR = 0x1b;
export const APIC_BASE_BSP = 1 << 8;
export const APIC_BASE_X2APIC_ENABLE = 1 << 10;
export const APIC_BASE_GLOBAL_ENABLE = 1 << 11;
/** Low-half bits that are always reserved: 7:0 and 9 (KVM's 0x2ff). */
export const APIC_BASE_LOW_RESERVED_MASK = 0x2ff;
/** The low-half part of the base address field (bits 31:12). */
export const APIC_BASE_ADDRESS_MASK_LOW = 0xfffff000 | 0;

/** IA32_APIC_BASE after reset, as KVM sets it: enabled xAPIC at 0xFEE00000, BSP per vCPU. */
export function apicBaseAfterReset(isBootstrapProcessor: boolean): { low: number; high: number } {
  const low = APIC_DEFAULT_PHYSICAL_BASE | APIC_BASE_GLOBAL_ENABLE | (isBootstrapProcessor ? APIC_BASE_BSP : 0);
  return { low: low >>> 0, high: 0 };
}

export const ApicMode = {
  Disabled: 0,
  /** EN = 0, EXTD = 1: never a legal state; a write that asks for it faults. */
  Invalid: 1,
  Xapic: 2,
  X2apic: 3,
} as const;
export type ApicMode = (typeof ApicMode)[keyof typeof ApicMode];

/** The mode encoded by the low half of IA32_APIC_BASE. */
export function apicModeOf(baseLow: number): ApicMode {
  const enabled = (baseLow & APIC_BASE_GLOBAL_ENABLE) !== 0;
  const extended = (baseLow & APIC_BASE_X2APIC_ENABLE) !== 0;
  if (enabled) return extended ? ApicMode.X2apic : ApicMode.Xapic;
  return extended ? ApicMode.Invalid : ApicMode.Disabled;
}

/** Why a WRMSR 0x1B takes #GP, or None. */
export const ApicBaseWriteFault = {
  None: 0,
  /** Bits 7:0, 9 or >= MAXPHYADDR set, or EXTD without x2APIC in CPUID. */
  ReservedBits: 1,
  /** EN = 0 with EXTD = 1. */
  InvalidState: 2,
  /** x2APIC -> xAPIC without passing through disabled. */
  X2apicToXapic: 3,
  /** disabled -> x2APIC without passing through xAPIC. */
  DisabledToX2apic: 4,
} as const;
export type ApicBaseWriteFault = (typeof ApicBaseWriteFault)[keyof typeof ApicBaseWriteFault];

/** What the caller must do after an accepted write; a bit set (several may apply). */
export const ApicBaseEffect = {
  None: 0,
  /** Set the xAPIC ID register to initial ID << 24 (entering xAPIC from disabled or, host only, from x2APIC). */
  SetXapicId: 1 << 0,
  /** Set the ID register to the x2APIC ID (all 32 bits) and LDR to x2apicLogicalDestination(id). */
  SetX2apicIdAndLogicalDestination: 1 << 1,
  /** The APIC is now hardware-disabled: it accepts no interrupts and its registers are not decoded. */
  HardwareDisabled: 1 << 2,
  /** EN or EXTD changed: rebuild the APIC map and re-evaluate AVIC (KVM_REQ_APICV_UPDATE). */
  ModeChanged: 1 << 3,
  /** Enabled with a base other than 0xFEE00000: KVM sets APICV_INHIBIT_REASON_APIC_BASE_MODIFIED. */
  BaseRelocated: 1 << 4,
} as const;

export interface ApicBaseWriteResult {
  readonly fault: ApicBaseWriteFault;
  readonly oldMode: ApicMode;
  readonly newMode: ApicMode;
  /** OR of ApicBaseEffect bits; 0 when the write faulted or changed nothing. */
  readonly effects: number;
}

export interface ApicBaseWriteOptions {
  /** CPUID.1:ECX.x2APIC as shown to the guest; without it EXTD is a reserved bit. */
  readonly x2apicSupported: boolean;
  /** Guest MAXPHYADDR (bits at or above it in the base field are reserved). 32..52. */
  readonly physicalAddressBits: number;
  /** A host (userspace/state restore) write: KVM skips the two transition checks. */
  readonly hostInitiated?: boolean;
}

/** High-half reserved mask for a MAXPHYADDR of `bits` (bits >= MAXPHYADDR of the 64-bit value). */
function highReservedMask(bits: number): number {
  const highBits = Math.max(0, Math.min(32, bits - 32));
  return highBits >= 32 ? 0 : ~((1 << highBits) - 1) >>> 0;
}

/**
 * Classifies WRMSR 0x1B from `old` (the current value's low half) to `newLow`:`newHigh`. On a
 * fault the caller injects #GP and keeps the old value. Otherwise it stores the new value and
 * applies `effects` in bit order (IDs first, then the map rebuild); x2apicStateOnEntry gives the
 * ID and LDR to store for SetX2apicIdAndLogicalDestination. A write of the current value is
 * accepted with no effects (KVM returns early).
 */
export function classifyApicBaseWrite(
  oldLow: number,
  oldHigh: number,
  newLow: number,
  newHigh: number,
  options: ApicBaseWriteOptions,
): ApicBaseWriteResult {
  const oldMode = apicModeOf(oldLow);
  const newMode = apicModeOf(newLow);
  const faulted = (fault: ApicBaseWriteFault): ApicBaseWriteResult => ({ fault, oldMode, newMode, effects: ApicBaseEffect.None });
  if (oldLow >>> 0 === newLow >>> 0 && oldHigh >>> 0 === newHigh >>> 0) return faulted(ApicBaseWriteFault.None);
  const extendedReserved = options.x2apicSupported ? 0 : APIC_BASE_X2APIC_ENABLE;
  if (
    (newLow & (APIC_BASE_LOW_RESERVED_MASK | extendedReserved)) !== 0 ||
    (newHigh & highReservedMask(options.physicalAddressBits)) !== 0
  ) {
    return faulted(ApicBaseWriteFault.ReservedBits);
  }
  if (newMode === ApicMode.Invalid) return faulted(ApicBaseWriteFault.InvalidState);
  if (options.hostInitiated !== true) {
    if (oldMode === ApicMode.X2apic && newMode === ApicMode.Xapic) return faulted(ApicBaseWriteFault.X2apicToXapic);
    if (oldMode === ApicMode.Disabled && newMode === ApicMode.X2apic) return faulted(ApicBaseWriteFault.DisabledToX2apic);
  }
  return { fault: ApicBaseWriteFault.None, oldMode, newMode, effects: apicBaseEffects(oldLow, newLow, newHigh) };
}

/** KVM __kvm_apic_set_base's side effects, as flags. */
function apicBaseEffects(oldLow: number, newLow: number, newHigh: number): number {
  let effects = 0;
  const changed = oldLow ^ newLow;
  if ((changed & APIC_BASE_GLOBAL_ENABLE) !== 0) {
    effects |= (newLow & APIC_BASE_GLOBAL_ENABLE) !== 0 ? ApicBaseEffect.SetXapicId : ApicBaseEffect.HardwareDisabled;
  }
  if ((changed & APIC_BASE_X2APIC_ENABLE) !== 0) {
    if ((newLow & APIC_BASE_X2APIC_ENABLE) !== 0) effects |= ApicBaseEffect.SetX2apicIdAndLogicalDestination;
    else if ((newLow & APIC_BASE_GLOBAL_ENABLE) !== 0) effects |= ApicBaseEffect.SetXapicId;
  }
  // Entering x2APIC from xAPIC sets the x2APIC ID; the xAPIC ID set for EN 0 -> 1 does not apply.
  if ((effects & ApicBaseEffect.SetX2apicIdAndLogicalDestination) !== 0) effects &= ~ApicBaseEffect.SetXapicId;
  if ((changed & (APIC_BASE_GLOBAL_ENABLE | APIC_BASE_X2APIC_ENABLE)) !== 0) effects |= ApicBaseEffect.ModeChanged;
  const base = (newLow & APIC_BASE_ADDRESS_MASK_LOW) >>> 0;
  if ((newLow & APIC_BASE_GLOBAL_ENABLE) !== 0 && (base !== APIC_DEFAULT_PHYSICAL_BASE || newHigh !== 0))
    effects |= ApicBaseEffect.BaseRelocated;
  return effects;
}

/** The guest-physical base address in IA32_APIC_BASE (exact: < 2^52). */
export function apicBaseAddress(low: number, high: number): number {
  return (high >>> 0) * 0x1_0000_0000 + ((low & APIC_BASE_ADDRESS_MASK_LOW) >>> 0);
}

/** The ID register value in xAPIC mode for initial APIC ID `id`: bits 31:24 (KVM kvm_apic_set_xapic_id). */
export function xapicIdRegisterValue(initialApicId: ApicId): number {
  return ((initialApicId & 0xff) << 24) >>> 0;
}

/**
 * The ID register and LDR to store on entering x2APIC mode (ApicBaseEffect.SetX2apicIdAndLogical-
 * Destination): the x2APIC ID is the initial APIC ID, unshifted, and the LDR is derived from it.
 * DFR no longer exists; callers leave its slot alone (KVM does too).
 */
export function x2apicStateOnEntry(initialApicId: ApicId): { readonly id: X2apicId; readonly logicalDestination: number } {
  const id = x2apicIdFromInitialApicId(initialApicId);
  return { id, logicalDestination: x2apicLogicalDestination(id) };
}
