// Assembler error reports. A user's mistake becomes an AssemblyDiagnostic, never an exception that
// escapes assemble(): inside the assembler, the parser throws AssemblySyntaxError and the statement
// loop catches it, records it and moves on to the next line.

export interface AssemblyDiagnostic {
  readonly fileName: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column; a tab counts as one column. */
  readonly column: number;
  readonly message: string;
  /** Set only for a diagnostic inside an included file: where it was included ("main.s:3"). */
  readonly includedFrom?: string;
  /** formatDiagnostic(this), so String(diagnostic) and `${diagnostic}` print the compiler-style line. */
  toString(): string;
}

/**
 * What assemble() returns: plain data fields (JSON and structured clone keep exactly those) and a
 * toString on the prototype, so `errors.map(String).join('\n')` prints what the CLI prints.
 */
class Diagnostic implements AssemblyDiagnostic {
  readonly fileName: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
  declare readonly includedFrom?: string;

  constructor(fields: { fileName: string; line: number; column: number; message: string; includedFrom?: string | undefined }) {
    this.fileName = fields.fileName;
    this.line = fields.line;
    this.column = fields.column;
    this.message = fields.message;
    // Absent, not undefined, for the program's own file: the fields compare and serialise as before.
    if (fields.includedFrom !== undefined) (this as { includedFrom?: string }).includedFrom = fields.includedFrom;
  }

  toString(): string {
    return formatDiagnostic(this);
  }
}

/**
 * "file.s:12:7: error: expected a register after 'add', found '5x'", and for an included file
 * "common.s:4:9: error: ... (included from main.s:3)".
 */
export function formatDiagnostic(diagnostic: AssemblyDiagnostic): string {
  const where = diagnostic.includedFrom === undefined ? '' : ` (included from ${diagnostic.includedFrom})`;
  return `${diagnostic.fileName}:${diagnostic.line}:${diagnostic.column}: error: ${diagnostic.message}${where}`;
}

/** Where a line of the (include-expanded) source was written; see assembler-include.ts. */
export interface LineOriginLike {
  readonly fileName: string;
  readonly line: number;
  readonly includedFrom: string | undefined;
}

/** After this many errors the assembler stops: later ones are usually echoes of the first. */
export const MAX_DIAGNOSTICS = 50;

/**
 * A user mistake found while reading or evaluating a statement. `line` is set when the mistake is on
 * another line than the statement being processed (a broken .equ used further down).
 */
export class AssemblySyntaxError extends Error {
  readonly column: number;
  readonly line: number | undefined;

  constructor(column: number, message: string, line?: number) {
    super(message);
    this.name = 'AssemblySyntaxError';
    this.column = column;
    this.line = line;
  }
}

/** Collects diagnostics, drops exact repeats (a broken .equ reported from each use) and caps them. */
export class DiagnosticCollector {
  readonly #fileName: string;
  readonly #origins: readonly LineOriginLike[] | undefined;
  /** Each diagnostic with its line in the expanded source, for sorting. */
  readonly #diagnostics: { readonly at: number; readonly diagnostic: AssemblyDiagnostic }[] = [];
  readonly #seen = new Set<string>();

  /** `origins[i]` is where line i + 1 of the expanded source was written (omitted: no includes). */
  constructor(fileName: string, origins?: readonly LineOriginLike[]) {
    this.#fileName = fileName;
    this.#origins = origins;
  }

  /** "line 12", or "common.s:12" for a line of another file than the program's own. */
  describeLine(line: number): string {
    const origin = this.#origins?.[line - 1];
    if (origin === undefined || origin.fileName === this.#fileName) return `line ${origin?.line ?? line}`;
    return `${origin.fileName}:${origin.line}`;
  }

  get full(): boolean {
    return this.#diagnostics.length >= MAX_DIAGNOSTICS;
  }

  get count(): number {
    return this.#diagnostics.length;
  }

  add(line: number, column: number, message: string): void {
    const key = `${line}:${column}:${message}`;
    if (this.full || this.#seen.has(key)) return;
    this.#seen.add(key);
    const origin = this.#origins?.[line - 1];
    const diagnostic: AssemblyDiagnostic =
      origin === undefined
        ? new Diagnostic({ fileName: this.#fileName, line, column, message })
        : new Diagnostic({ fileName: origin.fileName, line: origin.line, column, message, includedFrom: origin.includedFrom });
    this.#diagnostics.push({ at: line, diagnostic });
  }

  /**
   * Records `error` at its own line, or at `line` when it names none. Parsing and evaluation recurse,
   * so a pathological source (100 000 nested parentheses, a chain of thousands of constants) can
   * exhaust the stack: that is the user's input too, and becomes a diagnostic. Anything else is a bug
   * and is rethrown.
   */
  addError(error: unknown, line: number): void {
    if (error instanceof AssemblySyntaxError) {
      this.add(error.line ?? line, error.column, error.message);
    } else if (error instanceof RangeError && /call stack/i.test(error.message)) {
      this.add(line, 1, 'expected expressions and constants nested less deeply, found nesting that exhausts the stack');
    } else {
      throw error;
    }
  }

  /** In source order: pass 2 finds some errors on lines before ones pass 1 already reported. */
  sorted(): AssemblyDiagnostic[] {
    return [...this.#diagnostics].sort((a, b) => a.at - b.at || a.diagnostic.column - b.diagnostic.column).map((each) => each.diagnostic);
  }
}
