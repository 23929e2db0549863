// `.include "file.s"`: splices another source file in place of the directive, before pass 1.
//
// The assembler does no I/O: the host supplies the text through AssemblerOptions.readInclude. The
// expansion yields one flat list of lines, and for each of them where it really came from (file and
// line, and where that file was included), so diagnostics and the source map can name the included
// file. Includes may nest up to MAX_INCLUDE_DEPTH deep; a file may be included only once per program
// (a second include, and so any cycle, is an error), so its labels are never defined twice.

import { checkIncludedText } from './assembler-input.js';
import { describeToken, TokenKind, tokenizeLine } from './assembler-lexer.js';

/** How deep `.include` may nest: the program's own file is depth 0, a file it includes depth 1. */
export const MAX_INCLUDE_DEPTH = 8;

/** Supplies the text of an included file, or undefined if there is no such file. */
export type IncludeReader = (name: string, fromFile: string) => string | undefined;

/** Where a line of the expanded source was written. */
export interface LineOrigin {
  readonly fileName: string;
  /** 1-based line within fileName. */
  readonly line: number;
  /** "file.s:3" where fileName was included; undefined for the program's own file. */
  readonly includedFrom: string | undefined;
}

export interface IncludeError {
  /** 1-based line of the expanded source (the .include line). */
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export interface ExpandedSource {
  /** The flat source; each .include line is left blank and followed by the included lines. */
  readonly lines: readonly string[];
  /** origins[i] is where lines[i] came from. */
  readonly origins: readonly LineOrigin[];
  readonly errors: readonly IncludeError[];
  /** True if any file was included. */
  readonly includedAny: boolean;
}

const splitLines = (text: string): string[] => text.split(/\r\n|\r|\n/);

/** The include on this line: the name token, or an error message; undefined for any other line. */
function parseInclude(text: string): { name: string; column: number } | { error: string; column: number } | undefined {
  if (!/^\s*\.include\b/i.test(text)) return undefined;
  let tokens;
  try {
    tokens = tokenizeLine(text);
  } catch {
    return undefined; // the lexer reports it in pass 1
  }
  const [head, operand, end] = tokens;
  if (head === undefined || head.kind !== TokenKind.Identifier || head.text.toLowerCase() !== '.include') return undefined;
  if (operand === undefined || operand.kind !== TokenKind.String || end === undefined || end.kind !== TokenKind.End) {
    const culprit = operand?.kind === TokenKind.String ? end : operand;
    const found = culprit === undefined ? 'end of line' : describeToken(culprit);
    return { error: `expected one file name in double quotes after '.include', found ${found}`, column: culprit?.column ?? head.column };
  }
  const name = String.fromCharCode(...(operand.bytes ?? []));
  if (name === '') return { error: "expected a file name after '.include', found an empty string", column: operand.column };
  return { name, column: operand.column };
}

export function expandIncludes(source: string, fileName: string, readInclude: IncludeReader | undefined): ExpandedSource {
  const lines: string[] = [];
  const origins: LineOrigin[] = [];
  const errors: IncludeError[] = [];
  const included = new Map<string, string>([[fileName, 'the program itself']]);
  let includedAny = false;

  const expand = (text: string, file: string, depth: number, includedFrom: string | undefined): void => {
    for (const [index, lineText] of splitLines(text).entries()) {
      const include = parseInclude(lineText);
      lines.push(include === undefined ? lineText : '');
      origins.push({ fileName: file, line: index + 1, includedFrom });
      if (include === undefined) continue;
      const here = lines.length;
      const fail = (message: string): void => void errors.push({ line: here, column: include.column, message });
      if ('error' in include) {
        fail(include.error);
        continue;
      }
      const { name } = include;
      const previous = included.get(name);
      if (previous !== undefined) {
        fail(`cannot include '${name}': already included (${previous}); a file may be included only once`);
        continue;
      }
      if (depth + 1 > MAX_INCLUDE_DEPTH) {
        fail(`cannot include '${name}': includes nested more than ${MAX_INCLUDE_DEPTH} deep`);
        continue;
      }
      if (readInclude === undefined) {
        fail(`cannot include '${name}': the assembler was given no include reader (AssemblerOptions.readInclude)`);
        continue;
      }
      let includedText: string | undefined;
      try {
        includedText = readInclude(name, file);
      } catch (error) {
        fail(`cannot include '${name}': ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      checkIncludedText(includedText, name, file);
      if (includedText === undefined) {
        fail(`cannot include '${name}': no such file`);
        continue;
      }
      const where = `${file}:${index + 1}`;
      included.set(name, `at ${where}`);
      includedAny = true;
      expand(includedText, name, depth + 1, where);
    }
  };
  expand(source, fileName, 0, undefined);
  return { lines, origins, errors, includedAny };
}
