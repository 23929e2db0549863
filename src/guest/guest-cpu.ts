// The guest CPU: architectural state and the interpreter loop.
//
// Speed rules (docs/architecture.md "Speed"; BENCHMARKS.md goal 8): registers live in an Int32Array, instructions are
// read as two Int32 words straight from guest RAM, the guest runs in slices from an outer loop, and the
// doorbell word is polled with one Atomics.load per taken branch (per basic block), never per
// instruction. Everything that is not plain RAM (the local APIC page, unmapped addresses, MSRs,
// hypercalls) leaves the loop through the narrow GuestCpuEnvironment interface, implemented by the
// hypervisor layer. The interpreter never blocks and never throws for guest mistakes: it records a
// GuestFault and returns GuestExit.Fault.

import { FLAGS_INTERRUPT_ENABLE, Opcode, STACK_POINTER, ZERO_REGISTER, disassemble } from './instruction-set.js';
import { GuestFaultKind, type GuestFault } from './guest-fault.js';
import { type RamWindow, GuestMemoryAccess } from './guest-memory-access.js';

/** Why run() returned. */
export const GuestExit = {
  /** The slice's instruction budget ran out. */
  SliceEnd: 0,
  /** The doorbell changed, or an instruction asked for interrupts to be re-evaluated (sti, iret, EOI). */
  InterruptWindow: 1,
  /** hlt executed; pc points past it. */
  Halt: 2,
  /** A guest fault; see GuestCpu.fault. pc points at the faulting instruction. */
  Fault: 3,
  /** The environment asked the loop to stop (hypercall Done, a pending request). */
  EnvironmentExit: 4,
  /** Pause-loop exit: many pause instructions in one slice (spin-wait detected). */
  PauseLoop: 5,
} as const;
export type GuestExit = (typeof GuestExit)[keyof typeof GuestExit];

/**
 * The default pause filter count: pause instructions in one slice before a pause-loop exit (the
 * VMCB's PAUSE filter count, AMD APM vol. 2, 15.14.4; KVM's kvm_amd.pause_filter_count). A VM may
 * set its own (VmConfig.pauseFilterCount).
 */
export const PAUSE_LOOP_WINDOW = 4096;

/** What the interpreter needs from the hypervisor; everything else is plain RAM. */
export interface GuestCpuEnvironment {
  /**
   * An access to an address outside every RAM window: the local APIC page, or nothing. Returns the
   * value read (ignored for writes). May call cpu.raiseFault or cpu.requestExit.
   */
  accessOutsideRam(cpu: GuestCpu, address: number, width: 1 | 2 | 4, isWrite: boolean, value: number): number;
  hypercall(cpu: GuestCpu, number: number): void;
  /** Returns the low 32 bits and stores the high 32 bits in cpu.msrHighWord. */
  readMsr(cpu: GuestCpu, index: number): number;
  writeMsr(cpu: GuestCpu, index: number, low: number, high: number): void;
  /** Nanoseconds on the VM clock (shared by all vCPUs). */
  readClock(): number;
  /**
   * An interrupt window inside the slice (the doorbell changed, or sti/iret/EOI asked for an
   * evaluation): the environment evaluates and may deliver an interrupt (cpu.deliverInterrupt), as
   * AVIC hardware does in guest mode with no exit. Returns true if the slice must end instead (a
   * pending request). Without this hook, run() returns GuestExit.InterruptWindow.
   */
  interruptWindow?(cpu: GuestCpu): boolean;
}

/** The general-protection exception's vector (#GP). */
export const GENERAL_PROTECTION_VECTOR = 13;

export class GuestCpu {
  /**
   * r0..r15 and the hidden zero register (16). Sized 256 so that any register byte a hand-made
   * instruction carries indexes inside the array: a bad field can only spoil that guest's own state.
   */
  readonly registers = new Int32Array(256);
  pc = 0;
  /** Only IF (bit 9) is defined. */
  flags = 0;
  interruptVectorTableBase = 0;
  /** NMI blocking from NMI delivery until the next iret. */
  nmiBlocked = false;
  /** Set by rdmsr's environment call: the high word of the value read. */
  msrHighWord = 0;
  fault: GuestFault | undefined;
  /** #GP exceptions delivered to the guest's vector 13 handler. */
  generalProtectionExceptions = 0;
  readonly memory: GuestMemoryAccess;
  #pendingGeneralProtection: { readonly kind: GuestFaultKind; readonly detail: string } | undefined;

  #environment: GuestCpuEnvironment;
  #doorbells: Int32Array;
  #doorbellIndex: number;
  readonly #pauseFilterCount: number;
  /** Doorbell value seen at the last interrupt evaluation; a different value means "re-scan IRR". */
  lastDoorbell = 0;
  #exitRequested = false;
  #evaluateRequested = false;
  instructionsRetired = 0;

  /**
   * `doorbells[doorbellIndex]` is the doorbell word the interpreter polls; without it, a private word
   * nobody rings until attachDoorbell() names the host CPU's (the vCPU is loaded there).
   * `pauseFilterCount`: pauses in one slice before a pause-loop exit (default PAUSE_LOOP_WINDOW).
   */
  constructor(options: {
    ramBuffer: SharedArrayBuffer;
    environment: GuestCpuEnvironment;
    doorbells?: Int32Array;
    doorbellIndex?: number;
    pauseFilterCount?: number;
  }) {
    this.memory = new GuestMemoryAccess(options.ramBuffer);
    this.#environment = options.environment;
    this.#doorbells = options.doorbells ?? new Int32Array(1);
    this.#doorbellIndex = options.doorbellIndex ?? 0;
    this.#pauseFilterCount = options.pauseFilterCount ?? PAUSE_LOOP_WINDOW;
  }

  /** The doorbell word to poll from the next run() on: the host CPU this guest now runs on. */
  attachDoorbell(doorbells: Int32Array, doorbellIndex: number): void {
    this.#doorbells = doorbells;
    this.#doorbellIndex = doorbellIndex;
  }

  get interruptsEnabled(): boolean {
    return (this.flags & FLAGS_INTERRUPT_ENABLE) !== 0;
  }

  /** Replaces the RAM part of the guest's "nested page table" (after a memslot change). */
  setRamWindows(windows: readonly RamWindow[]): void {
    this.memory.setWindows(windows);
  }

  /** The environment stops the current slice after the current instruction completes. */
  requestExit(): void {
    this.#exitRequested = true;
  }

  /** The environment asks for interrupts to be evaluated after the current instruction (EOI, TPR, self-IPI). */
  requestInterruptEvaluation(): void {
    this.#evaluateRequested = true;
  }

  /**
   * The architecture's answer to this instruction is #GP (an environment call, rdmsr or wrmsr, found
   * it so): the instruction does not complete, and the exception goes through vector 13 with the
   * faulting instruction's address as the return address (no error code is pushed: a handler that
   * wants to skip the instruction adds 8 to the saved pc). With no handler at vector 13 the vCPU
   * stops with a `kind` fault instead (as a triple fault would end a real guest).
   */
  raiseGeneralProtection(kind: GuestFaultKind, detail: string): void {
    this.#pendingGeneralProtection ??= { kind, detail };
  }

  #deliverGeneralProtection(): boolean {
    const pending = this.#pendingGeneralProtection!;
    this.#pendingGeneralProtection = undefined;
    const handler = this.memory.read32(this.interruptVectorTableBase + GENERAL_PROTECTION_VECTOR * 4);
    if (handler === undefined || handler === 0) {
      this.raiseFault(pending.kind, `${pending.detail} (#GP, and vector ${GENERAL_PROTECTION_VECTOR} has no handler: the vCPU stops)`);
      return false;
    }
    this.generalProtectionExceptions++;
    return this.deliverInterrupt(GENERAL_PROTECTION_VECTOR);
  }

  raiseFault(kind: GuestFaultKind, detail: string, address?: number): void {
    if (this.fault !== undefined) return;
    this.fault = {
      kind,
      pc: this.pc >>> 0,
      detail,
      instruction: this.#disassembleAt(this.pc),
      ...(address === undefined ? {} : { address: address >>> 0 }),
    };
    this.#exitRequested = true;
  }

  /**
   * Delivers an interrupt at an instruction boundary: push flags, push the return pc, clear IF, jump
   * through the vector table. Returns false (and records a fault) when the frame cannot be pushed or
   * the vector has no handler.
   */
  deliverInterrupt(vector: number): boolean {
    const handler = this.memory.read32(this.interruptVectorTableBase + vector * 4);
    if (handler === undefined || handler === 0) {
      this.raiseFault(
        GuestFaultKind.MissingInterruptHandler,
        `no handler for vector ${vector} in the vector table at 0x${(this.interruptVectorTableBase >>> 0).toString(16)}`,
        (this.interruptVectorTableBase + vector * 4) >>> 0,
      );
      return false;
    }
    if ((handler & 7) !== 0) {
      this.raiseFault(GuestFaultKind.MisalignedInstruction, `handler for vector ${vector} is not 8-byte aligned`, handler);
      return false;
    }
    if (!this.#push(this.flags) || !this.#push(this.pc)) return false;
    this.flags &= ~FLAGS_INTERRUPT_ENABLE;
    this.pc = handler >>> 0;
    return true;
  }

  #push(value: number): boolean {
    const sp = (this.registers[STACK_POINTER]! - 4) | 0;
    if (!this.memory.write32(sp, value)) {
      this.raiseFault(GuestFaultKind.AccessOutsideMemory, 'stack push outside memory', sp);
      return false;
    }
    this.registers[STACK_POINTER] = sp;
    return true;
  }

  #disassembleAt(pc: number): string | undefined {
    const word0 = this.memory.read32(pc);
    const word1 = this.memory.read32(pc + 4);
    return word0 === undefined || word1 === undefined ? undefined : disassemble(word0, word1);
  }

  /**
   * Runs at most `budget` instructions. The loop is one function with the hot state in locals; the
   * state is written back before every call out so that the environment sees a consistent CPU.
   */
  run(sliceBudget: number): GuestExit {
    let budget = sliceBudget;
    const registers = this.registers;
    const memory = this.memory;
    const ram32 = memory.ram32;
    const doorbells = this.#doorbells;
    const doorbellIndex = this.#doorbellIndex;
    let lastDoorbell = this.lastDoorbell;
    let pc = this.pc;
    let remaining = sliceBudget;
    let pauses = 0;
    const pauseFilterCount = this.#pauseFilterCount;
    let exit: GuestExit = GuestExit.SliceEnd;
    this.#exitRequested = false;
    this.#evaluateRequested = false;
    registers[ZERO_REGISTER] = 0;

    // The code window caches the RAM slot the pc is in, the data window the last slot loaded from.
    let codeStart = memory.codeWindowStart,
      codeLimit = memory.codeWindowLimit,
      codeHost = memory.codeWindowHost;
    let dataStart = memory.dataWindowStart,
      dataLimit = memory.dataWindowLimit,
      dataHost = memory.dataWindowHost;

    for (;;) {
      const fetchOffset = (pc - codeStart) >>> 0;
      if (fetchOffset > codeLimit) {
        if (!memory.selectCodeWindow(pc)) {
          this.pc = pc;
          this.raiseFault(GuestFaultKind.FetchOutsideMemory, 'instruction fetch outside every RAM memslot', pc);
          exit = GuestExit.Fault;
          break;
        }
        codeStart = memory.codeWindowStart;
        codeLimit = memory.codeWindowLimit;
        codeHost = memory.codeWindowHost;
        continue;
      }
      const wordIndex = (codeHost + fetchOffset) >> 2;
      const word0 = ram32[wordIndex]!;
      const immediate = ram32[wordIndex + 1]!;
      const a = (word0 >>> 8) & 0xff;
      const b = (word0 >>> 16) & 0xff;
      const c = word0 >>> 24;

      switch (word0 & 0xff) {
        case 0x01 /* Opcode.Nop */:
          pc += 8;
          break;
        case 0x10 /* Opcode.Mov */:
          registers[a] = registers[b]!;
          pc += 8;
          break;
        case 0x11 /* Opcode.Li */:
          registers[a] = immediate;
          pc += 8;
          break;

        case 0x20 /* Opcode.Add */:
          registers[a] = (registers[b]! + registers[c]!) | 0;
          pc += 8;
          break;
        case 0x21 /* Opcode.Sub */:
          registers[a] = (registers[b]! - registers[c]!) | 0;
          pc += 8;
          break;
        case 0x22 /* Opcode.And */:
          registers[a] = registers[b]! & registers[c]!;
          pc += 8;
          break;
        case 0x23 /* Opcode.Or */:
          registers[a] = registers[b]! | registers[c]!;
          pc += 8;
          break;
        case 0x24 /* Opcode.Xor */:
          registers[a] = registers[b]! ^ registers[c]!;
          pc += 8;
          break;
        case 0x25 /* Opcode.Shl */:
          registers[a] = registers[b]! << (registers[c]! & 31);
          pc += 8;
          break;
        case 0x26 /* Opcode.Shr */:
          registers[a] = registers[b]! >>> (registers[c]! & 31);
          pc += 8;
          break;
        case 0x27 /* Opcode.Sar */:
          registers[a] = registers[b]! >> (registers[c]! & 31);
          pc += 8;
          break;
        case 0x28 /* Opcode.Mul */:
          registers[a] = Math.imul(registers[b]!, registers[c]!);
          pc += 8;
          break;
        case 0x2b /* Opcode.Slt */:
          registers[a] = registers[b]! < registers[c]! ? 1 : 0;
          pc += 8;
          break;
        case 0x2c /* Opcode.Sltu */:
          registers[a] = registers[b]! >>> 0 < registers[c]! >>> 0 ? 1 : 0;
          pc += 8;
          break;
        case 0x2d /* Opcode.Seq */:
          registers[a] = registers[b] === registers[c] ? 1 : 0;
          pc += 8;
          break;
        case 0x2e /* Opcode.Sne */:
          registers[a] = registers[b] !== registers[c] ? 1 : 0;
          pc += 8;
          break;
        case 0x29 /* Opcode.Divu */:
        case 0x2a /* Opcode.Remu */:
        case 0x39 /* Opcode.DivuImmediate */:
        case 0x3a /* Opcode.RemuImmediate */:
          {
            const divisor = (word0 & 0xff) === Opcode.Divu || (word0 & 0xff) === Opcode.Remu ? registers[c]! >>> 0 : immediate >>> 0;
            if (divisor === 0) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.DivideByZero, 'unsigned division by zero');
              exit = GuestExit.Fault;
              break;
            }
            const dividend = registers[b]! >>> 0;
            const isDivide = (word0 & 0xff) === Opcode.Divu || (word0 & 0xff) === Opcode.DivuImmediate;
            registers[a] = isDivide ? Math.floor(dividend / divisor) | 0 : (dividend % divisor) | 0;
            pc += 8;
            break;
          }

        case 0x30 /* Opcode.AddImmediate */:
          registers[a] = (registers[b]! + immediate) | 0;
          pc += 8;
          break;
        case 0x31 /* Opcode.SubImmediate */:
          registers[a] = (registers[b]! - immediate) | 0;
          pc += 8;
          break;
        case 0x32 /* Opcode.AndImmediate */:
          registers[a] = registers[b]! & immediate;
          pc += 8;
          break;
        case 0x33 /* Opcode.OrImmediate */:
          registers[a] = registers[b]! | immediate;
          pc += 8;
          break;
        case 0x34 /* Opcode.XorImmediate */:
          registers[a] = registers[b]! ^ immediate;
          pc += 8;
          break;
        case 0x35 /* Opcode.ShlImmediate */:
          registers[a] = registers[b]! << (immediate & 31);
          pc += 8;
          break;
        case 0x36 /* Opcode.ShrImmediate */:
          registers[a] = registers[b]! >>> (immediate & 31);
          pc += 8;
          break;
        case 0x37 /* Opcode.SarImmediate */:
          registers[a] = registers[b]! >> (immediate & 31);
          pc += 8;
          break;
        case 0x38 /* Opcode.MulImmediate */:
          registers[a] = Math.imul(registers[b]!, immediate);
          pc += 8;
          break;
        case 0x3b /* Opcode.SltImmediate */:
          registers[a] = registers[b]! < immediate ? 1 : 0;
          pc += 8;
          break;
        case 0x3c /* Opcode.SltuImmediate */:
          registers[a] = registers[b]! >>> 0 < immediate >>> 0 ? 1 : 0;
          pc += 8;
          break;
        case 0x3d /* Opcode.SeqImmediate */:
          registers[a] = registers[b] === immediate ? 1 : 0;
          pc += 8;
          break;
        case 0x3e /* Opcode.SneImmediate */:
          registers[a] = registers[b] !== immediate ? 1 : 0;
          pc += 8;
          break;

        // Taken branches end a basic block: that is where the doorbell is polled (one Atomics.load per
        // block; an IPI to a running vCPU is noticed within one block).
        case 0x40 /* Opcode.Beq */:
        case 0x41 /* Opcode.Bne */:
        case 0x42 /* Opcode.Blt */:
        case 0x43 /* Opcode.Bge */:
        case 0x44 /* Opcode.Bltu */:
        case 0x45 /* Opcode.Bgeu */:
        case 0x46 /* Opcode.Beqz */:
        case 0x47 /* Opcode.Bnez */:
          {
            if (!branchTaken(word0 & 0xff, registers[a]!, registers[b]!)) {
              pc += 8;
              break;
            }
            if ((immediate & 7) !== 0) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.MisalignedInstruction, 'branch target is not 8-byte aligned', immediate);
              exit = GuestExit.Fault;
              break;
            }
            pc = immediate >>> 0;
            if (Atomics.load(doorbells, doorbellIndex) !== lastDoorbell) {
              exit = GuestExit.InterruptWindow;
              budget -= remaining;
              remaining = 0;
            }
            break;
          }
        case 0x48 /* Opcode.Jmp */:
          if ((immediate & 7) !== 0) {
            this.pc = pc;
            this.raiseFault(GuestFaultKind.MisalignedInstruction, 'jump target is not 8-byte aligned', immediate);
            exit = GuestExit.Fault;
            break;
          }
          pc = immediate >>> 0;
          if (Atomics.load(doorbells, doorbellIndex) !== lastDoorbell) {
            exit = GuestExit.InterruptWindow;
            budget -= remaining;
            remaining = 0;
          }
          break;
        case 0x49 /* Opcode.JmpRegister */:
        case 0x4b /* Opcode.CallRegister */:
        case 0x4a /* Opcode.Call */:
          {
            const target = (word0 & 0xff) === Opcode.Call ? immediate >>> 0 : registers[a]! >>> 0;
            if ((target & 7) !== 0) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.MisalignedInstruction, 'jump target is not 8-byte aligned', target);
              exit = GuestExit.Fault;
              break;
            }
            if ((word0 & 0xff) !== Opcode.JmpRegister) {
              const sp = (registers[STACK_POINTER]! - 4) | 0;
              if (!memory.write32(sp, pc + 8)) {
                this.pc = pc;
                this.raiseFault(GuestFaultKind.AccessOutsideMemory, 'call pushed its return address outside memory', sp);
                exit = GuestExit.Fault;
                break;
              }
              registers[STACK_POINTER] = sp;
            }
            pc = target;
            if (Atomics.load(doorbells, doorbellIndex) !== lastDoorbell) {
              exit = GuestExit.InterruptWindow;
              budget -= remaining;
              remaining = 0;
            }
            break;
          }
        case 0x07 /* Opcode.Ret */:
          {
            const sp = registers[STACK_POINTER]!;
            const target = memory.read32(sp);
            if (target === undefined) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.AccessOutsideMemory, 'ret popped outside memory', sp);
              exit = GuestExit.Fault;
              break;
            }
            if ((target & 7) !== 0) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.MisalignedInstruction, 'return address is not 8-byte aligned', target);
              exit = GuestExit.Fault;
              break;
            }
            registers[STACK_POINTER] = (sp + 4) | 0;
            pc = target >>> 0;
            if (Atomics.load(doorbells, doorbellIndex) !== lastDoorbell) {
              exit = GuestExit.InterruptWindow;
              budget -= remaining;
              remaining = 0;
            }
            break;
          }

        case 0x50 /* Opcode.Push */:
          {
            const sp = (registers[STACK_POINTER]! - 4) | 0;
            if (!memory.write32(sp, registers[a]!)) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.AccessOutsideMemory, 'push outside memory', sp);
              exit = GuestExit.Fault;
              break;
            }
            registers[STACK_POINTER] = sp;
            pc += 8;
            break;
          }
        case 0x51 /* Opcode.Pop */:
          {
            const sp = registers[STACK_POINTER]!;
            const value = memory.read32(sp);
            if (value === undefined) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.AccessOutsideMemory, 'pop outside memory', sp);
              exit = GuestExit.Fault;
              break;
            }
            registers[STACK_POINTER] = (sp + 4) | 0;
            if (a !== STACK_POINTER) registers[a] = value;
            pc += 8;
            break;
          }
        case 0x08 /* Opcode.Pushf */:
          {
            const sp = (registers[STACK_POINTER]! - 4) | 0;
            if (!memory.write32(sp, this.flags)) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.AccessOutsideMemory, 'pushf outside memory', sp);
              exit = GuestExit.Fault;
              break;
            }
            registers[STACK_POINTER] = sp;
            pc += 8;
            break;
          }

        case 0x64 /* Opcode.Load32 */:
          {
            const address = (registers[b]! + immediate) >>> 0;
            const offset = (address - dataStart) >>> 0;
            if (offset <= dataLimit && (address & 3) === 0) {
              registers[a] = ram32[(dataHost + offset) >> 2]!;
            } else {
              this.pc = pc;
              const value = this.#slowLoad(address, 4);
              if (this.#exitRequested) {
                exit = this.fault !== undefined ? GuestExit.Fault : GuestExit.EnvironmentExit;
                if (exit === GuestExit.Fault) break;
              }
              registers[a] = value;
              dataStart = memory.dataWindowStart;
              dataLimit = memory.dataWindowLimit;
              dataHost = memory.dataWindowHost;
            }
            pc += 8;
            if (this.#exitRequested || this.#evaluateRequested) {
              budget -= remaining;
              remaining = 0;
            }
            break;
          }
        case 0x6a /* Opcode.Store32 */:
          {
            const address = (registers[b]! + immediate) >>> 0;
            const offset = (address - dataStart) >>> 0;
            if (offset <= dataLimit && (address & 3) === 0) {
              ram32[(dataHost + offset) >> 2] = registers[a]!;
            } else {
              this.pc = pc;
              this.#slowStore(address, 4, registers[a]!);
              if (this.fault !== undefined) {
                exit = GuestExit.Fault;
                break;
              }
              dataStart = memory.dataWindowStart;
              dataLimit = memory.dataWindowLimit;
              dataHost = memory.dataWindowHost;
            }
            pc += 8;
            if (this.#exitRequested || this.#evaluateRequested) {
              budget -= remaining;
              remaining = 0;
            }
            break;
          }
        case 0x60 /* Opcode.Load8 */:
        case 0x61 /* Opcode.Load8Signed */:
        case 0x62 /* Opcode.Load16 */:
        case 0x63 /* Opcode.Load16Signed */:
          {
            const op = word0 & 0xff;
            const width = op === Opcode.Load8 || op === Opcode.Load8Signed ? 1 : 2;
            const address = (registers[b]! + immediate) >>> 0;
            this.pc = pc;
            const value = this.#slowLoad(address, width);
            if (this.fault !== undefined) {
              exit = GuestExit.Fault;
              break;
            }
            registers[a] = op === Opcode.Load8Signed ? (value << 24) >> 24 : op === Opcode.Load16Signed ? (value << 16) >> 16 : value;
            pc += 8;
            if (this.#exitRequested || this.#evaluateRequested) {
              budget -= remaining;
              remaining = 0;
            }
            break;
          }
        case 0x68 /* Opcode.Store8 */:
        case 0x69 /* Opcode.Store16 */:
          {
            const address = (registers[b]! + immediate) >>> 0;
            this.pc = pc;
            this.#slowStore(address, (word0 & 0xff) === Opcode.Store8 ? 1 : 2, registers[a]!);
            if (this.fault !== undefined) {
              exit = GuestExit.Fault;
              break;
            }
            pc += 8;
            if (this.#exitRequested || this.#evaluateRequested) {
              budget -= remaining;
              remaining = 0;
            }
            break;
          }

        // Guest atomics are real Atomics on the shared RAM, so guest spinlocks work across vCPUs.
        case 0x70 /* Opcode.Exchange */:
        case 0x71 /* Opcode.CompareExchange */:
        case 0x72 /* Opcode.FetchAdd */:
          {
            const address = (registers[b]! + immediate) >>> 0;
            const index = memory.atomicWordIndex(address);
            if (index < 0) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.MisalignedAtomic, 'atomic access needs a 4-byte aligned RAM address', address);
              exit = GuestExit.Fault;
              break;
            }
            const op = word0 & 0xff;
            registers[a] =
              op === Opcode.Exchange
                ? Atomics.exchange(ram32, index, registers[a]!)
                : op === Opcode.FetchAdd
                  ? Atomics.add(ram32, index, registers[a]!)
                  : Atomics.compareExchange(ram32, index, registers[a]!, registers[c]!);
            pc += 8;
            break;
          }

        case 0x06 /* Opcode.Pause */:
          pc += 8;
          if (++pauses >= pauseFilterCount) {
            exit = GuestExit.PauseLoop;
            budget -= remaining;
            remaining = 0;
          }
          break;
        case 0x03 /* Opcode.Cli */:
          this.flags &= ~FLAGS_INTERRUPT_ENABLE;
          pc += 8;
          break;
        case 0x04 /* Opcode.Sti */:
          pc += 8;
          if ((this.flags & FLAGS_INTERRUPT_ENABLE) === 0) {
            this.flags |= FLAGS_INTERRUPT_ENABLE;
            // The sti shadow: interrupts are recognised after the NEXT instruction, so let exactly one
            // more instruction run, then stop at the boundary and have the caller evaluate.
            exit = GuestExit.InterruptWindow;
            budget -= remaining - 2;
            remaining = 2;
          }
          break;
        case 0x09 /* Opcode.Popf */:
        case 0x05 /* Opcode.Iret */:
          {
            const sp = registers[STACK_POINTER]!;
            const isIret = (word0 & 0xff) === Opcode.Iret;
            const first = memory.read32(sp);
            const second = isIret ? memory.read32(sp + 4) : 0;
            if (first === undefined || second === undefined) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.AccessOutsideMemory, `${isIret ? 'iret' : 'popf'} popped outside memory`, sp);
              exit = GuestExit.Fault;
              break;
            }
            if (isIret && (first & 7) !== 0) {
              this.pc = pc;
              this.raiseFault(GuestFaultKind.MisalignedInstruction, 'iret return address is not 8-byte aligned', first);
              exit = GuestExit.Fault;
              break;
            }
            if (isIret) {
              pc = first >>> 0;
              this.flags = second & FLAGS_INTERRUPT_ENABLE;
              this.nmiBlocked = false;
              registers[STACK_POINTER] = (sp + 8) | 0;
            } else {
              this.flags = first & FLAGS_INTERRUPT_ENABLE;
              registers[STACK_POINTER] = (sp + 4) | 0;
              pc += 8;
            }
            // Pending interrupts may now be deliverable (IF restored, NMI unblocked).
            exit = GuestExit.InterruptWindow;
            budget -= remaining;
            remaining = 0;
            break;
          }
        case 0x02 /* Opcode.Hlt */:
          pc += 8;
          exit = GuestExit.Halt;
          budget -= remaining;
          remaining = 0;
          break;

        case 0x80 /* Opcode.Rdtsc */:
          registers[a] = this.#environment.readClock() | 0;
          pc += 8;
          break;
        case 0x83 /* Opcode.Livt */:
          this.interruptVectorTableBase = (registers[b]! + immediate) >>> 0;
          pc += 8;
          break;
        case 0x81 /* Opcode.Rdmsr */:
        case 0x82 /* Opcode.Wrmsr */:
        case 0x84 /* Opcode.Hypercall */:
          {
            this.pc = pc;
            const op = word0 & 0xff;
            if (op === Opcode.Hypercall) this.#environment.hypercall(this, immediate);
            else if (op === Opcode.Rdmsr) {
              const low = this.#environment.readMsr(this, (registers[b]! + immediate) >>> 0);
              if (this.fault === undefined && this.#pendingGeneralProtection === undefined) {
                registers[a] = low;
                registers[a + 1] = this.msrHighWord;
              }
            } else this.#environment.writeMsr(this, (registers[b]! + immediate) >>> 0, registers[a]!, registers[a + 1]!);
            if (this.#pendingGeneralProtection !== undefined) {
              // The instruction does not complete: #GP with its own address as the return address.
              if (!this.#deliverGeneralProtection()) {
                exit = GuestExit.Fault;
                break;
              }
              pc = this.pc;
              break;
            }
            if (this.fault !== undefined) {
              exit = GuestExit.Fault;
              break;
            }
            pc += 8;
            if (this.#exitRequested) {
              exit = GuestExit.EnvironmentExit;
              budget -= remaining;
              remaining = 0;
            } else if (this.#evaluateRequested) {
              budget -= remaining;
              remaining = 0;
            }
            break;
          }

        default:
          this.pc = pc;
          this.raiseFault(GuestFaultKind.InvalidOpcode, `invalid opcode 0x${(word0 & 0xff).toString(16)}`);
          exit = GuestExit.Fault;
          break;
      }
      if (exit === GuestExit.Fault) break;
      if (--remaining <= 0) {
        if (exit === GuestExit.SliceEnd) {
          if (this.#exitRequested) exit = GuestExit.EnvironmentExit;
          else if (this.#evaluateRequested) exit = GuestExit.InterruptWindow;
        }
        if (exit === GuestExit.InterruptWindow && !this.#exitRequested && this.#environment.interruptWindow !== undefined) {
          // Take the window without leaving the slice, then go on with what is left of it.
          const executed = budget - remaining;
          const left = sliceBudget - executed;
          this.pc = pc >>> 0;
          this.#evaluateRequested = false;
          const endSlice = left <= 0 || this.#environment.interruptWindow(this);
          // A delivery in the window that faulted stops the vCPU, whatever the environment answered.
          if (this.fault !== undefined) {
            exit = GuestExit.Fault;
            break;
          }
          if (!endSlice) {
            pc = this.pc;
            lastDoorbell = this.lastDoorbell;
            exit = GuestExit.SliceEnd;
            budget = sliceBudget;
            remaining = left;
            continue;
          }
        }
        break;
      }
    }
    if (exit !== GuestExit.Fault) this.pc = pc >>> 0;
    // Forced stops move `budget` down with `remaining`, so this is exactly the instructions executed.
    this.instructionsRetired += budget - remaining;
    return exit;
  }

  #slowLoad(address: number, width: 1 | 2 | 4): number {
    const value = this.memory.readRam(address, width);
    if (value !== undefined) return value;
    return this.#environment.accessOutsideRam(this, address, width, false, 0);
  }

  #slowStore(address: number, width: 1 | 2 | 4, value: number): void {
    if (this.memory.writeRam(address, width, value)) return;
    this.#environment.accessOutsideRam(this, address, width, true, value);
  }
}

function branchTaken(opcode: number, left: number, right: number): boolean {
  switch (opcode) {
    case 0x40 /* Opcode.Beq */:
      return left === right;
    case 0x41 /* Opcode.Bne */:
      return left !== right;
    case 0x42 /* Opcode.Blt */:
      return left < right;
    case 0x43 /* Opcode.Bge */:
      return left >= right;
    case 0x44 /* Opcode.Bltu */:
      return left >>> 0 < right >>> 0;
    case 0x45 /* Opcode.Bgeu */:
      return left >>> 0 >= right >>> 0;
    case 0x46 /* Opcode.Beqz */:
      return left === 0;
    default:
      return left !== 0;
  }
}
