// The local APIC's registers, one row per 16-byte slot of the APIC page, and every per-register fact
// the model uses, in one place: the architectural access in xAPIC (MMIO) and x2APIC (MSR) mode
// (Intel SDM vol. 3 §11.4.1 table 11-1 and §11.12.1.2 table 11-6), what AVIC does with a guest
// read or write of the register in its backing page (AMD APM vol. 2, 15.29; KVM
// is_avic_unaccelerated_access_trap), whether KVM lets x2AVIC handle the register's MSR
// (x2avic_passthrough_msrs, avic_set_x2apic_msr_interception) and the value after RESET or INIT
// (SDM §11.4.7.1, kvm_lapic_reset).
//
// Everything else derives from these rows: classifyApicAccess (apic-access.ts), the x2APIC #GP
// rules (x2apic-register.ts), the read-only check of the MMIO emulation, the x2AVIC pass-through
// set, and the reset values written by resetApicPage and the INIT reset. The lookups are slot
// indexed typed arrays built once at load, so the hot path (every guest APIC access) allocates
// nothing and does one array load.

import { APIC_LVT_CMCI_OFFSET, APIC_SELF_IPI_OFFSET, ApicRegister, X2APIC_MSR_BASE } from './apic-register.js';

/** How a register may be accessed in a given mode (SDM tables 11-1 and 11-6). */
export const RegisterAccess = {
  /** No register: #GP in x2APIC mode, ESR illegal register address in xAPIC mode. */
  Reserved: 0,
  ReadWrite: 1,
  ReadOnly: 2,
  WriteOnly: 3,
} as const;
export type RegisterAccess = (typeof RegisterAccess)[keyof typeof RegisterAccess];

/** What the AVIC hardware does with a guest access to the APIC page (AMD APM vol. 2, 15.29). */
export const ApicAccessKind = {
  /** Read from / write to the backing page, nothing else happens. */
  Accelerated: 0,
  /** TPR write: the page is updated, then pending interrupts must be re-evaluated against PPR. */
  AcceleratedTaskPriority: 1,
  /** EOI write with an edge-triggered (or no) vector in service: the EOI is done, no exit (APM 15.29.9.2). */
  AcceleratedEndOfInterrupt: 2,
  /** ICR low write: the AVIC IPI path (avic-ipi-delivery.ts), which may end in an AVIC_INCOMPLETE_IPI exit. */
  InterruptCommand: 3,
  /** Write reaches the page, then an AVIC_NOACCEL trap exit; software applies the side effects. */
  Trap: 4,
  /** AVIC_NOACCEL fault exit before the access: software decodes and emulates the instruction. */
  Fault: 5,
} as const;
export type ApicAccessKind = (typeof ApicAccessKind)[keyof typeof ApicAccessKind];

/** Version register after reset: version 0x14 (integrated APIC), max LVT entry 5 (bits 23:16). */
export const APIC_VERSION_RESET = 0x00050014;
/** DFR after reset: flat model (bits 31:28 = 0xF; bits 27:0 read as ones). */
export const DFR_FLAT = -1; // 0xFFFFFFFF as an Int32
/** LVT mask bit (16): every LVT entry is masked after reset. */
export const LVT_MASKED = 0x10000;
/** SVR after RESET or INIT: 0xFF, APIC software-disabled (SDM §11.4.7.1). */
export const SVR_RESET = 0xff;

export interface ApicRegisterRow {
  /** Byte offset in the APIC page; the x2APIC MSR is 0x800 + (offset >> 4). */
  readonly offset: number;
  /** KVM's name (apicdef.h), with the word index for the 256-bit registers. */
  readonly name: string;
  /** Architectural access in xAPIC mode (SDM table 11-1). */
  readonly xapic: RegisterAccess;
  /** Architectural access in x2APIC mode (SDM table 11-6). */
  readonly x2apic: RegisterAccess;
  /** AVIC, guest read of the backing page: Accelerated or Fault. */
  readonly avicRead: ApicAccessKind;
  /**
   * AVIC, guest write: Accelerated (ICR high), AcceleratedTaskPriority, AcceleratedEndOfInterrupt
   * (a Trap instead while the highest in-service vector is level-triggered, APM 15.29.9.2),
   * InterruptCommand, Trap or Fault.
   */
  readonly avicWrite: ApicAccessKind;
  /** The register's MSR is in KVM's x2avic_passthrough_msrs (the first MSR only of ISR, TMR, IRR). */
  readonly x2avicPassthrough: boolean;
  /** Value after RESET and INIT; the ID's is the vCPU's own and is written separately. */
  readonly resetValue: number;
  /** Exists only on a CPU that reports LVT CMCI (this APIC's version says 6 LVT entries: none). */
  readonly requiresCmci: boolean;
  /** One of the eight words of a 256-bit register (ISR, TMR, IRR), written as eight slots. */
  readonly bitmapWord: boolean;
}

const { Reserved: __, ReadWrite: RW, ReadOnly: RO, WriteOnly: WO } = RegisterAccess;
const {
  Accelerated: ACCEL,
  AcceleratedTaskPriority: TPR,
  AcceleratedEndOfInterrupt: EOI,
  InterruptCommand: ICR,
  Trap: TRAP,
  Fault: FAULT,
} = ApicAccessKind;

function row(
  offset: number,
  name: string,
  xapic: RegisterAccess,
  x2apic: RegisterAccess,
  avicRead: ApicAccessKind,
  avicWrite: ApicAccessKind,
  x2avicPassthrough: boolean,
  resetValue = 0,
  requiresCmci = false,
): ApicRegisterRow {
  return { offset, name, xapic, x2apic, avicRead, avicWrite, x2avicPassthrough, resetValue, requiresCmci, bitmapWord: false };
}

/** ISR, TMR, IRR: eight read-only words; KVM passes only the first word's MSR through to x2AVIC. */
function bitmapRows(first: number, name: string): ApicRegisterRow[] {
  return Array.from({ length: 8 }, (_, word) => ({
    ...row(first + word * 0x10, `${name}${word}`, RO, RO, ACCEL, FAULT, word === 0),
    bitmapWord: true,
  }));
}

/**
 * The registers. AVIC columns: reads come from the page except the current count, which software
 * computes from a clock the page does not hold (not in KVM's trap list, so a fault); writes trap
 * exactly for KVM's is_avic_unaccelerated_access_trap list, except TPR and edge EOI (completed by
 * hardware), ICR low (the IPI path) and ICR high (stored, no exit: guests write it before every
 * IPI); every other write faults. Slots not listed are reserved in both modes; AVIC reads them from
 * the page and faults their writes.
 */
export const APIC_REGISTER_TABLE: readonly ApicRegisterRow[] = [
  //   offset                                   name             xAPIC x2APIC read   write  x2AVIC reset
  row(ApicRegister.Id, 'APIC_ID', RW, RO, ACCEL, TRAP, true),
  row(ApicRegister.Version, 'APIC_LVR', RO, RO, ACCEL, FAULT, true, APIC_VERSION_RESET),
  row(ApicRegister.TaskPriority, 'APIC_TASKPRI', RW, RW, ACCEL, TPR, true),
  row(ApicRegister.ArbitrationPriority, 'APIC_ARBPRI', RO, __, ACCEL, FAULT, true),
  row(ApicRegister.ProcessorPriority, 'APIC_PROCPRI', RO, RO, ACCEL, FAULT, true),
  row(ApicRegister.EndOfInterrupt, 'APIC_EOI', WO, WO, ACCEL, EOI, true),
  row(ApicRegister.RemoteRead, 'APIC_RRR', RO, __, ACCEL, TRAP, true),
  row(ApicRegister.LogicalDestination, 'APIC_LDR', RW, RO, ACCEL, TRAP, true),
  row(ApicRegister.DestinationFormat, 'APIC_DFR', RW, __, ACCEL, TRAP, true, DFR_FLAT),
  row(ApicRegister.SpuriousInterruptVector, 'APIC_SPIV', RW, RW, ACCEL, TRAP, true, SVR_RESET),
  ...bitmapRows(ApicRegister.InService, 'APIC_ISR'),
  ...bitmapRows(ApicRegister.TriggerMode, 'APIC_TMR'),
  ...bitmapRows(ApicRegister.InterruptRequest, 'APIC_IRR'),
  row(ApicRegister.ErrorStatus, 'APIC_ESR', RW, RW, ACCEL, TRAP, true),
  row(APIC_LVT_CMCI_OFFSET, 'APIC_LVTCMCI', RW, RW, ACCEL, FAULT, false, 0, true),
  row(ApicRegister.InterruptCommandLow, 'APIC_ICR', RW, RW, ACCEL, ICR, true),
  row(ApicRegister.InterruptCommandHigh, 'APIC_ICR2', RW, __, ACCEL, ACCEL, true),
  // The LVT timer stays intercepted under x2AVIC: KVM does not virtualize TSC-deadline mode.
  row(ApicRegister.LvtTimer, 'APIC_LVTT', RW, RW, ACCEL, TRAP, false, LVT_MASKED),
  row(ApicRegister.LvtThermal, 'APIC_LVTTHMR', RW, RW, ACCEL, TRAP, true, LVT_MASKED),
  row(ApicRegister.LvtPerformanceCounter, 'APIC_LVTPC', RW, RW, ACCEL, TRAP, true, LVT_MASKED),
  row(ApicRegister.LvtLint0, 'APIC_LVT0', RW, RW, ACCEL, TRAP, true, LVT_MASKED),
  row(ApicRegister.LvtLint1, 'APIC_LVT1', RW, RW, ACCEL, TRAP, true, LVT_MASKED),
  row(ApicRegister.LvtError, 'APIC_LVTERR', RW, RW, ACCEL, TRAP, true, LVT_MASKED),
  row(ApicRegister.TimerInitialCount, 'APIC_TMICT', RW, RW, ACCEL, TRAP, true),
  row(ApicRegister.TimerCurrentCount, 'APIC_TMCCT', RO, RO, FAULT, FAULT, true),
  row(ApicRegister.TimerDivideConfiguration, 'APIC_TDCR', RW, RW, ACCEL, TRAP, true),
  // Not in KVM's pass-through list: a SELF IPI WRMSR exits and KVM sends it in software.
  row(APIC_SELF_IPI_OFFSET, 'APIC_SELF_IPI', __, WO, ACCEL, FAULT, false),
];

/** The last register slot in the page (0x3F0); the table covers slots 0..LAST_REGISTER_SLOT. */
const LAST_REGISTER_OFFSET = 0x3f0;
const SLOTS = (LAST_REGISTER_OFFSET >> 4) + 1;

// Slot-indexed views of the table (index = offset >> 4). Reserved slots keep the defaults below.
const xapicAccess = new Uint8Array(SLOTS).fill(__);
const x2apicAccess = new Uint8Array(SLOTS).fill(__);
const avicRead = new Uint8Array(SLOTS).fill(ACCEL);
const avicWrite = new Uint8Array(SLOTS).fill(FAULT);
const requiresCmci = new Uint8Array(SLOTS);
const bitmapWord = new Uint8Array(SLOTS);
const rowsBySlot: (ApicRegisterRow | undefined)[] = new Array<ApicRegisterRow | undefined>(SLOTS).fill(undefined);
for (const entry of APIC_REGISTER_TABLE) {
  const slot = entry.offset >> 4;
  if ((entry.offset & 0xf) !== 0 || slot >= SLOTS || rowsBySlot[slot] !== undefined)
    throw new Error(`APIC register table: bad or duplicate row ${entry.name}`);
  rowsBySlot[slot] = entry;
  xapicAccess[slot] = entry.xapic;
  x2apicAccess[slot] = entry.x2apic;
  avicRead[slot] = entry.avicRead;
  avicWrite[slot] = entry.avicWrite;
  requiresCmci[slot] = entry.requiresCmci ? 1 : 0;
  bitmapWord[slot] = entry.bitmapWord ? 1 : 0;
}
const resetRows = APIC_REGISTER_TABLE.filter((entry) => entry.resetValue !== 0);
const RESET_WORDS = Int32Array.from(resetRows, (entry) => entry.offset >> 2);
const RESET_VALUES = Int32Array.from(resetRows, (entry) => entry.resetValue);

/** The slot index of `offset`, or -1 when it is not the start of a register slot in the page. */
function registerSlot(offset: number): number {
  return (offset & 0xf) !== 0 || offset < 0 || offset > LAST_REGISTER_OFFSET ? -1 : offset >> 4;
}

/** The row of the register at `offset`, or undefined for a reserved or misaligned offset. */
export function apicRegisterRow(offset: number): ApicRegisterRow | undefined {
  const slot = registerSlot(offset);
  return slot < 0 ? undefined : rowsBySlot[slot];
}

function accessIn(table: Uint8Array, offset: number, lvtCmciSupported: boolean): RegisterAccess {
  const slot = registerSlot(offset);
  if (slot < 0 || (requiresCmci[slot] === 1 && !lvtCmciSupported)) return RegisterAccess.Reserved;
  return table[slot] as RegisterAccess;
}

/** Access of the register at page `offset` in xAPIC (MMIO) mode (the xapic column). */
export function xapicAccessOf(offset: number, lvtCmciSupported = false): RegisterAccess {
  return accessIn(xapicAccess, offset, lvtCmciSupported);
}

/** Access of the register at page `offset` in x2APIC (MSR) mode (the x2apic column). */
export function x2apicAccessOf(offset: number, lvtCmciSupported = false): RegisterAccess {
  return accessIn(x2apicAccess, offset, lvtCmciSupported);
}

/**
 * The AVIC column for one access, before the EOI's level check (classifyApicAccess makes it):
 * misaligned offsets and offsets past 0x3F0 fault.
 */
export function avicAccessKindOf(offset: number, isWrite: boolean): ApicAccessKind {
  const slot = registerSlot(offset);
  if (slot < 0) return ApicAccessKind.Fault;
  return (isWrite ? avicWrite[slot] : avicRead[slot]) as ApicAccessKind;
}

/**
 * KVM's is_avic_unaccelerated_access_trap(): the offsets whose write can reach the page and then
 * exit as a trap. That is every Trap row, plus EOI (a level-triggered one traps) and ICR low (KVM
 * lists it; here AVIC handles it first, as the InterruptCommand kind).
 */
export function isAvicUnacceleratedAccessTrap(offset: number): boolean {
  const kind = avicAccessKindOf(offset, true);
  return kind === ApicAccessKind.Trap || kind === ApicAccessKind.AcceleratedEndOfInterrupt || kind === ApicAccessKind.InterruptCommand;
}

/**
 * Whether a 32-bit write at byte `offset` of the xAPIC page goes to a read-only register, which
 * ignores it (a write to a reserved offset sets ESR "illegal register address" instead, SDM
 * §11.5.3): the start of a read-only register's slot, or any word of the 256-bit ISR, TMR and IRR.
 */
export function isReadOnlyRegister(offset: number): boolean {
  if (offset < 0 || offset > LAST_REGISTER_OFFSET + 0xf) return false;
  const slot = offset >> 4;
  return xapicAccess[slot] === RegisterAccess.ReadOnly && ((offset & 0xf) === 0 || bitmapWord[slot] === 1);
}

/** KVM's x2avic_passthrough_msrs: the x2APIC MSRs x2AVIC handles while it is active for the vCPU. */
export const X2AVIC_PASSTHROUGH_MSRS: ReadonlySet<number> = new Set(
  APIC_REGISTER_TABLE.filter((entry) => entry.x2avicPassthrough).map((entry) => X2APIC_MSR_BASE + (entry.offset >> 4)),
);

/**
 * Writes every register's RESET/INIT value that is not zero (version, DFR, SVR, the LVT masks)
 * into the page at word `base`. The caller zeroes the rest and writes the ID.
 */
export function writeApicRegisterResetValues(words: Int32Array, base: number): void {
  for (let i = 0; i < RESET_WORDS.length; i++) words[base + RESET_WORDS[i]!] = RESET_VALUES[i]!;
}
