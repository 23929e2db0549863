// KVM's software IPI path (src/kvm/lapic/apic-software-ipi.ts) alone, through its narrow host: which
// vCPUs an ICR names, what each form sets in the target (IRR, request bits, the start-up vector, the
// NMI queue), the ESR bits, the counts the report balances, and who is kicked.
import { describe, expect, it } from 'vitest';
import { isIrrSet, isLevelTriggered } from '../../../src/hw/apic/apic-backing-page.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import {
  DeliveryMode,
  DestinationMode,
  DestinationShorthand,
  TriggerMode,
  encodeInterruptCommand,
  type InterruptCommand,
} from '../../../src/hw/apic/interrupt-command.js';
import { ErrorStatusBit, errorStatusMask } from '../../../src/hw/apic/error-status.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';
import { SoftwareIpiPath } from '../../../src/kvm/lapic/apic-software-ipi.js';
import { createdViews, controlWord, FakeCounters, FakeCpu, pageOf, requestsOf, ring } from '../vcpu-parts.js';

const VECTOR = 0x50;

/** vCPU 0 sends; `vcpus` exist. */
function setUp(vcpus = 4): { views: ReturnType<typeof createdViews>; path: SoftwareIpiPath; counters: FakeCounters; cpu: FakeCpu } {
  const views = createdViews(vcpus);
  const counters = new FakeCounters();
  const cpu = new FakeCpu();
  const path = new SoftwareIpiPath({ views, index: 0, page: pageOf(views, 0), cpu, counters });
  return { views, path, counters, cpu };
}

function send(path: SoftwareIpiPath, command: Partial<InterruptCommand>): void {
  const { low, high } = encodeInterruptCommand({ vector: VECTOR, ...command });
  path.emulateIpi(low | 0, high | 0);
}

const irr = (views: ReturnType<typeof createdViews>, vcpu: number, vector = VECTOR): boolean =>
  isIrrSet(views.apicPageWords, views.apicPageBase(vcpu), vector);

describe('targets (kvm_apic_match_dest)', () => {
  it('physical, the shorthands and the broadcast', () => {
    const { path } = setUp();
    const targets = (command: Partial<InterruptCommand>): number[] => {
      const { low, high } = encodeInterruptCommand(command);
      return [...path.collectTargets(low, high)];
    };
    expect(targets({ destination: 2 })).toEqual([2]);
    expect(targets({ destination: 9 })).toEqual([]);
    expect(targets({ shorthand: DestinationShorthand.Self, destination: 2 })).toEqual([0]);
    expect(targets({ shorthand: DestinationShorthand.AllExcludingSelf })).toEqual([1, 2, 3]);
    expect(targets({ shorthand: DestinationShorthand.AllIncludingSelf })).toEqual([0, 1, 2, 3]);
    expect(targets({ destination: 0xff })).toEqual([0, 1, 2, 3]);
  });

  it('logical flat: each LDR bit the MDA names', () => {
    const { views, path } = setUp();
    for (let vcpu = 0; vcpu < 4; vcpu++) pageOf(views, vcpu).write(ApicRegister.LogicalDestination, (1 << vcpu) << 24);
    const { low, high } = encodeInterruptCommand({ destinationMode: DestinationMode.Logical, destination: 0b1010 });
    expect([...path.collectTargets(low, high)]).toEqual([1, 3]);
  });

  it('x2APIC sender: the destination is ICR[63:32]', () => {
    const { path } = setUp();
    path.x2apic = true;
    // The targets are still xAPIC-mode vCPUs, matched by their 8-bit ID.
    expect([...path.collectTargets(0, 3)]).toEqual([3]);
    expect([...path.collectTargets(0, 3 << 24)]).toEqual([]);
  });
});

describe('Fixed', () => {
  it('sets IRR, counts sent and accepted, and kicks the target (its doorbell line rings)', () => {
    const { views, path, counters } = setUp();
    const before = ring(views, 2);
    send(path, { destination: 2 });
    expect(irr(views, 2)).toBe(true);
    expect(ring(views, 2)).toBe(before + 1);
    expect(counters.nonZero()).toEqual({ ipiCommands: 1, ipisSent: 1, ipisAccepted: 1, kicksSent: 1 });
  });

  it('a vector already pending is coalesced', () => {
    const { path, counters } = setUp();
    send(path, { destination: 2 });
    send(path, { destination: 2 });
    expect(counters.get('ipisAccepted')).toBe(1);
    expect(counters.get('ipisCoalesced')).toBe(1);
  });

  it('a level-triggered Fixed IPI sets TMR before IRR', () => {
    const { views, path } = setUp();
    send(path, { destination: 1, triggerMode: TriggerMode.Level });
    expect(isLevelTriggered(views.apicPageWords, views.apicPageBase(1), VECTOR)).toBe(true);
    expect(irr(views, 1)).toBe(true);
  });

  it('a self IPI makes the sender re-evaluate and kicks nobody', () => {
    const { views, path, counters, cpu } = setUp();
    send(path, { shorthand: DestinationShorthand.Self });
    expect(irr(views, 0)).toBe(true);
    expect(cpu.evaluations).toBe(1);
    expect(counters.get('kicksSent')).toBe(0);
  });
});

describe('drops and ESR', () => {
  it('an illegal vector: send illegal vector on the sender, receive illegal vector on each target, no IRR bit', () => {
    const { views, path, counters } = setUp();
    send(path, { vector: 3, shorthand: DestinationShorthand.AllExcludingSelf });
    expect(controlWord(views, 0, 'pendingErrorStatus')).toBe(errorStatusMask(ErrorStatusBit.SendIllegalVector));
    for (const target of [1, 2, 3])
      expect(controlWord(views, target, 'pendingErrorStatus')).toBe(errorStatusMask(ErrorStatusBit.ReceivedIllegalVector));
    expect(irr(views, 1, 3)).toBe(false);
    expect(counters.nonZero()).toEqual({ ipiCommands: 1, ipisSent: 3, ipisDroppedIllegalVector: 3 });
  });

  it('no matching target: one message, dropped as an invalid target', () => {
    const { path, counters } = setUp();
    send(path, { destination: 9 });
    expect(counters.nonZero()).toEqual({ ipiCommands: 1, ipisSent: 1, ipisDroppedInvalidTarget: 1 });
  });

  it('SMI: dropped as unsupported (no SMM), per target', () => {
    const { path, counters } = setUp();
    send(path, { deliveryMode: DeliveryMode.Smi, shorthand: DestinationShorthand.AllExcludingSelf });
    expect(counters.nonZero()).toEqual({ ipiCommands: 1, ipisSent: 3, ipisDroppedUnsupported: 3 });
  });

  it('INIT level de-assert: ignored, counted once as unsupported', () => {
    const { views, path, counters } = setUp();
    send(path, { deliveryMode: DeliveryMode.Init, destination: 1, levelAssert: false, triggerMode: TriggerMode.Level });
    expect(requestsOf(views, 1)).toBe(0);
    expect(counters.nonZero()).toEqual({ ipiCommands: 1, ipisSent: 1, ipisDroppedUnsupported: 1 });
  });
});

describe('request-bit forms (pending_events)', () => {
  it('NMI: the queue count first, then VcpuRequest.Nmi, then a kick; always accepted', () => {
    const { views, path, counters } = setUp();
    send(path, { deliveryMode: DeliveryMode.Nmi, destination: 1 });
    send(path, { deliveryMode: DeliveryMode.Nmi, destination: 1 });
    expect(controlWord(views, 1, 'nmiQueued')).toBe(2);
    expect(requestsOf(views, 1) & VcpuRequest.Nmi).toBe(VcpuRequest.Nmi);
    expect(counters.get('ipisAccepted')).toBe(2);
    expect(counters.get('kicksSent')).toBe(2);
  });

  it('INIT: VcpuRequest.Init; a second one before the target looks is coalesced', () => {
    const { views, path, counters } = setUp();
    send(path, { deliveryMode: DeliveryMode.Init, destination: 2 });
    send(path, { deliveryMode: DeliveryMode.Init, destination: 2 });
    expect(requestsOf(views, 2)).toBe(VcpuRequest.Init);
    expect(counters.get('ipisAccepted')).toBe(1);
    expect(counters.get('ipisCoalesced')).toBe(1);
  });

  it('start-up: the vector in startUpVector, then VcpuRequest.StartUp', () => {
    const { views, path } = setUp();
    send(path, { deliveryMode: DeliveryMode.StartUp, vector: 0x12, destination: 3 });
    expect(controlWord(views, 3, 'startUpVector')).toBe(0x12);
    expect(requestsOf(views, 3)).toBe(VcpuRequest.StartUp);
  });
});

describe('lowest priority', () => {
  it("one winner among the matches, by KVM's arbitration counter, which it bumps", () => {
    const { views, path, counters } = setUp();
    Atomics.store(views.control, views.controlBlockIndex(1, 'arbitrationCounter'), 5);
    send(path, { deliveryMode: DeliveryMode.LowestPriority, shorthand: DestinationShorthand.AllExcludingSelf });
    const winners = [1, 2, 3].filter((vcpu) => irr(views, vcpu));
    expect(winners).toHaveLength(1);
    expect(controlWord(views, winners[0]!, 'arbitrationCounter')).toBeGreaterThan(0);
    expect(counters.get('ipisAccepted')).toBe(1);
  });
});
