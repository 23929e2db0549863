// The symbol table: labels, .equ constants and the predefined symbols.
//
// Labels are declared when pass 1 reads them (so duplicates are reported in source order) and bound to
// an address once pass 1 knows where the next emitted item lands. Constants keep their expression and
// are evaluated on first use, so "SIZE = end - start" may precede both labels. In pass 1 only what is
// already bound can be used (the operands of .org, .align, .zero decide where later labels land);
// pass 2 sees everything.
//
// Host defines (AssemblerOptions.defines) are constants the caller supplies: they take the place of the
// source's own `.equ NAME, value` (which then only documents the default) and are visible even when
// the source never declares them. They cannot shadow a predefined symbol or a label.

import { AssemblySyntaxError } from './assembler-diagnostics.js';
import { evaluateExpression, type Expression, type SymbolLookup } from './assembler-expression.js';
import { looksLikeRegister } from './assembler-lexer.js';
import { PREDEFINED_SYMBOLS } from './assembler-predefined-symbols.js';

interface LabelSymbol {
  readonly kind: 'label';
  readonly line: number;
  value: number | undefined;
}

interface ConstantSymbol {
  readonly kind: 'constant';
  /** The defining line; 0 for a host define the source has not declared. */
  line: number;
  /** Undefined for a host define: its value is fixed from the start. */
  readonly expression: Expression | undefined;
  /** Supplied by the host: the source's `.equ` of the same name, if any, keeps this value. */
  readonly hostDefined: boolean;
  resolving: boolean;
  value: number | undefined;
  /** Why it cannot be evaluated: kept so that every use reports the one error, once. */
  failure: AssemblySyntaxError | undefined;
}

type UserSymbol = LabelSymbol | ConstantSymbol;

/**
 * How many constants one evaluation may pass through ("A = B + 1", "B = C * 2", ...). Real programs
 * stay far below it; it keeps a pathological chain from exhausting the host's stack.
 */
export const MAX_CONSTANT_DEPTH = 1000;

/** A symbol used in pass 1 that pass 1 cannot know yet (a label further down). */
class ForwardReferenceError extends AssemblySyntaxError {}

/** Host misuse of AssemblerOptions.defines: a bad name or value. */
export class AssemblerDefineError extends RangeError {
  override readonly name = 'AssemblerDefineError';
}

const SYMBOL_NAME = /^[A-Za-z_.][A-Za-z0-9_.]*$/;

export class SymbolTable {
  readonly #symbols = new Map<string, UserSymbol>();
  /** False during pass 1, while labels further down have no address yet. */
  #allLabelsBound = false;
  /** Constants being evaluated right now, one inside the other. */
  #depth = 0;

  /** `defines` are host constants (AssemblerOptions.defines); a bad one throws AssemblerDefineError. */
  /** Names a defining line in messages ("line 12"; "common.s:4" for an included file). */
  readonly #describeLine: (line: number) => string;

  constructor(defines: ReadonlyMap<string, number> = new Map(), describeLine: (line: number) => string = (line) => `line ${line}`) {
    this.#describeLine = describeLine;
    for (const [name, value] of defines) {
      if (!SYMBOL_NAME.test(name) || looksLikeRegister(name))
        throw new AssemblerDefineError(`assembler define '${name}' is not a symbol name ([A-Za-z_.][A-Za-z0-9_.]*, not a register)`);
      if (PREDEFINED_SYMBOLS.has(name))
        throw new AssemblerDefineError(`assembler define '${name}' would override a predefined symbol, which programs rely on`);
      if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0xffff_ffff) {
        throw new AssemblerDefineError(`assembler define '${name}' must be an integer from -2^31 to 2^32-1, got ${value}`);
      }
      this.#symbols.set(name, {
        kind: 'constant',
        line: 0,
        expression: undefined,
        hostDefined: true,
        resolving: false,
        value: value >>> 0,
        failure: undefined,
      });
    }
  }

  /** Declares a label at its definition; bind it with bindLabel once its address is known. */
  declareLabel(name: string, line: number, column: number): void {
    this.#checkNewName(name, column);
    this.#symbols.set(name, { kind: 'label', line, value: undefined });
  }

  bindLabel(name: string, address: number): void {
    const symbol = this.#symbols.get(name);
    if (symbol?.kind === 'label') symbol.value = address >>> 0;
  }

  defineConstant(name: string, expression: Expression, line: number, column: number): void {
    const existing = this.#symbols.get(name);
    if (existing?.kind === 'constant' && existing.hostDefined && existing.line === 0) {
      // The source's default, overridden by the host: keep the host's value, remember where it is declared.
      existing.line = line;
      return;
    }
    this.#checkNewName(name, column);
    this.#symbols.set(name, {
      kind: 'constant',
      line,
      expression,
      hostDefined: false,
      resolving: false,
      value: undefined,
      failure: undefined,
    });
  }

  /** Called between the passes: from now on an unknown symbol is undefined, not "not yet known". */
  finishLayout(): void {
    this.#allLabelsBound = true;
  }

  /** The lookup expressions evaluate with. */
  readonly lookup: SymbolLookup = (name, column) => {
    const predefined = PREDEFINED_SYMBOLS.get(name);
    if (predefined !== undefined) return predefined;
    const symbol = this.#symbols.get(name);
    if (symbol === undefined) {
      if (!this.#allLabelsBound) throw this.#forwardReference(name, column);
      throw new AssemblySyntaxError(column, `undefined symbol '${name}'${this.#suggestion(name)}`);
    }
    if (symbol.kind === 'label') {
      if (symbol.value === undefined) throw this.#forwardReference(name, column);
      return symbol.value;
    }
    return this.#resolveConstant(name, symbol, column);
  };

  /** Evaluates every constant, so a broken .equ is reported at its own line even if never used. */
  resolveAllConstants(report: (error: unknown, line: number) => void): void {
    for (const [name, symbol] of this.#symbols) {
      if (symbol.kind !== 'constant') continue;
      try {
        this.#resolveConstant(name, symbol, 1);
      } catch (error) {
        report(error, symbol.line);
      }
    }
  }

  /** Every user symbol with a value: labels and the constants that evaluated. */
  values(): Map<string, number> {
    const values = new Map<string, number>();
    for (const [name, symbol] of this.#symbols) {
      if (symbol.value !== undefined) values.set(name, symbol.value);
    }
    return values;
  }

  #resolveConstant(name: string, symbol: ConstantSymbol, column: number): number {
    if (symbol.value !== undefined) return symbol.value;
    if (symbol.failure !== undefined) throw symbol.failure;
    if (symbol.expression === undefined) throw new Error(`assembler: host define '${name}' has no value`);
    if (symbol.resolving) {
      throw new AssemblySyntaxError(column, `expected a value for '${name}', found a circular definition`);
    }
    if (this.#depth >= MAX_CONSTANT_DEPTH) {
      throw new AssemblySyntaxError(
        column,
        `expected constants defined through at most ${MAX_CONSTANT_DEPTH} others, found a deeper chain at '${name}'`,
      );
    }
    symbol.resolving = true;
    this.#depth += 1;
    try {
      symbol.value = evaluateExpression(symbol.expression, this.lookup);
      return symbol.value;
    } catch (error) {
      if (error instanceof ForwardReferenceError) {
        throw new ForwardReferenceError(column, `${error.message}; '${name}' depends on it`);
      }
      if (!(error instanceof AssemblySyntaxError)) throw error;
      // A forward reference may resolve in pass 2, so only other failures are final.
      symbol.failure = error.line === undefined ? new AssemblySyntaxError(error.column, error.message, symbol.line) : error;
      throw symbol.failure;
    } finally {
      symbol.resolving = false;
      this.#depth -= 1;
    }
  }

  #forwardReference(name: string, column: number): ForwardReferenceError {
    return new ForwardReferenceError(column, `expected a value known in the first pass (symbols defined above this line), found '${name}'`);
  }

  #checkNewName(name: string, column: number): void {
    if (PREDEFINED_SYMBOLS.has(name)) {
      throw new AssemblySyntaxError(column, `expected a new symbol name, found predefined symbol '${name}'`);
    }
    if (looksLikeRegister(name)) {
      throw new AssemblySyntaxError(column, `expected a symbol name, found register name '${name}'`);
    }
    const existing = this.#symbols.get(name);
    if (existing !== undefined) {
      const where =
        existing.line === 0 ? 'the host defines it (assembler defines)' : `already defined at ${this.#describeLine(existing.line)}`;
      throw new AssemblySyntaxError(column, `duplicate symbol '${name}': ${where}`);
    }
  }

  /** Symbols are case-sensitive; a near miss in case is the likeliest cause of "undefined". */
  #suggestion(name: string): string {
    const lower = name.toLowerCase();
    const candidates = [...PREDEFINED_SYMBOLS.keys(), ...this.#symbols.keys()];
    const match = candidates.find((candidate) => candidate.toLowerCase() === lower);
    return match === undefined ? ' (expected a label, an .equ constant or a predefined symbol)' : ` (did you mean '${match}'?)`;
  }
}
