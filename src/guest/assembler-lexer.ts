// Splits one source line into tokens. Lines are independent (one statement per line), so a lexical
// error costs only its own line and the assembler carries on with the next one.
//
// Comments run to the end of the line from ';', from '//', or from '#' at a token boundary (start of
// line, after white space or after punctuation). A '#' glued to a name or number ("x#1") is an error
// rather than a silent comment: it is more likely a typo than a note, and silently dropping the rest
// of an operand would assemble something the author did not write.

import { AssemblySyntaxError } from './assembler-diagnostics.js';
import { GENERAL_REGISTER_COUNT, REGISTER_ALIASES } from './instruction-set.js';

export const TokenKind = {
  Identifier: 'identifier',
  Number: 'number',
  String: 'string',
  Punctuation: 'punctuation',
  /** End of an operand list or line; `text` is ',' when it stands for the comma that ends an operand. */
  End: 'end',
} as const;
export type TokenKind = (typeof TokenKind)[keyof typeof TokenKind];

export interface Token {
  readonly kind: TokenKind;
  /** The source text of the token ("0x10", "'a'", "<<", a string with its quotes). */
  readonly text: string;
  /** 1-based column of the token's first character. */
  readonly column: number;
  /** Number tokens: the value (may exceed 32 bits; the parser checks), or undefined if malformed. */
  readonly value?: number | undefined;
  /** String tokens: the decoded bytes. */
  readonly bytes?: readonly number[];
}

const TWO_CHARACTER_PUNCTUATION = new Set(['<<', '>>']);
const ONE_CHARACTER_PUNCTUATION = new Set([',', '[', ']', '(', ')', '+', '-', '*', '/', '%', '&', '^', '|', '~', ':', '=']);
const ESCAPES: ReadonlyMap<string, number> = new Map([
  ['n', 10],
  ['t', 9],
  ['r', 13],
  ['0', 0],
  ['\\', 92],
  ['"', 34],
  ["'", 39],
]);

const isIdentifierStart = (c: string): boolean => /[A-Za-z_.]/.test(c);
const isIdentifierPart = (c: string): boolean => /[A-Za-z0-9_.]/.test(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';

/** Describes a token for "found ..." in messages. */
export function describeToken(token: Token): string {
  if (token.kind === TokenKind.End) return token.text === '' ? 'end of line' : `'${token.text}'`;
  return `'${token.text}'`;
}

/** Tokenises one line; the result always ends with an End token placed just after the last token. */
export function tokenizeLine(line: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < line.length) {
    const c = line[index] as string;
    const column = index + 1;
    if (c === ' ' || c === '\t') {
      index += 1;
    } else if (c === ';' || line.startsWith('//', index)) {
      break;
    } else if (c === '#') {
      const before = index > 0 ? (line[index - 1] as string) : ' ';
      if (isIdentifierPart(before)) {
        throw new AssemblySyntaxError(column, `expected a space before a '#' comment, found '#' glued to '${lastText(tokens)}'`);
      }
      break;
    } else if (isDigit(c)) {
      index = readNumber(line, index, tokens);
    } else if (isIdentifierStart(c)) {
      const end = scan(line, index + 1, isIdentifierPart);
      tokens.push({ kind: TokenKind.Identifier, text: line.slice(index, end), column });
      index = end;
    } else if (c === '"') {
      index = readString(line, index, tokens);
    } else if (c === "'") {
      index = readCharacter(line, index, tokens);
    } else if (TWO_CHARACTER_PUNCTUATION.has(line.slice(index, index + 2))) {
      tokens.push({ kind: TokenKind.Punctuation, text: line.slice(index, index + 2), column });
      index += 2;
    } else if (ONE_CHARACTER_PUNCTUATION.has(c)) {
      tokens.push({ kind: TokenKind.Punctuation, text: c, column });
      index += 1;
    } else {
      throw new AssemblySyntaxError(column, `expected an operand, an operator or a comment, found '${c}'`);
    }
  }
  tokens.push({ kind: TokenKind.End, text: '', column: endColumn(line, tokens) });
  return tokens;
}

function lastText(tokens: readonly Token[]): string {
  return tokens.at(-1)?.text ?? '';
}

/** The End token sits one column past the last token, so "found end of line" points just after it. */
function endColumn(line: string, tokens: readonly Token[]): number {
  const last = tokens.at(-1);
  return last === undefined ? line.trimEnd().length + 1 : last.column + last.text.length;
}

function scan(line: string, from: number, accept: (c: string) => boolean): number {
  let end = from;
  while (end < line.length && accept(line[end] as string)) end += 1;
  return end;
}

/** Reads everything a number could be glued to ("5x", "0x1g") so a typo is reported whole. */
function readNumber(line: string, start: number, tokens: Token[]): number {
  const end = scan(line, start, isIdentifierPart);
  const text = line.slice(start, end);
  tokens.push({ kind: TokenKind.Number, text, column: start + 1, value: parseNumber(text) });
  return end;
}

function parseNumber(text: string): number | undefined {
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^0b[01]+$/i.test(text)) return Number.parseInt(text.slice(2), 2);
  if (/^[0-9]+$/.test(text)) return Number.parseInt(text, 10);
  return undefined;
}

/** Reads one possibly escaped character at `index`; returns its code and the index after it. */
function readQuotedCharacter(line: string, index: number, quote: string): { code: number; next: number } {
  const c = line[index] as string;
  if (c !== '\\') {
    const code = c.codePointAt(0) as number;
    if (code > 0x7f) throw new AssemblySyntaxError(index + 1, `expected an ASCII character inside ${quote}...${quote}, found '${c}'`);
    return { code, next: index + 1 };
  }
  const escaped = line[index + 1];
  const code = escaped === undefined ? undefined : ESCAPES.get(escaped);
  if (code === undefined) {
    const found = escaped === undefined ? 'end of line' : `'\\${escaped}'`;
    throw new AssemblySyntaxError(index + 1, `expected an escape \\n \\t \\r \\0 \\\\ \\" or \\', found ${found}`);
  }
  return { code, next: index + 2 };
}

function readString(line: string, start: number, tokens: Token[]): number {
  const bytes: number[] = [];
  let index = start + 1;
  while (index < line.length && line[index] !== '"') {
    const { code, next } = readQuotedCharacter(line, index, '"');
    bytes.push(code);
    index = next;
  }
  if (index >= line.length) {
    throw new AssemblySyntaxError(start + 1, `unterminated string: expected a closing '"' before the end of the line`);
  }
  tokens.push({ kind: TokenKind.String, text: line.slice(start, index + 1), column: start + 1, bytes });
  return index + 1;
}

function readCharacter(line: string, start: number, tokens: Token[]): number {
  if (start + 1 >= line.length || line[start + 1] === "'") {
    throw new AssemblySyntaxError(
      start + 1,
      `expected one character between quotes, found ${line[start + 1] === "'" ? "''" : 'end of line'}`,
    );
  }
  const { code, next } = readQuotedCharacter(line, start + 1, "'");
  if (line[next] !== "'") {
    const found = next >= line.length ? 'end of line' : `'${line[next] as string}'`;
    throw new AssemblySyntaxError(start + 1, `unterminated character literal: expected a closing "'", found ${found}`);
  }
  tokens.push({ kind: TokenKind.Number, text: line.slice(start, next + 1), column: start + 1, value: code });
  return next + 1;
}

/** Register names: r0..r15 and the aliases in REGISTER_ALIASES, case-insensitive. */
export function registerNumberOf(token: Token): number | undefined {
  if (token.kind !== TokenKind.Identifier) return undefined;
  const name = token.text.toLowerCase();
  const alias = REGISTER_ALIASES.get(name);
  if (alias !== undefined) return alias;
  const match = /^r(0|[1-9][0-9]?)$/.exec(name);
  if (match === null) return undefined;
  const number = Number(match[1]);
  return number < GENERAL_REGISTER_COUNT ? number : undefined;
}

/**
 * Names that look like registers (r16, R07, SP) are reserved: as symbols they would make "add r1, r2,
 * r16" assemble an immediate when the author meant a register.
 */
export function looksLikeRegister(name: string): boolean {
  const lower = name.toLowerCase();
  return REGISTER_ALIASES.has(lower) || /^r[0-9]+$/.test(lower);
}

/** Walks a token list that always ends with an End token; reading past the end keeps returning it. */
export class TokenCursor {
  readonly #tokens: readonly Token[];
  #position = 0;

  constructor(tokens: readonly Token[]) {
    this.#tokens = tokens;
  }

  peek(): Token {
    return this.#tokens[Math.min(this.#position, this.#tokens.length - 1)] as Token;
  }

  /** The token `offset` places ahead of the next one (the End token past the end). */
  peekAhead(offset: number): Token {
    return this.#tokens[Math.min(this.#position + offset, this.#tokens.length - 1)] as Token;
  }

  next(): Token {
    const token = this.peek();
    if (this.#position < this.#tokens.length - 1) this.#position += 1;
    return token;
  }

  atEnd(): boolean {
    return this.peek().kind === TokenKind.End;
  }
}
