// INIT's APIC reset (resetApicPageForInit, src/kvm/vcpu/vcpu-boot.ts) runs in the target's worker
// while other vCPUs' software IPI paths read the same page to find their destinations
// (apic-software-ipi.ts collectTargets: the ID word, LDR and DFR). KVM's senders look a vCPU up in
// its APIC map, which INIT leaves alone (kvm_lapic_reset keeps the ID on an INIT), so a start-up IPI
// sent right behind the INIT always finds its target. Here the page is the map: every register must
// go straight from its value before INIT to its value after, the ID never changing, or the start-up
// IPI of INIT-SIPI is dropped as "no target" and the vCPU never starts.
//
// The handshake: Atomics.store is wrapped so that after each store the reset makes into the page,
// the test, acting as a sender at that very instant, looks at the page. No threads, no timing.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { resetApicPageForInit } from '../../../src/kvm/vcpu/vcpu-boot.js';
import { APIC_PAGE_WORDS, ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { DFR_FLAT } from '../../../src/hw/apic/apic-backing-page.js';
import { matchesDestination } from '../../../src/hw/apic/apic-destination.js';
import { matchesX2apicDestination } from '../../../src/hw/apic/x2apic-destination.js';
import { DestinationMode, DestinationShorthand } from '../../../src/hw/apic/interrupt-command.js';
import { x2apicLogicalDestination } from '../../../src/hw/apic/x2apic-id.js';

const word = (offset: number): number => offset >> 2;
/** The target's page is the second of two, so a reset that ignored `base` would show. */
const BASE = APIC_PAGE_WORDS;
const TARGET = 1;
const SENDER = 0;

/** A running vCPU 1's page: enabled, TPR raised, an interrupt in service and one pending, a timer LVT. */
function runningPage(x2apic: boolean): Int32Array {
  const words = new Int32Array(new SharedArrayBuffer(2 * APIC_PAGE_WORDS * 4));
  words[BASE + word(ApicRegister.Id)] = x2apic ? TARGET : TARGET << 24;
  words[BASE + word(ApicRegister.LogicalDestination)] = x2apic ? x2apicLogicalDestination(TARGET) : 1 << (24 + TARGET);
  words[BASE + word(ApicRegister.DestinationFormat)] = DFR_FLAT;
  words[BASE + word(ApicRegister.SpuriousInterruptVector)] = 0x1ff;
  words[BASE + word(ApicRegister.TaskPriority)] = 0x20;
  words[BASE + word(ApicRegister.InService) + 4 * (0x40 >> 5)] = 1 << (0x40 & 31);
  words[BASE + word(ApicRegister.InterruptRequest) + 4 * (0x50 >> 5)] = 1 << (0x50 & 31);
  words[BASE + word(ApicRegister.LvtTimer)] = 0x20030;
  return words;
}

/** What a sender's physical-destination match sees for vCPU 1 in the page as it is now. */
function senderFindsTarget(words: Int32Array, x2apic: boolean): boolean {
  const id = Atomics.load(words, BASE + word(ApicRegister.Id));
  return x2apic
    ? matchesX2apicDestination(id >>> 0, SENDER, DestinationShorthand.None, DestinationMode.Physical, TARGET)
    : matchesDestination(
        id >>> 24,
        Atomics.load(words, BASE + word(ApicRegister.LogicalDestination)),
        Atomics.load(words, BASE + word(ApicRegister.DestinationFormat)),
        SENDER,
        DestinationShorthand.None,
        DestinationMode.Physical,
        TARGET,
      );
}

/** Runs the reset, calling `observe` after every Atomics.store it makes into `words`; returns how many. */
function resetObserved(words: Int32Array, x2apic: boolean, observe: () => void): number {
  const store = Atomics.store;
  let stores = 0;
  vi.spyOn(Atomics, 'store').mockImplementation(((array: Int32Array, index: number, value: number) => {
    const result = store(array, index, value);
    if (array === words) {
      stores++;
      observe();
    }
    return result;
  }) as typeof Atomics.store);
  resetApicPageForInit(words, BASE, x2apic);
  vi.restoreAllMocks();
  return stores;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('INIT reset of a page that senders read at the same time', () => {
  for (const x2apic of [false, true]) {
    const mode = x2apic ? 'x2APIC' : 'xAPIC';

    it(`${mode}: at every step of the reset a sender still finds the target at its APIC ID`, () => {
      const words = runningPage(x2apic);
      const steps: boolean[] = [];
      const stores = resetObserved(words, x2apic, () => steps.push(senderFindsTarget(words, x2apic)));
      // The reset publishes the page with atomic stores (the page is shared); the test saw them all.
      expect(stores).toBeGreaterThan(0);
      const lostAt = steps.indexOf(false);
      expect(lostAt, `a sender found no vCPU ${TARGET} after store ${lostAt + 1} of ${stores}`).toBe(-1);
      expect(senderFindsTarget(words, x2apic)).toBe(true);
    });

    it(`${mode}: every register goes straight from its value before INIT to its value after (no transient value)`, () => {
      const before = runningPage(x2apic);
      const after = runningPage(x2apic);
      resetApicPageForInit(after, BASE, x2apic);
      const words = runningPage(x2apic);
      const transients = new Map<number, string>();
      const hex = (value: number): string => `0x${(value >>> 0).toString(16)}`;
      resetObserved(words, x2apic, () => {
        for (let relative = 0; relative < APIC_PAGE_WORDS; relative++) {
          const value = words[BASE + relative]!;
          if (value !== before[BASE + relative] && value !== after[BASE + relative] && !transients.has(relative)) {
            transients.set(
              relative,
              `register ${hex(relative * 4)} held ${hex(value)} (before ${hex(before[BASE + relative]!)}, after ${hex(after[BASE + relative]!)})`,
            );
          }
        }
      });
      expect([...transients.values()]).toEqual([]);
      expect(words).toEqual(after);
      // The reset itself, as the SDM has it (§11.4.7.3): the ID kept, in x2APIC mode its LDR too.
      expect(after[BASE + word(ApicRegister.Id)]).toBe(before[BASE + word(ApicRegister.Id)]);
      expect(after[BASE + word(ApicRegister.LogicalDestination)]).toBe(x2apic ? x2apicLogicalDestination(TARGET) : 0);
      expect(after[BASE + word(ApicRegister.DestinationFormat)]).toBe(DFR_FLAT);
      expect(after[BASE + word(ApicRegister.SpuriousInterruptVector)]).toBe(0xff);
      expect(after[BASE + word(ApicRegister.TaskPriority)]).toBe(0);
    });
  }
});
