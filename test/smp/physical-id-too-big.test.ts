// PHYSICAL_ID_TOO_BIG with real vCPU workers (avic_init_backing_page): a vCPU whose ID is beyond
// what the VM's AVIC addresses is created anyway, AVIC is inhibited for the whole VM, and every IPI
// goes through KVM's software path, none lost. Running 513 (or 4097) vCPUs here is too much for a
// test, so the limit is lowered with VcpuCreation's test knob (avicMaxPhysicalId = 2, as if the
// CPU's AVIC addressed IDs 0..2 only): vCPU 3 is then "too big", exactly as vCPU 512 is without
// the 4K extension. It is hot-added before the run, so it is created by the same code path a VM's
// own vCPUs are, and the inhibit is set before any vCPU starts.
import { describe, expect, it } from 'vitest';
import { assemble, formatDiagnostic } from '../../src/guest/assembler.js';
import { Vm, type VmConfig } from '../../src/kvm/vm/vm.js';
import { ApicvInhibitReason, apicvInhibitReasons } from '../../src/kvm/control/apic-inhibit.js';
import type { VmReport } from '../../src/kvm/report/vm-report.js';
import { summary } from './smp-support.js';
import {
  ALL_EXCLUDING,
  FIXED,
  LOGICAL,
  X2APIC_ACCESS,
  XAPIC_ACCESS,
  countsBySlot,
  formsProgram,
  ipiBalance,
  type Step,
} from './ipi-forms-program.js';

const REPEAT = 20;

async function runWithVcpu3TooBig(
  source: string,
  config: Omit<VmConfig, 'vcpus' | 'maxVcpus'> = {},
): Promise<{ report: VmReport; inhibits: number }> {
  const assembled = assemble(source, { fileName: 'physical-id-too-big.s' });
  if (!assembled.ok) throw new Error(assembled.errors.map(formatDiagnostic).join('\n'));
  const vm = await Vm.create({ ...config, vcpus: 3, maxVcpus: 4 });
  vm.creation.avicMaxPhysicalId = 2;
  await vm.hotAddVcpu();
  vm.loadProgram(assembled.program);
  const inhibits = apicvInhibitReasons(vm.memory);
  return { report: await vm.run({ timeoutSeconds: 30 }), inhibits };
}

describe("a vCPU ID beyond AVIC's reach: AVIC inhibited for the VM, software delivery, nothing lost", () => {
  it('x2APIC IPIs under x2AVIC: no doorbell, no AVIC exit, a kick per remote message, every handler run', async () => {
    const steps: readonly Step[] = [
      {
        name: 'physical, x2APIC ID 3 (the vCPU without an entry)',
        icr: FIXED,
        destination: 3,
        slot: 0,
        repeat: REPEAT,
        handled: 1,
        expect: [0, 0, 0, REPEAT],
      },
      {
        name: 'physical broadcast',
        icr: FIXED,
        destination: 0xffffffff,
        slot: 1,
        repeat: REPEAT,
        handled: 4,
        expect: [REPEAT, REPEAT, REPEAT, REPEAT],
      },
      {
        name: 'logical cluster 0, members 1 and 3',
        icr: FIXED | LOGICAL,
        destination: 0x0000000a,
        slot: 2,
        repeat: REPEAT,
        handled: 2,
        expect: [0, REPEAT, 0, REPEAT],
      },
      {
        name: 'all excluding self',
        icr: FIXED | ALL_EXCLUDING,
        destination: 0,
        slot: 3,
        repeat: REPEAT,
        handled: 3,
        expect: [0, REPEAT, REPEAT, REPEAT],
      },
    ];
    const { report, inhibits } = await runWithVcpu3TooBig(formsProgram(steps, X2APIC_ACCESS));
    expect(inhibits & ApicvInhibitReason.PhysicalIdTooBig).not.toBe(0);
    expect(report.ok, summary(report)).toBe(true);
    for (const step of steps) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    expect(report.doorbells).toBe(0);
    expect(report.exits.incompleteIpi).toEqual({
      invalidInterruptType: 0,
      targetNotRunning: 0,
      invalidTarget: 0,
      invalidBackingPage: 0,
      invalidIpiVector: 0,
    });
    expect(report.perVcpu[0]!.counters.kicksSent).toBe(REPEAT * (1 + 3 + 2 + 3));
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });

  it('xAPIC IPIs: every APIC access is emulated MMIO (no APIC-access mapping), none lost', async () => {
    const steps: readonly Step[] = [
      { name: 'physical, xAPIC ID 3', icr: FIXED, destination: 3, slot: 0, repeat: REPEAT, handled: 1, expect: [0, 0, 0, REPEAT] },
      {
        name: 'physical broadcast 0xFF',
        icr: FIXED,
        destination: 0xff,
        slot: 1,
        repeat: REPEAT,
        handled: 4,
        expect: [REPEAT, REPEAT, REPEAT, REPEAT],
      },
    ];
    const { report } = await runWithVcpu3TooBig(formsProgram(steps, XAPIC_ACCESS('')));
    expect(report.ok, summary(report)).toBe(true);
    for (const step of steps) expect(countsBySlot(report, step.slot), step.name).toEqual(step.expect);
    expect(report.doorbells).toBe(0);
    expect(report.exits.apicMmioEmulation).toBeGreaterThan(0);
    expect(report.exits.unacceleratedAccess).toEqual({ trap: 0, fault: 0 });
    expect(report.perVcpu[0]!.counters.interruptCommandsWhileInhibited).toBe(2 * REPEAT);
    expect(ipiBalance(report)).toEqual({ unaccounted: 0, lost: 0 });
  });
});
