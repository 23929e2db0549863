import { describe, it, expect } from 'vitest';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { setIrrAtomic } from '../../../src/hw/apic/apic-backing-page.js';
import {
  DeliveryMode,
  DestinationMode,
  DestinationShorthand,
  TriggerMode,
  encodeInterruptCommand,
  type InterruptCommand,
} from '../../../src/hw/apic/interrupt-command.js';
import { AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { AvicIpiOutcome, NO_EXIT, deliverAvicIpi } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { CLUSTER, FakeAvicHardware, FIRST_PAGE_POINTER } from './fake-avic-hardware.js';

const VECTOR = 0x40;

function send(
  hardware: FakeAvicHardware,
  sender: number,
  command: Partial<InterruptCommand>,
  outcome = new AvicIpiOutcome(),
): AvicIpiOutcome {
  const { low, high } = encodeInterruptCommand({ vector: VECTOR, ...command });
  deliverAvicIpi(low, high, apicId(sender), hardware.pageBase(sender), hardware, outcome);
  return outcome;
}

/** Four vCPUs, all running: 0 sends. */
function fourRunning(): FakeAvicHardware {
  const hardware = new FakeAvicHardware(4);
  for (let id = 0; id < 4; id++) hardware.addVcpu(id, { running: true });
  return hardware;
}

describe('cause 0: only Fixed + edge is accelerated (APM 15.29)', () => {
  for (const deliveryMode of [DeliveryMode.Nmi, DeliveryMode.Init, DeliveryMode.StartUp, DeliveryMode.LowestPriority, DeliveryMode.Smi]) {
    it(`delivery mode ${deliveryMode} exits with InvalidInterruptType and sets nothing`, () => {
      const hardware = fourRunning();
      const outcome = send(hardware, 0, { deliveryMode, destination: 1 });
      expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidInterruptType);
      expect(outcome.targets).toBe(0);
      expect(hardware.irrHolders(VECTOR)).toEqual([]);
      expect(hardware.doorbells).toEqual([]);
    });
  }

  it('a level-triggered Fixed IPI exits with InvalidInterruptType', () => {
    const hardware = fourRunning();
    const outcome = send(hardware, 0, { triggerMode: TriggerMode.Level, destination: 1 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidInterruptType);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });
});

describe('cause 4: vectors below 16', () => {
  it('vector 15 exits with InvalidIpiVector and sets nothing; vector 16 is delivered', () => {
    const hardware = fourRunning();
    expect(send(hardware, 0, { vector: 15, destination: 1 }).exit).toBe(AvicIncompleteIpiCause.InvalidIpiVector);
    expect(hardware.irrHolders(15)).toEqual([]);
    expect(send(hardware, 0, { vector: 16, destination: 1 }).exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(16)).toEqual([1]);
  });
});

describe('physical destination', () => {
  it('sets the IRR bit and rings the running target host once', () => {
    const hardware = fourRunning();
    const outcome = send(hardware, 0, { destination: 2 });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([2]);
    expect(hardware.doorbells).toEqual([0x102]);
    expect([outcome.targets, outcome.accepted, outcome.coalesced, outcome.doorbellsRung]).toEqual([1, 1, 0, 1]);
    expect(outcome.selfTargeted).toBe(false);
  });

  it('cause 1: a target that is not running still gets its IRR bit, and no doorbell', () => {
    const hardware = fourRunning();
    hardware.physicalTable.setIsRunning(3, false, hardware.hostOf(3));
    const outcome = send(hardware, 0, { destination: 3 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(outcome.exitIndex).toBe(3);
    expect(hardware.irr(3, VECTOR)).toBe(true);
    expect(outcome.notRunningTargets).toBe(1);
    expect(hardware.doorbells).toEqual([]);
  });

  it('cause 2: an invalid physical entry exits with its index and sets nothing', () => {
    const hardware = fourRunning();
    hardware.physicalTable.invalidate(2);
    const outcome = send(hardware, 0, { destination: 2 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(outcome.exitIndex).toBe(2);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
    expect(outcome.targets).toBe(0);
  });

  it('cause 3: a backing page pointer that names no page exits and sets nothing', () => {
    const hardware = new FakeAvicHardware(4);
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(1, { running: true, pointer: FIRST_PAGE_POINTER + 64 * 4096 });
    const outcome = send(hardware, 0, { destination: 1 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidBackingPage);
    expect(outcome.exitIndex).toBe(1);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
    expect(hardware.doorbells).toEqual([]);
  });

  it('a second IPI with the same vector coalesces and still rings', () => {
    const hardware = fourRunning();
    const outcome = new AvicIpiOutcome();
    send(hardware, 0, { destination: 1 }, outcome);
    send(hardware, 0, { destination: 1 }, outcome);
    expect([outcome.targets, outcome.accepted, outcome.coalesced, outcome.doorbellsRung]).toEqual([1, 0, 1, 1]);
    expect(hardware.doorbells).toEqual([0x101, 0x101]);
  });

  it('to itself: IRR set, self flagged, never a doorbell', () => {
    const hardware = fourRunning();
    const outcome = send(hardware, 1, { destination: 1 });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(outcome.selfTargeted).toBe(true);
    expect(hardware.irrHolders(VECTOR)).toEqual([1]);
    expect(hardware.doorbells).toEqual([]);
  });
});

describe('shorthands and broadcast', () => {
  it('Self sets only the sender IRR, with no table lookup and no doorbell', () => {
    const hardware = fourRunning();
    hardware.physicalTable.invalidate(2);
    const outcome = send(hardware, 2, { shorthand: DestinationShorthand.Self, destination: 3 });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([2]);
    expect(outcome.selfTargeted).toBe(true);
    expect(hardware.doorbells).toEqual([]);
  });

  it('AllIncludingSelf reaches every Valid entry, skips invalid ones silently, rings all but self', () => {
    const hardware = new FakeAvicHardware(5);
    for (const id of [0, 1, 3, 4]) hardware.addVcpu(id, { running: true });
    const outcome = send(hardware, 1, { shorthand: DestinationShorthand.AllIncludingSelf });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([0, 1, 3, 4]);
    expect(hardware.doorbells).toEqual([0x100, 0x103, 0x104]);
    expect(outcome.targets).toBe(4);
    expect(outcome.selfTargeted).toBe(true);
  });

  it('AllExcludingSelf skips the sender; a not-running target gives cause 1 with index 0', () => {
    const hardware = new FakeAvicHardware(4);
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(1, { running: true });
    hardware.addVcpu(3, { running: false });
    const outcome = send(hardware, 3, { shorthand: DestinationShorthand.AllExcludingSelf });
    expect(hardware.irrHolders(VECTOR)).toEqual([0, 1]);
    expect(outcome.selfTargeted).toBe(false);
    expect(outcome.exit).toBe(NO_EXIT);
    const second = send(hardware, 0, { shorthand: DestinationShorthand.AllExcludingSelf, vector: 0x41 });
    expect(hardware.irrHolders(0x41)).toEqual([1, 3]);
    expect(second.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(second.exitIndex).toBe(0);
    expect(second.notRunningTargets).toBe(1);
    expect(hardware.doorbells).toEqual([0x100, 0x101, 0x101]);
  });

  it('physical destination 0xFF is a broadcast including self that skips invalid entries', () => {
    const hardware = new FakeAvicHardware(3);
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(2, { running: true });
    const outcome = send(hardware, 0, { destination: 0xff });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([0, 2]);
    expect(hardware.doorbells).toEqual([0x102]);
  });

  it('a broadcast reaching a bad backing page exits with cause 3 and sets nothing', () => {
    const hardware = new FakeAvicHardware(3);
    hardware.addVcpu(0, { running: true });
    hardware.addVcpu(1, { running: true });
    hardware.addVcpu(2, { running: true, pointer: 0x1000 });
    const outcome = send(hardware, 0, { shorthand: DestinationShorthand.AllIncludingSelf });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidBackingPage);
    expect(outcome.exitIndex).toBe(2);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });
});

describe('logical destination (flat and cluster, sender DFR)', () => {
  /** Flat: vCPU k has logical ID 1 << k. */
  function flat(count: number): FakeAvicHardware {
    const hardware = new FakeAvicHardware(count);
    for (let id = 0; id < count; id++) hardware.addVcpu(id, { running: true, ldr: (1 << id) << 24 });
    return hardware;
  }

  it('flat: each MDA bit names one logical entry', () => {
    const hardware = flat(4);
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0b1010 });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([1, 3]);
    expect(hardware.doorbells).toEqual([0x101, 0x103]);
  });

  it('cause 2: an MDA naming an invalid logical entry exits with that logical index and sets nothing', () => {
    const hardware = flat(4);
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0b0010_0010 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(outcome.exitIndex).toBe(5);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });

  it('cause 2: a Valid logical entry naming an invalid physical entry sets nothing', () => {
    const hardware = flat(4);
    hardware.physicalTable.invalidate(3);
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0b1010 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(outcome.exitIndex).toBe(3);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });

  it('cause 1 reports the logical index of the first target that is not running', () => {
    const hardware = flat(4);
    hardware.physicalTable.setIsRunning(2, false, hardware.hostOf(2));
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0b1110 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(outcome.exitIndex).toBe(2);
    expect(hardware.irrHolders(VECTOR)).toEqual([1, 2, 3]);
    expect(hardware.doorbells).toEqual([0x101, 0x103]);
  });

  it('cluster: index = cluster * 4 + member bit, decoded with the sender DFR', () => {
    const hardware = new FakeAvicHardware(4);
    hardware.addVcpu(0, { running: true, dfr: CLUSTER, ldr: 0x11 << 24 });
    hardware.addVcpu(1, { running: true, dfr: CLUSTER, ldr: 0x12 << 24 });
    hardware.addVcpu(2, { running: true, dfr: CLUSTER, ldr: 0x21 << 24 });
    hardware.addVcpu(3, { running: true, dfr: CLUSTER, ldr: 0x24 << 24 });
    expect(hardware.logicalTable.load(4 * 2 + 2) & 0xff).toBe(3);
    send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0x25 });
    expect(hardware.irrHolders(VECTOR)).toEqual([2, 3]);
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0x12, vector: 0x41 });
    expect(hardware.irrHolders(0x41)).toEqual([1]);
    expect(outcome.exit).toBe(NO_EXIT);
  });

  it('cluster: MDA 0xFF is a broadcast to every Valid entry', () => {
    const hardware = new FakeAvicHardware(3);
    hardware.addVcpu(0, { running: true, dfr: CLUSTER, ldr: 0x11 << 24 });
    hardware.addVcpu(2, { running: false, dfr: CLUSTER, ldr: 0x12 << 24 });
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0xff });
    expect(hardware.irrHolders(VECTOR)).toEqual([0, 2]);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(outcome.exitIndex).toBe(0);
  });

  it('an empty MDA names no target and needs no exit', () => {
    const hardware = flat(2);
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0 });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(outcome.targets).toBe(0);
  });
});

describe('outcome reuse', () => {
  it('reset clears every field between IPIs', () => {
    const hardware = fourRunning();
    hardware.physicalTable.setIsRunning(1, false, hardware.hostOf(1));
    const outcome = send(hardware, 0, { destination: 1 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    send(hardware, 1, { shorthand: DestinationShorthand.Self, vector: 0x41 }, outcome);
    expect(outcome).toMatchObject({
      exit: NO_EXIT,
      exitIndex: 0,
      targets: 1,
      accepted: 1,
      coalesced: 0,
      doorbellsRung: 0,
      notRunningTargets: 0,
      selfTargeted: true,
    });
  });

  it('an IRR bit already pending in the target counts as coalesced', () => {
    const hardware = fourRunning();
    setIrrAtomic(hardware.pageWords, hardware.pageBase(2), VECTOR);
    const outcome = send(hardware, 0, { destination: 2 });
    expect([outcome.accepted, outcome.coalesced]).toEqual([0, 1]);
  });
});

describe('ordering and validation details', () => {
  it('the IRR bit is already set when the doorbell rings (docs/architecture.md O1, O2)', () => {
    const seen: boolean[] = [];
    const hardware = fourRunning();
    hardware.ringDoorbell = (host) => {
      seen.push(hardware.irr(host - 0x100, VECTOR));
    };
    send(hardware, 0, { shorthand: DestinationShorthand.AllExcludingSelf });
    expect(seen).toEqual([true, true, true]);
  });

  it('a physical destination above the VMCB max index is an invalid target', () => {
    const hardware = new FakeAvicHardware(4, 2);
    for (let id = 0; id < 4; id++) hardware.addVcpu(id, { running: true });
    const outcome = send(hardware, 0, { destination: 3 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(outcome.exitIndex).toBe(3);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
    send(hardware, 0, { shorthand: DestinationShorthand.AllIncludingSelf, vector: 0x41 });
    expect(hardware.irrHolders(0x41)).toEqual([0, 1, 2]);
  });

  it('a logical entry invalidated between validation and delivery still reports cause 2, so software re-emulates', () => {
    const hardware = new FakeAvicHardware(4);
    for (let id = 0; id < 4; id++) hardware.addVcpu(id, { running: true, ldr: (1 << id) << 24 });
    const resolve = hardware.resolveBackingPage.bind(hardware);
    let calls = 0;
    hardware.resolveBackingPage = (pointer) => {
      // Calls 1 and 2 validate targets 1 and 3; an LDR rewrite lands right after (docs/architecture.md O8).
      if (++calls === 2) hardware.logicalTable.invalidate(3);
      return resolve(pointer);
    };
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0b1010 });
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(outcome.exitIndex).toBe(3);
    expect(hardware.irrHolders(VECTOR)).toEqual([1]);
  });

  it('a reserved sender DFR model names no logical target', () => {
    const hardware = new FakeAvicHardware(2);
    hardware.addVcpu(0, { running: true, dfr: 0x5fffffff });
    hardware.addVcpu(1, { running: true, ldr: 0x02 << 24 });
    const outcome = send(hardware, 0, { destinationMode: DestinationMode.Logical, destination: 0x02 });
    expect(outcome.exit).toBe(NO_EXIT);
    expect(outcome.targets).toBe(0);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });
});
