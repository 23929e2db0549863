// The bug zoo's exit-handling bugs (docs/bug-zoo.md), driven by hand: the sending hardware
// (FakeAvicHardware or the real tables) takes the ICR write and reports an AVIC_INCOMPLETE_IPI
// cause, then avic_incomplete_ipi_interception (src/kvm/svm/avic-incomplete-ipi.ts) handles it with
// the injected flag on or off (the fixed twin). The software side (kvm_apic_send_ipi) is a stand-in
// that sets the IRR bit of each target the ICR names, as KVM's emulation would.

import { describe, expect, it } from 'vitest';
import { TaskState } from '../../../src/host/run-queue.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { acknowledgeInterrupt, isIrrSet, isIsrSet, setIrrAtomic } from '../../../src/hw/apic/apic-backing-page.js';
import { DestinationMode, encodeInterruptCommand } from '../../../src/hw/apic/interrupt-command.js';
import { AvicExitInfo, AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { AvicIpiOutcome, deliverAvicIpi } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { InjectedBugFlag, injectedBugFlags } from '../../../src/kvm/control/injected-bugs.js';
import { avicIncompleteIpiInterception, type IncompleteIpiHost } from '../../../src/kvm/svm/avic-incomplete-ipi.js';
import { FakeAvicHardware } from '../../hw/avic/fake-avic-hardware.js';
import { createdViews, FakeCounters } from '../vcpu-parts.js';

const VECTOR = 0x61;

/** The exit the hardware reports for `outcome` of the ICR (low, high). */
function exitOf(outcome: AvicIpiOutcome, low: number, high: number): AvicExitInfo {
  const exit = new AvicExitInfo();
  exit.setIncompleteIpi(low, high, outcome.exit as AvicIncompleteIpiCause, outcome.exitIndex);
  return exit;
}

describe('invalid-target-ignored: cause 2 of a logical IPI mixing valid and invalid targets', () => {
  /** vCPU 1 has flat logical ID bit 0; the ICR names bits 0 and 1, and no vCPU has bit 1. */
  function drive(inject: string): { hardware: FakeAvicHardware; counters: FakeCounters; cause: number } {
    const hardware = new FakeAvicHardware(2);
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(1, { running: true, ldr: 0x01000000 });
    const { low, high } = encodeInterruptCommand({ vector: VECTOR, destinationMode: DestinationMode.Logical, destination: 0x03 });
    const outcome = new AvicIpiOutcome();
    deliverAvicIpi(low, high, apicId(0), hardware.pageBase(0), hardware, outcome);
    const counters = new FakeCounters();
    const host: IncompleteIpiHost = {
      index: 0,
      counters,
      views: { kick: () => {} },
      lapic: {
        collectTargets: () => [1],
        // kvm_apic_send_ipi: the one matching vCPU gets the vector.
        emulateIcrClearingBusy: () => {
          setIrrAtomic(hardware.pageWords, hardware.pageBase(1), VECTOR);
        },
      },
      injectedBugs: injectedBugFlags(inject),
    };
    avicIncompleteIpiInterception(exitOf(outcome, low, high), host);
    return { hardware, counters, cause: outcome.exit };
  }

  it('injected: the hardware set nothing (it validates first) and KVM ignores the exit: the valid target loses the IPI', () => {
    const { hardware, counters, cause } = drive('invalid-target-ignored');
    expect(cause).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(hardware.irr(1, VECTOR)).toBe(false);
    expect(counters.get('ipisDroppedInvalidTarget')).toBe(1);
  });

  it('fixed twin: the ICR is emulated, so the valid target gets the vector', () => {
    const { hardware, counters, cause } = drive('invalid-target-ignored-fixed');
    expect(cause).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(hardware.irr(1, VECTOR)).toBe(true);
    expect(counters.get('ipisDroppedInvalidTarget')).toBe(0);
  });
});

describe('x2avic-logical-kick: the cause-1 wake-ups of an x2APIC logical IPI', () => {
  /**
   * `vcpus` vCPUs; the target `target` (x2APIC logical ID: cluster target >> 4, bit target & 15) is
   * blocked and the hardware has set its IRR bit; the sender (vCPU 0, x2APIC mode) takes cause 1.
   */
  function drive(inject: string, vcpus: number, target: number): { state: number; kicked: number[] } {
    const views = createdViews(vcpus);
    views.runQueues.setState(target, TaskState.Blocked);
    setIrrAtomic(views.apicPageWords, views.apicPageBase(target), VECTOR);
    const destination = ((target >> 4) << 16) | (1 << (target & 15));
    const { low } = encodeInterruptCommand({ vector: VECTOR, destinationMode: DestinationMode.Logical });
    const exit = new AvicExitInfo();
    exit.setIncompleteIpi(low, destination, AvicIncompleteIpiCause.TargetNotRunning, 0);
    const kicked: number[] = [];
    avicIncompleteIpiInterception(exit, {
      index: 0,
      counters: new FakeCounters(),
      views: {
        kick: (vcpu, request) => {
          kicked.push(vcpu);
          views.kick(vcpu, request);
        },
        createdVcpus: () => views.createdVcpus(),
      },
      lapic: { collectTargets: () => [target], emulateIcrClearingBusy: () => {}, x2apicMode: true },
      injectedBugs: injectedBugFlags(inject),
    });
    return { state: views.runQueues.state(target), kicked };
  }

  it('injected, cluster 0: the mask read from the cluster half is empty, nobody is woken and the target stays blocked', () => {
    expect(injectedBugFlags('x2avic-logical-kick')).toBe(InjectedBugFlag.X2apicLogicalKick);
    expect(drive('x2avic-logical-kick', 2, 1)).toEqual({ state: TaskState.Blocked, kicked: [] });
  });

  it('injected, cluster 1: vCPU 32 is woken instead of vCPU 16', () => {
    expect(drive('x2avic-logical-kick', 40, 16)).toEqual({ state: TaskState.Blocked, kicked: [32] });
  });

  it('fixed twin: the named target is woken (queued), in either cluster', () => {
    expect(drive('x2avic-logical-kick-fixed', 2, 1)).toEqual({ state: TaskState.Queued, kicked: [1] });
    expect(drive('x2avic-logical-kick-fixed', 40, 16)).toEqual({ state: TaskState.Queued, kicked: [16] });
  });
});

describe('not-running-reemulated: a cause-1 exit sends the IPI again in software', () => {
  /**
   * The hardware sets the target's IRR bit and exits with cause 1 (the target is not running); before
   * the exit is handled, the target is loaded and takes the vector (IRR -> ISR). Then the handler runs.
   */
  function drive(inject: string): { irrAgain: boolean; inService: boolean; kicked: number[] } {
    const hardware = new FakeAvicHardware(2);
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(1);
    const { low, high } = encodeInterruptCommand({ vector: VECTOR, destination: 1 });
    const outcome = new AvicIpiOutcome();
    deliverAvicIpi(low, high, apicId(0), hardware.pageBase(0), hardware, outcome);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    acknowledgeInterrupt(hardware.pageWords, hardware.pageBase(1), VECTOR);
    const kicked: number[] = [];
    avicIncompleteIpiInterception(exitOf(outcome, low, high), {
      index: 0,
      counters: new FakeCounters(),
      views: { kick: (vcpu) => kicked.push(vcpu) },
      lapic: {
        collectTargets: () => [1],
        emulateIcrClearingBusy: () => {
          setIrrAtomic(hardware.pageWords, hardware.pageBase(1), VECTOR);
          kicked.push(1);
        },
      },
      injectedBugs: injectedBugFlags(inject),
    });
    return {
      irrAgain: isIrrSet(hardware.pageWords, hardware.pageBase(1), VECTOR),
      inService: isIsrSet(hardware.pageWords, hardware.pageBase(1), VECTOR),
      kicked,
    };
  }

  it('injected: the vector the target already took is pending again: one ICR write, two interrupts', () => {
    expect(drive('not-running-reemulated')).toEqual({ irrAgain: true, inService: true, kicked: [1] });
  });

  it('fixed twin: only the wake-up; the vector is taken once', () => {
    expect(drive('not-running-reemulated-fixed')).toEqual({ irrAgain: false, inService: true, kicked: [1] });
  });
});
