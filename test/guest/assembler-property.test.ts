import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assemble, formatDiagnostic, MAX_IMAGE_BYTES } from '../../src/guest/assembler.js';
import {
  disassemble,
  encodeInstruction,
  INSTRUCTIONS,
  OperandForm,
  ZERO_REGISTER,
  type InstructionDefinition,
} from '../../src/guest/instruction-set.js';

type Words = [number, number];

const register = fc.integer({ min: 0, max: 15 });
/** rdmsr/wrmsr use rN:rN+1, so r15 cannot be one. */
const pairRegister = fc.integer({ min: 0, max: 14 });
/** A memory or index base: a register or the hidden zero register ("[expr]"). */
const base = fc.integer({ min: 0, max: ZERO_REGISTER });
const immediate = fc.integer({ min: -0x80000000, max: 0x7fffffff });
/** Branch targets are 8-byte-aligned absolute addresses anywhere in the 32-bit space. */
const target = fc.integer({ min: 0, max: 0x1fffffff }).map((slot) => (slot * 8) | 0);

/** Every encoding the assembler can produce for `definition`, with unused fields zero as it leaves them. */
function encodingsOf(definition: InstructionDefinition): fc.Arbitrary<Words> {
  const { opcode } = definition;
  const encode = (a: number, b: number, c: number, value: number): Words => encodeInstruction(opcode, a, b, c, value);
  switch (definition.form) {
    case OperandForm.None:
      return fc.constant(encode(0, 0, 0, 0));
    case OperandForm.RegReg:
      return fc.tuple(register, register).map(([a, b]) => encode(a, b, 0, 0));
    case OperandForm.RegImm:
      return fc.tuple(register, immediate).map(([a, value]) => encode(a, 0, 0, value));
    case OperandForm.RegRegReg: {
      const registers = fc.tuple(register, register, register).map(([a, b, c]) => encode(a, b, c, 0));
      const { immediateOpcode } = definition;
      if (immediateOpcode === undefined) return registers;
      const withImmediate = fc
        .tuple(register, register, immediate)
        .map(([a, b, value]) => encodeInstruction(immediateOpcode, a, b, 0, value));
      return fc.oneof(registers, withImmediate);
    }
    case OperandForm.RegRegImm:
      return fc.tuple(register, register, immediate).map(([a, b, value]) => encode(a, b, 0, value));
    case OperandForm.BranchCompare:
      return fc.tuple(register, register, target).map(([a, b, value]) => encode(a, b, 0, value));
    case OperandForm.BranchZero:
      return fc.tuple(register, target).map(([a, value]) => encode(a, 0, 0, value));
    case OperandForm.Target: {
      const direct = target.map((value) => encode(0, 0, 0, value));
      const { registerOpcode } = definition;
      if (registerOpcode === undefined) return direct;
      return fc.oneof(
        direct,
        register.map((a) => encodeInstruction(registerOpcode, a, 0, 0, 0)),
      );
    }
    case OperandForm.Reg:
    case OperandForm.RegDestination:
      return register.map((a) => encode(a, 0, 0, 0));
    case OperandForm.RegMem:
    case OperandForm.MemReg:
      return fc.tuple(register, base, immediate).map(([a, b, value]) => encode(a, b, 0, value));
    case OperandForm.RegMemReg:
      return fc.tuple(register, base, register, immediate).map(([a, b, c, value]) => encode(a, b, c, value));
    case OperandForm.RegIndex:
    case OperandForm.IndexReg:
      return fc.tuple(pairRegister, base, immediate).map(([a, b, value]) => encode(a, b, 0, value));
    case OperandForm.Index:
      return fc.tuple(base, immediate).map(([b, value]) => encode(0, b, 0, value));
    case OperandForm.Imm:
      return immediate.map((value) => encode(0, 0, 0, value));
  }
}

const validInstruction = fc.constantFrom(...INSTRUCTIONS).chain(encodingsOf);

function wordsOf(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, index) => view.getInt32(index * 4, true));
}

describe('assemble: properties', () => {
  it('reassembles the disassembly of any valid instruction to the same words', () => {
    fc.assert(
      fc.property(fc.array(validInstruction, { minLength: 1, maxLength: 8 }), (instructions) => {
        const source = instructions.map(([word0, word1]) => disassemble(word0, word1)).join('\n');
        const result = assemble(source, { fileName: 'roundtrip.s' });
        if (!result.ok) expect.fail(`${source}\n${result.errors.map(formatDiagnostic).join('\n')}`);
        expect(wordsOf(result.program.bytes)).toEqual(instructions.flat());
      }),
      { numRuns: 2000 },
    );
  });

  const fragments = fc.constantFrom(
    'add',
    'li',
    'ld32',
    'st32',
    'cas',
    'rdmsr',
    'livt',
    'jmp',
    '.org',
    '.align',
    '.byte',
    '.ascii',
    '.equ',
    '.entry',
    'r1',
    'r15',
    'sp',
    'r16',
    'x',
    'x:',
    'APIC_BASE',
    '0',
    '8',
    '0x1000',
    '0xFFFFFFFF',
    '99999999999',
    "'a'",
    '"s"',
    '"',
    "'",
    ',',
    '[',
    ']',
    '(',
    ')',
    '+',
    '-',
    '*',
    '/',
    '%',
    '<<',
    '>>',
    '~',
    '=',
    ';',
    '#',
    '//',
    '\\',
    '@',
    ' ',
    '\t',
  );
  const line = fc.array(fragments, { maxLength: 8 }).map((parts) => parts.join(' '));

  it('never throws for arbitrary input: every mistake is a diagnostic', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(line, fc.string({ maxLength: 30 })), { maxLength: 12 }), (lines) => {
        const result = assemble(lines.join('\n'), { fileName: 'fuzz.s' });
        if (!result.ok) {
          for (const error of result.errors) {
            expect(error.line).toBeGreaterThanOrEqual(1);
            expect(error.column).toBeGreaterThanOrEqual(1);
            expect(error.message).not.toBe('');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  // Directives that move the location, with sizes at and around the image-size limit (16 MiB past the
  // origin) and the top of the 32-bit address space, then anything that emits: whatever the mix, the
  // result is an image within both bounds or diagnostics, never an exception out of assemble().
  const origin = fc.oneof(
    fc.constantFrom(0, 0x1000, 0xff000000, 0xfffff000, 0xfffffff8),
    fc.integer({ min: 0, max: 0x1fffffff }).map((slot) => slot * 8),
  );
  const nearLimit = fc.oneof(
    fc.integer({ min: 0, max: 32 }),
    fc.integer({ min: MAX_IMAGE_BYTES - 32, max: MAX_IMAGE_BYTES + 32 }),
    fc.integer({ min: 0, max: 0xffffffff }),
  );
  const hexOf = (value: number): string => `0x${(value >>> 0).toString(16)}`;
  const statement = (base: number): fc.Arbitrary<string> =>
    fc.oneof(
      nearLimit.map((offset) => `.org ${hexOf(base + offset)}`),
      nearLimit.map((offset) => `.org ${hexOf(base + offset)} - 8`),
      nearLimit.map((count) => `.zero ${hexOf(count)}`),
      nearLimit.map((count) => `.space ${hexOf(count)} / 2`),
      fc.integer({ min: 0, max: 31 }).map((power) => `.align ${hexOf(2 ** power)}`),
      fc.constantFrom('nop', 'li r1, 1', 'jmp here', 'halt', '.byte 1, 2, 3', '.half 7', '.word here', '.asciz "abc"', '.entry here'),
    );
  it('never throws for any mix of layout directives near the size limits', () => {
    fc.assert(
      fc.property(
        origin.chain((base) => fc.tuple(fc.constant(base), fc.array(statement(base), { minLength: 1, maxLength: 6 }))),
        ([base, statements]) => {
          const source = ['here:', ...statements.map((text, index) => `l${index}: ${text}`)].join('\n');
          const result = assemble(source, { fileName: 'layout.s', origin: base });
          if (!result.ok) {
            expect(result.errors.length).toBeGreaterThan(0);
            return;
          }
          const { bytes, sourceMap } = result.program;
          expect(bytes.length).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
          expect(base + bytes.length).toBeLessThan(2 ** 32);
          for (const address of sourceMap.keys()) {
            expect(address).toBeGreaterThanOrEqual(base);
            expect(address + 8).toBeLessThanOrEqual(base + bytes.length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
