// What the AVIC hardware does with one guest access to the vCPU's APIC page (xAVIC), or to an x2APIC
// MSR that x2AVIC passes through (AMD APM vol. 2, 15.29): classify it (classifyApicAccess), complete
// what AVIC accelerates (reads, TPR with the PPR update, EOI, the IPI of an ICR write through the
// physical and logical APIC ID tables), and when it cannot complete the access, write the #VMEXIT
// into the VMCB's exit fields (AvicExitInfo), as the hardware leaves exit_code / exit_info_1 /
// exit_info_2 for the hypervisor to read. The caller dispatches that exit; nothing here knows the
// vCPU, its counters or its locks.
//
// Called in the vCPU's own worker for every APIC register access of its guest, so it allocates
// nothing and uses no BigInt: the VMCB object, its exit fields and its IPI outcome are the vCPU's
// own, overwritten per access.

import { ApicAccessKind, classifyApicAccess } from '../apic/apic-access.js';
import { endOfInterrupt, updateProcessorPriority } from '../apic/apic-backing-page.js';
import { ApicRegister } from '../apic/apic-register.js';
import type { ApicId } from '../apic/apic-id.js';
import { AvicExitInfo } from './avic-exit.js';
import { AvicIpiOutcome, NO_EXIT, deliverAvicIpi, type AvicHardware } from './avic-ipi-delivery.js';
import { deliverX2avicIpi } from './x2avic-ipi-delivery.js';

const ICR_LOW_WORD = ApicRegister.InterruptCommandLow >> 2;
const ICR_HIGH_WORD = ApicRegister.InterruptCommandHigh >> 2;
const TPR_WORD = ApicRegister.TaskPriority >> 2;

/** The guest CPU as AVIC touches it: after an EOI, a TPR write or a self-IPI it re-evaluates (APM 15.29). */
export interface AvicGuestCpu {
  requestInterruptEvaluation(): void;
}

/** One vCPU's VMCB: the AVIC fields the hardware reads, and the exit fields it writes. */
export class AvicVmcb {
  /** avic_backing_page_pointer, as the word base of the page in the hardware's pageWords. */
  backingPage: number;
  /** The vCPU's own physical APIC ID table index: its self-IPIs need no table walk and no doorbell. */
  readonly physicalId: ApicId;
  /** The VM's AVIC tables as the VMCB shows them in xAPIC mode (avic_physical_id max index up to 0xFE). */
  readonly xavic: AvicHardware;
  /** The same tables in x2APIC mode (x2AVIC max index up to 0x1FF; avic_get_max_physical_id). */
  readonly x2avic: AvicHardware;
  /** exit_code, exit_info_1, exit_info_2 of the last access; exitCode 0 after one that needed no exit. */
  readonly exit = new AvicExitInfo();
  /** What the last ICR write did in the hardware (targets, IRR bits, doorbells): the model's counters. */
  readonly ipi = new AvicIpiOutcome();

  constructor(physicalId: ApicId, backingPage: number, xavic: AvicHardware, x2avic: AvicHardware) {
    this.physicalId = physicalId;
    this.backingPage = backingPage;
    this.xavic = xavic;
    this.x2avic = x2avic;
  }
}

/**
 * A guest read of the register at `offset` (an xAVIC MMIO read, or an x2AVIC RDMSR after its #GP
 * checks). Returns the page's value; a read AVIC does not accelerate (the current count, an offset
 * inside a slot) returns 0 with an AVIC_NOACCEL fault exit in vmcb.exit.
 */
export function avicApicRead(vmcb: AvicVmcb, offset: number): number {
  const exit = vmcb.exit;
  exit.exitCode = 0;
  const words = vmcb.xavic.pageWords;
  const base = vmcb.backingPage;
  if (classifyApicAccess(offset, false, words, base) === ApicAccessKind.Fault) {
    exit.setUnacceleratedAccess(offset, false, 0);
    return 0;
  }
  return words[base + (offset >> 2)]!;
}

/**
 * An xAVIC guest write of `value` at `offset`. Returns how AVIC took it; vmcb.exit holds the exit,
 * if any: AVIC_NOACCEL after a trap (the write is in the page) or instead of a fault (nothing was
 * written), AVIC_INCOMPLETE_IPI after an ICR-low write it could not fully deliver.
 */
export function avicApicWrite(vmcb: AvicVmcb, cpu: AvicGuestCpu, offset: number, value: number): ApicAccessKind {
  const exit = vmcb.exit;
  exit.exitCode = 0;
  const words = vmcb.xavic.pageWords;
  const base = vmcb.backingPage;
  const kind = classifyApicAccess(offset, true, words, base);
  switch (kind) {
    case ApicAccessKind.InterruptCommand: {
      words[base + ICR_LOW_WORD] = value;
      const high = words[base + ICR_HIGH_WORD]!;
      deliverAvicIpi(value, high, vmcb.physicalId, base, vmcb.xavic, vmcb.ipi);
      completeIpi(vmcb, cpu, value, high);
      break;
    }
    default:
      completeWrite(vmcb, cpu, kind, offset, value);
  }
  return kind;
}

/**
 * An x2AVIC WRMSR of the x2APIC register at page `offset` (EAX `low`, EDX `high`), after the
 * hardware's #GP checks: AVIC handles it as the same register in the APIC page. An ICR write lands
 * in the page as written (both halves; ICR[63:32] is the destination) and is delivered through the
 * x2AVIC tables; a trapping write lands in the page before its exit.
 */
export function x2avicMsrWrite(vmcb: AvicVmcb, cpu: AvicGuestCpu, offset: number, low: number, high: number): ApicAccessKind {
  const exit = vmcb.exit;
  exit.exitCode = 0;
  const words = vmcb.x2avic.pageWords;
  const base = vmcb.backingPage;
  const kind = classifyApicAccess(offset, true, words, base);
  switch (kind) {
    case ApicAccessKind.InterruptCommand:
      words[base + ICR_LOW_WORD] = low;
      words[base + ICR_HIGH_WORD] = high;
      deliverX2avicIpi(low, high, vmcb.physicalId, base, vmcb.x2avic, vmcb.ipi);
      completeIpi(vmcb, cpu, low, high);
      break;
    default:
      completeWrite(vmcb, cpu, kind, offset, low);
  }
  return kind;
}

/** The sender's own IRR got the vector: re-evaluate; an exit cause goes into the exit fields. */
function completeIpi(vmcb: AvicVmcb, cpu: AvicGuestCpu, icrLow: number, icrHigh: number): void {
  const ipi = vmcb.ipi;
  if (ipi.selfTargeted) cpu.requestInterruptEvaluation();
  if (ipi.exit !== NO_EXIT) vmcb.exit.setIncompleteIpi(icrLow, icrHigh, ipi.exit, ipi.exitIndex);
}

function completeWrite(vmcb: AvicVmcb, cpu: AvicGuestCpu, kind: ApicAccessKind, offset: number, value: number): void {
  const words = vmcb.xavic.pageWords;
  const base = vmcb.backingPage;
  switch (kind) {
    case ApicAccessKind.Accelerated:
      words[base + (offset >> 2)] = value;
      return;
    case ApicAccessKind.AcceleratedTaskPriority:
      // TPR bits 7:0; PPR follows at once, and a lower priority may let a pending vector in.
      words[base + TPR_WORD] = value & 0xff;
      updateProcessorPriority(words, base);
      cpu.requestInterruptEvaluation();
      return;
    case ApicAccessKind.AcceleratedEndOfInterrupt:
      endOfInterrupt(words, base);
      cpu.requestInterruptEvaluation();
      return;
    case ApicAccessKind.Trap:
      // The write completes in the page, then the exit: software applies its side effects.
      words[base + (offset >> 2)] = value;
      vmcb.exit.setUnacceleratedAccess(offset, true, 0);
      return;
    default:
      // A fault: nothing is written; software emulates the instruction.
      vmcb.exit.setUnacceleratedAccess(offset, true, 0);
  }
}
