// The raw interpreter baseline of BENCHMARKS.md goal 8: a bare `while` + `switch` over the program's own
// 8-byte instructions (the bytes the avic-smp assembler produced for bench/programs/alu-loop.s),
// registers in an Int32Array, data in an Int32Array over a SharedArrayBuffer, no memory windows,
// no faults, no flags. It knows only the opcodes that loop uses. Two variants: no interrupt poll
// (the upper bound) and one Atomics.load per taken branch (the emulator's contract).

export interface RawProgram {
  readonly ram32: Int32Array;
  readonly entry: number;
}

export function loadRawProgram(origin: number, bytes: Uint8Array, ramBytes = 1 << 20): RawProgram {
  const ram = new SharedArrayBuffer(ramBytes);
  new Uint8Array(ram).set(bytes, origin);
  return { ram32: new Int32Array(ram), entry: origin };
}

/** Runs from the entry to the first hypercall; returns the instructions executed. */
export function runRawSwitch(program: RawProgram, poll: Int32Array | undefined): number {
  const ram32 = program.ram32;
  const registers = new Int32Array(17);
  let pc = program.entry;
  let executed = 0;
  let lastDoorbell = 0;
  for (;;) {
    const index = pc >> 2;
    const word0 = ram32[index]!;
    const immediate = ram32[index + 1]!;
    const a = (word0 >>> 8) & 0xff;
    const b = (word0 >>> 16) & 0xff;
    const c = word0 >>> 24;
    executed++;
    switch (word0 & 0xff) {
      case 0x11:
        registers[a] = immediate;
        pc += 8;
        break;
      case 0x20:
        registers[a] = (registers[b]! + registers[c]!) | 0;
        pc += 8;
        break;
      case 0x21:
        registers[a] = (registers[b]! - registers[c]!) | 0;
        pc += 8;
        break;
      case 0x30:
        registers[a] = (registers[b]! + immediate) | 0;
        pc += 8;
        break;
      case 0x31:
        registers[a] = (registers[b]! - immediate) | 0;
        pc += 8;
        break;
      case 0x64:
        registers[a] = ram32[((registers[b]! + immediate) >>> 0) >> 2]!;
        pc += 8;
        break;
      case 0x6a:
        ram32[((registers[b]! + immediate) >>> 0) >> 2] = registers[a]!;
        pc += 8;
        break;
      case 0x47:
        if (registers[a] !== 0) {
          pc = immediate >>> 0;
          if (poll !== undefined && Atomics.load(poll, 0) !== lastDoorbell) lastDoorbell = Atomics.load(poll, 0);
        } else pc += 8;
        break;
      case 0x80:
        registers[a] = 0;
        pc += 8;
        break;
      case 0x84:
        return executed - 1;
      default:
        throw new Error(`raw switch interpreter: opcode 0x${(word0 & 0xff).toString(16)} is not in its subset`);
    }
  }
}
