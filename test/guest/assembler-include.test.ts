import { describe, expect, it } from 'vitest';
import {
  assemble,
  formatDiagnostic,
  lineOf,
  MAX_INCLUDE_DEPTH,
  type AssemblerOptions,
  type ProgramImage,
} from '../../src/guest/assembler.js';

/** A reader over an in-memory set of files that also records each request. */
function filesReader(files: Record<string, string>, requests: string[] = []): NonNullable<AssemblerOptions['readInclude']> {
  return (name, fromFile) => {
    requests.push(`${fromFile} -> ${name}`);
    return Object.hasOwn(files, name) ? files[name] : undefined;
  };
}

function assembled(source: string, files: Record<string, string>): ProgramImage {
  const result = assemble(source, { fileName: 'main.s', readInclude: filesReader(files) });
  if (!result.ok) expect.fail(result.errors.map(formatDiagnostic).join('\n'));
  return result.program;
}

function errorsOf(source: string, options: Partial<AssemblerOptions> = {}): string[] {
  const result = assemble(source, { fileName: 'main.s', ...options });
  if (result.ok) expect.fail(`expected errors, but it assembled:\n${source}`);
  return result.errors.map(formatDiagnostic);
}

describe('.include', () => {
  it('assembles the included text in place, with symbols visible both ways and forward references', () => {
    const requests: string[] = [];
    const source = ['start:', '  li r1, COMMON_VALUE', '  jmp common_tail', '.include "common.s"  ; the tail', 'after:', '  nop'].join(
      '\n',
    );
    const common = ['  .equ COMMON_VALUE, 7', 'common_tail:', '  li r2, MAIN_VALUE', '  jmp after'].join('\n');
    const result = assemble(`${source}\n  .equ MAIN_VALUE, 9`, {
      fileName: 'main.s',
      readInclude: filesReader({ 'common.s': common }, requests),
    });
    if (!result.ok) expect.fail(result.errors.map(formatDiagnostic).join('\n'));
    const { program } = result;
    expect(requests).toEqual(['main.s -> common.s']);
    expect(program.symbols.get('start')).toBe(0x1000);
    expect(program.symbols.get('common_tail')).toBe(0x1010);
    expect(program.symbols.get('after')).toBe(0x1020);
    expect(program.symbols.get('COMMON_VALUE')).toBe(7);
    expect(program.instructionCount).toBe(5);
    // the same bytes as writing the file out in place
    const inline = assemble(`${source.replace('.include "common.s"  ; the tail', common)}\n  .equ MAIN_VALUE, 9`, { fileName: 'main.s' });
    expect(inline.ok && inline.program.bytes).toEqual(program.bytes);
  });

  it('names the included file in the source map, and keeps the main file lines as they are', () => {
    const program = assembled('  nop\n.include "a.s"\n  hlt', { 'a.s': '; a comment\n  pause' });
    expect(lineOf(program, 0x1000)).toEqual({ line: 1, column: 3, text: 'nop' });
    expect(lineOf(program, 0x1008)).toEqual({ line: 2, column: 3, text: 'pause', fileName: 'a.s' });
    expect(lineOf(program, 0x1010)).toEqual({ line: 3, column: 3, text: 'hlt' });
  });

  it('allows nested includes, each relative to the file that includes it', () => {
    const requests: string[] = [];
    const result = assemble('.include "a.s"\n  jmp b_label', {
      fileName: 'main.s',
      readInclude: filesReader({ 'a.s': '.include "b.s"\na_label: nop', 'b.s': 'b_label: jmp a_label' }, requests),
    });
    expect(result.ok).toBe(true);
    expect(requests).toEqual(['main.s -> a.s', 'a.s -> b.s']);
  });

  it('reports errors inside an included file at its own file:line:column, and where it was included', () => {
    const errors = errorsOf('  nop\n\n.include "bad.s"\n  bogus', { readInclude: filesReader({ 'bad.s': '  nop\n  add r1, r2\nx: nop' }) });
    expect(errors).toEqual([
      "bad.s:2:3: error: expected 3 operands (rd, rs, rt|imm) after 'add', found 2 (included from main.s:3)",
      "main.s:4:3: error: unknown mnemonic 'bogus': expected an instruction, a directive or a label",
    ]);
  });

  it('names the file of the first definition of a duplicate symbol', () => {
    const errors = errorsOf('.include "a.s"\nshared: nop', { readInclude: filesReader({ 'a.s': '\nshared: nop' }) });
    expect(errors).toEqual(["main.s:2:1: error: duplicate symbol 'shared': already defined at a.s:2"]);
  });

  it('reports a missing file at the directive', () => {
    expect(errorsOf('  nop\n  .include "nope.s"', { readInclude: filesReader({}) })).toEqual([
      "main.s:2:12: error: cannot include 'nope.s': no such file",
    ]);
  });

  it('reports a reader that throws as a diagnostic', () => {
    const readInclude = (): string => {
      throw new Error('refused');
    };
    expect(errorsOf('.include "x.s"', { readInclude })).toEqual(["main.s:1:10: error: cannot include 'x.s': refused"]);
  });

  it('says so clearly when no reader was given', () => {
    expect(errorsOf('.include "common.s"')).toEqual([
      "main.s:1:10: error: cannot include 'common.s': the assembler was given no include reader (AssemblerOptions.readInclude)",
    ]);
  });

  it(`stops nesting deeper than ${MAX_INCLUDE_DEPTH}`, () => {
    const files: Record<string, string> = {};
    for (let depth = 1; depth <= MAX_INCLUDE_DEPTH + 1; depth += 1) files[`f${depth}.s`] = `.include "f${depth + 1}.s"`;
    expect(errorsOf('.include "f1.s"', { readInclude: filesReader(files) })).toEqual([
      `f${MAX_INCLUDE_DEPTH}.s:1:10: error: cannot include 'f${MAX_INCLUDE_DEPTH + 1}.s': includes nested more than ${MAX_INCLUDE_DEPTH} deep (included from f${MAX_INCLUDE_DEPTH - 1}.s:1)`,
    ]);
    delete files[`f${MAX_INCLUDE_DEPTH}.s`];
    files[`f${MAX_INCLUDE_DEPTH}.s`] = '  nop';
    expect(assemble('.include "f1.s"', { fileName: 'main.s', readInclude: filesReader(files) }).ok).toBe(true);
  });

  it('stops cycles: a file, or the program itself, may not be included again', () => {
    expect(errorsOf('.include "a.s"', { readInclude: filesReader({ 'a.s': '.include "b.s"', 'b.s': '.include "a.s"' }) })).toEqual([
      "b.s:1:10: error: cannot include 'a.s': already included (at main.s:1); a file may be included only once (included from a.s:1)",
    ]);
    expect(errorsOf('.include "main.s"', { readInclude: filesReader({ 'main.s': 'nop' }) })).toEqual([
      "main.s:1:10: error: cannot include 'main.s': already included (the program itself); a file may be included only once",
    ]);
  });

  it('rejects a second include of the same file', () => {
    expect(errorsOf('.include "a.s"\n.include "a.s"', { readInclude: filesReader({ 'a.s': 'x: nop' }) })).toEqual([
      "main.s:2:10: error: cannot include 'a.s': already included (at main.s:1); a file may be included only once",
    ]);
  });

  it('rejects a malformed directive', () => {
    const readInclude = filesReader({ 'a.s': 'nop' });
    expect(errorsOf('.include', { readInclude })).toEqual([
      "main.s:1:9: error: expected one file name in double quotes after '.include', found end of line",
    ]);
    expect(errorsOf('.include a.s', { readInclude })).toEqual([
      "main.s:1:10: error: expected one file name in double quotes after '.include', found 'a.s'",
    ]);
    expect(errorsOf('.include "a.s", 1', { readInclude })).toEqual([
      "main.s:1:15: error: expected one file name in double quotes after '.include', found ','",
    ]);
    expect(errorsOf('here: .include "a.s"', { readInclude })).toEqual([
      "main.s:1:7: error: expected '.include' alone at the start of its line, found it after a label",
    ]);
  });
});
