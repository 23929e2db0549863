// A GuestCpu on a small RAM pool with one RAM window at guest-physical 0, driven by a fake
// environment that records every call out of the interpreter (hypercalls, MSR accesses, accesses
// outside RAM) and lets a test answer or react to each one. The clock is a plain number the test sets.

import { assemble, formatDiagnostic, type ProgramImage } from '../../src/guest/assembler.js';
import { GuestCpu, type GuestCpuEnvironment } from '../../src/guest/guest-cpu.js';

export const HARNESS_RAM_BYTES = 0x10000;
export const HARNESS_STACK_TOP = 0x8000;
/** The doorbell word this vCPU polls, inside its own Int32Array (index 0 is someone else's). */
export const HARNESS_DOORBELL_INDEX = 1;

export interface RecordedHypercall {
  readonly number: number;
  readonly pc: number;
  readonly r1: number;
  readonly r2: number;
  readonly r3: number;
}

export interface RecordedOutsideRamAccess {
  readonly address: number;
  readonly width: 1 | 2 | 4;
  readonly isWrite: boolean;
  readonly value: number;
  readonly pc: number;
}

export interface RecordedMsrAccess {
  readonly index: number;
  readonly isWrite: boolean;
  readonly low?: number;
  readonly high?: number;
}

export class FakeGuestEnvironment implements GuestCpuEnvironment {
  clock = 0;
  /** What a read outside RAM returns. */
  outsideRamReadValue = 0;
  /** MSR index -> [low, high]; reading any other index returns 0:0. */
  readonly msrValues = new Map<number, readonly [number, number]>();
  readonly hypercalls: RecordedHypercall[] = [];
  readonly outsideRamAccesses: RecordedOutsideRamAccess[] = [];
  readonly msrAccesses: RecordedMsrAccess[] = [];
  /** Optional reactions, called after the access is recorded. */
  onHypercall: ((cpu: GuestCpu, number: number) => void) | undefined;
  onOutsideRamAccess: ((cpu: GuestCpu, address: number) => void) | undefined;
  onMsrAccess: ((cpu: GuestCpu, index: number) => void) | undefined;

  accessOutsideRam(cpu: GuestCpu, address: number, width: 1 | 2 | 4, isWrite: boolean, value: number): number {
    this.outsideRamAccesses.push({ address: address >>> 0, width, isWrite, value, pc: cpu.pc });
    this.onOutsideRamAccess?.(cpu, address);
    return this.outsideRamReadValue;
  }

  hypercall(cpu: GuestCpu, number: number): void {
    const registers = cpu.registers;
    this.hypercalls.push({ number, pc: cpu.pc, r1: registers[1]!, r2: registers[2]!, r3: registers[3]! });
    this.onHypercall?.(cpu, number);
  }

  readMsr(cpu: GuestCpu, index: number): number {
    this.msrAccesses.push({ index, isWrite: false });
    const [low, high] = this.msrValues.get(index) ?? [0, 0];
    cpu.msrHighWord = high;
    this.onMsrAccess?.(cpu, index);
    return low;
  }

  writeMsr(cpu: GuestCpu, index: number, low: number, high: number): void {
    this.msrAccesses.push({ index, isWrite: true, low, high });
    this.onMsrAccess?.(cpu, index);
  }

  readClock(): number {
    return this.clock;
  }
}

export interface GuestHarness {
  readonly cpu: GuestCpu;
  readonly environment: FakeGuestEnvironment;
  readonly program: ProgramImage;
  readonly doorbells: Int32Array;
  readonly ramBuffer: SharedArrayBuffer;
  /** The address of a label or the value of a constant; throws if the program has none. */
  symbol(name: string): number;
  /** Rings this vCPU's doorbell the way a sender does (Atomics.add). */
  ringDoorbell(): void;
}

export function assembleOrThrow(source: string, origin = 0x1000): ProgramImage {
  const result = assemble(source, { fileName: 'test.s', origin });
  if (!result.ok) throw new Error(result.errors.map(formatDiagnostic).join('\n'));
  return result.program;
}

/**
 * Assembles `source`, loads it at `origin` (default 0x1000) and points the CPU at its entry point
 * with sp = HARNESS_STACK_TOP and every other register, the flags and the IVT base at 0.
 */
export function createGuest(source: string, options: { origin?: number; ramBytes?: number; pauseFilterCount?: number } = {}): GuestHarness {
  const program = assembleOrThrow(source, options.origin);
  const ramBytes = options.ramBytes ?? HARNESS_RAM_BYTES;
  const ramBuffer = new SharedArrayBuffer(ramBytes);
  const doorbells = new Int32Array(new SharedArrayBuffer(64));
  const environment = new FakeGuestEnvironment();
  const cpu = new GuestCpu({
    ramBuffer,
    environment,
    doorbells,
    doorbellIndex: HARNESS_DOORBELL_INDEX,
    ...(options.pauseFilterCount === undefined ? {} : { pauseFilterCount: options.pauseFilterCount }),
  });
  cpu.setRamWindows([{ guestPhysicalAddress: 0, size: ramBytes, hostOffset: 0 }]);
  if (!cpu.memory.load(program.origin, program.bytes)) throw new Error('program does not fit the harness RAM');
  cpu.pc = program.entryPoints.default ?? program.origin;
  cpu.registers[15] = HARNESS_STACK_TOP;
  return {
    cpu,
    environment,
    program,
    doorbells,
    ramBuffer,
    symbol(name: string): number {
      const value = program.symbols.get(name);
      if (value === undefined) throw new Error(`no symbol '${name}' in the test program`);
      return value;
    },
    ringDoorbell(): void {
      Atomics.add(doorbells, HARNESS_DOORBELL_INDEX, 1);
    },
  };
}

/** A register as an unsigned 32-bit number, for comparing with hex constants. */
export function unsignedRegister(cpu: GuestCpu, register: number): number {
  return cpu.registers[register]! >>> 0;
}
