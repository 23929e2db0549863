// avic_kick_target_vcpus_fast (src/kvm/svm/avic-kick-targets.ts) through its narrow interface: the
// targets of a cause-1 exit decoded from the ICR for each destination form, or the walk where KVM
// (or, for the reserved-cluster broadcasts, the model's hardware) needs it. Then the exit handler:
// a physical IPI to a not-running target wakes it without the walk over every vCPU.
import { describe, expect, it } from 'vitest';
import { TaskState } from '../../../src/host/run-queue.js';
import { setIrrAtomic } from '../../../src/hw/apic/apic-backing-page.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { AvicExitInfo, AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { encodeLogicalApicIdTableEntry } from '../../../src/hw/avic/logical-apic-id-table.js';
import { TraceEventKind, TraceEvents, TraceRecorder } from '../../../src/kvm/report/trace-recorder.js';
import { avicKickTargetsFast } from '../../../src/kvm/svm/avic-kick-targets.js';
import { avicIncompleteIpiInterception } from '../../../src/kvm/svm/avic-incomplete-ipi.js';
import { createdViews, FakeCounters } from '../vcpu-parts.js';

const FIXED_PHYSICAL = 0x0000_40fd;
const FIXED_LOGICAL = 0x0000_48fd;
const ALL_EXCLUDING_SELF = 0x000c_40fd;
const DFR_FLAT = 0xffff_ffff;
const DFR_CLUSTER = 0x0fff_ffff;

/** The logical table: entry index -> the vCPU it names (Valid); every other entry is invalid. */
function table(entries: Readonly<Record<number, number>>): { load(index: number): number } {
  return {
    load: (index) =>
      entries[index] === undefined ? 0 : encodeLogicalApicIdTableEntry({ guestPhysicalApicId: entries[index]!, isValid: true }),
  };
}

function decode(
  icrLow: number,
  icrHigh: number,
  options: { index?: number; x2apic?: boolean; dfr?: number; entries?: Readonly<Record<number, number>> } = {},
): number[] | 'walk' {
  const targets = [99];
  const sender = { read: (offset: number) => (offset === ApicRegister.DestinationFormat ? (options.dfr ?? DFR_FLAT) : 0) };
  const fast = avicKickTargetsFast(
    icrLow,
    icrHigh,
    options.index ?? 0,
    options.x2apic ?? false,
    sender,
    table(options.entries ?? {}),
    targets,
  );
  return fast ? targets : 'walk';
}

describe('avicKickTargetsFast: the targets of each destination form', () => {
  it('physical: the destination is the vCPU ID (xAPIC ICR[63:56], x2APIC ICR[63:32]); the broadcast takes the walk', () => {
    expect(decode(FIXED_PHYSICAL, 0x0300_0000, { index: 3 })).toEqual([3]);
    expect(decode(FIXED_PHYSICAL, 0xff00_0000, { index: 0xff })).toBe('walk');
    expect(decode(FIXED_PHYSICAL, 0x0000_0f3a, { index: 0xf3a, x2apic: true })).toEqual([0xf3a]);
    expect(decode(FIXED_PHYSICAL, 0xffff_ffff, { index: 0xfff, x2apic: true })).toBe('walk');
  });

  it("physical: a destination that is not the exit's table index takes the walk (KVM warns there)", () => {
    expect(decode(FIXED_PHYSICAL, 0x0300_0000, { index: 4 })).toBe('walk');
    // 0xff000000 is a real x2APIC ID, not the broadcast, but no table index.
    expect(decode(FIXED_PHYSICAL, 0xff00_0000, { index: 0, x2apic: true })).toBe('walk');
  });

  it('any shorthand takes the walk', () => {
    expect(decode(ALL_EXCLUDING_SELF, 0, { index: 0 })).toBe('walk');
    expect(decode(ALL_EXCLUDING_SELF, 0, { index: 0, x2apic: true })).toBe('walk');
  });

  it('x2APIC logical: member bit i of cluster c is vCPU c * 16 + i, no table; an empty mask wakes nobody', () => {
    expect(decode(FIXED_LOGICAL, 0x0002_0021, { x2apic: true })).toEqual([32, 37]);
    expect(decode(FIXED_LOGICAL, 0x00ff_8000, { x2apic: true })).toEqual([0xfff]);
    expect(decode(FIXED_LOGICAL, 0x0003_0000, { x2apic: true })).toEqual([]);
    // The logical broadcast names the reserved cluster 0xFFFF: the walk finds its targets.
    expect(decode(FIXED_LOGICAL, 0xffff_ffff, { x2apic: true })).toBe('walk');
  });

  it("xAPIC logical, flat model (the sender's DFR): bit i names table entry i; invalid entries name nobody", () => {
    const entries = { 0: 4, 2: 6, 7: 1 };
    expect(decode(FIXED_LOGICAL, 0x8500_0000, { dfr: DFR_FLAT, entries })).toEqual([4, 6, 1]);
    expect(decode(FIXED_LOGICAL, 0x0200_0000, { dfr: DFR_FLAT, entries })).toEqual([]);
    expect(decode(FIXED_LOGICAL, 0xff00_0000, { dfr: DFR_FLAT, entries })).toEqual([4, 6, 1]);
  });

  it('xAPIC logical, cluster model: bit i of bits 3:0 names entry (bits 7:4) * 4 + i; 0xFF and a reserved DFR take the walk', () => {
    const entries = { 8: 20, 9: 21, 11: 23 };
    expect(decode(FIXED_LOGICAL, 0x2b00_0000, { dfr: DFR_CLUSTER, entries })).toEqual([20, 21, 23]);
    expect(decode(FIXED_LOGICAL, 0x1b00_0000, { dfr: DFR_CLUSTER, entries })).toEqual([]);
    expect(decode(FIXED_LOGICAL, 0xff00_0000, { dfr: DFR_CLUSTER, entries })).toBe('walk');
    expect(decode(FIXED_LOGICAL, 0x2b00_0000, { dfr: 0x5fff_ffff, entries })).toBe('walk');
  });
});

describe('avic_kick_target_vcpus on a cause-1 exit', () => {
  /** 64 vCPUs; vCPU `target` is blocked with the vector in its IRR; vCPU 0 (xAPIC) takes the exit for `icrLow`:`icrHigh`. */
  function handle(icrLow: number, icrHigh: number, index: number, target: number) {
    const views = createdViews(64);
    views.runQueues.setState(target, TaskState.Blocked);
    setIrrAtomic(views.apicPageWords, views.apicPageBase(target), 0xfd);
    const exit = new AvicExitInfo();
    exit.setIncompleteIpi(icrLow, icrHigh, AvicIncompleteIpiCause.TargetNotRunning, index);
    let walks = 0;
    const trace = new TraceRecorder(() => 0, views);
    avicIncompleteIpiInterception(exit, {
      index: 0,
      counters: new FakeCounters(),
      views,
      lapic: {
        // The walk: kvm_apic_match_dest for every vCPU.
        collectTargets: () => {
          walks++;
          return [target];
        },
        emulateIcrClearingBusy: () => {},
        x2apicMode: false,
        read: () => DFR_FLAT,
      },
      trace,
    });
    const events = new TraceEvents(trace.take());
    const slowPaths = Array.from({ length: events.count }, (_, event) => events.kind(event)).filter(
      (kind) => kind === TraceEventKind.AvicKickSlowPath,
    ).length;
    return { walks, slowPaths, state: views.runQueues.state(target) };
  }

  it('a physical IPI to a not-running vCPU wakes it without the walk (no kvm_avic_kick_vcpu_slowpath)', () => {
    expect(handle(FIXED_PHYSICAL, 0x2a00_0000, 42, 42)).toEqual({ walks: 0, slowPaths: 0, state: TaskState.Queued });
  });

  it('a shorthand takes the walk, traced as kvm_avic_kick_vcpu_slowpath, and wakes the target too', () => {
    expect(handle(ALL_EXCLUDING_SELF, 0, 42, 42)).toEqual({ walks: 1, slowPaths: 1, state: TaskState.Queued });
  });
});
