// GuestCpu control flow, faults and system instructions (docs/guest-isa.md §3, §7, §9, §12), and the
// run loop's contract with the hypervisor (src/guest/guest-cpu.ts): why run() returns, where pc is
// then, and how many instructions it retired.

import { describe, expect, it } from 'vitest';
import { GuestExit } from '../../src/guest/guest-cpu.js';
import { GuestFaultKind } from '../../src/guest/guest-fault.js';
import { encodeInstruction, FLAGS_INTERRUPT_ENABLE, Opcode } from '../../src/guest/instruction-set.js';
import { assembleOrThrow, createGuest, HARNESS_RAM_BYTES, HARNESS_STACK_TOP, unsignedRegister } from '../support/guest-cpu-harness.js';

describe('GuestCpu jumps through a register', () => {
  it('jmp rs continues at the address in rs', () => {
    const { cpu } = createGuest(`
        li r1, target
        jmp r1
        li r2, 1
        hlt
target: li r2, 2
        hlt`);

    cpu.run(100);

    expect(cpu.registers[2]).toBe(2);
  });

  it('call rs pushes the return address and continues at the address in rs', () => {
    const { cpu, symbol } = createGuest(`
        li r1, sub
        call r1
after:  hlt
sub:    ld32 r3, [sp]
        ret`);

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(cpu.registers[3]).toBe(symbol('after'));
    expect(cpu.pc).toBe(symbol('after') + 8);
    expect(cpu.registers[15]).toBe(HARNESS_STACK_TOP);
  });

  it.each(['jmp r1', 'call r1'])('%s to an address that is not 8-byte aligned is a MisalignedInstruction fault', (instruction) => {
    const { cpu, program, symbol } = createGuest(`
        li r1, target + 4
        ${instruction}
        hlt
target: hlt`);

    expect(cpu.run(100)).toBe(GuestExit.Fault);

    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.MisalignedInstruction, pc: program.origin + 8, address: symbol('target') + 4 });
    expect(cpu.pc).toBe(program.origin + 8);
    expect(cpu.registers[15]).toBe(HARNESS_STACK_TOP);
  });

  it('ret to an address that is not 8-byte aligned is a MisalignedInstruction fault', () => {
    const { cpu, program } = createGuest(`
        li r1, 0x1004
        push r1
        ret`);

    expect(cpu.run(100)).toBe(GuestExit.Fault);

    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.MisalignedInstruction, pc: program.origin + 16, address: 0x1004 });
  });
});

describe('GuestCpu immediate branch targets', () => {
  // docs/guest-isa.md §12: "a jump ... to an address that is not a multiple of 8" is a guest fault. The
  // assembler refuses such targets, but a guest can still encode one by hand (.word, or code it writes).
  it.each([
    ['jmp', Opcode.Jmp],
    ['beq', Opcode.Beq],
    ['bnez', Opcode.Bnez],
  ] as const)('a hand-encoded %s to an address that is not 8-byte aligned is a MisalignedInstruction fault', (_name, opcode) => {
    const { cpu, program } = createGuest(`
        li r1, 1
        nop                     ; replaced by the hand-encoded branch
        nop
        hlt`);
    const branchPc = program.origin + 8;
    const target = program.origin + 20;
    const [word0, word1] = encodeInstruction(opcode, 1, 1, 0, target);
    cpu.memory.write32(branchPc, word0);
    cpu.memory.write32(branchPc + 4, word1);

    const exit = cpu.run(100);

    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.MisalignedInstruction, pc: branchPc, address: target });
    expect(exit).toBe(GuestExit.Fault);
  });
});

describe('GuestCpu fetch faults', () => {
  it('jumping past the RAM window is a FetchOutsideMemory fault at the target, with no instruction text', () => {
    const { cpu } = createGuest(`
        li r1, 1
        jmp 0x20000`);

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.Fault);
    expect(cpu.fault?.kind).toBe(GuestFaultKind.FetchOutsideMemory);
    expect(cpu.fault?.pc).toBe(0x20000);
    expect(cpu.fault?.address).toBe(0x20000);
    expect(cpu.fault?.instruction).toBeUndefined();
    expect(cpu.pc).toBe(0x20000);
    expect(cpu.instructionsRetired).toBe(2);
  });

  it('running off the last instruction of RAM faults at the first address past it', () => {
    const program = assembleOrThrow('nop', HARNESS_RAM_BYTES - 8);
    const { cpu } = createGuest('hlt');
    cpu.memory.load(program.origin, program.bytes);
    cpu.pc = HARNESS_RAM_BYTES - 8;

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.Fault);
    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.FetchOutsideMemory, pc: HARNESS_RAM_BYTES, address: HARNESS_RAM_BYTES });
    expect(cpu.instructionsRetired).toBe(1);
  });

  it('executing zero-filled memory is an InvalidOpcode fault that names the instruction', () => {
    const { cpu } = createGuest(`
        jmp 0x4000`);

    expect(cpu.run(100)).toBe(GuestExit.Fault);

    expect(cpu.fault?.kind).toBe(GuestFaultKind.InvalidOpcode);
    expect(cpu.fault?.pc).toBe(0x4000);
    expect(cpu.fault?.detail).toBe('invalid opcode 0x0');
    expect(cpu.fault?.instruction).toContain('invalid opcode 0x0');
    expect(cpu.fault?.instruction).toMatch(/^\.word 0x0, 0x0/);
  });

  it('an unassigned opcode byte is an InvalidOpcode fault naming that opcode', () => {
    const { cpu, program } = createGuest(`
        nop
        .word 0x000000ff, 0x12345678`);

    expect(cpu.run(100)).toBe(GuestExit.Fault);

    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.InvalidOpcode, pc: program.origin + 8, detail: 'invalid opcode 0xff' });
    expect(cpu.fault?.instruction).toBe('.word 0xff, 0x12345678 ; invalid opcode 0xff');
  });

  it('new RAM windows installed between slices replace the cached code and data windows', () => {
    // Two copies of "ld32 r1, [0x100]; li r2, copy; hlt", each with its own word at 0x100, behind
    // guest-physical 0 in turn.
    const { cpu } = createGuest('hlt');
    const half = HARNESS_RAM_BYTES / 2;
    for (const [hostOffset, copy] of [
      [0, 1],
      [half, 2],
    ] as const) {
      cpu.setRamWindows([{ guestPhysicalAddress: 0, size: half, hostOffset }]);
      const program = assembleOrThrow(`ld32 r1, [0x100]\n li r2, ${copy}\n hlt`);
      cpu.memory.load(program.origin, program.bytes);
      cpu.memory.write32(0x100, copy * 100);
    }
    cpu.setRamWindows([{ guestPhysicalAddress: 0, size: half, hostOffset: 0 }]);
    cpu.pc = 0x1000;
    cpu.run(100);
    const first = [cpu.registers[1], cpu.registers[2]];

    cpu.setRamWindows([{ guestPhysicalAddress: 0, size: half, hostOffset: half }]);
    cpu.pc = 0x1000;
    cpu.run(100);

    expect(first).toEqual([100, 1]);
    expect([cpu.registers[1], cpu.registers[2]]).toEqual([200, 2]);
  });
});

describe('GuestCpu hypercalls, MSRs, time and the vector table', () => {
  it('hypercall passes its number and r1..r3, with pc at the hypercall, and the result is seen next', () => {
    const { cpu, environment, program } = createGuest(`
        li r1, 11
        li r2, 22
        li r3, -33
        hypercall 5
        mov r4, r0
        hlt`);
    environment.onHypercall = (caller) => {
      caller.registers[0] = 77;
    };

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(environment.hypercalls).toEqual([{ number: 5, pc: program.origin + 24, r1: 11, r2: 22, r3: -33 }]);
    expect(cpu.registers[4]).toBe(77);
  });

  it('rdmsr puts the low word in rd and the high word (cpu.msrHighWord) in rd+1', () => {
    const { cpu, environment } = createGuest(`
        li r2, 0x10
        rdmsr r4, r2 + 0x0b
        rdmsr r7, 0x10
        hlt`);
    environment.msrValues.set(0x1b, [0xfee00900, 0x12]);
    environment.msrValues.set(0x10, [0x89abcdef, 0x01234567]);

    cpu.run(100);

    expect(environment.msrAccesses).toEqual([
      { index: 0x1b, isWrite: false },
      { index: 0x10, isWrite: false },
    ]);
    expect([unsignedRegister(cpu, 4), unsignedRegister(cpu, 5)]).toEqual([0xfee00900, 0x12]);
    expect([unsignedRegister(cpu, 7), unsignedRegister(cpu, 8)]).toEqual([0x89abcdef, 0x01234567]);
  });

  it('wrmsr passes rt as the low word and rt+1 as the high word', () => {
    const { cpu, environment } = createGuest(`
        li r6, 0xaaaa
        li r7, 0xbbbb
        wrmsr 0x10, r6
        hlt`);

    cpu.run(100);

    expect(environment.msrAccesses).toEqual([{ index: 0x10, isWrite: true, low: 0xaaaa, high: 0xbbbb }]);
  });

  it('an MSR fault raised by the environment stops at the rdmsr and leaves rd and rd+1 unchanged', () => {
    const { cpu, environment, program } = createGuest(`
        li r4, 1
        li r5, 2
        rdmsr r4, 0x999
        hlt`);
    environment.msrValues.set(0x999, [7, 8]);
    environment.onMsrAccess = (caller, index) => caller.raiseFault(GuestFaultKind.UnknownMsr, `MSR ${index}`);

    expect(cpu.run(100)).toBe(GuestExit.Fault);

    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.UnknownMsr, pc: program.origin + 16, instruction: 'rdmsr r4, 0x999' });
    expect([cpu.registers[4], cpu.registers[5]]).toEqual([1, 2]);
  });

  it('rdtsc returns the low 32 bits of the environment clock', () => {
    const { cpu, environment } = createGuest(`
        rdtsc r1
        hlt`);
    environment.clock = 3 * 2 ** 32 + 0x80000005;

    cpu.run(100);

    expect(unsignedRegister(cpu, 1)).toBe(0x80000005);
  });

  it('livt sets the vector table base from an expression or register plus displacement', () => {
    const { cpu } = createGuest(`
        livt 0x3000
        mov r9, r0
        hlt
        li r1, 0x5000
        livt r1 + 8
        hlt`);

    cpu.run(100);
    const fromConstant = cpu.interruptVectorTableBase;
    cpu.run(100);

    expect(fromConstant).toBe(0x3000);
    expect(cpu.interruptVectorTableBase).toBe(0x5008);
  });
});

describe('GuestCpu interrupt delivery and iret', () => {
  const HANDLER_PROGRAM = `
        .equ VECTOR, 0x30
main:   li r1, 1
        li r1, 2
        hlt
handler:
        li r5, 0x55
        iret
        .align 4
ivt:    .zero 4 * VECTOR
        .word handler
        .zero 4 * (255 - VECTOR)`;

  it('deliverInterrupt pushes flags then the return pc, clears IF and jumps to the IVT entry', () => {
    const { cpu, symbol } = createGuest(HANDLER_PROGRAM);
    cpu.interruptVectorTableBase = symbol('ivt');
    cpu.flags = FLAGS_INTERRUPT_ENABLE;
    cpu.pc = symbol('main') + 8;

    const delivered = cpu.deliverInterrupt(0x30);

    expect(delivered).toBe(true);
    expect(cpu.pc).toBe(symbol('handler'));
    expect(cpu.interruptsEnabled).toBe(false);
    expect(cpu.registers[15]).toBe(HARNESS_STACK_TOP - 8);
    expect(cpu.memory.read32(HARNESS_STACK_TOP - 8)).toBe(symbol('main') + 8);
    expect(cpu.memory.read32(HARNESS_STACK_TOP - 4)).toBe(FLAGS_INTERRUPT_ENABLE);
  });

  it('iret pops pc and flags, restoring IF, and returns InterruptWindow at the interrupted instruction', () => {
    const { cpu, symbol } = createGuest(HANDLER_PROGRAM);
    cpu.interruptVectorTableBase = symbol('ivt');
    cpu.flags = FLAGS_INTERRUPT_ENABLE;
    cpu.pc = symbol('main') + 8;
    cpu.deliverInterrupt(0x30);
    cpu.nmiBlocked = true;

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.InterruptWindow);
    expect(cpu.registers[5]).toBe(0x55);
    expect(cpu.pc).toBe(symbol('main') + 8);
    expect(cpu.interruptsEnabled).toBe(true);
    expect(cpu.nmiBlocked).toBe(false);
    expect(cpu.registers[15]).toBe(HARNESS_STACK_TOP);
    expect(cpu.registers[1]).toBe(0);
  });

  it('iret restores IF = 0 when the saved flags had it clear', () => {
    const { cpu, symbol } = createGuest(`
        li r1, 0
        push r1
        li r1, done
        push r1
        iret
done:   hlt`);
    cpu.flags = FLAGS_INTERRUPT_ENABLE;

    expect(cpu.run(100)).toBe(GuestExit.InterruptWindow);

    expect(cpu.pc).toBe(symbol('done'));
    expect(cpu.interruptsEnabled).toBe(false);
  });

  it('deliverInterrupt on a zero IVT entry is a MissingInterruptHandler fault and pushes nothing', () => {
    const { cpu, symbol } = createGuest(HANDLER_PROGRAM);
    cpu.interruptVectorTableBase = symbol('ivt');
    cpu.flags = FLAGS_INTERRUPT_ENABLE;

    const delivered = cpu.deliverInterrupt(0x31);

    expect(delivered).toBe(false);
    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.MissingInterruptHandler, address: symbol('ivt') + 4 * 0x31 });
    expect(cpu.registers[15]).toBe(HARNESS_STACK_TOP);
    expect(cpu.interruptsEnabled).toBe(true);
  });

  it('deliverInterrupt to a handler address that is not 8-byte aligned is a MisalignedInstruction fault', () => {
    const { cpu, symbol } = createGuest(HANDLER_PROGRAM);
    cpu.interruptVectorTableBase = symbol('ivt');
    cpu.memory.write32(symbol('ivt') + 4 * 0x30, symbol('handler') + 4);

    expect(cpu.deliverInterrupt(0x30)).toBe(false);

    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.MisalignedInstruction, address: symbol('handler') + 4 });
  });
});
