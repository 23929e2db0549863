// The interpreter's ALU and conditional branches (docs/guest-isa.md §3), each operation in its register
// and its immediate form, with the 32-bit edge cases: wraparound, signed versus unsigned, shift counts
// of 32 and more (masked to 5 bits), and division by zero (a guest fault, not a host exception).

import { describe, expect, it } from 'vitest';
import { GuestExit } from '../../src/guest/guest-cpu.js';
import { GuestFaultKind } from '../../src/guest/guest-fault.js';
import { createGuest, unsignedRegister } from '../support/guest-cpu-harness.js';

const hex = (value: number): string => `0x${(value >>> 0).toString(16)}`;

/** Runs "op r3, r1, r2" and "op r4, r1, <b>" with r1 = a, r2 = b; returns [r3, r4] unsigned. */
function evaluate(mnemonic: string, a: number, b: number): [registerForm: number, immediateForm: number] {
  const { cpu } = createGuest(`
        li r1, ${hex(a)}
        li r2, ${hex(b)}
        ${mnemonic} r3, r1, r2
        ${mnemonic} r4, r1, ${hex(b)}
        hlt`);
  const exit = cpu.run(100);
  expect(exit, `${mnemonic} ${hex(a)}, ${hex(b)} ran to its hlt`).toBe(GuestExit.Halt);
  return [unsignedRegister(cpu, 3), unsignedRegister(cpu, 4)];
}

const lowProduct = (a: number, b: number): number => Number((BigInt(a >>> 0) * BigInt(b >>> 0)) & 0xffffffffn);

const ALU_CASES: ReadonlyArray<readonly [mnemonic: string, a: number, b: number, expected: number]> = [
  ['add', 2, 3, 5],
  ['add', 0x7fffffff, 1, 0x80000000],
  ['add', 0xffffffff, 2, 1],
  ['sub', 5, 3, 2],
  ['sub', 1, 2, 0xffffffff],
  ['sub', 0x80000000, 1, 0x7fffffff],
  ['and', 0xf0f0f0f0, 0xff00ff00, 0xf000f000],
  ['or', 0xf0f0f0f0, 0x0f000f00, 0xfff0fff0],
  ['xor', 0xff00ff00, 0x0ff00ff0, 0xf0f0f0f0],
  ['shl', 1, 31, 0x80000000],
  ['shl', 1, 32, 1],
  ['shl', 1, 33, 2],
  ['shl', 0x12345678, 0xffffffe4, 0x23456780],
  ['shr', 0x80000000, 4, 0x08000000],
  ['shr', 0x80000000, 32, 0x80000000],
  ['shr', 0x80000000, 35, 0x10000000],
  ['sar', 0x80000000, 4, 0xf8000000],
  ['sar', 0x80000000, 36, 0xf8000000],
  ['sar', 0x40000000, 4, 0x04000000],
  ['mul', 6, 7, 42],
  ['mul', 0x10000, 0x10000, 0],
  ['mul', 0xffffffff, 3, 0xfffffffd],
  ['mul', 123456789, 987654321, lowProduct(123456789, 987654321)],
  ['mul', 0x89abcdef, 0xfedcba98, lowProduct(0x89abcdef, 0xfedcba98)],
  ['divu', 7, 2, 3],
  ['divu', 0xffffffff, 2, 0x7fffffff],
  ['divu', 0x80000000, 0xffffffff, 0],
  ['divu', 0xffffffff, 0xffffffff, 1],
  ['remu', 7, 3, 1],
  ['remu', 0xffffffff, 10, 5],
  ['remu', 0x80000000, 0x7fffffff, 1],
  ['slt', 0xffffffff, 1, 1],
  ['slt', 1, 0xffffffff, 0],
  ['slt', 4, 4, 0],
  ['sltu', 0xffffffff, 1, 0],
  ['sltu', 1, 0xffffffff, 1],
  ['sltu', 4, 4, 0],
  ['seq', 0xffffffff, 0xffffffff, 1],
  ['seq', 5, 6, 0],
  ['sne', 5, 6, 1],
  ['sne', 0x80000000, 0x80000000, 0],
];

describe('GuestCpu ALU', () => {
  it.each(ALU_CASES)('%s %i, %i gives %i in the register and the immediate form', (mnemonic, a, b, expected) => {
    const [registerForm, immediateForm] = evaluate(mnemonic, a, b);
    expect(registerForm).toBe(expected >>> 0);
    expect(immediateForm).toBe(expected >>> 0);
  });

  it('mov copies a register and li loads a full 32-bit constant', () => {
    const { cpu } = createGuest(`
        li r1, 0xdeadbeef
        mov r2, r1
        mov r3, sp
        hlt`);

    cpu.run(100);

    expect(unsignedRegister(cpu, 1)).toBe(0xdeadbeef);
    expect(unsignedRegister(cpu, 2)).toBe(0xdeadbeef);
    expect(unsignedRegister(cpu, 3)).toBe(0x8000);
  });

  it('an operation may name its destination as a source', () => {
    const { cpu } = createGuest(`
        li r1, 5
        add r1, r1, r1
        mul r1, r1, 3
        hlt`);

    cpu.run(100);

    expect(cpu.registers[1]).toBe(30);
  });

  it.each([
    ['divu r3, r1, r2', 'register'],
    ['remu r3, r1, r2', 'register'],
    ['divu r3, r1, 0', 'immediate'],
    ['remu r3, r1, 0', 'immediate'],
  ])('%s with a zero %s divisor is a DivideByZero fault at the division, leaving rd unchanged', (instruction) => {
    const { cpu, program } = createGuest(`
        li r1, 100
        li r2, 0
        li r3, 77
        ${instruction}
        li r5, 1
        hlt`);
    const divisionPc = program.origin + 3 * 8;

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.Fault);
    expect(cpu.fault?.kind).toBe(GuestFaultKind.DivideByZero);
    expect(cpu.fault?.pc).toBe(divisionPc);
    expect(cpu.fault?.instruction).toMatch(/^(divu|remu) r3, r1, /);
    expect(cpu.pc).toBe(divisionPc);
    expect(cpu.registers[3]).toBe(77);
    expect(cpu.registers[5]).toBe(0);
  });
});

const BRANCH_CASES: ReadonlyArray<readonly [branch: string, a: number, b: number, taken: boolean]> = [
  ['beq r1, r2', 5, 5, true],
  ['beq r1, r2', 5, 6, false],
  ['bne r1, r2', 5, 6, true],
  ['bne r1, r2', 5, 5, false],
  ['blt r1, r2', 0xffffffff, 1, true],
  ['blt r1, r2', 1, 0xffffffff, false],
  ['blt r1, r2', 3, 3, false],
  ['bge r1, r2', 3, 3, true],
  ['bge r1, r2', 1, 0xffffffff, true],
  ['bge r1, r2', 0x80000000, 0x7fffffff, false],
  ['bltu r1, r2', 1, 0xffffffff, true],
  ['bltu r1, r2', 0xffffffff, 1, false],
  ['bltu r1, r2', 3, 3, false],
  ['bgeu r1, r2', 3, 3, true],
  ['bgeu r1, r2', 0xffffffff, 1, true],
  ['bgeu r1, r2', 0x7fffffff, 0x80000000, false],
  ['beqz r1', 0, 9, true],
  ['beqz r1', 1, 0, false],
  ['bnez r1', 0x80000000, 0, true],
  ['bnez r1', 0, 1, false],
];

describe('GuestCpu conditional branches', () => {
  it.each(BRANCH_CASES)('%s with r1 = %i, r2 = %i: taken = %s', (branch, a, b, taken) => {
    const { cpu, symbol } = createGuest(`
        li r1, ${hex(a)}
        li r2, ${hex(b)}
        ${branch}, target
        li r3, 1
        hlt
target: li r3, 2
        hlt`);

    cpu.run(100);

    expect(cpu.registers[3]).toBe(taken ? 2 : 1);
    expect(cpu.pc).toBe(taken ? symbol('target') + 16 : symbol('target'));
  });
});
