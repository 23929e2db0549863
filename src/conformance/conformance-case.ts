// The shape of a conformance case: a guest program (src/conformance/programs/<file>), the VM it
// runs on, a bound on how long it may take, and a host-side verdict over the run report. The cases
// port the SCENARIOS of the peers' tests (kvm-unit-tests x86/apic.c and x86/smptest.c, the KVM
// selftests xapic_state_test and recalc_apic_map_test), not their code: docs/conformance.md says
// where each comes from and what it checks.
//
// A case states what real hardware does (the architectural interface), not what the emulator does
// today: a case for a feature the emulator lacks fails, with a detail that says what went wrong.

import type { VmConfig } from '../kvm/vm/vm.js';
import type { VmReport } from '../kvm/report/vm-report.js';

export interface CaseVerdict {
  readonly ok: boolean;
  readonly detail: string;
}

export interface ConformanceCase {
  /** As kvm-unit-tests names its tests: `<suite>/<test>`, e.g. apic/self-ipi-xapic. */
  readonly name: string;
  /** The test it ports: repository, file and function. */
  readonly origin: string;
  /** What it checks, in one sentence (for --list and docs/conformance.md). */
  readonly summary: string;
  /** File name under src/conformance/programs/. */
  readonly program: string;
  readonly vcpus: number;
  /** Assembler constants over the program's `.equ` defaults (VCPUS is always passed). */
  readonly defines?: ReadonlyMap<string, number>;
  /** VM settings the case needs (halt-polling off so that targets really sleep, say). */
  readonly vmConfig?: Partial<Omit<VmConfig, 'vcpus'>>;
  /** The backstop: the VM is stopped and the case fails after this long. */
  readonly timeoutSeconds: number;
  /** The program's HC_ABORT codes (r1) and what each means. */
  readonly abortCodes: ReadonlyMap<number, string>;
  /** The host's verdict over a run that ended with every vCPU done and nothing lost. */
  check(report: VmReport): CaseVerdict;
}

export const pass = (detail: string): CaseVerdict => ({ ok: true, detail });
export const fail = (detail: string): CaseVerdict => ({ ok: false, detail });

/** HC_REPORT slot `slot` of vCPU `vcpu` (undefined if the vCPU is missing). */
export function slot(report: VmReport, vcpu: number, slot: number): number | undefined {
  return report.perVcpu[vcpu]?.guest.reports[slot];
}

export interface SlotExpectation {
  readonly vcpu: number;
  readonly slot: number;
  readonly expected: number;
  /** What the slot holds, for the detail: "handler runs after the self-IPI". */
  readonly what: string;
}

const hex = (value: number): string => `0x${value.toString(16)}`;

/** Passes when every slot holds its expected value; the detail names every one that does not. */
export function expectSlots(report: VmReport, expectations: readonly SlotExpectation[], passDetail: string): CaseVerdict {
  const wrong = expectations.filter((entry) => slot(report, entry.vcpu, entry.slot) !== entry.expected);
  if (wrong.length === 0) return pass(passDetail);
  return fail(
    wrong
      .map((entry) => {
        const actual = slot(report, entry.vcpu, entry.slot);
        return `vCPU ${entry.vcpu} ${entry.what}: ${actual === undefined ? 'missing' : `${actual} (${hex(actual)})`}, expected ${entry.expected} (${hex(entry.expected)})`;
      })
      .join('; '),
  );
}

/** Every vCPU's slot `slotIndex` must be `expected(vcpu)`. */
export function everyVcpuSlot(vcpus: number, slotIndex: number, expected: (vcpu: number) => number, what: string): SlotExpectation[] {
  return Array.from({ length: vcpus }, (_, vcpu) => ({ vcpu, slot: slotIndex, expected: expected(vcpu), what }));
}
