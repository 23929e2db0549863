// xAPIC register offsets in the APIC MMIO page and the AVIC backing page (AMD APM vol. 2 §16.3,
// Intel SDM vol. 3 §11.4.1 table 11-1). Each register is 32 bits at the start of a 16-byte slot.

export const ApicRegister = {
  /** APIC ID, bits 31:24 in xAPIC mode. */
  Id: 0x020,
  /** Version (read-only): version 0x14, max LVT entry in bits 23:16. */
  Version: 0x030,
  /** Task Priority Register. */
  TaskPriority: 0x080,
  /** Arbitration Priority Register. */
  ArbitrationPriority: 0x090,
  /** Processor Priority Register (read-only; kept current by the model). */
  ProcessorPriority: 0x0a0,
  /** End Of Interrupt (write-only). */
  EndOfInterrupt: 0x0b0,
  /** Remote Read Register. */
  RemoteRead: 0x0c0,
  /** Logical Destination Register: logical APIC ID in bits 31:24. */
  LogicalDestination: 0x0d0,
  /** Destination Format Register: bits 31:28 = 0xF flat, 0x0 cluster. */
  DestinationFormat: 0x0e0,
  /** Spurious Interrupt Vector Register: bit 8 is APIC software enable. */
  SpuriousInterruptVector: 0x0f0,
  /** In-Service Register, 8 x 32 bits at 0x100..0x170. */
  InService: 0x100,
  /** Trigger Mode Register, 8 x 32 bits at 0x180..0x1f0. */
  TriggerMode: 0x180,
  /** Interrupt Request Register, 8 x 32 bits at 0x200..0x270. */
  InterruptRequest: 0x200,
  /** Error Status Register. */
  ErrorStatus: 0x280,
  /** Interrupt Command Register, low half: vector, delivery mode, destination mode, shorthand. */
  InterruptCommandLow: 0x300,
  /** Interrupt Command Register, high half: destination in bits 31:24 (xAPIC). */
  InterruptCommandHigh: 0x310,
  LvtTimer: 0x320,
  LvtThermal: 0x330,
  LvtPerformanceCounter: 0x340,
  LvtLint0: 0x350,
  LvtLint1: 0x360,
  LvtError: 0x370,
  TimerInitialCount: 0x380,
  TimerCurrentCount: 0x390,
  TimerDivideConfiguration: 0x3e0,
} as const;
export type ApicRegister = (typeof ApicRegister)[keyof typeof ApicRegister];

/** LVT CMCI (0x2F0): exists only when the CPU reports it; not in the ApicRegister names above. */
export const APIC_LVT_CMCI_OFFSET = 0x2f0;
/** SELF IPI (0x3F0): an x2APIC-only register (MSR 0x83F), reserved in the xAPIC page. */
export const APIC_SELF_IPI_OFFSET = 0x3f0;

/** x2APIC MSR of the register at page offset R: X2APIC_MSR_BASE + (R >> 4) (SDM §11.12.1.2). */
export const X2APIC_MSR_BASE = 0x800;

/** Guest-physical base of the xAPIC MMIO page (IA32_APIC_BASE reset value). */
export const APIC_DEFAULT_PHYSICAL_BASE = 0xfee00000;
export const APIC_PAGE_BYTES = 4096;
/** 32-bit words in one APIC register page. */
export const APIC_PAGE_WORDS = APIC_PAGE_BYTES / 4;
