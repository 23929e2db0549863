// Per vCPU: every piece of its state that lives in its Vcpu object rather than in shared memory, so
// that a host CPU in another worker can load it (migration). The host CPU that puts the vCPU saves
// it here; one that loads it after another host CPU saved it builds a fresh Vcpu from the shared
// words and restores it from here (a worker that saved it last, with the generation unchanged, has
// the state already and skips the restore). What is not here is rebuilt from shared memory at
// construction (the APIC page base, x2APIC mode, memslots: reloaded at the restoring load) or stays
// per worker and is merged by the main thread (latency samples, trace events).
//
// One writer per area: the host CPU the vCPU is loaded on (only one at a time). It saves, commits
// (generation +1), then clears the task's onCpu word; no other host CPU loads the vCPU before it
// reads onCpu = 0, so it sees the whole save (docs/architecture.md#orderings, O12).

import { defineStruct, fastRecord } from '../../host/shared-layout.js';

/** Guest registers r0..r15 (the zero register r16 is not state). */
export const SAVED_REGISTERS = 16;

const BY_PUT = 'the host CPU that puts the vCPU (vcpu_put), before it queues it again';

export const VcpuSaveArea = defineStruct('VcpuSaveArea', {
  generation: { type: 'i32', writer: `${BY_PUT}: +1 after the fields below are stored` },
  savedBy: { type: 'i32', writer: `${BY_PUT}: its index + 1` },
  // GuestCpu (src/guest/guest-cpu.ts)
  registers: { type: 'i32', count: SAVED_REGISTERS, writer: BY_PUT },
  pc: { type: 'i32', writer: BY_PUT },
  flags: { type: 'i32', writer: BY_PUT },
  interruptVectorTableBase: { type: 'i32', writer: BY_PUT },
  nmiBlocked: { type: 'i32', writer: BY_PUT },
  msrHighWord: { type: 'i32', writer: BY_PUT },
  generalProtectionExceptions: { type: 'i32', writer: BY_PUT },
  // The run loop (vcpu.ts, vcpu-exits.ts)
  halted: { type: 'i32', writer: BY_PUT },
  firstExitDone: { type: 'i32', writer: BY_PUT },
  // VcpuBoot, VcpuInterrupts, AvicVcpu
  bootState: { type: 'i32', writer: BY_PUT },
  nmisLatched: { type: 'i32', writer: BY_PUT },
  apicvActive: { type: 'i32', writer: BY_PUT },
  // ApicTimer (src/kvm/lapic/apic-timer.ts)
  timerLvt: { type: 'i32', writer: BY_PUT },
  timerInitialCount: { type: 'i32', writer: BY_PUT },
  timerDivisor: { type: 'i32', writer: BY_PUT },
  timerDeadlineNs: { type: 'f64', writer: BY_PUT },
  timerPeriodNs: { type: 'f64', writer: BY_PUT },
  timerInstructionsPerNs: { type: 'f64', writer: BY_PUT },
  // VcpuSleep (src/kvm/vcpu/vcpu-sleep.ts)
  haltPollNs: { type: 'f64', writer: BY_PUT },
  haltStartedAtMs: { type: 'f64', writer: `${BY_PUT}: the host clock (nowMs) when the halt in progress began, 0 when none` },
});

export type VcpuSaveField = Exclude<keyof typeof VcpuSaveArea.fieldOffsets, 'generation' | 'savedBy'>;

/**
 * The values each saved field may hold (inclusive), beside the layout so that a field added there
 * must be given one here (the round-trip test fills every field from this table).
 */
export const VCPU_SAVE_FIELD_RANGES: Readonly<Record<VcpuSaveField, readonly [number, number]>> = {
  registers: [-0x8000_0000, 0x7fff_ffff],
  pc: [0, 0x7fff_ffff],
  flags: [0, 0x7fff_ffff],
  interruptVectorTableBase: [0, 0x7fff_ffff],
  nmiBlocked: [0, 1],
  msrHighWord: [-0x8000_0000, 0x7fff_ffff],
  generalProtectionExceptions: [0, 0x7fff_ffff],
  halted: [0, 1],
  firstExitDone: [0, 1],
  bootState: [0, 2],
  nmisLatched: [0, 2],
  apicvActive: [0, 1],
  timerLvt: [-0x8000_0000, 0x7fff_ffff],
  timerInitialCount: [-0x8000_0000, 0x7fff_ffff],
  timerDivisor: [1, 128],
  timerDeadlineNs: [0, 2 ** 52],
  timerPeriodNs: [0, 2 ** 52],
  timerInstructionsPerNs: [0, 1000],
  haltPollNs: [0, 2 ** 40],
  haltStartedAtMs: [0, 2 ** 52],
};

/**
 * Per field, its element in an area: an i32 field's Int32 element (>= 0), an f64 field's Float64
 * element as -1 - element. A put saves some 36 fields, so a field costs one lookup in one table.
 */
const SLOT = fastRecord(
  (Object.keys(VcpuSaveArea.fields) as (keyof typeof VcpuSaveArea.fields)[]).map((field) => {
    const offset = VcpuSaveArea.fieldOffsets[field];
    return [field, VcpuSaveArea.fields[field].type === 'f64' ? -1 - offset / 8 : offset / 4] as const;
  }),
);

/** One vCPU's save area over the VM's control buffer. */
export class VcpuSaveAreaView {
  readonly #int32: Int32Array;
  readonly #float64: Float64Array;
  /** The area's first element in #int32 and in #float64. */
  readonly #base32: number;
  readonly #base64: number;

  /** `byteOffset`: where vCPU `vcpu`'s area starts in `int32`'s buffer (a cache-line multiple). */
  constructor(int32: Int32Array, byteOffset: number) {
    this.#int32 = int32;
    this.#float64 = new Float64Array(int32.buffer);
    this.#base32 = byteOffset >> 2;
    this.#base64 = byteOffset >> 3;
  }

  /** Saves so far (0: never saved, so there is nothing to restore). */
  get generation(): number {
    return Atomics.load(this.#int32, this.#index('generation'));
  }

  /** The host CPU that saved it last, or -1. */
  get savedBy(): number {
    return Atomics.load(this.#int32, this.#index('savedBy')) - 1;
  }

  get(field: VcpuSaveField, element = 0): number {
    const slot = SLOT[field];
    return slot >= 0 ? this.#int32[this.#base32 + slot + element]! : this.#float64[this.#base64 - 1 - slot + element]!;
  }

  set(field: VcpuSaveField, value: number, element = 0): void {
    const slot = SLOT[field];
    if (slot >= 0) this.#int32[this.#base32 + slot + element] = value;
    else this.#float64[this.#base64 - 1 - slot + element] = value;
  }

  /** After the fields: publishes the save (the run queue's lock orders it before a restore elsewhere). */
  commit(hostCpu: number): number {
    Atomics.store(this.#int32, this.#index('savedBy'), hostCpu + 1);
    return Atomics.add(this.#int32, this.#index('generation'), 1) + 1;
  }

  #index(field: 'generation' | 'savedBy'): number {
    return this.#base32 + SLOT[field];
  }
}
