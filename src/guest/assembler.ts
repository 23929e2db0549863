// The guest assembler: source text -> ProgramImage, or every error with file:line:column.
//
// Two passes: pass 1 (assembler-layout.ts) reads the lines and fixes every address, so labels may be
// used before they are defined; pass 2 (assembler-emit.ts) evaluates the expressions and writes the
// bytes. The syntax is documented in docs/guest-isa.md. A user's mistake is never thrown out of
// assemble(): it becomes a diagnostic, and the assembler carries on at the next line (up to
// MAX_DIAGNOSTICS). Only host misuse (an argument of the wrong type, an impossible origin, a bad
// define) throws; see assemble().

import { DiagnosticCollector, type AssemblyDiagnostic } from './assembler-diagnostics.js';
import { emitImage } from './assembler-emit.js';
import { expandIncludes, type IncludeReader } from './assembler-include.js';
import { checkAssemblerInput } from './assembler-input.js';
import { layOut } from './assembler-layout.js';
import type { ProgramImage, SourceLocation } from './assembler-program-image.js';
import { SymbolTable } from './assembler-symbols.js';
import { INSTRUCTION_BYTES } from './instruction-set.js';

export { formatDiagnostic, MAX_DIAGNOSTICS, type AssemblyDiagnostic } from './assembler-diagnostics.js';
export { MAX_VCPU_INDEX } from './assembler-emit.js';
export { MAX_INCLUDE_DEPTH, type IncludeReader } from './assembler-include.js';
export { AssemblerInputError } from './assembler-input.js';
export { MAX_IMAGE_BYTES } from './assembler-layout.js';
export { PREDEFINED_SYMBOLS } from './assembler-predefined-symbols.js';
export { AssemblerDefineError } from './assembler-symbols.js';
export {
  entryPointOf,
  lineOf,
  type EntryPoints,
  type ProgramImage,
  type SourceLocation,
} from './assembler-program-image.js';

/** Where a program is loaded unless the caller says otherwise: above the first page. */
export const DEFAULT_ORIGIN = 0x1000;

export interface AssemblerOptions {
  /** Used in diagnostics and carried into the image for fault reports. */
  readonly fileName: string;
  /** Guest-physical load address, 8-byte aligned; default DEFAULT_ORIGIN. */
  readonly origin?: number;
  /**
   * Constants from the host (a scenario's vCPU count, a seed): each overrides the program's own
   * `.equ NAME, value`, which is then the default, and is visible as a symbol even if the source never
   * declares it. Predefined symbols cannot be overridden; a bad name or value throws
   * AssemblerDefineError.
   */
  readonly defines?: ReadonlyMap<string, number>;
  /**
   * Supplies the text of `.include "name"` (fromFile: the file holding the directive), or undefined
   * if there is no such file. The assembler itself does no I/O; without a reader every .include is
   * an error.
   */
  readonly readInclude?: IncludeReader;
}

export type AssemblyResult =
  | { readonly ok: true; readonly program: ProgramImage }
  | { readonly ok: false; readonly errors: readonly AssemblyDiagnostic[] };

/**
 * Host misuse throws, and only that: AssemblerInputError for an argument of the wrong type or shape,
 * RangeError for an impossible origin, AssemblerDefineError for a bad define.
 */
export function assemble(source: string, options: AssemblerOptions): AssemblyResult {
  checkAssemblerInput(source, options);
  const origin = checkOrigin(options.origin ?? DEFAULT_ORIGIN);
  const expanded = expandIncludes(source, options.fileName, options.readInclude);
  const diagnostics = new DiagnosticCollector(options.fileName, expanded.includedAny ? expanded.origins : undefined);
  for (const error of expanded.errors) diagnostics.add(error.line, error.column, error.message);
  const symbols = new SymbolTable(options.defines, (line) => diagnostics.describeLine(line));
  const layout = layOut(expanded.lines, origin, symbols, diagnostics);
  symbols.finishLayout();
  symbols.resolveAllConstants((error, line) => diagnostics.addError(error, line));
  const image = emitImage(layout, symbols, diagnostics);
  if (diagnostics.count > 0) return { ok: false, errors: diagnostics.sorted() };
  const program: ProgramImage = {
    fileName: options.fileName,
    origin,
    bytes: image.bytes,
    symbols: symbols.values(),
    entryPoints: image.entryPoints,
    sourceMap: expanded.includedAny ? mapToFiles(image.sourceMap, expanded.origins, options.fileName) : image.sourceMap,
    instructionCount: image.instructionCount,
    dataSize: layout.dataSize,
  };
  return { ok: true, program };
}

/** Source-map lines are lines of the expanded source: give each its own file's line (and name). */
function mapToFiles(
  sourceMap: ReadonlyMap<number, SourceLocation>,
  origins: ReturnType<typeof expandIncludes>['origins'],
  fileName: string,
): ReadonlyMap<number, SourceLocation> {
  const mapped = new Map<number, SourceLocation>();
  for (const [address, location] of sourceMap) {
    const origin = origins[location.line - 1];
    if (origin === undefined) mapped.set(address, location);
    else if (origin.fileName === fileName) mapped.set(address, { ...location, line: origin.line });
    else mapped.set(address, { ...location, line: origin.line, fileName: origin.fileName });
  }
  return mapped;
}

/** The origin comes from the host (a loader, the CLI), not from guest source: misuse throws. */
function checkOrigin(origin: number): number {
  if (!Number.isInteger(origin) || origin < 0 || origin > 0xffffffff || origin % INSTRUCTION_BYTES !== 0) {
    throw new RangeError(`assembler origin must be an 8-byte-aligned address below 2^32, got ${origin}`);
  }
  return origin;
}
