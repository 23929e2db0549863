// Constant expressions: parsing to a tree in pass 1, evaluation in pass 2 (when every label is known).
//
// Every value is a 32-bit pattern held as an unsigned number (0..0xffffffff) and every operator wraps
// to 32 bits, as the guest's own arithmetic does, so "-1", "~0" and "0xffffffff" are the same value
// and "APIC_BASE >> 12" is 0xfee00. Consequently '/', '%' and '>>' are unsigned (the ISA has only
// divu/remu; its logical shift is shr). A literal must fit in 32 bits; shifting by 32 or more and
// dividing by zero are errors rather than JavaScript's silent masking or Infinity.
//
// Precedence is C's, loosest first: | ^ & (<< >>) (+ -) (* / %), then the unary - ~ +.

import { AssemblySyntaxError } from './assembler-diagnostics.js';
import { describeToken, looksLikeRegister, registerNumberOf, TokenKind, type TokenCursor } from './assembler-lexer.js';

export type UnaryOperator = '-' | '~' | '+';
export type BinaryOperator = '*' | '/' | '%' | '+' | '-' | '<<' | '>>' | '&' | '^' | '|';

export type Expression =
  | { readonly kind: 'number'; readonly value: number; readonly column: number }
  | { readonly kind: 'symbol'; readonly name: string; readonly column: number }
  | { readonly kind: 'unary'; readonly operator: UnaryOperator; readonly operand: Expression; readonly column: number }
  | {
      readonly kind: 'binary';
      readonly operator: BinaryOperator;
      readonly left: Expression;
      readonly right: Expression;
      readonly column: number;
    };

/** Returns a symbol's value, or throws AssemblySyntaxError (undefined, defined too late, circular). */
export type SymbolLookup = (name: string, column: number) => number;

const BINARY_PRECEDENCE: ReadonlyMap<string, number> = new Map([
  ['|', 1],
  ['^', 2],
  ['&', 3],
  ['<<', 4],
  ['>>', 4],
  ['+', 5],
  ['-', 5],
  ['*', 6],
  ['/', 6],
  ['%', 6],
]);
const UNARY_OPERATORS: ReadonlySet<string> = new Set(['-', '~', '+']);
const MAX_UNSIGNED_32 = 0xffffffff;
const REGISTER_HINT = ' (registers are r0..r15 and sp)';

/**
 * Parses an expression at the cursor. `context` completes "expected an expression <context>", for
 * example "after 'li'" or "as operand 3 of 'add'".
 */
export function parseExpression(cursor: TokenCursor, context: string): Expression {
  return continueBinary(cursor, parseUnary(cursor, context), 1);
}

/**
 * Continues an expression whose first operand is already known. "[r1 - 4 + 2]" is parsed as
 * "0 - 4 + 2" so that the displacement is what the arithmetic says (-2), not -(4 + 2).
 */
export function continueExpression(cursor: TokenCursor, left: Expression): Expression {
  return continueBinary(cursor, left, 1);
}

function continueBinary(cursor: TokenCursor, first: Expression, minimumPrecedence: number): Expression {
  let left = first;
  for (;;) {
    const token = cursor.peek();
    const precedence = token.kind === TokenKind.Punctuation ? BINARY_PRECEDENCE.get(token.text) : undefined;
    if (precedence === undefined || precedence < minimumPrecedence) return left;
    cursor.next();
    const operand = parseUnary(cursor, `after '${token.text}'`);
    const right = continueBinary(cursor, operand, precedence + 1);
    left = { kind: 'binary', operator: token.text as BinaryOperator, left, right, column: token.column };
  }
}

function parseUnary(cursor: TokenCursor, context: string): Expression {
  const token = cursor.peek();
  if (token.kind !== TokenKind.Punctuation || !UNARY_OPERATORS.has(token.text)) return parsePrimary(cursor, context);
  cursor.next();
  const operand = parseUnary(cursor, `after '${token.text}'`);
  return { kind: 'unary', operator: token.text as UnaryOperator, operand, column: token.column };
}

function parsePrimary(cursor: TokenCursor, context: string): Expression {
  const token = cursor.next();
  if (token.kind === TokenKind.Number) {
    if (token.value === undefined) {
      throw new AssemblySyntaxError(token.column, `expected a decimal, 0x hex or 0b binary number ${context}, found '${token.text}'`);
    }
    if (token.value > MAX_UNSIGNED_32) {
      throw new AssemblySyntaxError(token.column, `immediate out of range: expected a value that fits in 32 bits, found ${token.text}`);
    }
    return { kind: 'number', value: token.value, column: token.column };
  }
  if (token.kind === TokenKind.Identifier) {
    if (registerNumberOf(token) !== undefined) {
      throw new AssemblySyntaxError(token.column, `expected an expression ${context}, found register '${token.text}'`);
    }
    if (looksLikeRegister(token.text)) {
      throw new AssemblySyntaxError(token.column, `expected an expression ${context}, found '${token.text}'${REGISTER_HINT}`);
    }
    return { kind: 'symbol', name: token.text, column: token.column };
  }
  if (token.kind === TokenKind.Punctuation && token.text === '(') {
    const inner = parseExpression(cursor, `after '('`);
    const close = cursor.next();
    if (close.kind !== TokenKind.Punctuation || close.text !== ')') {
      throw new AssemblySyntaxError(close.column, `expected ')' to close the '(' at column ${token.column}, found ${describeToken(close)}`);
    }
    return inner;
  }
  throw new AssemblySyntaxError(token.column, `expected an expression ${context}, found ${describeToken(token)}`);
}

/** Evaluates to an unsigned 32-bit value; throws AssemblySyntaxError for the user's mistakes. */
export function evaluateExpression(expression: Expression, lookup: SymbolLookup): number {
  switch (expression.kind) {
    case 'number':
      return expression.value >>> 0;
    case 'symbol':
      return lookup(expression.name, expression.column) >>> 0;
    case 'unary':
      return applyUnary(expression.operator, evaluateExpression(expression.operand, lookup));
    case 'binary': {
      const left = evaluateExpression(expression.left, lookup);
      const right = evaluateExpression(expression.right, lookup);
      return applyBinary(expression.operator, left, right, expression.column);
    }
  }
}

function applyUnary(operator: UnaryOperator, value: number): number {
  if (operator === '-') return -value >>> 0;
  if (operator === '~') return ~value >>> 0;
  return value;
}

function applyBinary(operator: BinaryOperator, left: number, right: number, column: number): number {
  switch (operator) {
    case '*':
      return Math.imul(left, right) >>> 0;
    case '/':
      return Math.floor(left / nonZero(right, column)) >>> 0;
    case '%':
      return left % nonZero(right, column);
    case '+':
      return (left + right) >>> 0;
    case '-':
      return (left - right) >>> 0;
    case '<<':
      return (left << shiftCount(right, column)) >>> 0;
    case '>>':
      return left >>> shiftCount(right, column);
    case '&':
      return (left & right) >>> 0;
    case '^':
      return (left ^ right) >>> 0;
    case '|':
      return (left | right) >>> 0;
  }
}

function nonZero(divisor: number, column: number): number {
  if (divisor === 0) throw new AssemblySyntaxError(column, 'expected a non-zero divisor, found 0 (division by zero)');
  return divisor;
}

function shiftCount(count: number, column: number): number {
  if (count > 31) throw new AssemblySyntaxError(column, `expected a shift count of 0..31, found ${count}`);
  return count;
}

/** True if a 32-bit pattern is a `bits`-wide value read as unsigned or as signed (".byte -1"). */
export function fitsInBits(value: number, bits: number): boolean {
  const unsigned = value >>> 0;
  return unsigned < 2 ** bits || unsigned >= 2 ** 32 - 2 ** (bits - 1);
}

/** "0x1f" for messages. */
export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}
