// Pass 1: reads every line, declares symbols, and decides where every instruction and data item goes.
//
// Addresses are fixed here, so the operands of .org, .align, .zero and .space must be known by now
// (constants and labels defined above). A label names the next thing emitted: an instruction (at its
// 8-byte-aligned address, so "loop:" after a .byte still names the instruction) or a data item; .org
// and .align only move the location, and the label follows them.

import { AssemblySyntaxError, type DiagnosticCollector } from './assembler-diagnostics.js';
import { evaluateExpression, hex, type Expression } from './assembler-expression.js';
import { TokenCursor, tokenizeLine } from './assembler-lexer.js';
import type { InstructionTemplate } from './assembler-operands.js';
import { Directive, parseLabels, parseStatement, startsInstruction, type Statement } from './assembler-statements.js';
import type { SymbolTable } from './assembler-symbols.js';
import { INSTRUCTION_BYTES } from './instruction-set.js';

/** The image may not grow past this: a stray ".org 0xfee00000" must not allocate 4 GiB on the host. */
export const MAX_IMAGE_BYTES = 16 * 1024 * 1024;

const MAX_UNSIGNED_32 = 0xffffffff;

export type PlacedItem =
  | {
      readonly kind: 'instruction';
      readonly line: number;
      readonly column: number;
      readonly text: string;
      readonly address: number;
      readonly template: InstructionTemplate;
    }
  | {
      readonly kind: 'values';
      readonly line: number;
      readonly directive: Directive;
      readonly address: number;
      readonly unitBytes: number;
      readonly values: readonly Expression[];
    }
  | { readonly kind: 'bytes'; readonly line: number; readonly address: number; readonly bytes: readonly number[] }
  | { readonly kind: 'entry'; readonly line: number; readonly column: number; readonly arguments: readonly Expression[] };

export interface Layout {
  readonly origin: number;
  /** One past the last byte of the image. */
  readonly end: number;
  readonly items: readonly PlacedItem[];
  readonly dataSize: number;
}

const UNIT_BYTES: ReadonlyMap<Directive, number> = new Map([
  [Directive.Byte, 1],
  [Directive.Half, 2],
  [Directive.Word, 4],
]);

const alignUp = (value: number, alignment: number): number => Math.ceil(value / alignment) * alignment;

class LayoutBuilder {
  readonly #origin: number;
  readonly #symbols: SymbolTable;
  readonly #items: PlacedItem[] = [];
  #location: number;
  #dataSize = 0;
  /** Labels read but not yet bound: they name the next emitted item. */
  #pendingLabels: string[] = [];

  constructor(origin: number, symbols: SymbolTable) {
    this.#origin = origin;
    this.#location = origin;
    this.#symbols = symbols;
  }

  addPendingLabel(name: string): void {
    this.#pendingLabels.push(name);
  }

  /** Keeps the layout of a line that failed to parse as an instruction, to avoid knock-on errors. */
  reserveInstruction(column: number): void {
    this.#moveTo(alignUp(this.#location, INSTRUCTION_BYTES) + INSTRUCTION_BYTES, column);
  }

  place(statement: Statement, line: number, text: string): void {
    switch (statement.kind) {
      case 'instruction': {
        // The size check comes before the item is placed: pass 2 writes every placed item, so one
        // past the end would be written out of the image's bounds.
        const address = alignUp(this.#location, INSTRUCTION_BYTES);
        this.#bindLabels(address);
        this.#moveTo(address + INSTRUCTION_BYTES, statement.column);
        this.#items.push({ kind: 'instruction', line, column: statement.column, text, address, template: statement.template });
        return;
      }
      case 'constant':
        this.#symbols.defineConstant(statement.name, statement.expression, line, statement.column);
        return;
      case 'string':
        this.#emitData(statement.bytes.length, statement.column);
        this.#items.push({ kind: 'bytes', line, address: this.#location - statement.bytes.length, bytes: statement.bytes });
        return;
      case 'directive':
        this.#placeDirective(statement.directive, statement.arguments, line, statement.column);
    }
  }

  finish(): Layout {
    this.#bindLabels(this.#location);
    return { origin: this.#origin, end: this.#location, items: this.#items, dataSize: this.#dataSize };
  }

  #placeDirective(directive: Directive, values: readonly Expression[], line: number, column: number): void {
    const unitBytes = UNIT_BYTES.get(directive);
    if (unitBytes !== undefined) {
      const address = this.#location;
      this.#emitData(unitBytes * values.length, column);
      this.#items.push({ kind: 'values', line, directive, address, unitBytes, values });
      return;
    }
    if (directive === Directive.Entry) {
      this.#items.push({ kind: 'entry', line, column, arguments: values });
      return;
    }
    const value = evaluateExpression(values[0] as Expression, this.#symbols.lookup);
    if (directive === Directive.Org) this.#org(value, column);
    else if (directive === Directive.Align) this.#align(value, column);
    else this.#emitData(value, column);
  }

  #org(address: number, column: number): void {
    if (address < this.#location) {
      throw new AssemblySyntaxError(
        column,
        `expected '.org' to move forward from ${hex(this.#location)}, found ${hex(address)} (.org may not move backwards)`,
      );
    }
    this.#moveTo(address, column);
  }

  #align(alignment: number, column: number): void {
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
      throw new AssemblySyntaxError(column, `expected a power of two after '.align', found ${alignment}`);
    }
    this.#moveTo(alignUp(this.#location, alignment), column);
  }

  #emitData(byteCount: number, column: number): void {
    this.#bindLabels(this.#location);
    this.#moveTo(this.#location + byteCount, column);
    this.#dataSize += byteCount;
  }

  #bindLabels(address: number): void {
    for (const name of this.#pendingLabels) this.#symbols.bindLabel(name, address);
    this.#pendingLabels = [];
  }

  /**
   * The one place the location moves, so the one place the image's bounds are checked: every placed
   * item lies below a location that passed here. The end is also where a final label lands, so it must
   * be a 32-bit address itself: an image may not reach 2^32, where labels would wrap to 0.
   */
  #moveTo(location: number, column: number): void {
    if (location - this.#origin > MAX_IMAGE_BYTES) {
      throw new AssemblySyntaxError(
        column,
        `expected the image to stay within ${MAX_IMAGE_BYTES / (1024 * 1024)} MiB of the origin ${hex(this.#origin)}, found it reaching 0x${location.toString(16)}`,
      );
    }
    if (location > MAX_UNSIGNED_32) {
      throw new AssemblySyntaxError(
        column,
        `expected the image to end below 0x100000000 (the top of the 32-bit address space), found it reaching 0x${location.toString(16)}`,
      );
    }
    this.#location = location;
  }
}

/** Pass 1 over the whole source (its lines, with any .include already expanded). */
export function layOut(lines: readonly string[], origin: number, symbols: SymbolTable, diagnostics: DiagnosticCollector): Layout {
  const builder = new LayoutBuilder(origin, symbols);
  for (const [index, text] of lines.entries()) {
    if (diagnostics.full) break;
    try {
      layOutLine(text, index + 1, builder, symbols, diagnostics);
    } catch (error) {
      diagnostics.addError(error, index + 1);
    }
  }
  return builder.finish();
}

function layOutLine(text: string, line: number, builder: LayoutBuilder, symbols: SymbolTable, diagnostics: DiagnosticCollector): void {
  const cursor = new TokenCursor(tokenizeLine(text));
  for (const label of parseLabels(cursor)) {
    try {
      symbols.declareLabel(label.name, line, label.column);
      builder.addPendingLabel(label.name);
    } catch (error) {
      diagnostics.addError(error, line);
    }
  }
  const isInstruction = startsInstruction(cursor);
  const column = cursor.peek().column;
  let statement: Statement | undefined;
  try {
    statement = parseStatement(cursor);
  } catch (error) {
    // The line's own mistake is what gets reported, even if reserving its bytes overflows the image.
    if (isInstruction) {
      try {
        builder.reserveInstruction(column);
      } catch {
        // reported once the mistake is fixed, by the instruction itself
      }
    }
    throw error;
  }
  if (statement !== undefined) builder.place(statement, line, text.trim());
}
