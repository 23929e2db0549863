// The bug zoo's lost wake-ups (docs/bug-zoo.md), each driven by hand through the real parts without
// threads: the sender's AVIC (createAvicVmcb's hardware, deliverAvicIpi), the target's AVIC state
// (AvicVcpu) and its block protocol (VcpuSleep over the real run-queue words). The two racing
// accesses run in the order that loses the IPI; the fixed twin runs the same drive and keeps it.
// "Lost" means what the watchdog would find: the target's task Blocked, the vector in its IRR, and
// no wake-up coming (the sender took no exit, or its kick came before the block and was consumed).

import { describe, expect, it } from 'vitest';
import { TaskState } from '../../../src/host/run-queue.js';
import { hostThreadSlot, vcpuIndex } from '../../../src/host/identifiers.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { isIrrSet } from '../../../src/hw/apic/apic-backing-page.js';
import { encodeInterruptCommand } from '../../../src/hw/apic/interrupt-command.js';
import { AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { AvicIpiOutcome, deliverAvicIpi } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { BackingPagePolicyName } from '../../../src/kvm/control/backing-page-policy.js';
import { InjectedBugFlag, injectedBugFlags } from '../../../src/kvm/control/injected-bugs.js';
import { VcpuWaitReason } from '../../../src/kvm/control/vcpu-run-state.js';
import type { VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { AvicVcpu, createAvicVmcb } from '../../../src/kvm/svm/avic.js';
import { VcpuSleep } from '../../../src/kvm/vcpu/vcpu-sleep.js';
import { validateConfig } from '../../../src/kvm/vm/vm-config.js';
import { createdViews, FakeCounters } from '../vcpu-parts.js';

const VECTOR = 0xb1;
const SENDER = 0;
const TARGET = 1;

interface Pair {
  readonly views: VmControlViews;
  readonly sleep: VcpuSleep;
  readonly table: VmControlViews['physicalApicIdTable'];
  /** Runs inside the target's avic_vcpu_blocking, just before its IsRunning clear. */
  beforeClear: () => void;
  /** The sender's ICR write to the target (physical), with the cause-1 wake-up if it exits. */
  send(): AvicIpiOutcome;
  /** The target is blocked with the vector pending and nothing will wake it. */
  lost(): boolean;
}

/**
 * Two vCPUs of a VM run with `inject` (VmConfig.inject: its flags and settings), each loaded on its
 * own host CPU, IsRunning set as avic_vcpu_load leaves it. `clockNs` is the VM clock (erratum stamps).
 */
function setUpPair(inject: string, clockNs: () => number = () => 0): Pair {
  const config = validateConfig({ vcpus: 2, inject });
  const views = createdViews(2);
  Atomics.store(views.control, views.headerIndex('injectedBugs'), injectedBugFlags(config.inject));
  if (config.erratum1235) Atomics.store(views.control, views.headerIndex('erratum1235WindowNs'), config.erratum1235WindowUs * 1000);
  const hardware = createAvicVmcb(
    views,
    vcpuIndex(SENDER),
    BackingPagePolicyName.Upstream,
    views.apicPageBase(SENDER),
    true,
    clockNs,
  ).xavic;
  const target = new AvicVcpu(views, vcpuIndex(TARGET), config.ipiVirtualization, clockNs);
  target.load(hostThreadSlot(TARGET));
  const irrOfTarget = (): boolean => isIrrSet(views.apicPageWords, views.apicPageBase(TARGET), VECTOR);
  const pair: Pair = {
    views,
    table: views.physicalApicIdTable,
    beforeClear: () => {},
    sleep: new VcpuSleep({
      views,
      index: TARGET,
      haltPolling: false,
      trace: undefined,
      counters: new FakeCounters(),
      srcu: { readLock: () => {}, readUnlock: () => {}, held: true },
      timer: { poll: () => false },
      events: { hasEvents: irrOfTarget, canTakeInterrupt: () => true },
      avic: {
        blocking: () => {
          pair.beforeClear();
          target.blocking();
        },
        unblocking: () => target.unblocking(),
        put: () => target.put(),
      },
    }),
    send: () => {
      const outcome = new AvicIpiOutcome();
      const { low, high } = encodeInterruptCommand({ vector: VECTOR, destination: TARGET });
      deliverAvicIpi(low, high, apicId(SENDER), views.apicPageBase(SENDER), hardware, outcome);
      // avic_incomplete_ipi_interception, cause 1: avic_kick_target_vcpus.
      if (outcome.exit === AvicIncompleteIpiCause.TargetNotRunning) views.kick(TARGET, 0);
      return outcome;
    },
    lost: () => views.runQueues.state(TARGET) === TaskState.Blocked && irrOfTarget(),
  };
  return pair;
}

describe('blocking-no-recheck: the blocker sleeps without re-checking IRR after clearing IsRunning', () => {
  /** The sender's IRR set and IsRunning read fall after the halt's event check, before the clear. */
  function drive(inject: string): { pair: Pair; blocked: boolean; outcome: AvicIpiOutcome | undefined } {
    const pair = setUpPair(inject);
    let outcome: AvicIpiOutcome | undefined;
    pair.beforeClear = () => {
      outcome = pair.send();
    };
    const blocked = pair.sleep.block(VcpuWaitReason.Halted);
    return { pair, blocked, outcome };
  }

  it('injected: the sender saw IsRunning = 1 (doorbell, no exit) and the target blocks on the pending vector', () => {
    const { pair, blocked, outcome } = drive('blocking-no-recheck');
    expect(outcome?.doorbellsRung).toBe(1);
    expect(outcome?.exit).toBe(-1);
    expect(blocked).toBe(true);
    expect(pair.lost()).toBe(true);
  });

  it('fixed twin, the same drive: the re-check after the clear finds the vector and the target runs on', () => {
    const { pair, blocked, outcome } = drive('blocking-no-recheck-fixed');
    expect(outcome?.doorbellsRung).toBe(1);
    expect(blocked).toBe(false);
    expect(pair.lost()).toBe(false);
    expect(pair.views.runQueues.state(TARGET)).toBe(TaskState.Running);
  });
});

describe('isrunning-before-irr: the sender reads IsRunning before it sets IRR', () => {
  /**
   * The target blocks (clear, re-check, commit) right after the sender's third load of the target's
   * table entry: validate pass, deliver pass validity, then the IsRunning read, which the bug makes
   * before the IRR Atomics.or and the correct order after it.
   */
  function drive(inject: string): { pair: Pair; blocked: boolean[]; outcome: AvicIpiOutcome } {
    const pair = setUpPair(inject);
    const table = pair.table;
    const load = table.loadHighWord.bind(table);
    let loads = 0;
    const blocked: boolean[] = [];
    table.loadHighWord = (index) => {
      const word = load(index);
      if (index === TARGET && ++loads === 3) blocked.push(pair.sleep.block(VcpuWaitReason.Halted));
      return word;
    };
    const outcome = pair.send();
    return { pair, blocked, outcome };
  }

  it('injected: the target blocks with an empty IRR between the read and the set, then the doorbell wakes nobody', () => {
    expect(injectedBugFlags('isrunning-before-irr')).toBe(InjectedBugFlag.IsRunningBeforeIrr);
    const { pair, blocked, outcome } = drive('isrunning-before-irr');
    expect(blocked).toEqual([true]);
    expect(outcome.exit).toBe(-1);
    expect(outcome.doorbellsRung).toBe(1);
    expect(pair.lost()).toBe(true);
  });

  it('fixed twin, the same drive: the bit is in IRR before the read, so the re-check sees it and the target runs on', () => {
    const { pair, blocked, outcome } = drive('isrunning-before-irr-fixed');
    expect(blocked).toEqual([false]);
    expect(outcome.doorbellsRung).toBe(1);
    expect(pair.lost()).toBe(false);
  });
});

describe("erratum-1235: the sender's AVIC acts on a stale IsRunning", () => {
  /** The target blocks (IsRunning cleared a moment ago, stamped), then the sender writes the ICR. */
  function drive(inject: string): { pair: Pair; outcome: AvicIpiOutcome } {
    let nowNs = 1_000_000;
    const pair = setUpPair(inject, () => nowNs);
    expect(pair.sleep.block(VcpuWaitReason.Halted)).toBe(true);
    nowNs += 1_000;
    return { pair, outcome: pair.send() };
  }

  it('injected (erratum on, IPI virtualization on): doorbell at the old host CPU, no exit, the blocked target stays blocked', () => {
    const { pair, outcome } = drive('erratum-1235');
    expect(outcome.staleIsRunningReads).toBe(1);
    expect(outcome.exit).toBe(-1);
    expect(pair.lost()).toBe(true);
  });

  it("fixed twin (KVM's work-around, IPI virtualization off): IsRunning was never set, cause 1, the kick queues the target", () => {
    const { pair, outcome } = drive('erratum-1235-fixed');
    expect(outcome.staleIsRunningReads).toBe(0);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(pair.lost()).toBe(false);
    expect(pair.views.runQueues.state(TARGET)).toBe(TaskState.Queued);
  });
});
