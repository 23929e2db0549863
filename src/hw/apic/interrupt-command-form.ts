// Every ICR form, what it asks for and whether the sending APIC accepts it (Intel SDM vol. 3
// §11.6.1 table "Valid Combinations for the Pentium 4 and Intel Xeon Processors' Local xAPIC
// Interrupt Command Register", §11.5.3 ESR; AMD APM vol. 2 §16.5; KVM __apic_accept_irq and
// kvm_irq_delivery_to_apic). Pure classification: the caller (the kvm layer's ICR emulation, on
// an incomplete-IPI cause 0/2 exit or a WRMSR 0x830) sends, drops or latches ESR bits as told.
//
// How a caller uses this, per ICR write:
//   1. form = interruptCommandForm(low); check = checkInterruptCommand(low, implementation)
//   2. esr |= errorStatusForSend(check); if check !== Send, stop (nothing is delivered)
//   3. match targets (apic-destination.ts / x2apic-destination.ts); for LowestPriority pick one
//      with selectLowestPriorityTarget (lowest-priority.ts)
//   4. at each target: receiveCheck(deliveryMode, vector); on ReceivedIllegalVector set that
//      target's ESR bit 6 and do not touch IRR; otherwise act on `form` (IRR, NMI, INIT, SIPI).

import { FIRST_LEGAL_VECTOR } from './apic-backing-page.js';
import { ErrorStatusBit, errorStatusMask } from './error-status.js';
import {
  DeliveryMode,
  DestinationShorthand,
  TriggerMode,
  interruptCommandDeliveryMode,
  interruptCommandLevelAsserted,
  interruptCommandShorthand,
  interruptCommandTriggerMode,
  interruptCommandVector,
  type DestinationMode,
  interruptCommandDestinationMode,
  ICR_VECTOR_MASK,
  ICR_DELIVERY_MODE_SHIFT,
  ICR_DESTINATION_MODE_LOGICAL,
  ICR_LEVEL_ASSERT,
  ICR_TRIGGER_MODE_LEVEL,
  ICR_SHORTHAND_SHIFT,
} from './interrupt-command.js';
import { ApicImplementation } from './interrupt-command-readback.js';

/** The message an ICR write asks for. */
export const InterruptCommandForm = {
  Fixed: 0,
  LowestPriority: 1,
  Smi: 2,
  /** Delivery mode 011b: reserved (the old remote read; KVM reuses it for a PV unhalt kick). */
  ReservedRemoteRead: 3,
  Nmi: 4,
  /** INIT with level = 1 (or edge): resets the target into wait-for-SIPI. */
  InitAssert: 5,
  /** INIT with trigger = level and level = 0: the P6-era arbitration ID resync; ignored since Pentium 4. */
  InitLevelDeassert: 6,
  /** Start-up: the target (in wait-for-SIPI) starts at startUpAddress(vector). */
  StartUp: 7,
  /** Delivery mode 111b: reserved for IPIs (ExtINT exists only in LVT and I/O APIC entries). */
  ReservedExtInt: 8,
} as const;
export type InterruptCommandForm = (typeof InterruptCommandForm)[keyof typeof InterruptCommandForm];

/** The form of ICR low `low`. */
export function interruptCommandForm(low: number): InterruptCommandForm {
  switch (interruptCommandDeliveryMode(low)) {
    case DeliveryMode.Fixed:
      return InterruptCommandForm.Fixed;
    case DeliveryMode.LowestPriority:
      return InterruptCommandForm.LowestPriority;
    case DeliveryMode.Smi:
      return InterruptCommandForm.Smi;
    case DeliveryMode.Reserved3:
      return InterruptCommandForm.ReservedRemoteRead;
    case DeliveryMode.Nmi:
      return InterruptCommandForm.Nmi;
    case DeliveryMode.Init:
      return isLevelDeassert(low) ? InterruptCommandForm.InitLevelDeassert : InterruptCommandForm.InitAssert;
    case DeliveryMode.StartUp:
      return InterruptCommandForm.StartUp;
    default:
      return InterruptCommandForm.ReservedExtInt;
  }
}

/** Trigger = level with level = 0: a de-assert message. */
export function isLevelDeassert(low: number): boolean {
  return interruptCommandTriggerMode(low) === TriggerMode.Level && !interruptCommandLevelAsserted(low);
}

/** What the sending APIC does with an ICR write. */
export const InterruptCommandCheck = {
  /** Send it. */
  Send: 0,
  /** Fixed or lowest priority with vector 0..15: ESR bit 5, nothing sent. */
  SendIllegalVector: 1,
  /** A level de-assert message (INIT de-assert, or Fixed/LowestPriority with level = 0): dropped. */
  IgnoredLevelDeassert: 2,
  /** Delivery mode 011b or 111b: dropped. */
  ReservedDeliveryMode: 3,
  /** A shorthand/delivery-mode pair the SDM calls invalid (e.g. Self + NMI): dropped on hardware. */
  InvalidShorthandCombination: 4,
} as const;
export type InterruptCommandCheck = (typeof InterruptCommandCheck)[keyof typeof InterruptCommandCheck];

/**
 * The SDM's valid combinations: with shorthand Self or AllIncludingSelf only Fixed is valid; with
 * no shorthand or AllExcludingSelf every delivery mode is. (Level trigger is separately "treated
 * as edge if level = 1, otherwise ignored", see checkInterruptCommand.)
 */
export function isValidShorthandCombination(low: number): boolean {
  const shorthand = interruptCommandShorthand(low);
  if (shorthand === DestinationShorthand.None || shorthand === DestinationShorthand.AllExcludingSelf) return true;
  return interruptCommandDeliveryMode(low) === DeliveryMode.Fixed;
}

/**
 * What the sender does with ICR low `low` under `implementation`. Order of checks: reserved mode,
 * de-assert, illegal vector, shorthand combination.
 *   KvmEmulated: KVM validates nothing at send time; at acceptance it drops Fixed/LowestPriority
 *     and INIT de-asserts, and AVIC drops vectors < 16 (cause 4). It delivers invalid shorthand
 *     pairs (Self + NMI reaches the sender), so InvalidShorthandCombination is never returned,
 *     and it delivers NMI/SMI/SIPI even with level = 0. Reserved modes: dropped here (KVM turns
 *     011b into a PV unhalt kick that guests of this emulator cannot use, and ignores 111b).
 *   IntelHardware / AmdAvic: the SDM rules above; every level-triggered de-assert is ignored.
 */
export function checkInterruptCommand(
  low: number,
  implementation: ApicImplementation = ApicImplementation.KvmEmulated,
): InterruptCommandCheck {
  const mode = interruptCommandDeliveryMode(low);
  if (mode === DeliveryMode.Reserved3 || mode === DeliveryMode.Reserved7) return InterruptCommandCheck.ReservedDeliveryMode;
  if (isLevelDeassert(low)) {
    const kvmIgnores = mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority || mode === DeliveryMode.Init;
    if (implementation !== ApicImplementation.KvmEmulated || kvmIgnores) return InterruptCommandCheck.IgnoredLevelDeassert;
  }
  if (carriesVector(mode) && interruptCommandVector(low) < FIRST_LEGAL_VECTOR) return InterruptCommandCheck.SendIllegalVector;
  if (implementation !== ApicImplementation.KvmEmulated && !isValidShorthandCombination(low))
    return InterruptCommandCheck.InvalidShorthandCombination;
  return InterruptCommandCheck.Send;
}

/** Fixed and lowest priority deliver their vector into IRR; the other modes ignore or reuse it. */
export function carriesVector(mode: DeliveryMode): boolean {
  return mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority;
}

/** ESR bits the sender latches for `check` (SDM §11.5.3): bit 5 for an illegal vector, else 0. */
export function errorStatusForSend(check: InterruptCommandCheck): number {
  return check === InterruptCommandCheck.SendIllegalVector ? errorStatusMask(ErrorStatusBit.SendIllegalVector) : 0;
}

/** Receive-side outcome at one target. */
export const ReceiveCheck = {
  Accept: 0,
  /** Fixed/LowestPriority with vector 0..15 arrived: ESR bit 6, IRR untouched. */
  ReceivedIllegalVector: 1,
} as const;
export type ReceiveCheck = (typeof ReceiveCheck)[keyof typeof ReceiveCheck];

/**
 * What a target APIC does with an arriving message. Only reachable with an illegal vector when the
 * sender did not check (an I/O APIC or MSI source, or a model that skips checkInterruptCommand).
 */
export function receiveCheck(mode: DeliveryMode, vector: number): ReceiveCheck {
  return carriesVector(mode) && vector < FIRST_LEGAL_VECTOR ? ReceiveCheck.ReceivedIllegalVector : ReceiveCheck.Accept;
}

/** ESR bits a target latches for `check`: bit 6 for an illegal vector. */
export function errorStatusForReceive(check: ReceiveCheck): number {
  return check === ReceiveCheck.ReceivedIllegalVector ? errorStatusMask(ErrorStatusBit.ReceivedIllegalVector) : 0;
}

/**
 * Send/receive accept errors (ESR bits 2 and 3) exist only on the P6/Pentium APIC bus, where a
 * message no APIC accepted is reported. Modern Intel, AMD and KVM never set them; a caller that
 * models the APIC bus passes apicBus = true. `acceptedTargets` is the number of APICs that took
 * the message (0 for a physical destination that names nobody).
 */
export function errorStatusForAccept(acceptedTargets: number, apicBus: boolean): number {
  if (!apicBus || acceptedTargets > 0) return 0;
  return errorStatusMask(ErrorStatusBit.SendAccept);
}

/**
 * ESR is read through a latch (SDM §11.5.3): errors accumulate in an internal register; a write
 * to ESR (any value in xAPIC, zero in x2APIC) copies them to the readable register and clears the
 * internal one. Returns the new readable value; the caller then sets its pending word to 0.
 */
export function errorStatusOnWrite(pendingErrors: number): number {
  return pendingErrors & 0xff;
}

/** Start-up IPI: the target starts in real mode at CS = vector << 8, IP = 0, i.e. vector << 12. */
export function startUpAddress(vector: number): number {
  return (vector & ICR_VECTOR_MASK) * 0x1000;
}

/** The x2APIC destination: all 32 bits of the high half (SDM §11.12.9). */
export function x2apicInterruptCommandDestination(high: number): number {
  return high >>> 0;
}

/** A decoded ICR in either mode (slow paths and tests; allocates). */
export interface InterruptCommandMessage {
  readonly form: InterruptCommandForm;
  readonly deliveryMode: DeliveryMode;
  readonly vector: number;
  readonly destinationMode: DestinationMode;
  readonly shorthand: DestinationShorthand;
  readonly triggerMode: TriggerMode;
  readonly levelAssert: boolean;
  /** 8-bit (xAPIC, ICR high 31:24) or 32-bit (x2APIC, ICR high 31:0) destination. */
  readonly destination: number;
}

export function decodeInterruptCommandMessage(low: number, high: number, x2apic: boolean): InterruptCommandMessage {
  return {
    form: interruptCommandForm(low),
    deliveryMode: interruptCommandDeliveryMode(low),
    vector: interruptCommandVector(low),
    destinationMode: interruptCommandDestinationMode(low),
    shorthand: interruptCommandShorthand(low),
    triggerMode: interruptCommandTriggerMode(low),
    levelAssert: interruptCommandLevelAsserted(low),
    destination: x2apic ? x2apicInterruptCommandDestination(high) : high >>> 24,
  };
}

/** Encodes an x2APIC ICR as [low, high] unsigned halves; reserved bits are left zero. */
export function encodeX2apicInterruptCommand(message: Partial<InterruptCommandMessage>): { low: number; high: number } {
  const low =
    ((message.vector ?? 0) & ICR_VECTOR_MASK) |
    (((message.deliveryMode ?? DeliveryMode.Fixed) & 7) << ICR_DELIVERY_MODE_SHIFT) |
    (message.destinationMode === 1 ? ICR_DESTINATION_MODE_LOGICAL : 0) |
    ((message.levelAssert ?? true) ? ICR_LEVEL_ASSERT : 0) |
    (message.triggerMode === TriggerMode.Level ? ICR_TRIGGER_MODE_LEVEL : 0) |
    (((message.shorthand ?? DestinationShorthand.None) & 3) << ICR_SHORTHAND_SHIFT);
  return { low: low >>> 0, high: (message.destination ?? 0) >>> 0 };
}
