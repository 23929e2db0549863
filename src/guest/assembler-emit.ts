// Pass 2: with every label bound, evaluates the immediates and data values and writes the image.

import { AssemblySyntaxError, type DiagnosticCollector } from './assembler-diagnostics.js';
import { evaluateExpression, fitsInBits, hex, type Expression } from './assembler-expression.js';
import type { Layout, PlacedItem } from './assembler-layout.js';
import { ImmediateRole, type InstructionTemplate } from './assembler-operands.js';
import type { EntryPoints, SourceLocation } from './assembler-program-image.js';
import type { SymbolTable } from './assembler-symbols.js';
import { encodeInstruction, INSTRUCTION_BYTES } from './instruction-set.js';

/** vCPU indices an ".entry label, N" may name: 0..511, the x2AVIC physical IDs (VmConfig caps the count). */
export const MAX_VCPU_INDEX = 511;

export interface EmittedImage {
  readonly bytes: Uint8Array;
  readonly sourceMap: ReadonlyMap<number, SourceLocation>;
  readonly entryPoints: EntryPoints;
  readonly instructionCount: number;
}

/** The leftmost column of an expression, where a message about its value should point. */
function startColumn(expression: Expression): number {
  return expression.kind === 'binary' ? startColumn(expression.left) : expression.column;
}

class ImageWriter {
  readonly #layout: Layout;
  readonly #symbols: SymbolTable;
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  readonly sourceMap = new Map<number, SourceLocation>();
  readonly perVcpu = new Map<number, number>();
  defaultEntry: number | undefined;
  hasEntryDirective = false;

  constructor(layout: Layout, symbols: SymbolTable) {
    this.#layout = layout;
    this.#symbols = symbols;
    this.bytes = new Uint8Array(layout.end - layout.origin);
    this.#view = new DataView(this.bytes.buffer);
  }

  write(item: PlacedItem): void {
    switch (item.kind) {
      case 'instruction':
        this.#writeInstruction(item.address, item.template);
        this.sourceMap.set(item.address, { line: item.line, column: item.column, text: item.text });
        return;
      case 'values':
        this.#writeValues(item.address, item.unitBytes, item.directive, item.values);
        return;
      case 'bytes':
        this.bytes.set(item.bytes, item.address - this.#layout.origin);
        return;
      case 'entry':
        this.#recordEntry(item.arguments, item.column);
    }
  }

  #evaluate(expression: Expression): number {
    return evaluateExpression(expression, this.#symbols.lookup);
  }

  #writeInstruction(address: number, template: InstructionTemplate): void {
    const immediate = template.immediate === undefined ? 0 : this.#evaluate(template.immediate);
    if (template.immediateRole === ImmediateRole.Target && immediate % INSTRUCTION_BYTES !== 0) {
      const column = startColumn(template.immediate as Expression);
      throw new AssemblySyntaxError(column, `expected an 8-byte-aligned target for '${template.mnemonic}', found ${hex(immediate)}`);
    }
    const [word0, word1] = encodeInstruction(template.opcode, template.fieldA, template.fieldB, template.fieldC, immediate);
    const offset = address - this.#layout.origin;
    this.#view.setInt32(offset, word0, true);
    this.#view.setInt32(offset + 4, word1, true);
  }

  /** Writes what it can: one bad value is reported and the rest of the list is still checked. */
  #writeValues(address: number, unitBytes: number, directive: string, values: readonly Expression[]): void {
    const errors: unknown[] = [];
    for (const [index, expression] of values.entries()) {
      try {
        const offset = address - this.#layout.origin + index * unitBytes;
        this.#writeValue(offset, unitBytes, directive, expression);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors);
  }

  #writeValue(offset: number, unitBytes: number, directive: string, expression: Expression): void {
    const value = this.#evaluate(expression);
    const bits = unitBytes * 8;
    if (!fitsInBits(value, bits)) {
      const range = `${-(2 ** (bits - 1))}..${2 ** bits - 1}`;
      // Shown signed when the top bit is set: ".byte -129" should read back as -129, not 0xffffff7f.
      const found = value >= 0x80000000 ? value | 0 : value;
      throw new AssemblySyntaxError(startColumn(expression), `expected a value in ${range} for '${directive}', found ${found}`);
    }
    if (unitBytes === 1) this.#view.setUint8(offset, value & 0xff);
    else if (unitBytes === 2) this.#view.setUint16(offset, value & 0xffff, true);
    else this.#view.setUint32(offset, value, true);
  }

  #recordEntry(values: readonly Expression[], column: number): void {
    this.hasEntryDirective = true;
    const target = values[0] as Expression;
    const address = this.#evaluate(target);
    if (address % INSTRUCTION_BYTES !== 0) {
      throw new AssemblySyntaxError(startColumn(target), `expected an 8-byte-aligned entry point, found ${hex(address)}`);
    }
    const vcpuExpression = values[1];
    if (vcpuExpression === undefined) {
      if (this.defaultEntry !== undefined) {
        throw new AssemblySyntaxError(column, `expected one default '.entry', found a second (the first is ${hex(this.defaultEntry)})`);
      }
      this.defaultEntry = address;
      return;
    }
    const vcpu = this.#evaluate(vcpuExpression);
    if (vcpu > MAX_VCPU_INDEX) {
      throw new AssemblySyntaxError(startColumn(vcpuExpression), `expected a vCPU index 0..${MAX_VCPU_INDEX}, found ${vcpu}`);
    }
    if (this.perVcpu.has(vcpu)) {
      throw new AssemblySyntaxError(column, `expected one '.entry' for vCPU ${vcpu}, found a second`);
    }
    this.perVcpu.set(vcpu, address);
  }
}

/** Pass 2 over the layout; errors go to `diagnostics`, and the caller discards the image if any. */
export function emitImage(layout: Layout, symbols: SymbolTable, diagnostics: DiagnosticCollector): EmittedImage {
  const writer = new ImageWriter(layout, symbols);
  let instructionCount = 0;
  let firstInstruction: number | undefined;
  for (const item of layout.items) {
    if (diagnostics.full) break;
    if (item.kind === 'instruction') {
      instructionCount += 1;
      firstInstruction ??= item.address;
    }
    try {
      writer.write(item);
    } catch (error) {
      const errors = error instanceof AggregateError ? error.errors : [error];
      for (const each of errors) diagnostics.addError(each, item.line);
    }
  }
  const defaultEntry = writer.hasEntryDirective ? writer.defaultEntry : firstInstruction;
  return {
    bytes: writer.bytes,
    sourceMap: writer.sourceMap,
    entryPoints: { default: defaultEntry, perVcpu: writer.perVcpu },
    instructionCount,
  };
}
