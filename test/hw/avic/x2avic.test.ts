import { describe, it, expect } from 'vitest';
import { PHYSICAL_APIC_ID_TABLE_ENTRIES } from '../../../src/hw/avic/physical-apic-id-table.js';
import {
  AvicMode,
  avicMaxPhysicalIndex,
  isPhysicalIndexInRange,
  maxPhysicalIndexFor,
  physicalBroadcastDestination,
  physicalTableBytesFor,
  physicalTableEntriesFor,
  vcpuCountFitsAvicMode,
} from '../../../src/hw/avic/x2avic.js';

describe('physical APIC ID table sizes per AVIC mode (svm.h, avic_get_max_physical_id)', () => {
  it('xAVIC: indices 0..0xFE (255 entries; 0xFF is the broadcast); x2AVIC: 0..0x1FF (512)', () => {
    expect(maxPhysicalIndexFor(AvicMode.Xavic)).toBe(0xfe);
    expect(physicalTableEntriesFor(AvicMode.Xavic)).toBe(255);
    expect(maxPhysicalIndexFor(AvicMode.X2avic)).toBe(0x1ff);
    expect(physicalTableEntriesFor(AvicMode.X2avic)).toBe(512);
    expect(physicalTableBytesFor(AvicMode.X2avic)).toBe(4096);
  });

  it('the shared table already holds the x2AVIC size', () => {
    expect(PHYSICAL_APIC_ID_TABLE_ENTRIES).toBeGreaterThanOrEqual(physicalTableEntriesFor(AvicMode.X2avic));
  });

  it('the VMCB max index is clamped to the highest vCPU id', () => {
    expect(avicMaxPhysicalIndex(AvicMode.Xavic, 4)).toBe(3);
    expect(avicMaxPhysicalIndex(AvicMode.Xavic, 300)).toBe(0xfe);
    expect(avicMaxPhysicalIndex(AvicMode.X2avic, 300)).toBe(299);
    expect(avicMaxPhysicalIndex(AvicMode.X2avic, 1000)).toBe(0x1ff);
    expect(() => avicMaxPhysicalIndex(AvicMode.X2avic, 0)).toThrow(RangeError);
  });

  it('up to 255 vCPUs fit xAVIC and up to 512 fit x2AVIC', () => {
    expect(vcpuCountFitsAvicMode(AvicMode.Xavic, 255)).toBe(true);
    expect(vcpuCountFitsAvicMode(AvicMode.Xavic, 256)).toBe(false);
    expect(vcpuCountFitsAvicMode(AvicMode.X2avic, 512)).toBe(true);
    expect(vcpuCountFitsAvicMode(AvicMode.X2avic, 513)).toBe(false);
  });

  it('broadcast ids and range checks', () => {
    expect(physicalBroadcastDestination(AvicMode.Xavic)).toBe(0xff);
    expect(physicalBroadcastDestination(AvicMode.X2avic)).toBe(0xffffffff);
    expect(isPhysicalIndexInRange(AvicMode.Xavic, 0xff, 0xfe)).toBe(false);
    expect(isPhysicalIndexInRange(AvicMode.X2avic, 0xff, 0x1ff)).toBe(true);
    expect(isPhysicalIndexInRange(AvicMode.X2avic, 0x200, 0x1ff)).toBe(false);
    expect(isPhysicalIndexInRange(AvicMode.X2avic, 0x100, 0x0ff)).toBe(false);
  });
});
