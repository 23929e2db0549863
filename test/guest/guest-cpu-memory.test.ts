// The interpreter's loads, stores, atomics and stack (docs/guest-isa.md §1, §3, §11): little-endian
// byte order, zero and sign extension, unaligned plain accesses, the atomic instructions' results and
// their alignment fault, push/pop/call/ret/pushf/popf, and accesses outside RAM, which leave the loop
// through GuestCpuEnvironment.accessOutsideRam.

import { describe, expect, it } from 'vitest';
import { GuestExit } from '../../src/guest/guest-cpu.js';
import { GuestFaultKind } from '../../src/guest/guest-fault.js';
import { FLAGS_INTERRUPT_ENABLE } from '../../src/guest/instruction-set.js';
import { createGuest, HARNESS_RAM_BYTES, HARNESS_STACK_TOP, unsignedRegister } from '../support/guest-cpu-harness.js';

const DATA = `
        .align 8
data:   .word 0x11223344, 0x55667788, 0x99aabbcc, 0xddeeff00
word:   .word 0`;

function bytesAt(ramBuffer: SharedArrayBuffer, address: number, count: number): number[] {
  return Array.from(new Uint8Array(ramBuffer, address, count));
}

describe('GuestCpu loads and stores', () => {
  it('st32 writes little-endian and ld32 reads it back, aligned and unaligned', () => {
    const { cpu, ramBuffer, symbol } = createGuest(`
        li r1, 0xa1b2c3d4
        st32 [word], r1
        ld32 r2, [word]
        st32 [data + 1], r1
        ld32 r3, [data + 1]
        ld32 r4, [data + 3]
        hlt
${DATA}`);

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(bytesAt(ramBuffer, symbol('word'), 4)).toEqual([0xd4, 0xc3, 0xb2, 0xa1]);
    expect(bytesAt(ramBuffer, symbol('data'), 8)).toEqual([0x44, 0xd4, 0xc3, 0xb2, 0xa1, 0x77, 0x66, 0x55]);
    expect(unsignedRegister(cpu, 2)).toBe(0xa1b2c3d4);
    expect(unsignedRegister(cpu, 3)).toBe(0xa1b2c3d4);
    expect(unsignedRegister(cpu, 4)).toBe(0x6677a1b2);
  });

  it('ld8 and ld16 zero-extend, ld8s and ld16s sign-extend, at any alignment', () => {
    const { cpu } = createGuest(`
        li r1, 0x80017f80
        st32 [word], r1
        ld8 r2, [word]
        ld8s r3, [word]
        ld8s r4, [word + 1]
        ld16 r5, [word + 2]
        ld16s r6, [word + 2]
        ld16s r7, [word + 1]
        ld16 r8, [word + 1]
        hlt
${DATA}`);

    cpu.run(100);

    expect(unsignedRegister(cpu, 2)).toBe(0x80);
    expect(unsignedRegister(cpu, 3)).toBe(0xffffff80);
    expect(unsignedRegister(cpu, 4)).toBe(0x7f);
    expect(unsignedRegister(cpu, 5)).toBe(0x8001);
    expect(unsignedRegister(cpu, 6)).toBe(0xffff8001);
    expect(unsignedRegister(cpu, 7)).toBe(0x017f);
    expect(unsignedRegister(cpu, 8)).toBe(0x017f);
  });

  it('st8 and st16 write only their low bytes, st16 across a word boundary included', () => {
    const { cpu, ramBuffer, symbol } = createGuest(`
        li r1, 0xcafebabe
        st8 [data + 1], r1
        st16 [data + 7], r1
        hlt
${DATA}`);

    cpu.run(100);

    expect(bytesAt(ramBuffer, symbol('data'), 12)).toEqual([0x44, 0xbe, 0x22, 0x11, 0x88, 0x77, 0x66, 0xbe, 0xba, 0xbb, 0xaa, 0x99]);
  });

  it('addresses are base register plus displacement, negative displacements included', () => {
    const { cpu } = createGuest(`
        li r1, data + 8
        ld32 r2, [r1 - 8]
        ld32 r3, [r1]
        ld32 r4, [r1 + 4]
        hlt
${DATA}`);

    cpu.run(100);

    expect(unsignedRegister(cpu, 2)).toBe(0x11223344);
    expect(unsignedRegister(cpu, 3)).toBe(0x99aabbcc);
    expect(unsignedRegister(cpu, 4)).toBe(0xddeeff00);
  });

  it('repeated aligned ld32/st32 in a loop see each other (the cached data window)', () => {
    const { cpu, symbol, ramBuffer } = createGuest(`
        li r1, 0
        li r2, 0
loop:   shl r3, r1, 2
        ld32 r4, [r3 + data]
        add r2, r2, r4
        st32 [r3 + data], r2
        add r1, r1, 1
        sltu r5, r1, 4
        bnez r5, loop
        hlt
${DATA}`);

    cpu.run(1000);

    const words = new Uint32Array(ramBuffer, symbol('data'), 4);
    const sums = [0x11223344, 0x11223344 + 0x55667788, 0x11223344 + 0x55667788 + 0x99aabbcc];
    sums.push(sums[2]! + 0xddeeff00);
    expect(Array.from(words)).toEqual(sums.map((sum) => sum >>> 0));
    expect(unsignedRegister(cpu, 2)).toBe(sums[3]! >>> 0);
  });
});

describe('GuestCpu atomics', () => {
  it('xchg stores rd and returns the old word', () => {
    const { cpu, symbol } = createGuest(`
        li r1, 3
        st32 [word], r1
        li r2, 7
        xchg r2, [word]
        hlt
${DATA}`);

    cpu.run(100);

    expect(cpu.registers[2]).toBe(3);
    expect(cpu.memory.read32(symbol('word'))).toBe(7);
  });

  it('cas stores rt only when the word equals rd, and returns the old word either way', () => {
    const { cpu, symbol } = createGuest(`
        li r1, 0
        li r2, 1
        cas r1, [word], r2
        li r3, 0
        li r4, 9
        cas r3, [word], r4
        hlt
${DATA}`);

    cpu.run(100);

    expect(cpu.registers[1]).toBe(0);
    expect(cpu.registers[3]).toBe(1);
    expect(cpu.memory.read32(symbol('word'))).toBe(1);
  });

  it('xadd adds rd to the word with 32-bit wraparound and returns the old word', () => {
    const { cpu, symbol } = createGuest(`
        li r1, 0x7fffffff
        st32 [word], r1
        li r2, 2
        xadd r2, [word]
        hlt
${DATA}`);

    cpu.run(100);

    expect(unsignedRegister(cpu, 2)).toBe(0x7fffffff);
    expect(cpu.memory.read32(symbol('word'))! >>> 0).toBe(0x80000001);
  });

  it.each(['xchg r2, [r5]', 'cas r2, [r5], r3', 'xadd r2, [r5]'])(
    '%s on an address that is not 4-byte aligned is a MisalignedAtomic fault and changes nothing',
    (instruction) => {
      const { cpu, program, symbol } = createGuest(`
        li r5, word + 2
        li r2, 5
        ${instruction}
        hlt
${DATA}`);

      const exit = cpu.run(100);

      expect(exit).toBe(GuestExit.Fault);
      expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.MisalignedAtomic, pc: program.origin + 16, address: symbol('word') + 2 });
      expect(cpu.registers[2]).toBe(5);
      expect(cpu.memory.read32(symbol('word'))).toBe(0);
    },
  );

  it('an atomic on an address outside RAM is a MisalignedAtomic fault, not an outside-RAM access', () => {
    const { cpu, environment } = createGuest(`
        li r2, 1
        xadd r2, [APIC_BASE + APIC_ID]
        hlt`);

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.Fault);
    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.MisalignedAtomic, address: 0xfee00020 });
    expect(environment.outsideRamAccesses).toEqual([]);
  });
});

describe('GuestCpu stack', () => {
  it('push stores below sp and pop reads back in last-in first-out order', () => {
    const { cpu } = createGuest(`
        li r1, 11
        li r2, 22
        push r1
        push r2
        mov r9, sp
        pop r3
        pop r4
        hlt`);

    cpu.run(100);

    expect(cpu.registers[9]).toBe(HARNESS_STACK_TOP - 8);
    expect(cpu.memory.read32(HARNESS_STACK_TOP - 4)).toBe(11);
    expect(cpu.memory.read32(HARNESS_STACK_TOP - 8)).toBe(22);
    expect([cpu.registers[3], cpu.registers[4]]).toEqual([22, 11]);
    expect(cpu.registers[15]).toBe(HARNESS_STACK_TOP);
  });

  it('push sp stores the value sp had before the push', () => {
    const { cpu } = createGuest(`
        push sp
        hlt`);

    cpu.run(100);

    expect(cpu.memory.read32(HARNESS_STACK_TOP - 4)).toBe(HARNESS_STACK_TOP);
  });

  it('call pushes the address of the next instruction and ret returns there', () => {
    const { cpu, symbol } = createGuest(`
        call sub
after:  li r2, 9
        hlt
sub:    mov r3, sp
        ld32 r4, [sp]
        ret`);

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(cpu.registers[3]).toBe(HARNESS_STACK_TOP - 4);
    expect(cpu.registers[4]).toBe(symbol('after'));
    expect(cpu.registers[2]).toBe(9);
    expect(cpu.registers[15]).toBe(HARNESS_STACK_TOP);
  });

  it('pushf pushes the flags word with IF in bit 9', () => {
    const { cpu } = createGuest(`
        pushf
        pop r1
        hlt`);
    cpu.flags = FLAGS_INTERRUPT_ENABLE;

    cpu.run(100);

    expect(cpu.registers[1]).toBe(0x200);
  });

  it('popf loads IF from bit 9, drops the undefined bits, and stops the slice for interrupt evaluation', () => {
    const { cpu, symbol } = createGuest(`
        li r1, 0xffffffff
        push r1
        popf
after:  pushf
        pop r2
        hlt`);

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.InterruptWindow);
    expect(cpu.pc).toBe(symbol('after'));
    expect(cpu.flags).toBe(FLAGS_INTERRUPT_ENABLE);
    expect(cpu.interruptsEnabled).toBe(true);
    expect(cpu.run(100)).toBe(GuestExit.Halt);
    expect(cpu.registers[2]).toBe(0x200);
  });

  it('popf of a word without bit 9 clears IF', () => {
    const { cpu } = createGuest(`
        li r1, 0xfffffdff
        push r1
        popf
        hlt`);
    cpu.flags = FLAGS_INTERRUPT_ENABLE;

    cpu.run(100);

    expect(cpu.interruptsEnabled).toBe(false);
  });

  it('a push with sp outside RAM is an AccessOutsideMemory fault naming the stack address', () => {
    const { cpu, program } = createGuest(`
        li sp, 0x40000
        push r1
        hlt`);

    expect(cpu.run(100)).toBe(GuestExit.Fault);

    expect(cpu.fault).toMatchObject({ kind: GuestFaultKind.AccessOutsideMemory, pc: program.origin + 8, address: 0x40000 - 4 });
    expect(cpu.registers[15]).toBe(0x40000);
  });
});

describe('GuestCpu accesses outside RAM', () => {
  it.each([
    ['ld32 r1, [APIC_BASE + APIC_ID]', 0xfee00020, 4, false],
    ['ld16 r1, [0x20000]', 0x20000, 2, false],
    ['ld8s r1, [0x20001]', 0x20001, 1, false],
    ['st32 [APIC_BASE + APIC_EOI], r2', 0xfee000b0, 4, true],
    ['st16 [0x30000], r2', 0x30000, 2, true],
    ['st8 [0x30003], r2', 0x30003, 1, true],
  ] as const)('%s goes to environment.accessOutsideRam(%i, width %i, isWrite %s)', (instruction, address, width, isWrite) => {
    const { cpu, environment, program } = createGuest(`
        li r2, 0x12345678
        ${instruction}
        hlt`);

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.Halt);
    expect(environment.outsideRamAccesses).toHaveLength(1);
    expect(environment.outsideRamAccesses[0]).toMatchObject({ address, width, isWrite, pc: program.origin + 8 });
  });

  it('a load outside RAM puts the environment value in rd (sign-extended for ld8s/ld16s)', () => {
    const { cpu, environment } = createGuest(`
        ld32 r1, [APIC_BASE + APIC_ID]
        ld16s r2, [APIC_BASE + APIC_ID]
        hlt`);
    environment.outsideRamReadValue = 0xff00ff80;

    cpu.run(100);

    expect(unsignedRegister(cpu, 1)).toBe(0xff00ff80);
    expect(unsignedRegister(cpu, 2)).toBe(0xffffff80);
  });

  it('st32 outside RAM passes the register value', () => {
    const { cpu, environment } = createGuest(`
        li r2, 0xfeedf00d
        st32 [APIC_BASE + APIC_ICR], r2
        hlt`);

    cpu.run(100);

    expect(environment.outsideRamAccesses[0]!.value >>> 0).toBe(0xfeedf00d);
  });

  it('an access straddling the end of RAM is not RAM: it goes to the environment whole', () => {
    const { cpu, environment, ramBuffer } = createGuest(`
        li r1, ${HARNESS_RAM_BYTES - 2}
        li r2, -1
        st32 [r1], r2
        ld32 r3, [r1]
        hlt`);

    cpu.run(100);

    expect(environment.outsideRamAccesses.map(({ address, width, isWrite }) => ({ address, width, isWrite }))).toEqual([
      { address: HARNESS_RAM_BYTES - 2, width: 4, isWrite: true },
      { address: HARNESS_RAM_BYTES - 2, width: 4, isWrite: false },
    ]);
    expect(bytesAt(ramBuffer, HARNESS_RAM_BYTES - 2, 2)).toEqual([0, 0]);
  });

  it('a fault the environment raises stops the slice at the access with rd unchanged', () => {
    const { cpu, environment, program } = createGuest(`
        li r1, 5
        ld32 r1, [0x20000]
        li r2, 1
        hlt`);
    environment.onOutsideRamAccess = (faulting, address) =>
      faulting.raiseFault(GuestFaultKind.AccessOutsideMemory, 'nothing mapped', address);

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.Fault);
    expect(cpu.fault).toMatchObject({
      kind: GuestFaultKind.AccessOutsideMemory,
      pc: program.origin + 8,
      address: 0x20000,
      instruction: 'ld32 r1, [0x20000]',
    });
    expect(cpu.pc).toBe(program.origin + 8);
    expect(cpu.registers[1]).toBe(5);
    expect(cpu.registers[2]).toBe(0);
  });

  it.each(['st32 [0x20000], r1', 'ld8 r1, [0x20000]', 'st16 [0x20000], r1'])(
    'a fault the environment raises in "%s" stops the slice at that instruction',
    (instruction) => {
      const { cpu, environment, program } = createGuest(`
        nop
        ${instruction}
        li r2, 1
        hlt`);
      environment.onOutsideRamAccess = (faulting, address) =>
        faulting.raiseFault(GuestFaultKind.AccessOutsideMemory, 'nothing mapped', address);

      expect(cpu.run(100)).toBe(GuestExit.Fault);

      expect(cpu.fault?.pc).toBe(program.origin + 8);
      expect(cpu.registers[2]).toBe(0);
      expect(cpu.instructionsRetired).toBe(1);
    },
  );
});
