// The scheduling points a deterministic run switches threads at (src/host/host-thread.ts), seen by a
// fake host installed with setHostThread, for one xAPIC IPI to a halted vCPU: two real Vcpus run one
// after the other in this thread (no workers), the target until it blocks in HLT, then the sender
// until its ICR write has kicked the target awake. The points must come in protocol order, each in
// the window it opens: a point moved or removed changes the sequence and fails the test.

import { PAUSE_LOOP_WINDOW } from '../../../src/guest/guest-cpu.js';
import { afterEach, describe, expect, it } from 'vitest';
import { parallelHostThread, SCHEDULING_POINT_NAMES, setHostThread } from '../../../src/host/host-thread.js';
import { TaskState } from '../../../src/host/run-queue.js';
import { SliceEnd } from '../../../src/kvm/vcpu/vcpu-startup.js';
import { Vcpu, type LoadedHostCpu, type VcpuStartup } from '../../../src/kvm/vcpu/vcpu.js';
import type { Vm } from '../../../src/kvm/vm/vm.js';
import { VirtualTimeCost } from '../../../src/host/virtual-time-costs.js';
import { createGuest } from '../../smp/smp-support.js';

const SENDER = 0;
const TARGET = 1;

const SOURCE = `
        .entry target, ${TARGET}
        .entry sender, ${SENDER}
target:
        livt ivt
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        st32 [APIC_BASE + APIC_SPIV], r2
        sti
        hlt
        hypercall HC_DONE
sender:
        li r2, ${TARGET} << 24
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, 0x40                     ; fixed, physical, vector 0x40
        st32 [APIC_BASE + APIC_ICR], r2
        hypercall HC_DONE
handler:
        st32 [APIC_BASE + APIC_EOI], r2
        iret
ivt:
        .zero 4 * 0x40
        .word handler
`;

/** Points that are about the IPI and the block / wake protocol (lock and SRCU points come with every exit). */
const PROTOCOL_POINTS: ReadonlySet<string> = new Set([
  'IrrSet',
  'IsRunningRead',
  'IsRunningWrite',
  'BlockRecheck',
  'Doorbell',
  'Eoi',
  'IcrWrite',
  'Halt',
  'WakeUp',
]);

function startupOf(vm: Vm, entryPoint: number, vcpu: number): VcpuStartup {
  const config = vm.config;
  return {
    buffers: vm.memory.buffers,
    vcpu,
    policy: config.policy,
    ipiVirtualization: true,
    x2avic: false,
    x2avicExtended: false,
    haltPolling: false,
    pauseFilterCount: PAUSE_LOOP_WINDOW,
    clockOriginNs: String(Math.round(parallelHostThread.nowMs() * 1e6)),
    entryPoint,
    waitForStartUp: false,
    stackTop: config.memoryBytes - vcpu * config.stackBytesPerVcpu,
    trace: false,
    locks: vm.locks.shared,
  };
}

afterEach(() => {
  setHostThread(parallelHostThread);
});

/** What the fake host saw: each point and each advance, labelled with the vCPU whose turn it was. */
interface Seen {
  readonly points: string[];
  readonly advances: { readonly who: string; readonly ns: number }[];
}

/** The target runs until it blocks in HLT, then the sender until its IPI has woken the target. */
async function ipiToHaltedVcpu(): Promise<Seen & { readonly views: Vm['memory'] }> {
  const { vm, program } = await createGuest(SOURCE, { vcpus: 2, hostCpus: 2, haltPolling: false, ipiVirtualization: true });
  const views = vm.memory;
  const loadedOn = (host: number): LoadedHostCpu => ({ cpu: views.hostCpus.own(host), singleTaskRunning: () => true });
  const entry = (vcpu: number): number => program.entryPoints.perVcpu.get(vcpu)!;
  for (const vcpu of [SENDER, TARGET]) views.runQueues.setState(vcpu, TaskState.Running);

  let who = '';
  const seen: Seen = { points: [], advances: [] };
  setHostThread({
    ...parallelHostThread,
    point: (kind) => void seen.points.push(`${who} ${SCHEDULING_POINT_NAMES[kind]}`),
    advance: (ns) => void seen.advances.push({ who, ns }),
  });
  const deadline = (): number => parallelHostThread.nowMs() + 60_000;

  who = 'target';
  const target = new Vcpu(startupOf(vm, entry(TARGET), TARGET));
  target.load(loadedOn(TARGET), 0);
  expect(target.runSlice(deadline())).toBe(SliceEnd.Blocked);
  target.put(SliceEnd.Blocked);
  expect(views.runQueues.state(TARGET)).toBe(TaskState.Blocked);

  who = 'sender';
  const sender = new Vcpu(startupOf(vm, entry(SENDER), SENDER));
  sender.load(loadedOn(SENDER), 0);
  expect(sender.runSlice(deadline())).toBe(SliceEnd.Finished);
  sender.put(SliceEnd.Finished);
  expect(views.runQueues.state(TARGET)).toBe(TaskState.Queued);
  return { ...seen, views };
}

describe('scheduling points of one xAPIC IPI to a halted vCPU', () => {
  it('come in protocol order: halt and block on the target, then ICR write, IRR set, IsRunning read, wake-up', async () => {
    const { points } = await ipiToHaltedVcpu();

    expect(points.filter((point) => PROTOCOL_POINTS.has(point.split(' ')[1]!))).toEqual([
      // The target: loaded (IsRunning set), HLT, then avic_vcpu_blocking: a point before the clear
      // (the window between the last look for events and the clear) and one after it; the re-check
      // found nothing, Blocked; put (IsRunning stays clear).
      'target IsRunningWrite',
      'target Halt',
      'target IsRunningWrite',
      'target IsRunningWrite',
      'target BlockRecheck',
      'target IsRunningWrite',
      // The sender: loaded, ICR write, the hardware sets IRR and reads IsRunning = 0 (no doorbell),
      // AVIC_INCOMPLETE_IPI (target not running): avic_kick_target_vcpus wakes the target; then
      // HC_DONE releases the vCPU (IsRunning clear) and the host CPU puts it.
      'sender IsRunningWrite',
      'sender IcrWrite',
      'sender IrrSet',
      'sender IsRunningRead',
      'sender WakeUp',
      'sender IsRunningWrite',
      'sender IsRunningWrite',
    ]);
  });

  it('charge virtual time: the guest instructions retired, each exit, the wake-up (VirtualTimeCost)', async () => {
    const { advances, views } = await ipiToHaltedVcpu();
    const instructions = (vcpu: number): number => views.controlFloat64[views.statisticIndex(vcpu, 'instructions')]!;
    const charged = (who: string, ns: number): number => advances.filter((advance) => advance.who === who && advance.ns === ns).length;
    // Slices retire a handful of instructions here, so their charges differ from every other cost.
    const otherCosts = new Set<number>(Object.values(VirtualTimeCost).filter((ns) => ns !== VirtualTimeCost.guestInstructionNs));
    const instructionNs = (who: string): number =>
      advances.filter((advance) => advance.who === who && !otherCosts.has(advance.ns)).reduce((total, advance) => total + advance.ns, 0);

    // Target: the SPIV write traps (AVIC_NOACCEL) and HLT exits; sender: AVIC_INCOMPLETE_IPI, then one
    // wake-up, then its HC_DONE (a VMMCALL exit under KVM, charged as one).
    expect([charged('target', VirtualTimeCost.vmexitRoundTripNs), charged('sender', VirtualTimeCost.vmexitRoundTripNs)]).toEqual([2, 2]);
    expect(charged('sender', VirtualTimeCost.wakeUpNs)).toBe(1);
    for (const [who, vcpu] of [
      ['target', TARGET],
      ['sender', SENDER],
    ] as const) {
      expect(instructionNs(who)).toBeCloseTo(instructions(vcpu) * VirtualTimeCost.guestInstructionNs, 6);
    }
  });
});
