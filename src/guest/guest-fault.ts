// Guest faults: conditions the guest caused that stop its vCPU. They never throw in the host; the
// interpreter records one and returns GuestExit.Fault, and the VM stops with a report naming the vCPU,
// the address and the instruction.

export const GuestFaultKind = {
  /** The opcode byte names no instruction (zero-filled memory decodes as one). */
  InvalidOpcode: 'invalid-opcode',
  /** An indirect jump, call, ret or iret produced a pc that is not 8-byte aligned. */
  MisalignedInstruction: 'misaligned-instruction',
  /** The pc lies outside every RAM memslot. */
  FetchOutsideMemory: 'fetch-outside-memory',
  /** A load or store touched an address outside every memslot. */
  AccessOutsideMemory: 'access-outside-memory',
  /** An atomic instruction used an address that is not 4-byte aligned, or not RAM. */
  MisalignedAtomic: 'misaligned-atomic',
  /** divu or remu by zero. */
  DivideByZero: 'divide-by-zero',
  /** The interrupt vector table holds zero for the vector being delivered. */
  MissingInterruptHandler: 'missing-interrupt-handler',
  /** An access to the local APIC page that the architecture does not allow (width, alignment). */
  InvalidApicAccess: 'invalid-apic-access',
  /** rdmsr or wrmsr of an MSR the model does not implement (#GP) while vector 13 has no handler. */
  UnknownMsr: 'unknown-msr',
  /** An access the architecture answers with #GP (x2APIC MSR rules, IA32_APIC_BASE transitions) while vector 13 has no handler. */
  GeneralProtection: 'general-protection',
  /** The guest asked to stop with a failure (hypercall Abort). */
  GuestAbort: 'guest-abort',
} as const;
export type GuestFaultKind = (typeof GuestFaultKind)[keyof typeof GuestFaultKind];

export interface GuestFault {
  readonly kind: GuestFaultKind;
  /** pc of the instruction that faulted. */
  readonly pc: number;
  /** The guest address involved (the pc itself for fetch faults), when there is one. */
  readonly address?: number;
  /** The instruction in assembler syntax, when it could be read. */
  readonly instruction?: string;
  readonly detail: string;
}

const hex = (value: number): string => `0x${(value >>> 0).toString(16).padStart(8, '0')}`;

/** Where the faulting instruction was written (from the program's source map), for the report. */
export interface FaultSource {
  /** The program's file, or the included file the instruction came from. */
  readonly fileName: string;
  readonly line: number;
  readonly column: number;
  /** The source line, trimmed. */
  readonly text: string;
}

/** "access-outside-memory at pc 0x00001040 in lib.s:3:9 (ld32 r1, [0x80000000]) address 0x80000000: ..." */
export function describeGuestFault(fault: GuestFault, source?: FaultSource): string {
  const parts = [`${fault.kind} at pc ${hex(fault.pc)}`];
  if (source !== undefined) parts.push(`in ${source.fileName}:${source.line}:${source.column}`);
  if (fault.instruction !== undefined) parts.push(`(${fault.instruction})`);
  if (fault.address !== undefined) parts.push(`address ${hex(fault.address)}`);
  return `${parts.join(' ')}: ${fault.detail}`;
}
