// The x2AVIC hardware's handling of an x2APIC ICR write (src/hw/avic/x2avic-ipi-delivery.ts):
// 32-bit physical destinations up to index 0x1FF, the 0xFFFFFFFF broadcast, logical cluster
// destinations by arithmetic (no logical table), shorthands, and the xAVIC incomplete-IPI causes.

import { describe, it, expect } from 'vitest';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import {
  DeliveryMode,
  DestinationMode,
  DestinationShorthand,
  TriggerMode,
  encodeInterruptCommand,
  type InterruptCommand,
} from '../../../src/hw/apic/interrupt-command.js';
import { AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { AvicIpiOutcome, NO_EXIT } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { deliverX2avicIpi } from '../../../src/hw/avic/x2avic-ipi-delivery.js';
import { AvicMode, avicMaxPhysicalIndex } from '../../../src/hw/avic/x2avic.js';
import { FakeAvicHardware } from './fake-avic-hardware.js';

const VECTOR = 0x41;
const BROADCAST = 0xffffffff;

/** `count` vCPUs (IDs 0..count-1), running unless listed, with the x2AVIC max index for that count. */
function vm(count: number, notRunning: readonly number[] = []): FakeAvicHardware {
  const hardware = new FakeAvicHardware(count, avicMaxPhysicalIndex(AvicMode.X2avic, count));
  for (let id = 0; id < count; id++) hardware.addVcpu(id, { running: !notRunning.includes(id) });
  return hardware;
}

/** ICR low from the usual fields; the high half is the 32-bit x2APIC destination itself. */
function send(
  hardware: FakeAvicHardware,
  sender: number,
  destination: number,
  command: Partial<Omit<InterruptCommand, 'destination'>> = {},
): AvicIpiOutcome {
  const { low } = encodeInterruptCommand({ vector: VECTOR, ...command });
  const outcome = new AvicIpiOutcome();
  deliverX2avicIpi(low, destination >>> 0, apicId(sender), hardware.pageBase(sender), hardware, outcome);
  return outcome;
}

const logical = { destinationMode: DestinationMode.Logical } as const;

describe('physical x2APIC destinations index the physical table with all 32 bits', () => {
  it('reaches IDs above 0xFF: 300 and 511 get the vector and a doorbell, no exit', () => {
    const hardware = vm(512);
    expect(send(hardware, 0, 300).exit).toBe(NO_EXIT);
    const outcome = send(hardware, 0, 511);
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([300, 511]);
    expect(hardware.doorbells).toEqual([hardware.hostOf(300), hardware.hostOf(511)]);
  });

  it('does not truncate to 8 bits: destination 0x100 is vCPU 256, not vCPU 0', () => {
    const hardware = vm(300);
    send(hardware, 5, 0x100);
    expect(hardware.irrHolders(VECTOR)).toEqual([256]);
  });

  it('cause 2 for an index above the VMCB max index (a VM of 300 vCPUs, destination 400 and 0x12345)', () => {
    const hardware = vm(300);
    for (const destination of [400, 0x12345]) {
      const outcome = send(hardware, 0, destination);
      expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
      expect(outcome.exitIndex).toBe(destination);
    }
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });

  it('cause 1 for a target that is not running: IRR set, no doorbell, its index reported', () => {
    const hardware = vm(400, [299]);
    const outcome = send(hardware, 1, 299);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(outcome.exitIndex).toBe(299);
    expect(hardware.irr(299, VECTOR)).toBe(true);
    expect(hardware.doorbells).toEqual([]);
  });

  it('0xFFFFFFFF is the broadcast: every Valid entry, the sender included, no doorbell to itself', () => {
    const hardware = vm(270);
    const outcome = send(hardware, 3, BROADCAST);
    expect(outcome.exit).toBe(NO_EXIT);
    expect(outcome.targets).toBe(270);
    expect(hardware.irrHolders(VECTOR)).toHaveLength(270);
    expect(outcome.selfTargeted).toBe(true);
    expect(outcome.doorbellsRung).toBe(269);
  });

  it('0xFF is an ordinary ID in x2APIC mode, not a broadcast', () => {
    const hardware = vm(300);
    send(hardware, 0, 0xff);
    expect(hardware.irrHolders(VECTOR)).toEqual([255]);
  });
});

describe('logical x2APIC destinations: cluster << 16 | member bitmap, no logical table', () => {
  it('cluster 0x11, members 0 and 15 name IDs 0x110 and 0x11F', () => {
    const hardware = vm(512);
    const outcome = send(hardware, 0, (0x11 << 16) | 0x8001, logical);
    expect(outcome.exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([0x110, 0x11f]);
    expect(outcome.targets).toBe(2);
  });

  it('ignores the logical APIC ID table (an entry there changes nothing)', () => {
    const hardware = vm(32);
    hardware.logicalTable.storeEntry(1, 7);
    send(hardware, 0, (1 << 16) | 0x2, logical);
    expect(hardware.irrHolders(VECTOR)).toEqual([17]);
  });

  it('cause 2 with the first missing ID when a member names no vCPU, and sets nothing at all', () => {
    const hardware = vm(20);
    const outcome = send(hardware, 0, (1 << 16) | 0x0031, logical);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(outcome.exitIndex).toBe(20);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });

  it('cause 1 when one member is not running; the running one still gets its doorbell', () => {
    const hardware = vm(64, [33]);
    const outcome = send(hardware, 0, (2 << 16) | 0x0003, logical);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(outcome.exitIndex).toBe(33);
    expect(hardware.irrHolders(VECTOR)).toEqual([32, 33]);
    expect(hardware.doorbells).toEqual([hardware.hostOf(32)]);
  });

  it('an empty member bitmap names nobody: no IRR, no exit', () => {
    const hardware = vm(64);
    const outcome = send(hardware, 0, 3 << 16, logical);
    expect(outcome.exit).toBe(NO_EXIT);
    expect(outcome.targets).toBe(0);
  });

  it('0xFFFFFFFF is the logical broadcast too', () => {
    const hardware = vm(40);
    expect(send(hardware, 0, BROADCAST, logical).targets).toBe(40);
  });
});

describe('shorthands and the causes shared with xAVIC', () => {
  it('self: the own page only, whatever the destination', () => {
    const hardware = vm(300);
    const outcome = send(hardware, 280, 5, { shorthand: DestinationShorthand.Self });
    expect(hardware.irrHolders(VECTOR)).toEqual([280]);
    expect(outcome.selfTargeted).toBe(true);
    expect(hardware.doorbells).toEqual([]);
  });

  it('all excluding self reaches every other vCPU up to 0x1FF', () => {
    const hardware = vm(512);
    const outcome = send(hardware, 511, 0, { shorthand: DestinationShorthand.AllExcludingSelf });
    expect(outcome.targets).toBe(511);
    expect(hardware.irr(511, VECTOR)).toBe(false);
    expect(hardware.irr(510, VECTOR)).toBe(true);
  });

  it('the xAVIC max index hides vCPUs above 0xFE: the same broadcast reaches 255 of 300', () => {
    const hardware = new FakeAvicHardware(300, avicMaxPhysicalIndex(AvicMode.Xavic, 300));
    for (let id = 0; id < 300; id++) hardware.addVcpu(id, { running: true });
    expect(send(hardware, 0, BROADCAST).targets).toBe(255);
  });

  it('cause 0 for NMI, INIT and level-triggered; cause 4 for vector 15; nothing set', () => {
    const hardware = vm(8);
    expect(send(hardware, 0, 1, { deliveryMode: DeliveryMode.Nmi }).exit).toBe(AvicIncompleteIpiCause.InvalidInterruptType);
    expect(send(hardware, 0, 1, { deliveryMode: DeliveryMode.Init }).exit).toBe(AvicIncompleteIpiCause.InvalidInterruptType);
    expect(send(hardware, 0, 1, { triggerMode: TriggerMode.Level }).exit).toBe(AvicIncompleteIpiCause.InvalidInterruptType);
    expect(send(hardware, 0, 1, { vector: 15 }).exit).toBe(AvicIncompleteIpiCause.InvalidIpiVector);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
    expect(hardware.irrHolders(15)).toEqual([]);
  });

  it('a second IPI of a pending vector coalesces', () => {
    const hardware = vm(300);
    send(hardware, 0, 260);
    const outcome = send(hardware, 0, 260);
    expect([outcome.accepted, outcome.coalesced]).toEqual([0, 1]);
  });
});
