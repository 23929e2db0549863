// Reads one tokenised line: its labels ("name:"), then at most one statement: an instruction, a
// directive, or a constant definition ("NAME = expr"). Everything that can be decided without symbol
// values is decided here; expressions stay unevaluated for the passes.

import { AssemblySyntaxError } from './assembler-diagnostics.js';
import { parseExpression, type Expression } from './assembler-expression.js';
import { describeToken, TokenKind, type TokenCursor, type Token } from './assembler-lexer.js';
import {
  expression,
  Operand,
  parseInstructionOperands,
  splitOperands,
  type InstructionTemplate,
  type OperandTokens,
} from './assembler-operands.js';
import { INSTRUCTIONS_BY_MNEMONIC } from './instruction-set.js';

export const Directive = {
  Org: '.org',
  Align: '.align',
  Equ: '.equ',
  Byte: '.byte',
  Half: '.half',
  Word: '.word',
  Zero: '.zero',
  Space: '.space',
  Ascii: '.ascii',
  Asciz: '.asciz',
  Entry: '.entry',
} as const;
export type Directive = (typeof Directive)[keyof typeof Directive];

const DIRECTIVES: ReadonlySet<string> = new Set(Object.values(Directive));

export interface LabelDefinition {
  readonly name: string;
  readonly column: number;
}

export type Statement =
  | { readonly kind: 'instruction'; readonly column: number; readonly template: InstructionTemplate }
  | { readonly kind: 'constant'; readonly name: string; readonly column: number; readonly expression: Expression }
  | { readonly kind: 'directive'; readonly directive: Directive; readonly column: number; readonly arguments: readonly Expression[] }
  | { readonly kind: 'string'; readonly directive: Directive; readonly column: number; readonly bytes: readonly number[] };

const isPunctuation = (token: Token, text: string): boolean => token.kind === TokenKind.Punctuation && token.text === text;

/** Reads the "name:" prefixes of a line. */
export function parseLabels(cursor: TokenCursor): LabelDefinition[] {
  const labels: LabelDefinition[] = [];
  while (cursor.peek().kind === TokenKind.Identifier && isPunctuation(cursor.peekAhead(1), ':')) {
    const name = cursor.next();
    cursor.next();
    labels.push({ name: name.text, column: name.column });
  }
  return labels;
}

/**
 * True if the statement at the cursor is meant to be an instruction: when it fails to parse, the
 * assembler still reserves its 8 bytes so that one typo does not shift every later address.
 */
export function startsInstruction(cursor: TokenCursor): boolean {
  const head = cursor.peek();
  return head.kind === TokenKind.Identifier && !head.text.startsWith('.') && !isPunctuation(cursor.peekAhead(1), '=');
}

/** Reads the statement after the labels; undefined for a line with only labels or nothing. */
export function parseStatement(cursor: TokenCursor): Statement | undefined {
  if (cursor.atEnd()) return undefined;
  const head = cursor.next();
  if (head.kind !== TokenKind.Identifier) {
    throw new AssemblySyntaxError(head.column, `expected a label, an instruction or a directive, found ${describeToken(head)}`);
  }
  if (isPunctuation(cursor.peek(), '=')) {
    cursor.next();
    return constant(head, parseWholeExpression(cursor, `after '${head.text} ='`));
  }
  if (head.text.startsWith('.')) return parseDirective(head, splitOperands(cursor));
  const definition = INSTRUCTIONS_BY_MNEMONIC.get(head.text.toLowerCase());
  if (definition === undefined) {
    throw new AssemblySyntaxError(head.column, `unknown mnemonic '${head.text}': expected an instruction, a directive or a label`);
  }
  const template = parseInstructionOperands(head, definition, splitOperands(cursor));
  return { kind: 'instruction', column: head.column, template };
}

function constant(name: Token, value: Expression): Statement {
  return { kind: 'constant', name: name.text, column: name.column, expression: value };
}

function parseWholeExpression(cursor: TokenCursor, context: string): Expression {
  const value = parseExpression(cursor, context);
  const rest = cursor.peek();
  if (rest.kind !== TokenKind.End) {
    throw new AssemblySyntaxError(rest.column, `expected an operator or end of line, found ${describeToken(rest)}`);
  }
  return value;
}

function parseDirective(head: Token, operandTokens: readonly OperandTokens[]): Statement {
  const directive = head.text.toLowerCase();
  if (directive === '.include') {
    throw new AssemblySyntaxError(head.column, "expected '.include' alone at the start of its line, found it after a label");
  }
  if (!DIRECTIVES.has(directive)) {
    const known = [...DIRECTIVES].join(' ');
    throw new AssemblySyntaxError(head.column, `unknown directive '${head.text}': expected one of ${known}`);
  }
  const operands = operandTokens.map((tokens, index) => new Operand(tokens, index + 1, directive));
  switch (directive) {
    case Directive.Equ:
      checkCount(head, directive, operands.length, 2, 2);
      return constant(symbolName(operands[0] as Operand), expression(operands[1] as Operand));
    case Directive.Ascii:
    case Directive.Asciz:
      checkCount(head, directive, operands.length, 1, Infinity);
      return { kind: 'string', directive, column: head.column, bytes: stringBytes(directive, operands) };
    case Directive.Entry:
      checkCount(head, directive, operands.length, 1, 2);
      return valueDirective(directive, head, operands);
    case Directive.Byte:
    case Directive.Half:
    case Directive.Word:
      checkCount(head, directive, operands.length, 1, Infinity);
      return valueDirective(directive, head, operands);
    default:
      checkCount(head, directive, operands.length, 1, 1);
      return valueDirective(directive as Directive, head, operands);
  }
}

function valueDirective(directive: Directive, head: Token, operands: readonly Operand[]): Statement {
  const values = operands.map((operand) => expression(operand));
  return { kind: 'directive', directive, column: head.column, arguments: values };
}

function checkCount(head: Token, directive: string, found: number, minimum: number, maximum: number): void {
  if (found >= minimum && found <= maximum) return;
  const expected =
    minimum === maximum
      ? `${minimum} operand${minimum === 1 ? '' : 's'}`
      : maximum === Infinity
        ? `at least ${minimum} operand${minimum === 1 ? '' : 's'}`
        : `${minimum} to ${maximum} operands`;
  throw new AssemblySyntaxError(head.column, `expected ${expected} after '${directive}', found ${found}`);
}

function symbolName(operand: Operand): Token {
  const name = operand.cursor.next();
  if (name.kind !== TokenKind.Identifier) {
    throw new AssemblySyntaxError(name.column, `expected a symbol name ${operand.context}, found ${describeToken(name)}`);
  }
  operand.finish();
  return name;
}

function stringBytes(directive: string, operands: readonly Operand[]): number[] {
  const bytes: number[] = [];
  for (const operand of operands) {
    const token = operand.cursor.next();
    if (token.kind !== TokenKind.String) {
      throw new AssemblySyntaxError(token.column, `expected a string "..." ${operand.context}, found ${describeToken(token)}`);
    }
    operand.finish();
    bytes.push(...(token.bytes ?? []));
    // As in GNU as, each string of ".asciz" gets its own terminator.
    if (directive === Directive.Asciz) bytes.push(0);
  }
  return bytes;
}
