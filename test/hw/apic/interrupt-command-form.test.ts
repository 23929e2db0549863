import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  DeliveryMode,
  DestinationMode,
  DestinationShorthand,
  TriggerMode,
  encodeInterruptCommand,
} from '../../../src/hw/apic/interrupt-command.js';
import {
  InterruptCommandCheck,
  InterruptCommandForm,
  ReceiveCheck,
  checkInterruptCommand,
  decodeInterruptCommandMessage,
  encodeX2apicInterruptCommand,
  errorStatusForAccept,
  errorStatusForReceive,
  errorStatusForSend,
  errorStatusOnWrite,
  interruptCommandForm,
  isValidShorthandCombination,
  receiveCheck,
  startUpAddress,
} from '../../../src/hw/apic/interrupt-command-form.js';
import {
  ApicImplementation,
  X2apicIcrWriteFault,
  x2apicInterruptCommandStoredLow,
  x2apicInterruptCommandWriteFault,
  xapicInterruptCommandHighAfterWrite,
  xapicInterruptCommandLowAfterWrite,
} from '../../../src/hw/apic/interrupt-command-readback.js';

const icr = (fields: Parameters<typeof encodeInterruptCommand>[0]) => encodeInterruptCommand(fields).low;
const { KvmEmulated, AmdAvic, IntelHardware } = ApicImplementation;

describe('every ICR form (SDM §11.6.1)', () => {
  it('fixed: vector 16..255 is sent', () => {
    for (let vector = 16; vector < 256; vector++) {
      const low = icr({ vector });
      expect(interruptCommandForm(low)).toBe(InterruptCommandForm.Fixed);
      expect(checkInterruptCommand(low)).toBe(InterruptCommandCheck.Send);
    }
  });

  it('fixed and lowest priority with vector 0..15: send illegal vector (ESR bit 5), nothing sent', () => {
    for (const deliveryMode of [DeliveryMode.Fixed, DeliveryMode.LowestPriority]) {
      for (let vector = 0; vector < 16; vector++) {
        const check = checkInterruptCommand(icr({ vector, deliveryMode }));
        expect(check).toBe(InterruptCommandCheck.SendIllegalVector);
        expect(errorStatusForSend(check)).toBe(1 << 5);
      }
    }
    expect(errorStatusForSend(InterruptCommandCheck.Send)).toBe(0);
  });

  it('lowest priority, SMI, NMI: their own forms; SMI and NMI ignore the vector', () => {
    expect(interruptCommandForm(icr({ deliveryMode: DeliveryMode.LowestPriority, vector: 0x40 }))).toBe(
      InterruptCommandForm.LowestPriority,
    );
    expect(interruptCommandForm(icr({ deliveryMode: DeliveryMode.Smi }))).toBe(InterruptCommandForm.Smi);
    expect(interruptCommandForm(icr({ deliveryMode: DeliveryMode.Nmi }))).toBe(InterruptCommandForm.Nmi);
    expect(checkInterruptCommand(icr({ deliveryMode: DeliveryMode.Nmi, vector: 0 }))).toBe(InterruptCommandCheck.Send);
    expect(checkInterruptCommand(icr({ deliveryMode: DeliveryMode.Smi, vector: 3 }))).toBe(InterruptCommandCheck.Send);
  });

  it('INIT assert is sent; INIT level de-assert (trigger level, level 0) is ignored by every model', () => {
    const assert = icr({ deliveryMode: DeliveryMode.Init, triggerMode: TriggerMode.Level, levelAssert: true });
    const deassert = icr({
      deliveryMode: DeliveryMode.Init,
      triggerMode: TriggerMode.Level,
      levelAssert: false,
      shorthand: DestinationShorthand.AllIncludingSelf,
    });
    expect(interruptCommandForm(assert)).toBe(InterruptCommandForm.InitAssert);
    expect(interruptCommandForm(icr({ deliveryMode: DeliveryMode.Init }))).toBe(InterruptCommandForm.InitAssert);
    expect(interruptCommandForm(deassert)).toBe(InterruptCommandForm.InitLevelDeassert);
    expect(checkInterruptCommand(assert)).toBe(InterruptCommandCheck.Send);
    for (const model of [KvmEmulated, AmdAvic, IntelHardware])
      expect(checkInterruptCommand(deassert, model)).toBe(InterruptCommandCheck.IgnoredLevelDeassert);
  });

  it('start-up: the vector names the 4 KiB page where the target starts', () => {
    const low = icr({ deliveryMode: DeliveryMode.StartUp, vector: 0x9a });
    expect(interruptCommandForm(low)).toBe(InterruptCommandForm.StartUp);
    expect(checkInterruptCommand(low)).toBe(InterruptCommandCheck.Send);
    expect(startUpAddress(0x9a)).toBe(0x9a000);
    expect(startUpAddress(0x08)).toBe(0x8000);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), (vector) => {
        expect(startUpAddress(vector)).toBe(vector << 12);
      }),
    );
  });

  it('delivery modes 011b and 111b are reserved and dropped', () => {
    expect(interruptCommandForm(3 << 8)).toBe(InterruptCommandForm.ReservedRemoteRead);
    expect(interruptCommandForm(7 << 8)).toBe(InterruptCommandForm.ReservedExtInt);
    expect(checkInterruptCommand((3 << 8) | 0x40)).toBe(InterruptCommandCheck.ReservedDeliveryMode);
    expect(checkInterruptCommand((7 << 8) | 0x40)).toBe(InterruptCommandCheck.ReservedDeliveryMode);
  });

  it('fixed with trigger level and level 0 is dropped (KVM and hardware); NMI de-assert only by hardware', () => {
    const fixedDeassert = icr({ vector: 0x40, triggerMode: TriggerMode.Level, levelAssert: false });
    expect(checkInterruptCommand(fixedDeassert, KvmEmulated)).toBe(InterruptCommandCheck.IgnoredLevelDeassert);
    const nmiDeassert = icr({ deliveryMode: DeliveryMode.Nmi, triggerMode: TriggerMode.Level, levelAssert: false });
    expect(checkInterruptCommand(nmiDeassert, KvmEmulated)).toBe(InterruptCommandCheck.Send);
    expect(checkInterruptCommand(nmiDeassert, IntelHardware)).toBe(InterruptCommandCheck.IgnoredLevelDeassert);
  });
});

describe('shorthand / delivery-mode combinations (SDM "valid combinations" table)', () => {
  it('Self and AllIncludingSelf allow Fixed only; None and AllExcludingSelf allow every mode', () => {
    for (const deliveryMode of [0, 1, 2, 4, 5, 6] as DeliveryMode[]) {
      for (const shorthand of [0, 1, 2, 3] as DestinationShorthand[]) {
        const low = icr({ deliveryMode, shorthand, vector: 0x40 });
        const valid =
          shorthand === DestinationShorthand.None ||
          shorthand === DestinationShorthand.AllExcludingSelf ||
          deliveryMode === DeliveryMode.Fixed;
        expect(isValidShorthandCombination(low), `mode ${deliveryMode} shorthand ${shorthand}`).toBe(valid);
        expect(checkInterruptCommand(low, IntelHardware)).toBe(
          valid ? InterruptCommandCheck.Send : InterruptCommandCheck.InvalidShorthandCombination,
        );
        // KVM validates nothing here: it delivers, e.g., a Self NMI to the sender.
        expect(checkInterruptCommand(low, KvmEmulated)).toBe(InterruptCommandCheck.Send);
      }
    }
  });
});

describe('receive side and ESR', () => {
  it('an arriving fixed/lowest-priority vector 0..15 sets receive illegal vector (bit 6), never IRR', () => {
    expect(receiveCheck(DeliveryMode.Fixed, 15)).toBe(ReceiveCheck.ReceivedIllegalVector);
    expect(receiveCheck(DeliveryMode.LowestPriority, 0)).toBe(ReceiveCheck.ReceivedIllegalVector);
    expect(receiveCheck(DeliveryMode.Fixed, 16)).toBe(ReceiveCheck.Accept);
    expect(receiveCheck(DeliveryMode.Nmi, 2)).toBe(ReceiveCheck.Accept);
    expect(errorStatusForReceive(ReceiveCheck.ReceivedIllegalVector)).toBe(1 << 6);
    expect(errorStatusForReceive(ReceiveCheck.Accept)).toBe(0);
  });

  it('send accept (bit 2) only on an APIC bus and only when nobody accepted', () => {
    expect(errorStatusForAccept(0, true)).toBe(1 << 2);
    expect(errorStatusForAccept(1, true)).toBe(0);
    expect(errorStatusForAccept(0, false)).toBe(0);
  });

  it('an ESR write publishes the latched bits 7:0', () => {
    expect(errorStatusOnWrite((1 << 5) | (1 << 6) | 0x100)).toBe(0x60);
  });
});

describe('ICR read-back (KVM selftest xapic_state_test)', () => {
  const written = fc.integer({ min: 0, max: 0xffffffff });

  it('xAPIC, KVM and Intel: low reads back as written minus BUSY; high keeps bits 31:24 only', () => {
    fc.assert(
      fc.property(written, written, (low, high) => {
        for (const model of [KvmEmulated, IntelHardware]) {
          expect(xapicInterruptCommandLowAfterWrite(low, model)).toBe((low & ~0x1000) >>> 0);
          expect(xapicInterruptCommandHighAfterWrite(high, model)).toBe((high & 0xff000000) >>> 0);
        }
      }),
    );
  });

  it('xAPIC, AMD AVIC: low equal to the write once BUSY is masked; high keeps all 32 bits', () => {
    fc.assert(
      fc.property(written, written, fc.boolean(), (low, high, busyLeftSet) => {
        const readBack = xapicInterruptCommandLowAfterWrite(low, AmdAvic, busyLeftSet);
        expect(readBack & ~0x1000).toBe(low & ~0x1000);
        expect(xapicInterruptCommandHighAfterWrite(high, AmdAvic)).toBe(high);
      }),
    );
    expect(xapicInterruptCommandLowAfterWrite(0x4030, AmdAvic, true)).toBe(0x5030);
  });

  it('x2APIC: a write with no reserved bit reads back exactly (BUSY clear); one with a reserved bit #GPs', () => {
    fc.assert(
      fc.property(written, written, (low, high) => {
        const noBusy = (low & ~0x1000) >>> 0;
        const fault = x2apicInterruptCommandWriteFault(noBusy, KvmEmulated);
        const reserved = (noBusy & 0xfff32000) !== 0;
        expect(fault).toBe(reserved ? X2apicIcrWriteFault.ReservedBits : X2apicIcrWriteFault.None);
        if (!reserved) expect(x2apicInterruptCommandStoredLow(noBusy)).toBe(noBusy);
        expect(encodeX2apicInterruptCommand({ destination: high }).high).toBe(high);
      }),
    );
  });

  it('the sweep of xapic_state_test: all 256 self vectors and all 8 modes to absent vCPUs stay readable', () => {
    for (let vector = 0; vector < 256; vector++) {
      const low = icr({ vector, shorthand: DestinationShorthand.Self });
      expect(xapicInterruptCommandLowAfterWrite(low | 0x1000, KvmEmulated)).toBe(low);
      expect(x2apicInterruptCommandWriteFault(low, KvmEmulated)).toBe(X2apicIcrWriteFault.None);
    }
    for (let mode = 0; mode < 8; mode++) {
      const low = (0x4000 | 0xff | (mode << 8)) >>> 0;
      expect(x2apicInterruptCommandStoredLow(low)).toBe(low);
    }
  });
});

describe('decoded message in both modes', () => {
  it('x2APIC takes the whole high half as destination; xAPIC takes bits 31:24', () => {
    const { low, high } = encodeX2apicInterruptCommand({
      vector: 0x41,
      destinationMode: DestinationMode.Logical,
      destination: 0x0003_0005,
    });
    expect(decodeInterruptCommandMessage(low, high, true)).toMatchObject({
      form: InterruptCommandForm.Fixed,
      vector: 0x41,
      destinationMode: DestinationMode.Logical,
      destination: 0x30005,
    });
    expect(decodeInterruptCommandMessage(low, 0xab00_0000, false).destination).toBe(0xab);
  });
});
