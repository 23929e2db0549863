// What the assembler produces and the loader consumes. Plain data only (typed array, Maps, numbers),
// so a ProgramImage survives structured cloning into the vCPU workers unchanged.

import type { FaultSource } from './guest-fault.js';
import { INSTRUCTION_BYTES } from './instruction-set.js';

/** Where an instruction was written, for guest-fault reports and traces. */
export interface SourceLocation {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column of the mnemonic. */
  readonly column: number;
  /** The source line, trimmed. */
  readonly text: string;
  /** Set only when the instruction was written in an included file: that file's name. */
  readonly fileName?: string;
}

export interface EntryPoints {
  /**
   * Where a vCPU without its own entry starts: the ".entry label" address; the first instruction if
   * the program has no .entry at all; undefined if it has only per-vCPU entries (or no code).
   */
  readonly default: number | undefined;
  /** vCPU index -> entry address, from ".entry label, N". */
  readonly perVcpu: ReadonlyMap<number, number>;
}

export interface ProgramImage {
  readonly fileName: string;
  /** Guest-physical address of bytes[0]. */
  readonly origin: number;
  /** The image, contiguous from the origin: code, data, and zero padding. */
  readonly bytes: Uint8Array;
  /** User-defined symbols (labels and constants) with their unsigned 32-bit values. */
  readonly symbols: ReadonlyMap<string, number>;
  readonly entryPoints: EntryPoints;
  /** Instruction address (8-byte aligned) -> where it was written. */
  readonly sourceMap: ReadonlyMap<number, SourceLocation>;
  readonly instructionCount: number;
  /** Bytes emitted by data directives (.byte .half .word .ascii .asciz .zero .space), padding excluded. */
  readonly dataSize: number;
}

/** The source of the instruction containing `address`, or undefined if no instruction is there. */
export function lineOf(program: ProgramImage, address: number): SourceLocation | undefined {
  const instructionAddress = (address >>> 0) - ((address >>> 0) % INSTRUCTION_BYTES);
  return program.sourceMap.get(instructionAddress);
}

/** lineOf, with the file always named (the program's own when not from an include): for fault reports. */
export function sourceOf(program: ProgramImage, address: number): FaultSource | undefined {
  const location = lineOf(program, address);
  if (location === undefined) return undefined;
  return { fileName: location.fileName ?? program.fileName, line: location.line, column: location.column, text: location.text };
}

/** The address vCPU `vcpuIndex` starts at, or undefined if the program gives it none. */
export function entryPointOf(program: ProgramImage, vcpuIndex: number): number | undefined {
  return program.entryPoints.perVcpu.get(vcpuIndex) ?? program.entryPoints.default;
}
