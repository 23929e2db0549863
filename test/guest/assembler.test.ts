import { describe, expect, it } from 'vitest';
import {
  assemble,
  AssemblerInputError,
  DEFAULT_ORIGIN,
  entryPointOf,
  formatDiagnostic,
  lineOf,
  type ProgramImage,
} from '../../src/guest/assembler.js';
import * as publicApi from '../../src/index.js';
import { encodeInstruction, Opcode, ZERO_REGISTER, type Opcode as OpcodeValue } from '../../src/guest/instruction-set.js';

function assembleOk(source: string, origin?: number): ProgramImage {
  const result = assemble(source, { fileName: 'test.s', ...(origin === undefined ? {} : { origin }) });
  if (!result.ok) expect.fail(result.errors.map(formatDiagnostic).join('\n'));
  return result.program;
}

/** The image as little-endian 32-bit words, two per instruction. */
function wordsOf(program: ProgramImage): number[] {
  const view = new DataView(program.bytes.buffer, program.bytes.byteOffset, program.bytes.byteLength);
  const words: number[] = [];
  for (let offset = 0; offset + 4 <= program.bytes.length; offset += 4) words.push(view.getInt32(offset, true));
  return words;
}

function instructionAt(program: ProgramImage, address: number): [number, number] {
  const index = (address - program.origin) / 4;
  const words = wordsOf(program);
  return [words[index] as number, words[index + 1] as number];
}

/** The unsigned immediate of "li r1, <expression>". */
function immediateOf(expression: string): number {
  const program = assembleOk(`li r1, ${expression}`);
  return instructionAt(program, program.origin)[1] >>> 0;
}

type Encoding = [opcode: OpcodeValue, a: number, b: number, c: number, immediate: number];

const Z = ZERO_REGISTER;
const ENCODINGS: ReadonlyArray<readonly [string, Encoding]> = [
  ['nop', [Opcode.Nop, 0, 0, 0, 0]],
  ['iret', [Opcode.Iret, 0, 0, 0, 0]],
  ['mov r1, sp', [Opcode.Mov, 1, 15, 0, 0]],
  ['li r2, 0xFEE00000', [Opcode.Li, 2, 0, 0, 0xfee00000]],
  ['li r2, -1', [Opcode.Li, 2, 0, 0, -1]],
  ['add r1, r2, r3', [Opcode.Add, 1, 2, 3, 0]],
  ['sub r1, r2, -4', [Opcode.SubImmediate, 1, 2, 0, -4]],
  ['sltu r14, r13, 0x7fffffff', [Opcode.SltuImmediate, 14, 13, 0, 0x7fffffff]],
  ['shr r1, r2, 31', [Opcode.ShrImmediate, 1, 2, 0, 31]],
  ['beq r1, r2, 0x2000', [Opcode.Beq, 1, 2, 0, 0x2000]],
  ['bgeu r15, r0, 0x1008', [Opcode.Bgeu, 15, 0, 0, 0x1008]],
  ['bnez r3, 0x1008', [Opcode.Bnez, 3, 0, 0, 0x1008]],
  ['jmp 0x1000', [Opcode.Jmp, 0, 0, 0, 0x1000]],
  ['jmp r9', [Opcode.JmpRegister, 9, 0, 0, 0]],
  ['call 0x3000', [Opcode.Call, 0, 0, 0, 0x3000]],
  ['call r5', [Opcode.CallRegister, 5, 0, 0, 0]],
  ['push r4', [Opcode.Push, 4, 0, 0, 0]],
  ['pop r4', [Opcode.Pop, 4, 0, 0, 0]],
  ['rdtsc r7', [Opcode.Rdtsc, 7, 0, 0, 0]],
  ['ld32 r1, [r2]', [Opcode.Load32, 1, 2, 0, 0]],
  ['ld8 r1, [r2 + 8]', [Opcode.Load8, 1, 2, 0, 8]],
  ['ld16s r1, [r2 - 8]', [Opcode.Load16Signed, 1, 2, 0, -8]],
  ['ld8s r1, [r2 - 4 + 2]', [Opcode.Load8Signed, 1, 2, 0, -2]],
  ['ld16 r1, [0x2000]', [Opcode.Load16, 1, Z, 0, 0x2000]],
  ['st8 [sp + 4], r3', [Opcode.Store8, 3, 15, 0, 4]],
  ['st16 [r1], r3', [Opcode.Store16, 3, 1, 0, 0]],
  ['st32 [APIC_BASE + APIC_EOI], r0', [Opcode.Store32, 0, Z, 0, 0xfee000b0]],
  ['xchg r1, [r2]', [Opcode.Exchange, 1, 2, 0, 0]],
  ['xadd r1, [0x2004]', [Opcode.FetchAdd, 1, Z, 0, 0x2004]],
  ['cas r1, [r2 + 4], r3', [Opcode.CompareExchange, 1, 2, 3, 4]],
  ['cas r1, [0x2000], r3', [Opcode.CompareExchange, 1, Z, 3, 0x2000]],
  ['rdmsr r2, 0x1b', [Opcode.Rdmsr, 2, Z, 0, 0x1b]],
  ['rdmsr r2, r3', [Opcode.Rdmsr, 2, 3, 0, 0]],
  ['rdmsr r14, r3 + 1', [Opcode.Rdmsr, 14, 3, 0, 1]],
  ['wrmsr MSR_IA32_TSC, r4', [Opcode.Wrmsr, 4, Z, 0, 0x10]],
  ['wrmsr r5 - 1, r4', [Opcode.Wrmsr, 4, 5, 0, -1]],
  ['livt 0x3000', [Opcode.Livt, 0, Z, 0, 0x3000]],
  ['livt r6', [Opcode.Livt, 0, 6, 0, 0]],
  ['livt r6 + 0x100', [Opcode.Livt, 0, 6, 0, 0x100]],
  ['hypercall HC_ABORT', [Opcode.Hypercall, 0, 0, 0, 5]],
  ['ADD R1, R2, SP', [Opcode.Add, 1, 2, 15, 0]],
  ['Ld32 R1, [Sp+4]', [Opcode.Load32, 1, 15, 0, 4]],
];

describe('assemble: instruction encodings', () => {
  it.each(ENCODINGS)('%s', (source, [opcode, a, b, c, immediate]) => {
    const program = assembleOk(source);
    expect(wordsOf(program)).toEqual(encodeInstruction(opcode, a, b, c, immediate));
  });

  it('writes the opcode, fields and immediate little-endian, at the default origin', () => {
    const program = assembleOk('cas r1, [r2 + 0x1234], r3');
    expect(program.origin).toBe(DEFAULT_ORIGIN);
    expect([...program.bytes]).toEqual([Opcode.CompareExchange, 1, 2, 3, 0x34, 0x12, 0, 0]);
  });
});

describe('assemble: labels', () => {
  it('resolves labels used before and after their definition', () => {
    const program = assembleOk(['start: jmp forward', 'back:  nop', 'forward:', '  bnez r1, back', '  beq r1, r2, start'].join('\n'));
    expect(program.symbols.get('start')).toBe(0x1000);
    expect(program.symbols.get('back')).toBe(0x1008);
    expect(program.symbols.get('forward')).toBe(0x1010);
    expect(instructionAt(program, 0x1000)).toEqual(encodeInstruction(Opcode.Jmp, 0, 0, 0, 0x1010));
    expect(instructionAt(program, 0x1010)).toEqual(encodeInstruction(Opcode.Bnez, 1, 0, 0, 0x1008));
    expect(instructionAt(program, 0x1018)).toEqual(encodeInstruction(Opcode.Beq, 1, 2, 0, 0x1000));
  });

  it('names the next instruction at its 8-byte-aligned address, even after data', () => {
    const program = assembleOk(['.byte 1, 2, 3', 'code:', '  nop', 'data: .byte 4'].join('\n'));
    expect(program.symbols.get('code')).toBe(0x1008);
    expect(program.symbols.get('data')).toBe(0x1010);
    expect([...program.bytes]).toEqual([1, 2, 3, 0, 0, 0, 0, 0, Opcode.Nop, 0, 0, 0, 0, 0, 0, 0, 4]);
  });

  it('accepts several labels on one line, dotted names, and labels that are case-sensitive', () => {
    const program = assembleOk(['a: .b: nop', 'A: nop', '.loop.1: jmp .loop.1'].join('\n'));
    expect(program.symbols.get('a')).toBe(0x1000);
    expect(program.symbols.get('.b')).toBe(0x1000);
    expect(program.symbols.get('A')).toBe(0x1008);
    expect(instructionAt(program, 0x1010)[1]).toBe(0x1010);
  });

  it('lets a label at the end of the source name the end of the image', () => {
    const program = assembleOk(['nop', '.byte 7', 'end:'].join('\n'));
    expect(program.symbols.get('end')).toBe(0x1009);
  });
});

describe('assemble: expressions', () => {
  it.each([
    ['42', 42],
    ['0x2A', 42],
    ['0b101010', 42],
    ["'a'", 97],
    ["'\\n'", 10],
    ["'#'", 35],
    ["';'", 59],
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['1 << 2 + 1', 8],
    ['0xF0 | 0x0F & 0x3C', 0xfc],
    ['6 ^ 3 & 1', 7],
    ['1 | 2 ^ 3', 1],
    ['2 * 3 - 4 / 2 % 3', 4],
    ['10 / 3', 3],
    ['10 % 3', 1],
    ['-1', 0xffffffff],
    ['~0', 0xffffffff],
    ['~-1', 0],
    ['--5', 5],
    ['+5', 5],
    ['-2 * 3', 0xfffffffa],
    ['1 - 2', 0xffffffff],
    ['0xFFFFFFFF + 1', 0],
    ['-0x80000000', 0x80000000],
    ['0x80000000 >> 4', 0x08000000],
    ['0xFFFFFFFF / 2', 0x7fffffff],
    ['1 << 31', 0x80000000],
    ['APIC_BASE + APIC_ICR2', 0xfee00310],
    ['APIC_BASE >> 12', 0xfee00],
    ['(APIC_DEST_LOGICAL | APIC_DM_NMI) & ~APIC_DEST_LOGICAL', 0x400],
  ])('%s = %d', (expression, expected) => {
    expect(immediateOf(expression)).toBe(expected);
  });

  it('evaluates .equ constants lazily, so they may refer to labels further down', () => {
    const program = assembleOk(['SIZE = end - start', '.equ TWICE, SIZE * 2', 'li r1, TWICE', 'start: .zero 12', 'end:'].join('\n'));
    expect(program.symbols.get('SIZE')).toBe(12);
    expect(instructionAt(program, 0x1000)[1]).toBe(24);
  });
});

describe('assemble: directives', () => {
  it('.org moves forward and fills with zeros', () => {
    const program = assembleOk(['.byte 0xAA', '.org 0x1004', '.byte 0xBB', '.org 0x1010', 'here: nop'].join('\n'));
    expect([...program.bytes.subarray(0, 6)]).toEqual([0xaa, 0, 0, 0, 0xbb, 0]);
    expect(program.symbols.get('here')).toBe(0x1010);
  });

  it('.org at the current location is allowed, and a label before .org names what follows it', () => {
    const program = assembleOk(['nop', 'table:', '.org 0x1008', '.org 0x1020', '.word 5'].join('\n'));
    expect(program.symbols.get('table')).toBe(0x1020);
    expect(program.bytes.length).toBe(0x24);
  });

  it('.align pads with zeros to a power of two', () => {
    const program = assembleOk(['.byte 1', '.align 4', 'a: .byte 2', '.align 64', 'b: .byte 3', '.align 1', 'c: .byte 4'].join('\n'));
    expect(program.symbols.get('a')).toBe(0x1004);
    expect(program.symbols.get('b')).toBe(0x1040);
    expect(program.symbols.get('c')).toBe(0x1041);
  });

  it('.equ and NAME = define constants that appear in the symbol table', () => {
    const program = assembleOk(['.equ VECTOR, 0xA5', 'MASK = VECTOR & 0xF0', '.EQU Upper, 1', 'li r1, MASK'].join('\n'));
    expect(program.symbols.get('VECTOR')).toBe(0xa5);
    expect(program.symbols.get('MASK')).toBe(0xa0);
    expect(program.symbols.get('Upper')).toBe(1);
    expect(program.symbols.has('APIC_BASE')).toBe(false);
  });

  it('.byte, .half and .word write little-endian values, negative ones in two’s complement', () => {
    const program = assembleOk(['.byte 1, -1, 255, -128', '.half 0x1234, -2', '.word 0xDEADBEEF, -1, label', 'label:'].join('\n'));
    expect([...program.bytes]).toEqual([
      1, 0xff, 0xff, 0x80, 0x34, 0x12, 0xfe, 0xff, 0xef, 0xbe, 0xad, 0xde, 0xff, 0xff, 0xff, 0xff, 0x14, 0x10, 0, 0,
    ]);
    expect(program.dataSize).toBe(20);
  });

  it('.zero and .space reserve zeroed bytes', () => {
    const program = assembleOk(['.byte 9', '.zero 3', '.space 2 * 2', '.byte 8'].join('\n'));
    expect([...program.bytes]).toEqual([9, 0, 0, 0, 0, 0, 0, 0, 8]);
    expect(program.dataSize).toBe(9);
  });

  it('.ascii and .asciz decode escapes; .asciz terminates each string', () => {
    const program = assembleOk(['.ascii "a;b#c//d"', '.asciz "\\n\\t\\\\\\"\\0\\r\\\'", "x"'].join('\n'));
    const text = 'a;b#c//d';
    expect([...program.bytes]).toEqual([...text].map((c) => c.charCodeAt(0)).concat([10, 9, 92, 34, 0, 13, 39, 0, 120, 0]));
  });

  it('aligns an instruction after data to 8 bytes with zero padding', () => {
    const program = assembleOk(['.ascii "abc"', 'nop'].join('\n'));
    expect([...program.bytes]).toEqual([97, 98, 99, 0, 0, 0, 0, 0, Opcode.Nop, 0, 0, 0, 0, 0, 0, 0]);
    expect(program.instructionCount).toBe(1);
  });

  it('honours the origin option', () => {
    const program = assembleOk(['start: jmp start'].join('\n'), 0x8000);
    expect(program.origin).toBe(0x8000);
    expect(wordsOf(program)).toEqual(encodeInstruction(Opcode.Jmp, 0, 0, 0, 0x8000));
  });

  it('rejects an impossible origin as host misuse, by throwing', () => {
    expect(() => assemble('nop', { fileName: 'x.s', origin: 0x1004 })).toThrow(RangeError);
    expect(() => assemble('nop', { fileName: 'x.s', origin: -8 })).toThrow(RangeError);
  });
});

describe('assemble: API misuse is a typed error that says what was expected', () => {
  /** Calls assemble() the way plain JavaScript could, past the types. */
  const assembleUntyped = (source: unknown, options?: unknown): unknown =>
    (assemble as (source: unknown, options?: unknown) => unknown)(source, options);

  it.each([
    ['a number as the source', 42, { fileName: 'x.s' }, 'assemble: source must be a string (the program text), got a number (42)'],
    [
      'a Buffer as the source',
      Buffer.from('nop'),
      { fileName: 'x.s' },
      "assemble: source must be a string (the program text), got a Uint8Array: decode it first (readFileSync(path, 'utf8'))",
    ],
    ['no source', undefined, { fileName: 'x.s' }, 'assemble: source must be a string (the program text), got undefined'],
    ['no options', 'nop', undefined, 'assemble: options must be an object with at least fileName, got undefined'],
    ['a string as the options', 'nop', 'x.s', "assemble: options must be an object with at least fileName, got a string ('x.s')"],
    ['no fileName', 'nop', {}, 'assemble: options.fileName must be a non-empty string (used in diagnostics), got undefined'],
    [
      'an empty fileName',
      'nop',
      { fileName: '' },
      "assemble: options.fileName must be a non-empty string (used in diagnostics), got a string ('')",
    ],
    [
      'a misspelt option',
      'nop',
      { fileName: 'x.s', orign: 0x2000 },
      "assemble: unknown option 'orign'; the options are fileName, origin, defines, readInclude",
    ],
    ['a string origin', 'nop', { fileName: 'x.s', origin: '0x2000' }, "assemble: options.origin must be a number, got a string ('0x2000')"],
    [
      'defines as a plain object',
      'nop',
      { fileName: 'x.s', defines: { VCPUS: 4 } },
      'assemble: options.defines must be a Map from symbol name to number, got an object (new Map(Object.entries(...)) makes one)',
    ],
    [
      'a define with a number name',
      'nop',
      { fileName: 'x.s', defines: new Map([[4, 4]]) },
      'assemble: options.defines must be a Map from symbol name to number, got the name 4 (a number)',
    ],
    [
      'a define with a string value',
      'nop',
      { fileName: 'x.s', defines: new Map([['VCPUS', '4']]) },
      "assemble: options.defines must be a Map from symbol name to number, got 'VCPUS' => a string ('4')",
    ],
    [
      'readInclude that is not a function',
      'nop',
      { fileName: 'x.s', readInclude: { 'a.s': 'nop' } },
      'assemble: options.readInclude must be a function (name, fromFile) => string | undefined, got an object',
    ],
  ])('%s', (_name, source, options, message) => {
    let thrown: unknown;
    try {
      assembleUntyped(source, options);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AssemblerInputError);
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toBe(message);
    expect((thrown as Error).name).toBe('AssemblerInputError');
  });

  it('an include reader that returns something other than text', () => {
    const readInclude = (): unknown => Buffer.from('nop');
    expect(() => assembleUntyped('.include "a.s"', { fileName: 'x.s', readInclude })).toThrow(
      new AssemblerInputError(
        "assemble: options.readInclude('a.s', 'x.s') must return a string or undefined, got a Uint8Array: decode it first (readFileSync(path, 'utf8'))",
      ),
    );
  });

  it('is exported by the package, next to assemble', () => {
    expect(publicApi.AssemblerInputError).toBe(AssemblerInputError);
  });
});

describe('assemble: entry points', () => {
  it('records a default entry and per-vCPU entries', () => {
    const program = assembleOk(['.entry main', '.entry other, 1', '.entry other + 8, 3', 'main: nop', 'other: nop', 'nop'].join('\n'));
    expect(program.entryPoints.default).toBe(0x1000);
    expect([...program.entryPoints.perVcpu]).toEqual([
      [1, 0x1008],
      [3, 0x1010],
    ]);
    expect(entryPointOf(program, 0)).toBe(0x1000);
    expect(entryPointOf(program, 1)).toBe(0x1008);
  });

  it('starts at the first instruction when there is no .entry at all', () => {
    const program = assembleOk(['.word 1, 2, 3', 'first: nop'].join('\n'));
    expect(program.entryPoints.default).toBe(0x1010);
    expect(program.entryPoints.perVcpu.size).toBe(0);
  });

  it('has no default when only per-vCPU entries are given', () => {
    const program = assembleOk(['.entry a, 0', 'a: nop'].join('\n'));
    expect(program.entryPoints.default).toBeUndefined();
    expect(entryPointOf(program, 1)).toBeUndefined();
  });
});

describe('assemble: comments and white space', () => {
  it('ignores ;, // and # comments, blank lines, tabs and CRLF line ends', () => {
    const source = [
      '; a comment',
      '# another',
      '// and another',
      '',
      '\tnop ; trailing',
      'li r1, 8 / 2 // divide',
      'li r2, 3 # three',
      'x:#label comment',
    ].join('\r\n');
    const program = assembleOk(source);
    expect(program.instructionCount).toBe(3);
    expect(instructionAt(program, 0x1008)[1]).toBe(4);
    expect(program.symbols.get('x')).toBe(0x1018);
  });
});

describe('assemble: source map', () => {
  it('maps every instruction address to its line, mnemonic column and text', () => {
    const program = assembleOk(['; header', 'start:  li r1, 1   ; one', '        .byte 5', '\tadd r1, r1, 1'].join('\n'));
    expect([...program.sourceMap]).toEqual([
      [0x1000, { line: 2, column: 9, text: 'start:  li r1, 1   ; one' }],
      [0x1010, { line: 4, column: 2, text: 'add r1, r1, 1' }],
    ]);
    expect(lineOf(program, 0x1014)?.line).toBe(4);
    expect(lineOf(program, 0x1008)).toBeUndefined();
    expect(lineOf(program, 0x2000)).toBeUndefined();
  });
});
