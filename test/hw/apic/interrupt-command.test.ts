import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  DeliveryMode,
  DestinationMode,
  DestinationShorthand,
  TriggerMode,
  decodeInterruptCommand,
  encodeInterruptCommand,
  interruptCommandDestination,
  interruptCommandVector,
} from '../../../src/hw/apic/interrupt-command.js';

describe('ICR decode (SDM figure 11-12)', () => {
  it('vector is bits 7:0', () => {
    expect(interruptCommandVector(0x000040f3)).toBe(0xf3);
    expect(decodeInterruptCommand(0x000000ab, 0).vector).toBe(0xab);
  });

  it('delivery mode is bits 10:8, every encoding', () => {
    const expected = [
      DeliveryMode.Fixed,
      DeliveryMode.LowestPriority,
      DeliveryMode.Smi,
      DeliveryMode.Reserved3,
      DeliveryMode.Nmi,
      DeliveryMode.Init,
      DeliveryMode.StartUp,
      DeliveryMode.Reserved7,
    ];
    for (let mode = 0; mode < 8; mode++) {
      expect(decodeInterruptCommand(mode << 8, 0).deliveryMode).toBe(expected[mode]);
    }
    expect(decodeInterruptCommand(0x00000500, 0).deliveryMode).toBe(DeliveryMode.Init);
    expect(decodeInterruptCommand(0x00000600, 0).deliveryMode).toBe(DeliveryMode.StartUp);
  });

  it('destination mode is bit 11, delivery status bit 12, level bit 14, trigger bit 15', () => {
    const none = decodeInterruptCommand(0, 0);
    expect(none.destinationMode).toBe(DestinationMode.Physical);
    expect(none.busy).toBe(false);
    expect(none.levelAssert).toBe(false);
    expect(none.triggerMode).toBe(TriggerMode.Edge);
    expect(decodeInterruptCommand(1 << 11, 0).destinationMode).toBe(DestinationMode.Logical);
    expect(decodeInterruptCommand(1 << 12, 0).busy).toBe(true);
    expect(decodeInterruptCommand(1 << 14, 0).levelAssert).toBe(true);
    expect(decodeInterruptCommand(1 << 15, 0).triggerMode).toBe(TriggerMode.Level);
  });

  it('shorthand is bits 19:18', () => {
    expect(decodeInterruptCommand(0 << 18, 0).shorthand).toBe(DestinationShorthand.None);
    expect(decodeInterruptCommand(1 << 18, 0).shorthand).toBe(DestinationShorthand.Self);
    expect(decodeInterruptCommand(2 << 18, 0).shorthand).toBe(DestinationShorthand.AllIncludingSelf);
    expect(decodeInterruptCommand(3 << 18, 0).shorthand).toBe(DestinationShorthand.AllExcludingSelf);
  });

  it('xAPIC destination is ICR high bits 31:24, lower bits ignored', () => {
    expect(interruptCommandDestination(0xfe00_0000)).toBe(0xfe);
    expect(interruptCommandDestination(0x03ff_ffff)).toBe(0x03);
    expect(decodeInterruptCommand(0, 0xff00_0000 | 0).destination).toBe(0xff);
  });

  it('decodes a typical INIT level-assert to all-excluding-self', () => {
    expect(decodeInterruptCommand(0x000c4500, 0)).toEqual({
      vector: 0,
      deliveryMode: DeliveryMode.Init,
      destinationMode: DestinationMode.Physical,
      busy: false,
      levelAssert: true,
      triggerMode: TriggerMode.Edge,
      shorthand: DestinationShorthand.AllExcludingSelf,
      destination: 0,
    });
  });

  it('encode defaults to a Fixed, physical, edge, asserted IPI', () => {
    expect(encodeInterruptCommand({ vector: 0x40, destination: 3 })).toEqual({ low: 0x4040, high: 0x0300_0000 });
  });

  it('encode and decode round-trip every field', () => {
    fc.assert(
      fc.property(
        fc.record({
          vector: fc.integer({ min: 0, max: 255 }),
          deliveryMode: fc.constantFrom(...Object.values(DeliveryMode)),
          destinationMode: fc.constantFrom(...Object.values(DestinationMode)),
          busy: fc.boolean(),
          levelAssert: fc.boolean(),
          triggerMode: fc.constantFrom(...Object.values(TriggerMode)),
          shorthand: fc.constantFrom(...Object.values(DestinationShorthand)),
          destination: fc.integer({ min: 0, max: 255 }),
        }),
        (command) => {
          const { low, high } = encodeInterruptCommand(command);
          expect(decodeInterruptCommand(low, high)).toEqual(command);
          expect(decodeInterruptCommand(low | 0, high | 0)).toEqual(command);
        },
      ),
    );
  });
});
