// Reads an instruction's operands according to its OperandForm (instruction-set.ts) and decides the
// encoding: which opcode (register or immediate form), which register goes in which field, and the
// expression for the immediate, which pass 2 evaluates.

import { AssemblySyntaxError } from './assembler-diagnostics.js';
import { continueExpression, parseExpression, type Expression } from './assembler-expression.js';
import { describeToken, looksLikeRegister, registerNumberOf, TokenCursor, TokenKind, type Token } from './assembler-lexer.js';
import { OperandForm, STACK_POINTER, ZERO_REGISTER, type InstructionDefinition, type Opcode } from './instruction-set.js';

/** What pass 2 checks the immediate against: any 32-bit value, or an 8-byte-aligned code address. */
export const ImmediateRole = { Value: 'value', Target: 'target' } as const;
export type ImmediateRole = (typeof ImmediateRole)[keyof typeof ImmediateRole];

export interface InstructionTemplate {
  readonly mnemonic: string;
  readonly opcode: Opcode;
  readonly fieldA: number;
  readonly fieldB: number;
  readonly fieldC: number;
  /** Absent when the instruction has no immediate (it encodes as 0). */
  readonly immediate: Expression | undefined;
  readonly immediateRole: ImmediateRole;
}

/** An operand's tokens; the last is an End token standing for the following ',' or the end of line. */
export type OperandTokens = readonly Token[];

const OPERAND_COUNT: Readonly<Record<OperandForm, number>> = {
  [OperandForm.None]: 0,
  [OperandForm.RegReg]: 2,
  [OperandForm.RegImm]: 2,
  [OperandForm.RegRegReg]: 3,
  [OperandForm.RegRegImm]: 3,
  [OperandForm.BranchCompare]: 3,
  [OperandForm.BranchZero]: 2,
  [OperandForm.Target]: 1,
  [OperandForm.Reg]: 1,
  [OperandForm.RegDestination]: 1,
  [OperandForm.RegMem]: 2,
  [OperandForm.MemReg]: 2,
  [OperandForm.RegMemReg]: 3,
  [OperandForm.RegIndex]: 2,
  [OperandForm.IndexReg]: 2,
  [OperandForm.Index]: 1,
  [OperandForm.Imm]: 1,
};

/** How an instruction's operands are written, for messages and docs/guest-isa.md. */
export function operandSyntax(definition: InstructionDefinition): string {
  const { form } = definition;
  if (form === OperandForm.RegRegReg && definition.immediateOpcode !== undefined) return 'rd, rs, rt|imm';
  if (form === OperandForm.Target && definition.registerOpcode !== undefined) return 'target|rs';
  if (form === OperandForm.None) return '';
  return form.replaceAll(',', ', ').replace('mem', '[mem]');
}

/**
 * Splits the tokens after a mnemonic or directive at the commas outside brackets and parentheses. Each
 * operand ends with an End token standing for its ',' (or the end of line), so "found ','" is exact.
 */
export function splitOperands(cursor: TokenCursor): OperandTokens[] {
  if (cursor.atEnd()) return [];
  const operands: OperandTokens[] = [];
  let current: Token[] = [];
  let depth = 0;
  for (;;) {
    const token = cursor.next();
    const isComma = token.kind === TokenKind.Punctuation && token.text === ',' && depth === 0;
    if (token.kind === TokenKind.End || isComma) {
      current.push({ kind: TokenKind.End, text: token.text, column: token.column });
      operands.push(current);
      if (token.kind === TokenKind.End) return operands;
      current = [];
      continue;
    }
    if (token.kind === TokenKind.Punctuation && (token.text === '[' || token.text === '(')) depth += 1;
    if (token.kind === TokenKind.Punctuation && (token.text === ']' || token.text === ')')) depth = Math.max(0, depth - 1);
    current.push(token);
  }
}

/** One operand being read: its tokens and how to name it in messages. */
export class Operand {
  readonly cursor: TokenCursor;
  /** Completes "expected a register <context>": "after 'add'" or "as operand 2 of 'add'". */
  readonly context: string;
  readonly #place: string;

  constructor(tokens: OperandTokens, index: number, mnemonic: string) {
    this.cursor = new TokenCursor(tokens);
    this.context = index === 1 ? `after '${mnemonic}'` : `as operand ${index} of '${mnemonic}'`;
    this.#place = `operand ${index} of '${mnemonic}'`;
  }

  startsWithRegister(): boolean {
    return registerNumberOf(this.cursor.peek()) !== undefined;
  }

  /** Nothing may follow a complete operand but the ',' or the end of line. */
  finish(): void {
    const token = this.cursor.peek();
    if (token.kind !== TokenKind.End) {
      throw new AssemblySyntaxError(token.column, `expected ',' or end of line after ${this.#place}, found ${describeToken(token)}`);
    }
  }
}

export function parseInstructionOperands(
  mnemonic: Token,
  definition: InstructionDefinition,
  operandTokens: readonly OperandTokens[],
): InstructionTemplate {
  const name = definition.mnemonic;
  const expected = OPERAND_COUNT[definition.form];
  if (operandTokens.length !== expected) {
    const column = operandTokens.length > expected ? (firstColumn(operandTokens[expected]) ?? mnemonic.column) : mnemonic.column;
    const syntax = expected === 0 ? 'no operands' : `${expected} operand${expected === 1 ? '' : 's'} (${operandSyntax(definition)})`;
    throw new AssemblySyntaxError(column, `expected ${syntax} after '${name}', found ${operandTokens.length}`);
  }
  const operands = operandTokens.map((tokens, index) => new Operand(tokens, index + 1, name));
  return encodeForm(definition, operands);
}

function firstColumn(tokens: OperandTokens | undefined): number | undefined {
  return tokens?.[0]?.column;
}

type Fields = Omit<InstructionTemplate, 'mnemonic'>;

function encodeForm(definition: InstructionDefinition, operands: readonly Operand[]): InstructionTemplate {
  // The count was checked against OPERAND_COUNT, so formFields reads only operands that exist.
  const fields = formFields(definition, operands as [Operand, Operand, Operand]);
  return { mnemonic: definition.mnemonic, ...fields };
}

function fieldsOf(opcode: Opcode, a: number, b: number, c: number, immediate?: Expression, role?: ImmediateRole): Fields {
  return { opcode, fieldA: a, fieldB: b, fieldC: c, immediate, immediateRole: role ?? ImmediateRole.Value };
}

function formFields(definition: InstructionDefinition, [first, second, third]: [Operand, Operand, Operand]): Fields {
  const { opcode } = definition;
  switch (definition.form) {
    case OperandForm.None:
      return fieldsOf(opcode, 0, 0, 0);
    case OperandForm.RegReg:
      return fieldsOf(opcode, register(first), register(second), 0);
    case OperandForm.RegImm:
      return fieldsOf(opcode, register(first), 0, 0, expression(second));
    case OperandForm.RegRegReg:
      return registerOrImmediateForm(definition, first, second, third);
    case OperandForm.RegRegImm:
      return fieldsOf(opcode, register(first), register(second), 0, expression(third));
    case OperandForm.BranchCompare:
      return fieldsOf(opcode, register(first), register(second), 0, expression(third), ImmediateRole.Target);
    case OperandForm.BranchZero:
      return fieldsOf(opcode, register(first), 0, 0, expression(second), ImmediateRole.Target);
    case OperandForm.Target:
      if (definition.registerOpcode !== undefined && first.startsWithRegister()) {
        return fieldsOf(definition.registerOpcode, register(first), 0, 0);
      }
      return fieldsOf(opcode, 0, 0, 0, expression(first), ImmediateRole.Target);
    case OperandForm.Reg:
    case OperandForm.RegDestination:
      return fieldsOf(opcode, register(first), 0, 0);
    case OperandForm.RegMem: {
      const destination = register(first);
      const { base, displacement } = memory(second);
      return fieldsOf(opcode, destination, base, 0, displacement);
    }
    case OperandForm.MemReg: {
      const { base, displacement } = memory(first);
      return fieldsOf(opcode, register(second), base, 0, displacement);
    }
    case OperandForm.RegMemReg: {
      const destination = register(first);
      const { base, displacement } = memory(second);
      return fieldsOf(opcode, destination, base, register(third), displacement);
    }
    case OperandForm.RegIndex: {
      const destination = registerPair(first, definition.mnemonic);
      const { base, displacement } = index(second);
      return fieldsOf(opcode, destination, base, 0, displacement);
    }
    case OperandForm.IndexReg: {
      const { base, displacement } = index(first);
      return fieldsOf(opcode, registerPair(second, definition.mnemonic), base, 0, displacement);
    }
    case OperandForm.Index: {
      const { base, displacement } = index(first);
      return fieldsOf(opcode, 0, base, 0, displacement);
    }
    case OperandForm.Imm:
      return fieldsOf(opcode, 0, 0, 0, expression(first));
  }
}

/** "add rd, rs, rt" uses the register opcode; "add rd, rs, <expression>" the immediate one. */
function registerOrImmediateForm(definition: InstructionDefinition, first: Operand, second: Operand, third: Operand): Fields {
  const destination = register(first);
  const source = register(second);
  if (definition.immediateOpcode === undefined || third.startsWithRegister()) {
    return fieldsOf(definition.opcode, destination, source, register(third));
  }
  return fieldsOf(definition.immediateOpcode, destination, source, 0, expression(third));
}

function register(operand: Operand): number {
  const token = operand.cursor.next();
  const number = registerNumberOf(token);
  if (number === undefined) {
    const hint = token.kind === TokenKind.Identifier && looksLikeRegister(token.text) ? ' (registers are r0..r15 and sp)' : '';
    throw new AssemblySyntaxError(token.column, `expected a register ${operand.context}, found ${describeToken(token)}${hint}`);
  }
  operand.finish();
  return number;
}

/** rdmsr and wrmsr move a 64-bit MSR through rN (low word) and rN+1 (high word). */
function registerPair(operand: Operand, mnemonic: string): number {
  const token = operand.cursor.peek();
  const number = register(operand);
  if (number === STACK_POINTER) {
    throw new AssemblySyntaxError(
      token.column,
      `expected a register r0..r14 ${operand.context} ('${mnemonic}' uses the pair rN:rN+1), found '${token.text}'`,
    );
  }
  return number;
}

export function expression(operand: Operand): Expression {
  const parsed = parseExpression(operand.cursor, operand.context);
  operand.finish();
  return parsed;
}

interface BaseAndDisplacement {
  readonly base: number;
  readonly displacement: Expression | undefined;
}

/** "[rN]", "[rN + expr]", "[rN - expr]" or "[expr]" (base = the zero register). */
function memory(operand: Operand): BaseAndDisplacement {
  const { cursor } = operand;
  const open = cursor.next();
  if (open.kind !== TokenKind.Punctuation || open.text !== '[') {
    throw new AssemblySyntaxError(open.column, `expected a memory operand '[...]' ${operand.context}, found ${describeToken(open)}`);
  }
  const result = operand.startsWithRegister() ? registerRelative(operand, ']') : absolute(operand);
  const close = cursor.next();
  if (close.kind !== TokenKind.Punctuation || close.text !== ']') {
    throw new AssemblySyntaxError(close.column, `expected ']' to close the '[' at column ${open.column}, found ${describeToken(close)}`);
  }
  operand.finish();
  return result;
}

function absolute(operand: Operand): BaseAndDisplacement {
  return { base: ZERO_REGISTER, displacement: parseExpression(operand.cursor, `inside '[' ${operand.context}`) };
}

/**
 * Reads "rN", "rN + expr" or "rN - expr". The displacement is the rest of the text with the register
 * taken as 0, so "r1 - 4 + 2" means r1 - 2, as the arithmetic reads.
 */
function registerRelative(operand: Operand, terminator: string): BaseAndDisplacement {
  const { cursor } = operand;
  const base = registerNumberOf(cursor.next()) as number;
  const next = cursor.peek();
  if (next.kind === TokenKind.Punctuation && (next.text === '+' || next.text === '-')) {
    const zero: Expression = { kind: 'number', value: 0, column: next.column };
    return { base, displacement: continueExpression(cursor, zero) };
  }
  const isTerminator = terminator === '' ? next.kind === TokenKind.End : next.kind === TokenKind.Punctuation && next.text === terminator;
  if (!isTerminator) {
    const expected = terminator === '' ? "'+', '-', ',' or end of line" : `'+', '-' or '${terminator}'`;
    throw new AssemblySyntaxError(next.column, `expected ${expected} after the base register, found ${describeToken(next)}`);
  }
  return { base, displacement: undefined };
}

/** An MSR number or IVT base: "rN", "expr" or "rN + expr" (base = the zero register without rN). */
function index(operand: Operand): BaseAndDisplacement {
  if (!operand.startsWithRegister()) return { base: ZERO_REGISTER, displacement: expression(operand) };
  const result = registerRelative(operand, '');
  operand.finish();
  return result;
}
