// The run loop's contract (src/guest/guest-cpu.ts): run(budget) executes at most `budget`
// instructions and says why it stopped. hlt, the sti shadow, the doorbell polled once per taken branch
// (not per instruction), pause-loop exits, and exits the environment asks for from inside a callback.

import { describe, expect, it } from 'vitest';
import { GuestExit, PAUSE_LOOP_WINDOW } from '../../src/guest/guest-cpu.js';
import { FLAGS_INTERRUPT_ENABLE } from '../../src/guest/instruction-set.js';
import { createGuest } from '../support/guest-cpu-harness.js';

describe('GuestCpu hlt and the sti shadow', () => {
  it('hlt returns Halt with pc past the hlt', () => {
    const { cpu, symbol } = createGuest(`
        nop
        hlt
after:  nop`);

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(cpu.pc).toBe(symbol('after'));
    expect(cpu.instructionsRetired).toBe(2);
  });

  it('sti with IF clear lets exactly one more instruction run, then returns InterruptWindow', () => {
    const { cpu, symbol } = createGuest(`
        sti
        li r1, 1
next:   li r2, 2
        hlt`);

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.InterruptWindow);
    expect(cpu.pc).toBe(symbol('next'));
    expect([cpu.registers[1], cpu.registers[2]]).toEqual([1, 0]);
    expect(cpu.interruptsEnabled).toBe(true);
    expect(cpu.instructionsRetired).toBe(2);
  });

  it("the instruction in the sti shadow may be hlt: sti; hlt halts (the wake-up is the halt path's job)", () => {
    const { cpu, symbol } = createGuest(`
        sti
        hlt
after:  nop`);

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(cpu.pc).toBe(symbol('after'));
    expect(cpu.interruptsEnabled).toBe(true);
  });

  it("the sti shadow ends at a taken branch's target", () => {
    const { cpu, symbol } = createGuest(`
        sti
        jmp target
        nop
target: li r1, 1
        hlt`);

    expect(cpu.run(100)).toBe(GuestExit.InterruptWindow);

    expect(cpu.pc).toBe(symbol('target'));
    expect(cpu.registers[1]).toBe(0);
  });

  it('sti with IF already set does not stop the slice', () => {
    const { cpu } = createGuest(`
        sti
        li r1, 1
        li r2, 2
        hlt`);
    cpu.flags = FLAGS_INTERRUPT_ENABLE;

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(cpu.registers[2]).toBe(2);
  });

  it('cli clears IF without stopping the slice', () => {
    const { cpu } = createGuest(`
        cli
        li r1, 1
        hlt`);
    cpu.flags = FLAGS_INTERRUPT_ENABLE;

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(cpu.interruptsEnabled).toBe(false);
    expect(cpu.registers[1]).toBe(1);
  });
});

describe('GuestCpu doorbell polling', () => {
  const STRAIGHT_THEN_JUMP = `
        li r1, 1
        li r2, 2
        li r3, 3
        jmp target
        li r9, 9
target: li r4, 4
        hlt`;

  it("a changed doorbell stops the slice at the next taken branch's target, not before the branch", () => {
    const { cpu, symbol, ringDoorbell } = createGuest(STRAIGHT_THEN_JUMP);
    ringDoorbell();

    const exit = cpu.run(100);

    expect(exit).toBe(GuestExit.InterruptWindow);
    expect(cpu.pc).toBe(symbol('target'));
    expect([cpu.registers[1], cpu.registers[2], cpu.registers[3]]).toEqual([1, 2, 3]);
    expect(cpu.registers[4]).toBe(0);
    expect(cpu.instructionsRetired).toBe(4);
  });

  it('a doorbell equal to lastDoorbell does not stop the slice', () => {
    const { cpu, ringDoorbell, doorbells } = createGuest(STRAIGHT_THEN_JUMP);
    ringDoorbell();
    cpu.lastDoorbell = Atomics.load(doorbells, 1);

    expect(cpu.run(100)).toBe(GuestExit.Halt);

    expect(cpu.registers[4]).toBe(4);
  });

  it("another vCPU's doorbell word is not this vCPU's", () => {
    const { cpu, doorbells } = createGuest(STRAIGHT_THEN_JUMP);
    Atomics.add(doorbells, 0, 1);
    Atomics.add(doorbells, 2, 1);

    expect(cpu.run(100)).toBe(GuestExit.Halt);
  });

  it('a not-taken branch does not poll the doorbell', () => {
    const { cpu, symbol, ringDoorbell } = createGuest(`
        li r1, 1
        beqz r1, elsewhere
        li r2, 2
        jmp target
elsewhere:
        hlt
target: hlt`);
    ringDoorbell();

    expect(cpu.run(100)).toBe(GuestExit.InterruptWindow);

    expect(cpu.registers[2]).toBe(2);
    expect(cpu.pc).toBe(symbol('target'));
  });

  it.each([
    ['beq r0, r0, target', ''],
    ['bnez r1, target', ''],
    ['jmp r5', ''],
    ['call target', ''],
    ['call r5', ''],
    ['ret', 'push r5'],
  ])('a taken "%s" polls the doorbell', (branch, setup) => {
    const { cpu, symbol, ringDoorbell } = createGuest(`
        li r1, 1
        li r5, target
        ${setup}
        ${branch}
        hlt
target: hlt`);
    ringDoorbell();

    expect(cpu.run(100)).toBe(GuestExit.InterruptWindow);

    expect(cpu.pc).toBe(symbol('target'));
  });

  it('a doorbell rung during the slice (here from a hypercall) is seen at the next taken branch', () => {
    const { cpu, environment, symbol, ringDoorbell } = createGuest(`
        jmp first
first:  hypercall 4
        li r1, 1
        jmp second
second: li r2, 2
        hlt`);
    environment.onHypercall = () => ringDoorbell();

    expect(cpu.run(100)).toBe(GuestExit.InterruptWindow);

    expect(cpu.pc).toBe(symbol('second'));
    expect([cpu.registers[1], cpu.registers[2]]).toEqual([1, 0]);
  });
});

describe('GuestCpu instruction budget', () => {
  const LOOP = `
loop:   add r1, r1, 1
        jmp loop`;

  it('run(n) executes exactly n instructions of a loop and returns SliceEnd', () => {
    const { cpu, symbol } = createGuest(LOOP);

    const exit = cpu.run(7);

    expect(exit).toBe(GuestExit.SliceEnd);
    expect(cpu.registers[1]).toBe(4);
    expect(cpu.pc).toBe(symbol('loop') + 8);
    expect(cpu.instructionsRetired).toBe(7);
  });

  it('instructionsRetired accumulates across slices and the next slice resumes where the last stopped', () => {
    const { cpu } = createGuest(LOOP);

    cpu.run(7);
    cpu.run(3);
    cpu.run(1000);

    expect(cpu.instructionsRetired).toBe(1010);
    expect(cpu.registers[1]).toBe(505);
  });

  it('run(1) executes one instruction', () => {
    const { cpu, program } = createGuest(LOOP);

    expect(cpu.run(1)).toBe(GuestExit.SliceEnd);

    expect(cpu.pc).toBe(program.origin + 8);
    expect(cpu.registers[1]).toBe(1);
    expect(cpu.instructionsRetired).toBe(1);
  });

  it.each([
    ['hlt', 'nop\n nop\n hlt', GuestExit.Halt, 3],
    ['a doorbell stop', 'nop\n jmp t\nt: nop', GuestExit.InterruptWindow, 2],
    ['iret', 'li r1, 0x1020\n push r0\n push r1\n iret\n nop', GuestExit.InterruptWindow, 4],
    ['a fault (the faulting instruction does not retire)', 'nop\n nop\n divu r1, r1, 0', GuestExit.Fault, 2],
    ['an environment exit', 'nop\n hypercall 0\n nop', GuestExit.EnvironmentExit, 2],
  ] as const)('an early exit on %s counts exactly the instructions that ran', (_case, source, expectedExit, retired) => {
    const { cpu, environment, ringDoorbell } = createGuest(source);
    environment.onHypercall = (caller) => caller.requestExit();
    if (expectedExit === GuestExit.InterruptWindow) ringDoorbell();

    expect(cpu.run(1000)).toBe(expectedExit);

    expect(cpu.instructionsRetired).toBe(retired);
  });
});

describe('GuestCpu pause-loop exits', () => {
  const SPIN = `
spin:   pause
        jmp spin`;

  it(`PAUSE_LOOP_WINDOW (${PAUSE_LOOP_WINDOW}) pauses in one slice return PauseLoop after the last pause`, () => {
    const { cpu, symbol } = createGuest(SPIN);

    const exit = cpu.run(10 * PAUSE_LOOP_WINDOW);

    expect(exit).toBe(GuestExit.PauseLoop);
    expect(cpu.pc).toBe(symbol('spin') + 8);
    expect(cpu.instructionsRetired).toBe(2 * PAUSE_LOOP_WINDOW - 1);
  });

  it('fewer pauses than the window in each slice never exit, because the count restarts each slice', () => {
    const { cpu } = createGuest(SPIN);
    const budget = 2 * (PAUSE_LOOP_WINDOW - 1);

    const exits = [cpu.run(budget), cpu.run(budget), cpu.run(budget)];

    expect(exits).toEqual([GuestExit.SliceEnd, GuestExit.SliceEnd, GuestExit.SliceEnd]);
  });

  it('a pause filter count of its own (VmConfig.pauseFilterCount) exits after that many pauses', () => {
    const { cpu, symbol } = createGuest(SPIN, { pauseFilterCount: 10 });

    expect(cpu.run(10 * PAUSE_LOOP_WINDOW)).toBe(GuestExit.PauseLoop);
    expect(cpu.pc).toBe(symbol('spin') + 8);
    expect(cpu.instructionsRetired).toBe(2 * 10 - 1);
  });
});

describe('GuestCpu exits requested by the environment', () => {
  const cases = [
    ['hypercall 1', 'hypercall'],
    ['ld32 r3, [APIC_BASE + APIC_ID]', 'outside'],
    ['st32 [APIC_BASE + APIC_EOI], r3', 'outside'],
    ['ld8 r3, [0x20000]', 'outside'],
    ['st16 [0x20000], r3', 'outside'],
    ['rdmsr r3, 0x1b', 'msr'],
    ['wrmsr 0x1b, r3', 'msr'],
  ] as const;

  function guestWithCallback(instruction: string, via: 'hypercall' | 'outside' | 'msr', request: 'exit' | 'evaluate') {
    const harness = createGuest(`
        li r1, 1
        ${instruction}
after:  li r2, 2
        jmp after`);
    const react = (cpu: typeof harness.cpu): void => (request === 'exit' ? cpu.requestExit() : cpu.requestInterruptEvaluation());
    if (via === 'hypercall') harness.environment.onHypercall = react;
    else if (via === 'outside') harness.environment.onOutsideRamAccess = react;
    else harness.environment.onMsrAccess = react;
    return harness;
  }

  it.each(cases)('requestExit() inside "%s" stops after it with EnvironmentExit', (instruction, via) => {
    const { cpu, symbol } = guestWithCallback(instruction, via, 'exit');

    expect(cpu.run(1000)).toBe(GuestExit.EnvironmentExit);

    expect(cpu.pc).toBe(symbol('after'));
    expect(cpu.registers[2]).toBe(0);
    expect(cpu.instructionsRetired).toBe(2);
  });

  it.each(cases)('requestInterruptEvaluation() inside "%s" stops after it with InterruptWindow', (instruction, via) => {
    const { cpu, symbol } = guestWithCallback(instruction, via, 'evaluate');

    expect(cpu.run(1000)).toBe(GuestExit.InterruptWindow);

    expect(cpu.pc).toBe(symbol('after'));
    expect(cpu.registers[2]).toBe(0);
    expect(cpu.instructionsRetired).toBe(2);
  });

  it('a request from one slice does not stop the next slice', () => {
    const { cpu } = guestWithCallback('hypercall 1', 'hypercall', 'exit');
    cpu.run(1000);

    const exit = cpu.run(50);

    expect(exit).toBe(GuestExit.SliceEnd);
    expect(cpu.instructionsRetired).toBe(52);
  });
});
