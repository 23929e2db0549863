// The one report slot. The first thread to turn debugLocks off (compareExchange 1 -> 0, lockdep's
// debug_locks_off) owns the slot: it writes kind, cycle and text, then stores reportState = 2.
// A reader (main, a test, the CLI) that loads reportState == 2 sees everything written before it.
// Every later possible deadlock finds debugLocks already 0 and is not reported, as in the kernel:
// one splat, then silence, so that reports do not cascade.

import type { LockClassRegistry } from './lock-class.js';
import { MAX_REPORTED_CYCLE, type LockdepIndices } from './lockdep-layout.js';
import { LockdepReportKind, type LockdepReport } from './lockdep-splat.js';
import type { SharedLabelTable } from './site-labels.js';

const REPORT_WRITING = 1;
const REPORT_READY = 2;
const KIND_CODES: Readonly<Record<LockdepReportKind, number>> = { 'circular-dependency': 1, 'recursive-locking': 2 };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ReportSlot {
  readonly #int32: Int32Array;
  readonly #indices: LockdepIndices;
  readonly #classes: LockClassRegistry;
  readonly #labels: SharedLabelTable;
  readonly #text: Uint8Array;

  constructor(int32: Int32Array, indices: LockdepIndices, classes: LockClassRegistry, labels: SharedLabelTable) {
    this.#int32 = int32;
    this.#indices = indices;
    this.#classes = classes;
    this.#labels = labels;
    this.#text = new Uint8Array(int32.buffer, indices.bytes('reportText'), indices.layout.regionBytes.reportText);
  }

  /** debug_locks: 1 while the validator still reports. */
  get debugLocks(): boolean {
    return Atomics.load(this.#int32, this.#indices.header('debugLocks')) === 1;
  }

  /** debug_locks_off(): true for exactly one caller, the one that may write the report. */
  turnOff(): boolean {
    return Atomics.compareExchange(this.#int32, this.#indices.header('debugLocks'), 1, 0) === 1;
  }

  /** Called only by the thread whose turnOff() returned true. */
  write(kind: LockdepReportKind, cycle: readonly number[], threadLabel: number, text: string): void {
    const store = (field: Parameters<LockdepIndices['header']>[0], value: number): void => {
      Atomics.store(this.#int32, this.#indices.header(field), value);
    };
    store('reportState', REPORT_WRITING);
    store('reportKind', KIND_CODES[kind]);
    store('reportThread', threadLabel);
    const kept = cycle.slice(0, MAX_REPORTED_CYCLE + 1);
    kept.forEach((classId, position) => {
      Atomics.store(this.#int32, this.#indices.header('reportCycle') + position, classId);
    });
    store('reportCycleLength', kept.length);
    const { written } = encoder.encodeInto(text, this.#text);
    store('reportTextBytes', written);
    store('reportState', REPORT_READY); // last: publishes everything above
  }

  read(): LockdepReport | undefined {
    if (Atomics.load(this.#int32, this.#indices.header('reportState')) !== REPORT_READY) return undefined;
    const load = (field: Parameters<LockdepIndices['header']>[0]): number => Atomics.load(this.#int32, this.#indices.header(field));
    const kind =
      load('reportKind') === KIND_CODES['recursive-locking'] ? LockdepReportKind.RecursiveLocking : LockdepReportKind.CircularDependency;
    const cycle: string[] = [];
    for (let position = 0; position < load('reportCycleLength'); position++) {
      cycle.push(this.#classes.byId(Atomics.load(this.#int32, this.#indices.header('reportCycle') + position)).name);
    }
    const text = decoder.decode(this.#text.slice(0, load('reportTextBytes')));
    return { kind, cycle, thread: this.#labels.text(load('reportThread')), text };
  }
}
