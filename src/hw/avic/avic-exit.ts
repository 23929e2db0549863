// The two AVIC #VMEXITs and their exit information (AMD APM vol. 2, 15.29; svm.h SVM_EXIT_AVIC_*). EXITINFO1 and
// EXITINFO2 are 64-bit; they are kept as 32-bit halves in plain numbers so that producing an exit
// on the IPI path allocates nothing. BigInt appears only in the test helper at the bottom.

/** SVM exit codes (commit 18f40c53e10f "svm: Add VMEXIT handlers for AVIC"). */
export const AvicExitCode = {
  /** SVM_EXIT_AVIC_INCOMPLETE_IPI: an ICR-low write the hardware could not fully deliver. */
  IncompleteIpi: 0x401,
  /** SVM_EXIT_AVIC_UNACCELERATED_ACCESS (APM: AVIC_NOACCEL): a trapped or faulting APIC access. */
  UnacceleratedAccess: 0x402,
} as const;
export type AvicExitCode = (typeof AvicExitCode)[keyof typeof AvicExitCode];

/**
 * The #VMEXIT codes the model takes (svm.h SVM_EXIT_*): the two AVIC ones, and the intercepts the
 * vCPU's exit dispatch handles beside them (svm_exit_handlers).
 */
export const SvmExitCode = {
  /** SVM_EXIT_INTR: a host interrupt (a kick) took the vCPU out of guest mode to look at its requests. */
  Interrupt: 0x060,
  /** SVM_EXIT_PAUSE: pause-loop filtering saw a spin-wait. */
  Pause: 0x077,
  /** SVM_EXIT_HLT. */
  Halt: 0x078,
  /** SVM_EXIT_SHUTDOWN: the guest cannot go on (a triple fault); a guest fault ends the model's run as one does. */
  Shutdown: 0x07f,
  /** SVM_EXIT_MSR: an intercepted RDMSR/WRMSR; EXITINFO1 = 1 for a write. */
  Msr: 0x07c,
  /** SVM_EXIT_NPF: a nested page fault; EXITINFO1 = the error code (bit 1: write), EXITINFO2 = the guest physical address. */
  NestedPageFault: 0x400,
  AvicIncompleteIpi: AvicExitCode.IncompleteIpi,
  AvicUnacceleratedAccess: AvicExitCode.UnacceleratedAccess,
} as const;
export type SvmExitCode = (typeof SvmExitCode)[keyof typeof SvmExitCode];

/** Nested page fault error code bit 1 (PFERR_WRITE_MASK): the access was a write. */
export const NPF_ERROR_CODE_WRITE = 1 << 1;

export const SVM_EXIT_AVIC_INCOMPLETE_IPI = AvicExitCode.IncompleteIpi;
export const SVM_EXIT_AVIC_UNACCELERATED_ACCESS = AvicExitCode.UnacceleratedAccess;

/** EXITINFO2[63:32] of an incomplete-IPI exit (avic_incomplete_ipi_interception). */
export const AvicIncompleteIpiCause = {
  /** AVIC_IPI_FAILURE_INVALID_INT_TYPE: not Fixed + edge; software emulates the whole IPI. */
  InvalidInterruptType: 0,
  /** AVIC_IPI_FAILURE_TARGET_NOT_RUNNING: IRR bits are set; software only wakes the targets. */
  TargetNotRunning: 1,
  /** AVIC_IPI_FAILURE_INVALID_TARGET: a named entry is not Valid; newest KVM re-emulates. */
  InvalidTarget: 2,
  /** AVIC_IPI_FAILURE_INVALID_BACKING_PAGE: a target's pointer names no backing page. */
  InvalidBackingPage: 3,
  /** AVIC_IPI_FAILURE_INVALID_IPI_VECTOR: vector below 16; KVM drops the IPI. */
  InvalidIpiVector: 4,
} as const;
export type AvicIncompleteIpiCause = (typeof AvicIncompleteIpiCause)[keyof typeof AvicIncompleteIpiCause];

/** avic.c AVIC_UNACCEL_ACCESS_OFFSET_MASK: EXITINFO1[11:4] hold the register offset. */
export const AVIC_UNACCEL_ACCESS_OFFSET_MASK = 0xff0;
/** avic.c AVIC_UNACCEL_ACCESS_WRITE_MASK is bit 32, i.e. bit 0 of the high half. */
export const AVIC_UNACCEL_ACCESS_WRITE_MASK_HIGH = 1;
/** avic.c AVIC_PHYSICAL_MAX_INDEX_MASK: the table index in EXITINFO2 (12 bits in newest KVM). */
export const AVIC_PHYSICAL_MAX_INDEX_MASK = 0xfff;

/**
 * One exit's code and info, as 32-bit halves: the VMCB's exit_code, exit_info_1 and exit_info_2.
 * Allocate one per vCPU and overwrite it per exit; exitCode 0 means no exit. Halves are stored as
 * unsigned 32-bit numbers.
 */
export class AvicExitInfo {
  exitCode: SvmExitCode | 0 = 0;
  exitInfo1Low = 0;
  exitInfo1High = 0;
  exitInfo2Low = 0;
  exitInfo2High = 0;

  /** Any other #VMEXIT: its code and both EXITINFO fields (low halves; the high halves are 0). */
  set(exitCode: SvmExitCode, exitInfo1: number, exitInfo2: number): void {
    this.exitCode = exitCode;
    this.exitInfo1Low = exitInfo1 >>> 0;
    this.exitInfo1High = 0;
    this.exitInfo2Low = exitInfo2 >>> 0;
    this.exitInfo2High = 0;
  }

  /** avic_incomplete_ipi_interception: EXITINFO1 = the ICR (low, high); EXITINFO2 = cause << 32 | table index. */
  setIncompleteIpi(icrLow: number, icrHigh: number, cause: AvicIncompleteIpiCause, index: number): void {
    this.exitCode = AvicExitCode.IncompleteIpi;
    this.exitInfo1Low = icrLow >>> 0;
    this.exitInfo1High = icrHigh >>> 0;
    this.exitInfo2Low = index & AVIC_PHYSICAL_MAX_INDEX_MASK;
    this.exitInfo2High = cause;
  }

  /** avic_unaccelerated_access_interception: EXITINFO1[11:4] = offset, EXITINFO1[32] = write; EXITINFO2[31:0] = "vector" (traced only). */
  setUnacceleratedAccess(offset: number, isWrite: boolean, vector: number): void {
    this.exitCode = AvicExitCode.UnacceleratedAccess;
    this.exitInfo1Low = offset & AVIC_UNACCEL_ACCESS_OFFSET_MASK;
    this.exitInfo1High = isWrite ? AVIC_UNACCEL_ACCESS_WRITE_MASK_HIGH : 0;
    this.exitInfo2Low = vector >>> 0;
    this.exitInfo2High = 0;
  }
}

// Decoders, named after what KVM's interception handlers extract.

export function incompleteIpiCause(exitInfo2High: number): AvicIncompleteIpiCause {
  return exitInfo2High as AvicIncompleteIpiCause;
}

export function incompleteIpiIndex(exitInfo2Low: number): number {
  return exitInfo2Low & AVIC_PHYSICAL_MAX_INDEX_MASK;
}

export function unacceleratedAccessOffset(exitInfo1Low: number): number {
  return exitInfo1Low & AVIC_UNACCEL_ACCESS_OFFSET_MASK;
}

export function unacceleratedAccessIsWrite(exitInfo1High: number): boolean {
  return (exitInfo1High & AVIC_UNACCEL_ACCESS_WRITE_MASK_HIGH) !== 0;
}

/** Joins two halves into the 64-bit value (tests only). */
export function exitInfoToBigInt(low: number, high: number): bigint {
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
}
