import { describe, expect, it } from 'vitest';
import { assemble, formatDiagnostic, MAX_DIAGNOSTICS, MAX_IMAGE_BYTES } from '../../src/guest/assembler.js';

function errorsOf(source: string): string[] {
  const result = assemble(source, { fileName: 'test.s' });
  if (result.ok) expect.fail(`expected errors, but it assembled:\n${source}`);
  return result.errors.map(formatDiagnostic);
}

const CASES: ReadonlyArray<readonly [string, string, string]> = [
  ['unknown mnemonic', '  mvo r1, r2', "test.s:1:3: error: unknown mnemonic 'mvo': expected an instruction, a directive or a label"],
  ['too few operands', 'add r1, r2', "test.s:1:1: error: expected 3 operands (rd, rs, rt|imm) after 'add', found 2"],
  ['too many operands', 'push r1, r2', "test.s:1:10: error: expected 1 operand (rs) after 'push', found 2"],
  ['operands for none', 'nop r1', "test.s:1:5: error: expected no operands after 'nop', found 1"],
  ['malformed register', 'add 5x, r1, r2', "test.s:1:5: error: expected a register after 'add', found '5x'"],
  [
    'bad register r16',
    'add r1, r16, r2',
    "test.s:1:9: error: expected a register as operand 2 of 'add', found 'r16' (registers are r0..r15 and sp)",
  ],
  [
    'r16 as immediate',
    'add r1, r2, r16',
    "test.s:1:13: error: expected an expression as operand 3 of 'add', found 'r16' (registers are r0..r15 and sp)",
  ],
  ['register as immediate', 'li r1, r2', "test.s:1:8: error: expected an expression as operand 2 of 'li', found register 'r2'"],
  [
    'immediate out of range',
    'li r1, 4294967296',
    'test.s:1:8: error: immediate out of range: expected a value that fits in 32 bits, found 4294967296',
  ],
  [
    'hex immediate out of range',
    'add r1, r2, 0x1_0000',
    "test.s:1:13: error: expected a decimal, 0x hex or 0b binary number as operand 3 of 'add', found '0x1_0000'",
  ],
  ['byte out of range', '.byte 1, 256', "test.s:1:10: error: expected a value in -128..255 for '.byte', found 256"],
  ['negative half out of range', '.half -32769', "test.s:1:7: error: expected a value in -32768..65535 for '.half', found -32769"],
  [
    'undefined symbol',
    'jmp nowhere',
    "test.s:1:5: error: undefined symbol 'nowhere' (expected a label, an .equ constant or a predefined symbol)",
  ],
  ['symbol with the wrong case', 'li r1, apic_base', "test.s:1:8: error: undefined symbol 'apic_base' (did you mean 'APIC_BASE'?)"],
  ['duplicate label', 'loop: nop\nloop: nop', "test.s:2:1: error: duplicate symbol 'loop': already defined at line 1"],
  ['label that duplicates a constant', 'X = 1\nX: nop', "test.s:2:1: error: duplicate symbol 'X': already defined at line 1"],
  ['misaligned branch target', 'beqz r1, 0x1004', "test.s:1:10: error: expected an 8-byte-aligned target for 'beqz', found 0x1004"],
  [
    'misaligned label target',
    '.byte 1\ndata: .byte 2\njmp data',
    "test.s:3:5: error: expected an 8-byte-aligned target for 'jmp', found 0x1001",
  ],
  [
    '.org backwards',
    'nop\nnop\n.org 0x1008',
    "test.s:3:1: error: expected '.org' to move forward from 0x1010, found 0x1008 (.org may not move backwards)",
  ],
  ['unterminated string', '.ascii "abc', "test.s:1:8: error: unterminated string: expected a closing '\"' before the end of the line"],
  ['unknown escape', '.ascii "a\\qb"', "test.s:1:10: error: expected an escape \\n \\t \\r \\0 \\\\ \\\" or \\', found '\\q'"],
  ['redefining a predefined symbol', 'APIC_EOI = 4', "test.s:1:1: error: expected a new symbol name, found predefined symbol 'APIC_EOI'"],
  ['predefined symbol as a label', 'HC_DONE: nop', "test.s:1:1: error: expected a new symbol name, found predefined symbol 'HC_DONE'"],
  ['register name as a label', 'sp: nop', "test.s:1:1: error: expected a symbol name, found register name 'sp'"],
  [
    'rdmsr with r15',
    'rdmsr r15, MSR_IA32_TSC',
    "test.s:1:7: error: expected a register r0..r14 after 'rdmsr' ('rdmsr' uses the pair rN:rN+1), found 'r15'",
  ],
  [
    'wrmsr with sp',
    'wrmsr 0x10, sp',
    "test.s:1:13: error: expected a register r0..r14 as operand 2 of 'wrmsr' ('wrmsr' uses the pair rN:rN+1), found 'sp'",
  ],
  ['garbage after a register', 'mov r1, r2 r3', "test.s:1:12: error: expected ',' or end of line after operand 2 of 'mov', found 'r3'"],
  ['garbage after an expression', 'li r1, 5 6', "test.s:1:10: error: expected ',' or end of line after operand 2 of 'li', found '6'"],
  [
    'garbage after a memory operand',
    'ld32 r1, [r2] 4',
    "test.s:1:15: error: expected ',' or end of line after operand 2 of 'ld32', found '4'",
  ],
  ['missing ]', 'ld32 r1, [r2 + 4', "test.s:1:17: error: expected ']' to close the '[' at column 10, found end of line"],
  [
    'operator after the base register',
    'ld32 r1, [r2 * 4]',
    "test.s:1:14: error: expected '+', '-' or ']' after the base register, found '*'",
  ],
  ['register where memory is expected', 'st32 r1, r2', "test.s:1:6: error: expected a memory operand '[...]' after 'st32', found 'r1'"],
  ['empty operand', 'add r1,, r2', "test.s:1:8: error: expected a register as operand 2 of 'add', found ','"],
  ['missing operand after an operator', 'li r1, 1 +', "test.s:1:11: error: expected an expression after '+', found end of line"],
  ['unbalanced parenthesis', 'li r1, (1 + 2', "test.s:1:14: error: expected ')' to close the '(' at column 8, found end of line"],
  ['division by zero', 'li r1, 1 / 0', 'test.s:1:10: error: expected a non-zero divisor, found 0 (division by zero)'],
  ['shift too far', 'li r1, 1 << 32', 'test.s:1:10: error: expected a shift count of 0..31, found 32'],
  ['unexpected character', 'li r1, 1 @ 2', "test.s:1:10: error: expected an operand, an operator or a comment, found '@'"],
  ['# glued to a name', 'li r1, x#1', "test.s:1:9: error: expected a space before a '#' comment, found '#' glued to 'x'"],
  ['bad character literal', "li r1, 'ab'", "test.s:1:8: error: unterminated character literal: expected a closing \"'\", found 'b'"],
  ['non-ASCII string', '.ascii "é"', 'test.s:1:9: error: expected an ASCII character inside "...", found \'é\''],
  [
    'unknown directive',
    '.text',
    "test.s:1:1: error: unknown directive '.text': expected one of .org .align .equ .byte .half .word .zero .space .ascii .asciz .entry",
  ],
  ['.align not a power of two', '.align 3', "test.s:1:1: error: expected a power of two after '.align', found 3"],
  [
    '.zero of a later label',
    '.zero later\nlater:',
    "test.s:1:7: error: expected a value known in the first pass (symbols defined above this line), found 'later'",
  ],
  ['.equ without a value', '.equ X', "test.s:1:1: error: expected 2 operands after '.equ', found 1"],
  ['.equ with a number as name', '.equ 5, 1', "test.s:1:6: error: expected a symbol name after '.equ', found '5'"],
  ['.ascii with a number', '.ascii 5', "test.s:1:8: error: expected a string \"...\" after '.ascii', found '5'"],
  ['.byte without values', '.byte', "test.s:1:1: error: expected at least 1 operand after '.byte', found 0"],
  ['circular constants', 'A = B + 1\nB = A', "test.s:2:5: error: expected a value for 'A', found a circular definition"],
  ['misaligned entry', '.entry 0x1001', 'test.s:1:8: error: expected an 8-byte-aligned entry point, found 0x1001'],
  [
    'second default entry',
    '.entry a\n.entry a\na: nop',
    "test.s:2:1: error: expected one default '.entry', found a second (the first is 0x1000)",
  ],
  ['entry vCPU out of range', '.entry a, 512\na: nop', 'test.s:1:11: error: expected a vCPU index 0..511, found 512'],
  ['statement that starts with a number', '5: nop', "test.s:1:1: error: expected a label, an instruction or a directive, found '5'"],
  [
    'huge .org',
    '.org 0xFEE00000',
    'test.s:1:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0xfee00000',
  ],
];

describe('assemble: error messages', () => {
  it.each(CASES)('%s', (_name, source, expected) => {
    expect(errorsOf(source)).toEqual([expected]);
  });
});

describe('assemble: error recovery', () => {
  it('reports every bad line, in source order, and carries on after each', () => {
    const source = ['nop', 'add r1', 'jmp missing', 'li r1, 0x100000000', 'nop', 'mov r1'].join('\n');
    expect(errorsOf(source)).toEqual([
      "test.s:2:1: error: expected 3 operands (rd, rs, rt|imm) after 'add', found 1",
      "test.s:3:5: error: undefined symbol 'missing' (expected a label, an .equ constant or a predefined symbol)",
      'test.s:4:8: error: immediate out of range: expected a value that fits in 32 bits, found 0x100000000',
      "test.s:6:1: error: expected 2 operands (rd, rs) after 'mov', found 1",
    ]);
  });

  it('keeps the 8 bytes of a broken instruction, so later addresses do not move', () => {
    expect(errorsOf(['bogus r1', '.org 0x1004'].join('\n'))).toEqual([
      "test.s:1:1: error: unknown mnemonic 'bogus': expected an instruction, a directive or a label",
      "test.s:2:1: error: expected '.org' to move forward from 0x1008, found 0x1004 (.org may not move backwards)",
    ]);
  });

  it('still defines the labels of a line whose statement is broken', () => {
    expect(errorsOf(['here: add r1, r2', 'jmp here'].join('\n'))).toHaveLength(1);
  });

  it('reports a broken constant once, at its definition', () => {
    expect(errorsOf(['X = nothing', 'li r1, X', 'li r2, X'].join('\n'))).toEqual([
      "test.s:1:5: error: undefined symbol 'nothing' (expected a label, an .equ constant or a predefined symbol)",
    ]);
  });

  it('reports every bad value of a data list', () => {
    expect(errorsOf('.byte 300, 1, -200')).toEqual([
      "test.s:1:7: error: expected a value in -128..255 for '.byte', found 300",
      "test.s:1:15: error: expected a value in -128..255 for '.byte', found -200",
    ]);
  });

  it(`stops after ${MAX_DIAGNOSTICS} errors`, () => {
    const source = Array.from({ length: 80 }, () => 'bogus').join('\n');
    const errors = errorsOf(source);
    expect(errors).toHaveLength(MAX_DIAGNOSTICS);
    expect(errors.at(-1)).toBe(
      `test.s:${MAX_DIAGNOSTICS}:1: error: unknown mnemonic 'bogus': expected an instruction, a directive or a label`,
    );
  });

  it('returns diagnostics with 1-based line and column and the file name', () => {
    const result = assemble('\n\n   add r1, r2, 5x', { fileName: 'prog.s' });
    expect(result).toEqual({
      ok: false,
      errors: [
        {
          fileName: 'prog.s',
          line: 3,
          column: 16,
          message: "expected a decimal, 0x hex or 0b binary number as operand 3 of 'add', found '5x'",
        },
      ],
    });
  });
  it('prints each diagnostic as file:line:col: error: through String() and template literals', () => {
    const result = assemble('nop\n  frob r1', { fileName: 'prog.s' });
    if (result.ok) expect.fail('expected an error');
    const [diagnostic] = result.errors;
    const expected = "prog.s:2:3: error: unknown mnemonic 'frob': expected an instruction, a directive or a label";
    expect(result.errors.map(String)).toEqual([expected]);
    expect(`${diagnostic!}`).toBe(expected);
    // JSON keeps the fields (toString is not data).
    expect(JSON.parse(JSON.stringify(diagnostic))).toEqual({
      fileName: 'prog.s',
      line: 2,
      column: 3,
      message: "unknown mnemonic 'frob': expected an instruction, a directive or a label",
    });
  });

  it('names the included file and where it was included, through String()', () => {
    const result = assemble('nop\n.include "common.s"', { fileName: 'main.s', readInclude: () => 'nop\n  frob' });
    if (result.ok) expect.fail('expected an error');
    expect(result.errors.map(String)).toEqual([
      "common.s:2:3: error: unknown mnemonic 'frob': expected an instruction, a directive or a label (included from main.s:2)",
    ]);
  });
});

describe('assemble: pathological input', () => {
  it('reports nesting too deep for the stack instead of throwing', () => {
    const deep = `li r1, ${'('.repeat(100_000)}1${')'.repeat(100_000)}`;
    expect(errorsOf(deep)).toEqual([
      'test.s:1:1: error: expected expressions and constants nested less deeply, found nesting that exhausts the stack',
    ]);
    const long = `li r1, 1${' + 1'.repeat(100_000)}`;
    expect(errorsOf(long)).toHaveLength(1);
    const chain = Array.from({ length: 5000 }, (_, index) => `C${index} = C${index + 1} + 1`).concat('C5000 = 0');
    expect(errorsOf(chain.join('\n'))[0]).toBe(
      "test.s:1000:8: error: expected constants defined through at most 1000 others, found a deeper chain at 'C1000'",
    );
  });

  it('does not allocate a huge image for a huge .zero', () => {
    expect(errorsOf('.zero 0xFFFFFFFF')).toEqual([
      'test.s:1:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x100000fff',
    ]);
  });

  // The image may end exactly 16 MiB past the origin; whatever would be placed beyond is a diagnostic
  // on its own line, never an item outside the image that pass 2 then writes out of bounds.
  it.each([
    [
      'an instruction after .org to the limit',
      '.org 0x1001000\nnop',
      'test.s:2:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001008',
    ],
    [
      'an instruction after .zero to the limit',
      '.zero 0x1000000\n  li r1, 1',
      'test.s:2:3: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001008',
    ],
    [
      'an instruction after .space to the limit',
      '.space 0x1000000\nlabel: hlt',
      'test.s:2:8: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001008',
    ],
    // A line that fails to parse still reserves its 8 bytes, but its own mistake is what gets reported.
    [
      'a misspelt instruction after .space to the limit',
      '.space 0x1000000\nlabel: halt',
      "test.s:2:8: error: unknown mnemonic 'halt': expected an instruction, a directive or a label",
    ],
    [
      'an instruction after .align to the limit',
      '.align 0x1000000\n.zero 0x1000 - 1\nnop',
      'test.s:3:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001008',
    ],
    [
      'a byte past the limit',
      '.org 0x1001000\n.byte 1',
      'test.s:2:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001001',
    ],
    [
      'a string past the limit',
      '.org 0x1001000\n.asciz "x"',
      'test.s:2:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001002',
    ],
    [
      'a word straddling the limit',
      '.org 0x1000ffe\n.word 1',
      'test.s:2:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x1001002',
    ],
    [
      'a huge .align',
      '.align 0x80000000',
      'test.s:1:1: error: expected the image to stay within 16 MiB of the origin 0x1000, found it reaching 0x80000000',
    ],
  ])('reports %s as a diagnostic, not an internal error', (_name, source, message) => {
    expect(errorsOf(source)).toEqual([message]);
  });

  it('fills the image exactly up to the limit', () => {
    const result = assemble('.org 0x1000ff8\nnop', { fileName: 'test.s' });
    expect(result.ok && result.program.bytes.length).toBe(MAX_IMAGE_BYTES);
  });

  it('does not let an image near the top of the address space wrap past 4 GiB', () => {
    // Every address in the image, and the end where a final label lands, must be a 32-bit address.
    const result = assemble('nop\nnop\nend:', { fileName: 'test.s', origin: 0xfffffff0 });
    expect(result.ok ? 'assembled' : result.errors.map(formatDiagnostic)).toEqual([
      'test.s:2:1: error: expected the image to end below 0x100000000 (the top of the 32-bit address space), found it reaching 0x100000000',
    ]);
  });
});
