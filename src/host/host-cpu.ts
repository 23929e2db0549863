// The doorbell line of each host thread, and the host CPU a vCPU is loaded on. Mechanism only: this
// file knows no APIC. A line is four words in the VM's control buffer (HostThreadDoorbell); the AVIC
// doorbell (avic_ring_doorbell) and KVM's vCPU wake-up (kvm_vcpu_kick) both ring it, and the thread
// that owns it polls it while running guest code and sleeps on it while blocked.
//
// One ordering lives here (docs/architecture.md#orderings, O3): the ringer's "add to ring, then read
// sleeping and notify" (DoorbellLines.ring) pairs with the sleeper's "sleeping = 1, then
// Atomics.wait(ring, seen)" (HostCpu.sleep). Every wait is bounded by its caller's timeout.

import { defineStruct } from './shared-layout.js';
import { hostThreadSlot, type HostThreadSlot } from './identifiers.js';

/** Per host thread: the doorbell line. The AVIC doorbell and KVM's vCPU wake-up both ring it. */
export const HostThreadDoorbell = defineStruct('HostThreadDoorbell', {
  ring: { type: 'i32', writer: 'any thread: Atomics.add(1) to ring; never written otherwise' },
  sleeping: { type: 'i32', writer: 'owning host thread: 1 just before Atomics.wait on ring, 0 after' },
  waitValue: { type: 'i32', writer: 'owning host thread: the ring value it sleeps on (watchdog and idle detection)' },
  claimed: { type: 'i32', writer: 'any worker: compare-and-swap 0 -> 1 to claim this slot at start-up' },
});

export type HostThreadDoorbellField = keyof typeof HostThreadDoorbell.fieldOffsets;

/** The array of doorbell lines, one per host thread slot, at byte `regionOffset` of the buffer under `words`. */
export class DoorbellLines {
  readonly words: Int32Array;
  readonly count: number;
  readonly #regionOffset: number;
  // Hot indices, computed once: the IPI path rings millions of times a second.
  readonly #ring: Int32Array;
  readonly #sleeping: Int32Array;

  constructor(words: Int32Array, regionOffset: number, count: number) {
    this.words = words;
    this.count = count;
    this.#regionOffset = regionOffset;
    this.#ring = Int32Array.from({ length: count }, (_, slot) => this.index(slot, 'ring'));
    this.#sleeping = Int32Array.from({ length: count }, (_, slot) => this.index(slot, 'sleeping'));
  }

  /** Int32 index of `field` of line `slot`. */
  index(slot: number, field: HostThreadDoorbellField): number {
    return (this.#regionOffset + slot * HostThreadDoorbell.byteSize + HostThreadDoorbell.fieldOffsets[field]) >> 2;
  }

  /** Rings line `slot`: the AVIC doorbell and KVM's wake-up share it. */
  ring(slot: number): void {
    Atomics.add(this.words, this.#ring[slot]!, 1);
    // Pairs with the sleeper's "sleeping = 1, then Atomics.wait(ring, seen)" (O3): either it sees our
    // add (the wait returns not-equal) or we see sleeping = 1 and notify.
    if (Atomics.load(this.words, this.#sleeping[slot]!) !== 0) {
      Atomics.notify(this.words, this.#ring[slot]!, 1);
    }
  }

  /**
   * Claims a free line for the calling thread, for the VM's life (compare-and-swap on `claimed`),
   * trying `preferred` first so that the usual case takes one step.
   */
  claim(preferred: number): HostCpu {
    for (let step = 0; step < this.count; step++) {
      const slot = (preferred + step) % this.count;
      if (Atomics.compareExchange(this.words, this.index(slot, 'claimed'), 0, 1) === 0) return new HostCpu(this, hostThreadSlot(slot));
    }
    throw new Error(`no free host thread slot (all ${this.count} claimed)`);
  }
}

/**
 * The host CPU a vCPU is loaded on: one claimed doorbell line, owned by the calling thread. Its slot
 * is what the physical APIC ID table shows as the host physical APIC ID while the vCPU runs here.
 */
export class HostCpu {
  readonly slot: HostThreadSlot;
  readonly lines: DoorbellLines;
  /** The words and index the guest polls (GuestCpu) while it runs on this host CPU. */
  readonly words: Int32Array;
  readonly ringIndex: number;
  readonly #sleeping: number;
  readonly #waitValue: number;

  constructor(lines: DoorbellLines, slot: HostThreadSlot) {
    this.lines = lines;
    this.slot = slot;
    this.words = lines.words;
    this.ringIndex = lines.index(slot, 'ring');
    this.#sleeping = lines.index(slot, 'sleeping');
    this.#waitValue = lines.index(slot, 'waitValue');
  }

  /** The ring count now; a later value that differs means someone rang. */
  ringValue(): number {
    return Atomics.load(this.words, this.ringIndex);
  }

  /**
   * One bounded sleep until the ring moves from `seen`, announced to ringers (sleeping, so they
   * notify; O3) and to the main thread's watchdog (waitValue).
   */
  sleep(seen: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
    Atomics.store(this.words, this.#waitValue, seen);
    Atomics.store(this.words, this.#sleeping, 1);
    const result = Atomics.wait(this.words, this.ringIndex, seen, timeoutMs);
    Atomics.store(this.words, this.#sleeping, 0);
    return result;
  }

  /**
   * A short bounded wait for the ring to move from `seen`, not announced: ringers do not notify it,
   * so it lasts its timeout unless the ring moved before it began (a yield, or a grace period).
   */
  waitUnannounced(seen: number, timeoutMs: number): void {
    Atomics.wait(this.words, this.ringIndex, seen, timeoutMs);
  }
}
