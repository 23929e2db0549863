// The avic-smp guest instruction set: one table that both the assembler and the interpreter read.
//
// Every instruction is 8 bytes, little-endian, 8-byte aligned:
//
//   byte 0      opcode
//   byte 1      field A   (a register number, usually the destination)
//   byte 2      field B   (a register number, usually a source or the address base)
//   byte 3      field C   (a register number, a second source)
//   bytes 4-7   immediate (32 bits; a constant, an absolute target or an address displacement)
//
// so the interpreter reads two Int32 words per instruction and decodes with shifts. Registers are
// r0..r15 (32 bits; sp is r15). Register number 16 is the hidden zero register: the assembler puts it
// in a base field when an operand has no register ("[label]", "rdmsr r1, 0x1b"), which spares the
// interpreter a branch on every such access. Zero-filled memory decodes as opcode 0, Invalid, so a
// runaway program faults instead of sliding through memory.

export const INSTRUCTION_BYTES = 8;
export const GENERAL_REGISTER_COUNT = 16;
export const ZERO_REGISTER = 16;
export const STACK_POINTER = 15;

/**
 * How the assembler reads an instruction's operands and where it puts them.
 * rd/rs/rt are registers; imm a constant expression; target an absolute code address;
 * mem "[base + displacement]", "[base]" or "[expression]".
 */
export const OperandForm = {
  /** no operands: nop, hlt, cli, sti, iret, pause, ret, pushf, popf */
  None: 'none',
  /** rd, rs -> A=rd, B=rs */
  RegReg: 'rd,rs',
  /** rd, imm -> A=rd, imm */
  RegImm: 'rd,imm',
  /** rd, rs, rt -> A=rd, B=rs, C=rt */
  RegRegReg: 'rd,rs,rt',
  /** rd, rs, imm -> A=rd, B=rs, imm */
  RegRegImm: 'rd,rs,imm',
  /** rs, rt, target -> A=rs, B=rt, imm=target */
  BranchCompare: 'rs,rt,target',
  /** rs, target -> A=rs, imm=target */
  BranchZero: 'rs,target',
  /** target -> imm=target */
  Target: 'target',
  /** rs -> A=rs (push, indirect jump and call) */
  Reg: 'rs',
  /** rd -> A=rd (pop, rdtsc) */
  RegDestination: 'rd',
  /** rd, mem -> A=rd, B=base, imm=displacement (loads, xchg, xadd) */
  RegMem: 'rd,mem',
  /** mem, rs -> A=rs, B=base, imm=displacement (stores) */
  MemReg: 'mem,rs',
  /** rd, mem, rt -> A=rd, B=base, C=rt, imm=displacement (cas) */
  RegMemReg: 'rd,mem,rt',
  /** rd, (rs | imm) -> A=rd, B=rs or the zero register, imm (rdmsr) */
  RegIndex: 'rd,index',
  /** (rs | imm), rt -> A=rt, B=rs or the zero register, imm (wrmsr) */
  IndexReg: 'index,rs',
  /** (rs | imm) -> B=rs or the zero register, imm (livt) */
  Index: 'index',
  /** imm -> imm (hypercall number) */
  Imm: 'imm',
} as const;
export type OperandForm = (typeof OperandForm)[keyof typeof OperandForm];

/** Opcode numbers. Grouped by function; gaps leave room without renumbering. */
export const Opcode = {
  Invalid: 0x00,
  Nop: 0x01,
  Hlt: 0x02,
  Cli: 0x03,
  Sti: 0x04,
  Iret: 0x05,
  Pause: 0x06,
  Ret: 0x07,
  Pushf: 0x08,
  Popf: 0x09,

  Mov: 0x10,
  Li: 0x11,

  Add: 0x20,
  Sub: 0x21,
  And: 0x22,
  Or: 0x23,
  Xor: 0x24,
  Shl: 0x25,
  Shr: 0x26,
  Sar: 0x27,
  Mul: 0x28,
  Divu: 0x29,
  Remu: 0x2a,
  Slt: 0x2b,
  Sltu: 0x2c,
  Seq: 0x2d,
  Sne: 0x2e,

  AddImmediate: 0x30,
  SubImmediate: 0x31,
  AndImmediate: 0x32,
  OrImmediate: 0x33,
  XorImmediate: 0x34,
  ShlImmediate: 0x35,
  ShrImmediate: 0x36,
  SarImmediate: 0x37,
  MulImmediate: 0x38,
  DivuImmediate: 0x39,
  RemuImmediate: 0x3a,
  SltImmediate: 0x3b,
  SltuImmediate: 0x3c,
  SeqImmediate: 0x3d,
  SneImmediate: 0x3e,

  Beq: 0x40,
  Bne: 0x41,
  Blt: 0x42,
  Bge: 0x43,
  Bltu: 0x44,
  Bgeu: 0x45,
  Beqz: 0x46,
  Bnez: 0x47,
  Jmp: 0x48,
  JmpRegister: 0x49,
  Call: 0x4a,
  CallRegister: 0x4b,

  Push: 0x50,
  Pop: 0x51,

  Load8: 0x60,
  Load8Signed: 0x61,
  Load16: 0x62,
  Load16Signed: 0x63,
  Load32: 0x64,
  Store8: 0x68,
  Store16: 0x69,
  Store32: 0x6a,

  Exchange: 0x70,
  CompareExchange: 0x71,
  FetchAdd: 0x72,

  Rdtsc: 0x80,
  Rdmsr: 0x81,
  Wrmsr: 0x82,
  Livt: 0x83,
  Hypercall: 0x84,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

export interface InstructionDefinition {
  readonly mnemonic: string;
  /** Opcode for the register form; for mnemonics with an immediate form, see immediateOpcode. */
  readonly opcode: Opcode;
  readonly form: OperandForm;
  /**
   * For arithmetic mnemonics written "op rd, rs, rt" or "op rd, rs, imm": the opcode the assembler
   * uses when the last operand is not a register.
   */
  readonly immediateOpcode?: Opcode;
  /** For jmp and call: the opcode used when the operand is a register. */
  readonly registerOpcode?: Opcode;
  /** One line for docs/guest-isa.md and assembler messages. */
  readonly summary: string;
}

const arithmetic = (mnemonic: string, opcode: Opcode, immediateOpcode: Opcode, summary: string): InstructionDefinition => ({
  mnemonic,
  opcode,
  form: OperandForm.RegRegReg,
  immediateOpcode,
  summary,
});

/** Every mnemonic the assembler accepts, in the order docs/guest-isa.md lists them. */
export const INSTRUCTIONS: readonly InstructionDefinition[] = [
  { mnemonic: 'nop', opcode: Opcode.Nop, form: OperandForm.None, summary: 'do nothing' },
  { mnemonic: 'hlt', opcode: Opcode.Hlt, form: OperandForm.None, summary: 'halt until an interrupt is taken (or forever with IF=0)' },
  { mnemonic: 'cli', opcode: Opcode.Cli, form: OperandForm.None, summary: 'IF <- 0' },
  { mnemonic: 'sti', opcode: Opcode.Sti, form: OperandForm.None, summary: 'IF <- 1; interrupts are recognised after the next instruction' },
  { mnemonic: 'iret', opcode: Opcode.Iret, form: OperandForm.None, summary: 'pop pc, pop flags (return from an interrupt handler)' },
  { mnemonic: 'pause', opcode: Opcode.Pause, form: OperandForm.None, summary: 'spin-wait hint; long pause loops yield the host core' },
  { mnemonic: 'ret', opcode: Opcode.Ret, form: OperandForm.None, summary: 'pop pc' },
  { mnemonic: 'pushf', opcode: Opcode.Pushf, form: OperandForm.None, summary: 'push flags (bit 9 is IF)' },
  { mnemonic: 'popf', opcode: Opcode.Popf, form: OperandForm.None, summary: 'pop flags (bit 9 is IF)' },

  { mnemonic: 'mov', opcode: Opcode.Mov, form: OperandForm.RegReg, summary: 'rd <- rs' },
  { mnemonic: 'li', opcode: Opcode.Li, form: OperandForm.RegImm, summary: 'rd <- imm (any 32-bit constant or label)' },

  arithmetic('add', Opcode.Add, Opcode.AddImmediate, 'rd <- rs + (rt | imm)'),
  arithmetic('sub', Opcode.Sub, Opcode.SubImmediate, 'rd <- rs - (rt | imm)'),
  arithmetic('and', Opcode.And, Opcode.AndImmediate, 'rd <- rs & (rt | imm)'),
  arithmetic('or', Opcode.Or, Opcode.OrImmediate, 'rd <- rs | (rt | imm)'),
  arithmetic('xor', Opcode.Xor, Opcode.XorImmediate, 'rd <- rs ^ (rt | imm)'),
  arithmetic('shl', Opcode.Shl, Opcode.ShlImmediate, 'rd <- rs << ((rt | imm) & 31)'),
  arithmetic('shr', Opcode.Shr, Opcode.ShrImmediate, 'rd <- rs >>> ((rt | imm) & 31) (logical)'),
  arithmetic('sar', Opcode.Sar, Opcode.SarImmediate, 'rd <- rs >> ((rt | imm) & 31) (arithmetic)'),
  arithmetic('mul', Opcode.Mul, Opcode.MulImmediate, 'rd <- low 32 bits of rs * (rt | imm)'),
  arithmetic('divu', Opcode.Divu, Opcode.DivuImmediate, 'rd <- rs / (rt | imm), unsigned; divide by zero is a guest fault'),
  arithmetic('remu', Opcode.Remu, Opcode.RemuImmediate, 'rd <- rs % (rt | imm), unsigned; divide by zero is a guest fault'),
  arithmetic('slt', Opcode.Slt, Opcode.SltImmediate, 'rd <- 1 if rs < (rt | imm) signed, else 0'),
  arithmetic('sltu', Opcode.Sltu, Opcode.SltuImmediate, 'rd <- 1 if rs < (rt | imm) unsigned, else 0'),
  arithmetic('seq', Opcode.Seq, Opcode.SeqImmediate, 'rd <- 1 if rs == (rt | imm), else 0'),
  arithmetic('sne', Opcode.Sne, Opcode.SneImmediate, 'rd <- 1 if rs != (rt | imm), else 0'),

  { mnemonic: 'beq', opcode: Opcode.Beq, form: OperandForm.BranchCompare, summary: 'branch if rs == rt' },
  { mnemonic: 'bne', opcode: Opcode.Bne, form: OperandForm.BranchCompare, summary: 'branch if rs != rt' },
  { mnemonic: 'blt', opcode: Opcode.Blt, form: OperandForm.BranchCompare, summary: 'branch if rs < rt (signed)' },
  { mnemonic: 'bge', opcode: Opcode.Bge, form: OperandForm.BranchCompare, summary: 'branch if rs >= rt (signed)' },
  { mnemonic: 'bltu', opcode: Opcode.Bltu, form: OperandForm.BranchCompare, summary: 'branch if rs < rt (unsigned)' },
  { mnemonic: 'bgeu', opcode: Opcode.Bgeu, form: OperandForm.BranchCompare, summary: 'branch if rs >= rt (unsigned)' },
  { mnemonic: 'beqz', opcode: Opcode.Beqz, form: OperandForm.BranchZero, summary: 'branch if rs == 0' },
  { mnemonic: 'bnez', opcode: Opcode.Bnez, form: OperandForm.BranchZero, summary: 'branch if rs != 0' },
  { mnemonic: 'jmp', opcode: Opcode.Jmp, form: OperandForm.Target, registerOpcode: Opcode.JmpRegister, summary: 'pc <- target (or rs)' },
  {
    mnemonic: 'call',
    opcode: Opcode.Call,
    form: OperandForm.Target,
    registerOpcode: Opcode.CallRegister,
    summary: 'push the return address; pc <- target (or rs)',
  },

  { mnemonic: 'push', opcode: Opcode.Push, form: OperandForm.Reg, summary: 'sp <- sp - 4; [sp] <- rs' },
  { mnemonic: 'pop', opcode: Opcode.Pop, form: OperandForm.RegDestination, summary: 'rd <- [sp]; sp <- sp + 4' },

  { mnemonic: 'ld8', opcode: Opcode.Load8, form: OperandForm.RegMem, summary: 'rd <- zero-extended byte at mem' },
  { mnemonic: 'ld8s', opcode: Opcode.Load8Signed, form: OperandForm.RegMem, summary: 'rd <- sign-extended byte at mem' },
  { mnemonic: 'ld16', opcode: Opcode.Load16, form: OperandForm.RegMem, summary: 'rd <- zero-extended 16 bits at mem' },
  { mnemonic: 'ld16s', opcode: Opcode.Load16Signed, form: OperandForm.RegMem, summary: 'rd <- sign-extended 16 bits at mem' },
  { mnemonic: 'ld32', opcode: Opcode.Load32, form: OperandForm.RegMem, summary: 'rd <- 32 bits at mem' },
  { mnemonic: 'st8', opcode: Opcode.Store8, form: OperandForm.MemReg, summary: 'byte at mem <- rs' },
  { mnemonic: 'st16', opcode: Opcode.Store16, form: OperandForm.MemReg, summary: '16 bits at mem <- rs' },
  { mnemonic: 'st32', opcode: Opcode.Store32, form: OperandForm.MemReg, summary: '32 bits at mem <- rs' },

  {
    mnemonic: 'xchg',
    opcode: Opcode.Exchange,
    form: OperandForm.RegMem,
    summary: 'atomically: old <- [mem]; [mem] <- rd; rd <- old (mem 4-aligned)',
  },
  {
    mnemonic: 'cas',
    opcode: Opcode.CompareExchange,
    form: OperandForm.RegMemReg,
    summary: 'atomically: old <- [mem]; if old == rd then [mem] <- rt; rd <- old (mem 4-aligned)',
  },
  {
    mnemonic: 'xadd',
    opcode: Opcode.FetchAdd,
    form: OperandForm.RegMem,
    summary: 'atomically: old <- [mem]; [mem] <- old + rd; rd <- old (mem 4-aligned)',
  },

  {
    mnemonic: 'rdtsc',
    opcode: Opcode.Rdtsc,
    form: OperandForm.RegDestination,
    summary: 'rd <- low 32 bits of the VM clock in nanoseconds (shared by all vCPUs)',
  },
  { mnemonic: 'rdmsr', opcode: Opcode.Rdmsr, form: OperandForm.RegIndex, summary: 'rd:rd+1 <- MSR[rs + imm] (low word in rd)' },
  { mnemonic: 'wrmsr', opcode: Opcode.Wrmsr, form: OperandForm.IndexReg, summary: 'MSR[rs + imm] <- rt:rt+1 (low word in rt)' },
  { mnemonic: 'livt', opcode: Opcode.Livt, form: OperandForm.Index, summary: 'interrupt vector table base <- rs + imm' },
  {
    mnemonic: 'hypercall',
    opcode: Opcode.Hypercall,
    form: OperandForm.Imm,
    summary: 'call the host: number imm, arguments r1-r3, result in r0',
  },
];

export const INSTRUCTIONS_BY_MNEMONIC: ReadonlyMap<string, InstructionDefinition> = new Map(
  INSTRUCTIONS.map((definition) => [definition.mnemonic, definition]),
);

/** Register aliases the assembler accepts besides r0..r15. */
export const REGISTER_ALIASES: ReadonlyMap<string, number> = new Map([['sp', STACK_POINTER]]);

/** Flags word pushed by interrupts and pushf: only IF (bit 9, as in x86 EFLAGS) is defined. */
export const FLAGS_INTERRUPT_ENABLE = 1 << 9;

/** Encodes one instruction into two 32-bit words. */
export function encodeInstruction(opcode: Opcode, fieldA: number, fieldB: number, fieldC: number, immediate: number): [number, number] {
  return [opcode | (fieldA << 8) | (fieldB << 16) | (fieldC << 24) | 0, immediate | 0];
}

export interface DecodedInstruction {
  readonly opcode: number;
  readonly fieldA: number;
  readonly fieldB: number;
  readonly fieldC: number;
  readonly immediate: number;
}

export function decodeInstruction(word0: number, word1: number): DecodedInstruction {
  return { opcode: word0 & 0xff, fieldA: (word0 >>> 8) & 0xff, fieldB: (word0 >>> 16) & 0xff, fieldC: word0 >>> 24, immediate: word1 | 0 };
}

const DEFINITION_BY_OPCODE: ReadonlyMap<number, InstructionDefinition> = (() => {
  const byOpcode = new Map<number, InstructionDefinition>();
  for (const definition of INSTRUCTIONS) {
    byOpcode.set(definition.opcode, definition);
    if (definition.immediateOpcode !== undefined) byOpcode.set(definition.immediateOpcode, definition);
    if (definition.registerOpcode !== undefined) byOpcode.set(definition.registerOpcode, definition);
  }
  return byOpcode;
})();

const hex = (value: number): string => `0x${(value >>> 0).toString(16)}`;
const register = (n: number): string => (n === ZERO_REGISTER ? '' : n === STACK_POINTER ? 'sp' : `r${n}`);
const memoryOperand = (base: number, displacement: number): string => {
  const baseText = register(base);
  if (baseText === '') return `[${hex(displacement)}]`;
  if (displacement === 0) return `[${baseText}]`;
  return displacement < 0 ? `[${baseText} - ${-displacement}]` : `[${baseText} + ${displacement}]`;
};
const indexOperand = (base: number, immediate: number): string => {
  const baseText = register(base);
  if (baseText === '') return hex(immediate);
  return immediate === 0 ? baseText : `${baseText} + ${immediate}`;
};

/** Renders an instruction in assembler syntax, for fault reports and traces. */
export function disassemble(word0: number, word1: number): string {
  const { opcode, fieldA: a, fieldB: b, fieldC: c, immediate } = decodeInstruction(word0, word1);
  const definition = DEFINITION_BY_OPCODE.get(opcode);
  if (definition === undefined) return `.word ${hex(word0)}, ${hex(word1)} ; invalid opcode ${hex(opcode)}`;
  const m = definition.mnemonic;
  switch (definition.form) {
    case OperandForm.None:
      return m;
    case OperandForm.RegReg:
      return `${m} ${register(a)}, ${register(b)}`;
    case OperandForm.RegImm:
      return `${m} ${register(a)}, ${hex(immediate)}`;
    case OperandForm.RegRegReg:
      return opcode === definition.opcode
        ? `${m} ${register(a)}, ${register(b)}, ${register(c)}`
        : `${m} ${register(a)}, ${register(b)}, ${immediate}`;
    case OperandForm.BranchCompare:
      return `${m} ${register(a)}, ${register(b)}, ${hex(immediate)}`;
    case OperandForm.BranchZero:
      return `${m} ${register(a)}, ${hex(immediate)}`;
    case OperandForm.Target:
      return opcode === definition.opcode ? `${m} ${hex(immediate)}` : `${m} ${register(a)}`;
    case OperandForm.Reg:
    case OperandForm.RegDestination:
      return `${m} ${register(a)}`;
    case OperandForm.RegMem:
      return `${m} ${register(a)}, ${memoryOperand(b, immediate)}`;
    case OperandForm.MemReg:
      return `${m} ${memoryOperand(b, immediate)}, ${register(a)}`;
    case OperandForm.RegMemReg:
      return `${m} ${register(a)}, ${memoryOperand(b, immediate)}, ${register(c)}`;
    case OperandForm.RegIndex:
      return `${m} ${register(a)}, ${indexOperand(b, immediate)}`;
    case OperandForm.IndexReg:
      return `${m} ${indexOperand(b, immediate)}, ${register(a)}`;
    case OperandForm.Index:
      return `${m} ${indexOperand(b, immediate)}`;
    case OperandForm.Imm:
    default:
      return `${m} ${immediate}`;
  }
}
