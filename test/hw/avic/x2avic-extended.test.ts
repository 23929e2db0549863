// x2AVIC with the "4K" extension (X86_FEATURE_X2AVIC_EXT; svm.h X2AVIC_4K_MAX_PHYSICAL_ID): the
// physical table sized as KVM sizes it (__avic_get_max_physical_id, avic_get_physical_id_table_order),
// the VMCB max index per vCPU mode (avic_get_max_physical_id), and the hardware reaching IDs up to
// 0xFFF, with cause 2 for an index above the programmed max index.

import { describe, it, expect } from 'vitest';
import { apicId } from '../../../src/hw/apic/apic-id.js';
import { DestinationMode, encodeInterruptCommand, type InterruptCommand } from '../../../src/hw/apic/interrupt-command.js';
import { AvicIncompleteIpiCause } from '../../../src/hw/avic/avic-exit.js';
import { AvicIpiOutcome, NO_EXIT } from '../../../src/hw/avic/avic-ipi-delivery.js';
import { deliverX2avicIpi } from '../../../src/hw/avic/x2avic-ipi-delivery.js';
import {
  AVIC_PHYSICAL_MAX_INDEX_MASK,
  AvicMode,
  avicMaxPhysicalIndex,
  avicReachMaxId,
  avicTableMaxPhysicalId,
  physicalApicIdTableBytes,
  physicalApicIdTableOrder,
  physicalTableBytesFor,
  physicalTableEntriesFor,
  x2avicMaxPhysicalId,
} from '../../../src/hw/avic/x2avic.js';
import { FakeAvicHardware } from './fake-avic-hardware.js';

const EXTENDED = { x2avic: true, x2avicExtended: true } as const;
const X2AVIC = { x2avic: true, x2avicExtended: false } as const;
const HYBRID = { x2avic: false, x2avicExtended: false } as const;
const VECTOR = 0x41;

describe('the physical APIC ID table size (__avic_get_max_physical_id, avic_get_physical_id_table_order)', () => {
  it('the mode reaches 0xFFF with the extension, 0x1FF without, 0xFE without x2AVIC', () => {
    expect(x2avicMaxPhysicalId(true)).toBe(0xfff);
    expect(x2avicMaxPhysicalId(false)).toBe(0x1ff);
    expect([avicReachMaxId(EXTENDED), avicReachMaxId(X2AVIC), avicReachMaxId(HYBRID)]).toEqual([0xfff, 0x1ff, 0xfe]);
    expect(physicalTableEntriesFor(AvicMode.X2avic, true)).toBe(4096);
    expect(physicalTableBytesFor(AvicMode.X2avic, true)).toBe(32 << 10);
  });

  it('4096 vCPUs with the extension: max ID 0xFFF, 32 KiB, order 3 (8 pages)', () => {
    expect(avicTableMaxPhysicalId(EXTENDED, 4096)).toBe(0xfff);
    expect(physicalApicIdTableOrder(EXTENDED, 4096)).toBe(3);
    expect(physicalApicIdTableBytes(EXTENDED, 4096)).toBe(32 << 10);
  });

  it("is sized by the VM's vCPU capacity in whole powers of two of pages", () => {
    const sizes = [1, 255, 512, 513, 1024, 1025, 2048, 2049, 4096].map((vcpus) => physicalApicIdTableBytes(EXTENDED, vcpus) >> 10);
    expect(sizes).toEqual([4, 4, 4, 8, 8, 16, 16, 32, 32]);
  });

  it('one page without the extension (512 entries) and without x2AVIC (255), whatever the vCPU count', () => {
    expect(avicTableMaxPhysicalId(X2AVIC, 4096)).toBe(0x1ff);
    expect(physicalApicIdTableBytes(X2AVIC, 4096)).toBe(4096);
    expect(avicTableMaxPhysicalId(HYBRID, 4096)).toBe(0xfe);
    expect(physicalApicIdTableBytes(HYBRID, 4096)).toBe(4096);
  });
});

describe('the VMCB max physical index per vCPU mode (avic_get_max_physical_id)', () => {
  it('x2APIC mode: up to 0xFFF with the extension, 0x1FF without; xAPIC mode: 0xFE either way', () => {
    expect(avicMaxPhysicalIndex(AvicMode.X2avic, 4096, true)).toBe(0xfff);
    expect(avicMaxPhysicalIndex(AvicMode.X2avic, 4096, false)).toBe(0x1ff);
    expect(avicMaxPhysicalIndex(AvicMode.Xavic, 4096, true)).toBe(0xfe);
    expect(avicMaxPhysicalIndex(AvicMode.X2avic, 600, true)).toBe(599);
  });

  it('every max index fits the 12-bit VMCB field (AVIC_PHYSICAL_MAX_INDEX_MASK)', () => {
    for (const extended of [false, true]) {
      for (const mode of [AvicMode.Xavic, AvicMode.X2avic]) {
        const max = avicMaxPhysicalIndex(mode, 4096, extended);
        expect(max & AVIC_PHYSICAL_MAX_INDEX_MASK).toBe(max);
      }
    }
  });
});

describe('x2AVIC delivery across a 4096-entry table', () => {
  /** 4096 vCPUs, all running, with a table of 4096 entries and the given VMCB max index. */
  function vm(maxPhysicalIndex: number): FakeAvicHardware {
    const hardware = new FakeAvicHardware(4096, maxPhysicalIndex, 4096);
    for (let id = 0; id < 4096; id++) hardware.addVcpu(id, { running: true });
    return hardware;
  }

  function send(
    hardware: FakeAvicHardware,
    destination: number,
    command: Partial<Omit<InterruptCommand, 'destination'>> = {},
  ): AvicIpiOutcome {
    const { low } = encodeInterruptCommand({ vector: VECTOR, ...command });
    const outcome = new AvicIpiOutcome();
    deliverX2avicIpi(low, destination >>> 0, apicId(0), hardware.pageBase(0), hardware, outcome);
    return outcome;
  }

  it('with the extension, physical 0x200 and 0xFFF and logical cluster 0xFF (IDs 0xFF0..0xFFF) are delivered with no exit', () => {
    const hardware = vm(avicMaxPhysicalIndex(AvicMode.X2avic, 4096, true));
    expect(send(hardware, 0x200).exit).toBe(NO_EXIT);
    expect(send(hardware, 0xfff).exit).toBe(NO_EXIT);
    expect(send(hardware, (0xff << 16) | 0x8001, { destinationMode: DestinationMode.Logical }).exit).toBe(NO_EXIT);
    expect(hardware.irrHolders(VECTOR)).toEqual([0x200, 0xff0, 0xfff]);
  });

  it('without it (max index 0x1FF), an index above the programmed max index is cause 2 even with a Valid entry, and sets nothing', () => {
    const hardware = vm(avicMaxPhysicalIndex(AvicMode.X2avic, 4096, false));
    const outcome = send(hardware, 0x200);
    expect(outcome.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(outcome.exitIndex).toBe(0x200);
    const logical = send(hardware, (0x20 << 16) | 1, { destinationMode: DestinationMode.Logical });
    expect(logical.exit).toBe(AvicIncompleteIpiCause.InvalidTarget);
    expect(logical.exitIndex).toBe(0x200);
    expect(hardware.irrHolders(VECTOR)).toEqual([]);
  });

  it('the broadcast reaches every Valid entry up to the max index and no further', () => {
    const hardware = vm(0x1ff);
    expect(send(hardware, 0xffffffff).targets).toBe(0x200);
    expect(hardware.irrHolders(VECTOR).at(-1)).toBe(0x1ff);
  });
});
