// The local APIC state machine over an AVIC backing page (AMD APM vol. 2, 15.29 and 16; Intel SDM
// vol. 3 §11.8). A page is APIC_PAGE_WORDS Int32 words of `words` starting at `base` (a multiple of
// 1024); the register at byte offset R is word base + (R >> 2).
//
// Ownership (architecture.md "Threads and who owns what"): the owning vCPU's worker is the only
// writer of every register except IRR. Remote senders (the AVIC "hardware" run by other workers)
// touch IRR words only, and only with Atomics.or. Hence: IRR is read with Atomics.load and
// cleared with Atomics.and so a concurrent OR is never lost; ISR, TPR, PPR, SVR are read and
// written plainly by the owner. TMR is updated atomically because the hypervisor may set it from
// another thread when it accepts a level interrupt (KVM uses atomic bitops there).
//
// Everything here is allocation-free: these run once per interrupt evaluation in the worker.

import { ApicRegister, APIC_PAGE_WORDS } from './apic-register.js';
import { writeApicRegisterResetValues } from './apic-register-table.js';
import type { ApicId } from './apic-id.js';

export { APIC_VERSION_RESET, DFR_FLAT, LVT_MASKED } from './apic-register-table.js';

const ID_WORD = ApicRegister.Id >> 2;
const TPR_WORD = ApicRegister.TaskPriority >> 2;
const PPR_WORD = ApicRegister.ProcessorPriority >> 2;
const LDR_WORD = ApicRegister.LogicalDestination >> 2;
const DFR_WORD = ApicRegister.DestinationFormat >> 2;
const SVR_WORD = ApicRegister.SpuriousInterruptVector >> 2;
const ISR_WORD = ApicRegister.InService >> 2;
const TMR_WORD = ApicRegister.TriggerMode >> 2;
const IRR_WORD = ApicRegister.InterruptRequest >> 2;
const ESR_WORD = ApicRegister.ErrorStatus >> 2;

/** DFR cluster model as KVM stores it (APIC_DFR_CLUSTER = 0x0FFFFFFF). */
export const DFR_CLUSTER = 0x0fffffff;
/** SVR bit 8: APIC software enable. */
export const SVR_APIC_SOFTWARE_ENABLE = 0x100;
/**
 * SVR as left by firmware before the guest starts: software-enabled, spurious vector 0xFF. A
 * hardware reset leaves 0xFF (disabled); we model the state after BIOS, which enables the APIC so
 * that a guest program can take IPIs without an SVR write of its own.
 */
export const SVR_AFTER_FIRMWARE = 0x1ff;
/** Vectors 0..15 are illegal for IPIs and fixed interrupts (§1.3, SDM §11.5.2). */
export const FIRST_LEGAL_VECTOR = 16;

/** Word index, relative to the page, of the IRR/ISR/TMR word holding `vector` (SDM vol. 3 §11.8.4). */
function vectorWord(registerWord: number, vector: number): number {
  return registerWord + ((vector >>> 5) << 2);
}

/**
 * Writes the xAPIC state after reset and firmware (the whole page: unused bytes are zero): the
 * register table's reset values (apic-register-table.ts), the ID, and the firmware's SVR.
 */
export function resetApicPage(words: Int32Array, base: number, id: ApicId): void {
  words.fill(0, base, base + APIC_PAGE_WORDS);
  // xAPIC holds an 8-bit ID in bits 31:24; IDs above 0xFF exist only in x2APIC mode.
  words[base + ID_WORD] = (id & 0xff) << 24;
  writeApicRegisterResetValues(words, base);
  words[base + SVR_WORD] = SVR_AFTER_FIRMWARE;
  // TPR, PPR, LDR, ESR, ISR, TMR and IRR are zero from the fill. The page is not yet visible to
  // senders (its physical table entry is written after this, low word then high word: O7 in docs/architecture.md#orderings).
}

function highestSetVector(words: Int32Array, firstWord: number, atomic: boolean): number {
  for (let i = 7; i >= 0; i--) {
    const value = atomic ? Atomics.load(words, firstWord + (i << 2)) : (words[firstWord + (i << 2)] ?? 0);
    if (value !== 0) return (i << 5) + 31 - Math.clz32(value);
  }
  return -1;
}

/** Highest vector requested in IRR, or -1. Atomic loads: remote senders OR into these words. */
export function highestIrrVector(words: Int32Array, base: number): number {
  return highestSetVector(words, base + IRR_WORD, true);
}

/** Highest vector in service, or -1. ISR is written by the owner only, so plain reads suffice. */
export function highestIsrVector(words: Int32Array, base: number): number {
  return highestSetVector(words, base + ISR_WORD, false);
}

/**
 * PPR per SDM §11.8.3.1: TPR when TPR's class is at least the highest in-service class, else the
 * in-service class with a zero low nibble. Computed, not stored.
 */
export function processorPriority(words: Int32Array, base: number): number {
  const taskPriority = (words[base + TPR_WORD] ?? 0) & 0xff;
  const inService = highestIsrVector(words, base);
  const inServiceClass = inService < 0 ? 0 : inService & 0xf0;
  return (taskPriority & 0xf0) >= inServiceClass ? taskPriority : inServiceClass;
}

/** Recomputes PPR, stores it in the page (where the guest reads it) and returns it. */
export function updateProcessorPriority(words: Int32Array, base: number): number {
  const priority = processorPriority(words, base);
  words[base + PPR_WORD] = priority;
  return priority;
}

export function isApicSoftwareEnabled(words: Int32Array, base: number): boolean {
  return ((words[base + SVR_WORD] ?? 0) & SVR_APIC_SOFTWARE_ENABLE) !== 0;
}

/**
 * The vector the APIC would deliver now, or -1: the highest IRR vector whose class (v >> 4) is
 * above the class of PPR, if the APIC is software-enabled (SDM vol. 3 §11.8.3). PPR is computed
 * fresh from TPR and ISR, so an accelerated TPR write takes effect even before the owner stores
 * PPR. RFLAGS.IF and interrupt shadows are the CPU's business, not checked here.
 */
export function pendingDeliverableVector(words: Int32Array, base: number): number {
  const requested = highestIrrVector(words, base);
  if (requested < 0 || !isApicSoftwareEnabled(words, base)) return -1;
  return requested >>> 4 > processorPriority(words, base) >>> 4 ? requested : -1;
}

/**
 * INTA: moves `vector` from IRR to ISR and recomputes PPR (SDM vol. 3 §11.8.4). IRR is cleared with Atomics.and
 * because remote senders may be ORing other bits into the same word at this moment.
 */
export function acknowledgeInterrupt(words: Int32Array, base: number, vector: number): void {
  const bit = 1 << (vector & 31);
  Atomics.and(words, base + vectorWord(IRR_WORD, vector), ~bit);
  const isrIndex = base + vectorWord(ISR_WORD, vector);
  words[isrIndex] = (words[isrIndex] ?? 0) | bit;
  updateProcessorPriority(words, base);
}

/**
 * EOI: clears the highest ISR bit only, recomputes PPR and returns the completed vector, or -1
 * if nothing was in service. Ask isLevelTriggered(vector) before or after to decide whether the
 * EOI must be broadcast to the IOAPIC (APM 15.29.9.2); that keeps this call allocation-free.
 */
export function endOfInterrupt(words: Int32Array, base: number): number {
  const vector = highestIsrVector(words, base);
  if (vector >= 0) {
    const isrIndex = base + vectorWord(ISR_WORD, vector);
    words[isrIndex] = (words[isrIndex] ?? 0) & ~(1 << (vector & 31));
  }
  updateProcessorPriority(words, base);
  return vector;
}

/** TMR bit of `vector`: true when it was accepted as level-triggered. */
export function isLevelTriggered(words: Int32Array, base: number, vector: number): boolean {
  return (Atomics.load(words, base + vectorWord(TMR_WORD, vector)) & (1 << (vector & 31))) !== 0;
}

/** Sets or clears the TMR bit of `vector` (atomically: see the ownership note at the top). */
export function setTriggerMode(words: Int32Array, base: number, vector: number, level: boolean): void {
  const bit = 1 << (vector & 31);
  const index = base + vectorWord(TMR_WORD, vector);
  if (level) Atomics.or(words, index, bit);
  else Atomics.and(words, index, ~bit);
}

/**
 * The hardware's atomic IRR set (APM 15.29; O1 in docs/architecture.md#orderings). Returns true if the bit was newly set,
 * false if it was already set (the request coalesced with a pending one). Seq-cst, so it is also
 * the full fence between "publish IRR" and the caller's next read of IsRunning or vCPU mode.
 * Vectors below FIRST_LEGAL_VECTOR are illegal; callers reject them before calling (AVIC exits
 * with cause 4, software sets ESR), this function does not check.
 */
export function setIrrAtomic(words: Int32Array, base: number, vector: number): boolean {
  const bit = 1 << (vector & 31);
  return (Atomics.or(words, base + vectorWord(IRR_WORD, vector), bit) & bit) === 0;
}

/** IRR bit of `vector` (atomic load). */
export function isIrrSet(words: Int32Array, base: number, vector: number): boolean {
  return (Atomics.load(words, base + vectorWord(IRR_WORD, vector)) & (1 << (vector & 31))) !== 0;
}

/** ISR bit of `vector` (owner-only, plain read). */
export function isIsrSet(words: Int32Array, base: number, vector: number): boolean {
  return ((words[base + vectorWord(ISR_WORD, vector)] ?? 0) & (1 << (vector & 31))) !== 0;
}

/** Reads a register by byte offset (plain read; use Atomics.load for IRR words). */
export function readApicRegister(words: Int32Array, base: number, offset: number): number {
  return words[base + (offset >> 2)] ?? 0;
}

/** Writes a register by byte offset (owner only; never for IRR words). */
export function writeApicRegister(words: Int32Array, base: number, offset: number, value: number): void {
  words[base + (offset >> 2)] = value;
}

/** The register words the destination logic needs, named for readability at call sites. */
export const ApicPageWord = {
  Id: ID_WORD,
  LogicalDestination: LDR_WORD,
  DestinationFormat: DFR_WORD,
  ErrorStatus: ESR_WORD,
  TaskPriority: TPR_WORD,
  ProcessorPriority: PPR_WORD,
} as const;
