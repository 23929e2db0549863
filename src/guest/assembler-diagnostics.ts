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
}

/** "file.s:12:7: error: expected a register after 'add', found '5x'" */
export function formatDiagnostic(diagnostic: AssemblyDiagnostic): string {
  return `${diagnostic.fileName}:${diagnostic.line}:${diagnostic.column}: error: ${diagnostic.message}`;
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
  readonly #diagnostics: AssemblyDiagnostic[] = [];
  readonly #seen = new Set<string>();

  constructor(fileName: string) {
    this.#fileName = fileName;
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
    this.#diagnostics.push({ fileName: this.#fileName, line, column, message });
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
    return [...this.#diagnostics].sort((a, b) => a.line - b.line || a.column - b.column);
  }
}
