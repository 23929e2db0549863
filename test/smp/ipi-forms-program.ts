// Setup only (no assertions): the guest program icr-forms.test.ts and x2apic.test.ts share. vCPU 0
// sends a list of IPIs, one step at a time, waiting (bounded) for the handler runs each should
// cause; every vCPU counts its handler runs per slot and reports them (HC_REPORT slot k). The APIC
// is reached through MMIO (xAPIC) or the x2APIC MSRs, per `access`.
import type { VmReport } from '../../src/kvm/report/vm-report.js';

export const FIXED = 0,
  LOWEST = 0x100,
  SMI = 0x200,
  NMI = 0x400,
  INIT = 0x500,
  LOGICAL = 0x800;
export const ASSERT = 0x4000,
  LEVEL = 0x8000,
  SELF = 0x40000,
  ALL_INCLUDING = 0x80000,
  ALL_EXCLUDING = 0xc0000;

export interface Step {
  readonly name: string;
  /** ICR low; the vector 0x40 + slot is ORed in for Fixed and LowestPriority. */
  readonly icr: number;
  /** Destination: the xAPIC ID byte, or the 32-bit x2APIC destination. */
  readonly destination: number;
  /** Slot the receivers' handler counts in (it also picks the vector); NMIs count in NMI_SLOT. */
  readonly slot: number;
  readonly repeat?: number;
  /** Handler runs this step causes (the sender waits for them); 0 for messages that are dropped. */
  readonly handled: number;
  /** Expected handler runs in `slot` per vCPU after the whole program. */
  readonly expect?: readonly number[];
}

export const NMI_SLOT = 9;
const SLOTS = 16;

/** How the program reaches its APIC. */
export interface ApicAccess {
  /** Runs first on every vCPU (r6 = its index); may use r2-r5. */
  readonly setup: string;
  /** Sends ICR low `icr` to `destination`; may use r2-r5. */
  send(icr: number, destination: number): string;
  /** This vCPU's index (its APIC ID) into `register`; may clobber the next register. */
  index(register: string): string;
  /** EOI; r2 and r3 are free. */
  readonly endOfInterrupt: string;
}

export const XAPIC_ACCESS = (setup: string): ApicAccess => ({
  setup,
  send: (icr, destination) => `
        li r2, ${destination} << APIC_DEST_SHIFT
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, ${icr >>> 0}
        st32 [APIC_BASE + APIC_ICR], r2`,
  index: (register) => `
        ld32 ${register}, [APIC_BASE + APIC_ID]
        shr ${register}, ${register}, 24`,
  endOfInterrupt: 'st32 [APIC_BASE + APIC_EOI], r3',
});

/** Enters x2APIC mode through IA32_APIC_BASE, then uses MSRs only. */
export const X2APIC_ACCESS: ApicAccess = {
  setup: `
        rdmsr r2, MSR_IA32_APICBASE
        or r2, r2, X2APIC_ENABLE
        wrmsr MSR_IA32_APICBASE, r2`,
  send: (icr, destination) => `
        li r4, ${icr >>> 0}
        li r5, ${destination >>> 0}
        wrmsr APIC_BASE_MSR + (APIC_ICR >> 4), r4`,
  index: (register) => `
        rdmsr ${register}, APIC_BASE_MSR + (APIC_ID >> 4)`,
  endOfInterrupt: `li r2, 0
        li r3, 0
        wrmsr APIC_BASE_MSR + (APIC_EOI >> 4), r2`,
};

export function formsProgram(steps: readonly Step[], access: ApicAccess): string {
  const handlers = Array.from(
    { length: SLOTS },
    (_, slot) => `
h${slot}:   push r2
        push r3
${access.index('r2')}
        shl r2, r2, 6
        li r3, 1
        xadd r3, [r2 + counts + ${4 * slot}]
        li r3, 1
        xadd r3, [handled]
        ${slot === NMI_SLOT ? '' : access.endOfInterrupt}
        pop r3
        pop r2
        iret`,
  ).join('\n');
  let expected = 0;
  const sends = steps
    .flatMap((step, index) =>
      Array.from({ length: step.repeat ?? 1 }, () => {
        expected += step.handled;
        const vectorForm = (step.icr & 0x700) === FIXED || (step.icr & 0x700) === LOWEST;
        return `${access.send(step.icr | (vectorForm ? 0x40 + step.slot : 0), step.destination)}
        li r13, ${expected}
        li r12, ${index}
        call wait_handled`;
      }),
    )
    .join('\n');
  const ivt = Array.from({ length: 256 }, (_, vector) => {
    if (vector === 2) return `h${NMI_SLOT}`;
    return vector >= 0x40 && vector < 0x40 + SLOTS ? `h${vector - 0x40}` : '0';
  });
  return `
        .entry start
start:  mov r6, r0
        mov r9, r1
        livt ivt
${access.setup}
        li r2, 1
        xadd r2, [ready]
        sti
        bnez r6, receiver
wait_ready:
        ld32 r2, [ready]
        bltu r2, r9, wait_ready          ; every vCPU's setup is done
${sends}
        li r2, 1
        xchg r2, [finished]
        jmp report
receiver:
        pause
        ld32 r2, [finished]
        beqz r2, receiver
report: cli
${access.index('r6')}
        shl r6, r6, 6
        li r7, 0
report_loop:
        mov r1, r7
        shl r8, r7, 2
        add r8, r8, r6
        ld32 r2, [r8 + counts]
        hypercall HC_REPORT
        add r7, r7, 1
        li r8, ${SLOTS}
        bltu r7, r8, report_loop
        li r1, 0
        hypercall HC_DONE

; Waits until handled >= r13, at most 2 s; else aborts with the step index (r12).
wait_handled:
        rdtsc r10
wait_loop:
        ld32 r2, [handled]
        bgeu r2, r13, wait_end
        pause
        rdtsc r11
        sub r11, r11, r10
        li r2, 2000000000
        bltu r11, r2, wait_loop
        li r1, 1
        mov r2, r12
        hypercall HC_ABORT
wait_end:
        ret
${handlers}
        .align 4
ready:    .word 0
finished: .word 0
handled:  .word 0
counts:   .zero 64 * 8
ivt:      .word ${ivt.join(', ')}
`;
}

/** Each vCPU's handler runs in `slot`, from its HC_REPORT slots. */
export const countsBySlot = (report: VmReport, slot: number): number[] => report.perVcpu.map((vcpu) => vcpu.guest.reports[slot]!);

/** sent = accepted + coalesced + dropped, and nothing accepted was lost. */
export function ipiBalance(report: VmReport): { readonly unaccounted: number; readonly lost: number } {
  const { sent, accepted, coalesced, dropped, lost } = report.ipis;
  return { unaccounted: sent - (accepted + coalesced + dropped.illegalVector + dropped.invalidTarget + dropped.unsupported), lost };
}
