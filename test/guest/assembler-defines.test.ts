// AssemblerOptions.defines: host constants that override a program's `.equ` defaults.
import { describe, expect, it } from 'vitest';
import { AssemblerDefineError, assemble, formatDiagnostic, type ProgramImage } from '../../src/guest/assembler.js';

function assembleWith(source: string, defines: Record<string, number>): ProgramImage {
  const result = assemble(source, { fileName: 'defines.s', defines: new Map(Object.entries(defines)) });
  if (!result.ok) expect.fail(result.errors.map(formatDiagnostic).join('\n'));
  return result.program;
}

/** The immediate of the instruction at `label`. */
function immediateAt(program: ProgramImage, label: string): number {
  const address = program.symbols.get(label);
  if (address === undefined) expect.fail(`no label ${label}`);
  const view = new DataView(program.bytes.buffer, program.bytes.byteOffset, program.bytes.byteLength);
  return view.getUint32(address - program.origin + 4, true);
}

const PROGRAM = `
        .equ COUNT, 10
        .equ DOUBLE, COUNT * 2          ; derived constants see the override
here:   li r1, COUNT
there:  li r2, DOUBLE
        .zero COUNT                     ; pass-1 operands see it too
end:
`;

describe('assembler defines', () => {
  it('without defines the source .equ is the value', () => {
    const program = assembleWith(PROGRAM, {});
    expect(immediateAt(program, 'here')).toBe(10);
    expect(immediateAt(program, 'there')).toBe(20);
    expect(program.symbols.get('COUNT')).toBe(10);
  });

  it('a define overrides the source .equ, in pass 1 and pass 2', () => {
    const program = assembleWith(PROGRAM, { COUNT: 7 });
    expect(immediateAt(program, 'here')).toBe(7);
    expect(immediateAt(program, 'there')).toBe(14);
    expect(program.symbols.get('COUNT')).toBe(7);
    expect(program.symbols.get('end')! - program.symbols.get('there')!).toBe(8 + 7);
  });

  it('overrides the NAME = expr spelling as well', () => {
    const program = assembleWith('        SIZE = 3\nat:     li r1, SIZE\n', { SIZE: 0x40 });
    expect(immediateAt(program, 'at')).toBe(0x40);
  });

  it('a define the source never declares is still a symbol', () => {
    const program = assembleWith('at:     li r1, EXTRA + 1\n', { EXTRA: 41 });
    expect(immediateAt(program, 'at')).toBe(42);
    expect(program.symbols.get('EXTRA')).toBe(41);
  });

  it('takes negative values as 32-bit patterns', () => {
    const program = assembleWith('at:     li r1, VALUE\n', { VALUE: -1 });
    expect(immediateAt(program, 'at')).toBe(0xffffffff);
    expect(program.symbols.get('VALUE')).toBe(0xffffffff);
  });

  it('an overridden default is not evaluated (it may be broken without the define)', () => {
    const program = assembleWith('        .equ LIMIT, MISSING + 1\nat:     li r1, LIMIT\n', { LIMIT: 5 });
    expect(immediateAt(program, 'at')).toBe(5);
  });

  it('a second .equ of a defined name is still a duplicate', () => {
    const result = assemble('        .equ A, 1\n        .equ A, 2\n', { fileName: 'defines.s', defines: new Map([['A', 9]]) });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatDiagnostic(result.errors[0]!)).toMatch(/defines\.s:2:.*duplicate symbol 'A': already defined at line 1/);
  });

  it('a label may not take a defined name', () => {
    const result = assemble('A:      nop\n', { fileName: 'defines.s', defines: new Map([['A', 9]]) });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]!.message).toMatch(/duplicate symbol 'A': the host defines it/);
  });

  it('predefined symbols cannot be overridden', () => {
    expect(() => assemble('nop\n', { fileName: 'x.s', defines: new Map([['APIC_BASE', 0]]) })).toThrow(AssemblerDefineError);
    expect(() => assemble('nop\n', { fileName: 'x.s', defines: new Map([['HC_DONE', 3]]) })).toThrow(/predefined symbol/);
  });

  it('rejects names that are not symbols and values that are not 32-bit integers', () => {
    expect(() => assemble('nop\n', { fileName: 'x.s', defines: new Map([['r3', 1]]) })).toThrow(AssemblerDefineError);
    expect(() => assemble('nop\n', { fileName: 'x.s', defines: new Map([['1ABC', 1]]) })).toThrow(/not a symbol name/);
    expect(() => assemble('nop\n', { fileName: 'x.s', defines: new Map([['X', 1.5]]) })).toThrow(/integer/);
    expect(() => assemble('nop\n', { fileName: 'x.s', defines: new Map([['X', 2 ** 32]]) })).toThrow(/integer/);
  });
});
