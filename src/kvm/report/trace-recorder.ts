// Per-vCPU event recording for --trace, in the vCPU's own worker: four numbers per event in a
// growable Float64Array (no objects on the IPI path), handed back with the exit report. The main
// thread turns them into Chrome trace-event JSON (chrome-trace.ts). Bounded: past the cap, events
// are counted as dropped rather than growing memory without limit.

export const TraceEventKind = {
  /** An ICR write that sent an IPI. a = ICR low; b = destination | ((exit cause + 1) << 8), 0 = no exit. */
  IpiSent: 1,
  /** An interrupt taken (handler entry). a = vector. */
  InterruptDelivered: 2,
  /** An AVIC_NOACCEL exit, or an APIC access emulated as MMIO. a = register offset; b = 1 trap, 0 fault, 2 emulated MMIO (AVIC inhibited). */
  UnacceleratedAccessExit: 3,
  /** HLT: the vCPU stops executing guest code. */
  HaltBegin: 4,
  /** HLT ends. a = 1 if the vCPU really slept (blocked), 0 if halt-polling caught the event. */
  HaltEnd: 5,
  /** A sleep ended by a doorbell ring (a wake-up). */
  WakeUp: 6,
} as const;
export type TraceEventKind = (typeof TraceEventKind)[keyof typeof TraceEventKind];

export const TRACE_EVENT_FIELDS = 4;
/** At most this many events per vCPU (16 MiB of doubles). */
export const TRACE_EVENTS_PER_VCPU_LIMIT = 1 << 19;

export class TraceRecorder {
  #events = new Float64Array(4096 * TRACE_EVENT_FIELDS);
  #length = 0;
  dropped = 0;
  readonly #clock: () => number;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  record(kind: TraceEventKind, a = 0, b = 0): void {
    if (this.#length + TRACE_EVENT_FIELDS > this.#events.length) {
      if (this.#events.length >= TRACE_EVENTS_PER_VCPU_LIMIT * TRACE_EVENT_FIELDS) {
        this.dropped++;
        return;
      }
      const grown = new Float64Array(this.#events.length * 2);
      grown.set(this.#events);
      this.#events = grown;
    }
    const events = this.#events;
    const at = this.#length;
    events[at] = this.#clock();
    events[at + 1] = kind;
    events[at + 2] = a;
    events[at + 3] = b;
    this.#length = at + TRACE_EVENT_FIELDS;
  }

  /** The recorded events (a copy of exactly the used part). */
  take(): Float64Array {
    return this.#events.slice(0, this.#length);
  }
}
