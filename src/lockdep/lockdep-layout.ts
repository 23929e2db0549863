// The validator's one shared region: every thread maps the same SharedArrayBuffer, so every thread
// sees the same dependency graph, held-lock stacks, lock words and report (lockdep's global
// tables, on shared memory). Offsets come from src/host/shared-layout.ts only; the few packed
// records inside a region (a held-lock entry, an edge record) are named here, next to the region.
//
// Regions, in order:
//   header        who may validate (debugLocks), sizes, allocators, the report slot
//   threads       one struct per thread slot: 0 = main, 1..workerThreads = workers, then the
//                 main thread's async contexts. Held-lock stack (depth <= 16) and "waiting for".
//   instances     one struct per lock instance: kind, class, the lock word itself, holder, readers
//   dependencies  classes x classes words: bit t set when an edge of dependency type t was seen
//   edgeRecords   classes x classes x 4 records: where each (edge, type) was first seen
//   labelEntries, labelHash, labelBytes   the shared site-label table (site-labels.ts)
//   reportText    UTF-8 text of the first report

import {
  defineBufferLayout,
  defineStruct,
  fastRecord,
  int32IndexOf,
  regionInt32Index,
  type BufferLayout,
  type StructLayout,
} from '../host/shared-layout.js';

/** How a lock is acquired: the kernel's `read` argument to lock_acquire (0, 1, 2). */
export const LockMode = {
  /** Exclusive: mutex_lock, down_write, and synchronize_srcu's lock_sync. lockdep's W / E. */
  Write: 0,
  /** Non-recursive read (down_read of a writer-fair rwsem): blocked by a waiting writer. lockdep's r. */
  Read: 1,
  /** Recursive read (srcu_read_lock, a reader-preferring rwsem): blocked only by a writer holding. lockdep's R. */
  RecursiveRead: 2,
} as const;
export type LockMode = (typeof LockMode)[keyof typeof LockMode];

/**
 * The four dependency types of lockdep-design.rst ("Dependency types and strong dependency
 * paths"), numbered as the kernel's __calc_dep_bit: (prev held as writer) + 2 * (next taken
 * non-recursively). E = exclusive writer, S = shared reader; R = recursive reader, N = non-recursive.
 */
export const DependencyType = { SR: 0, ER: 1, SN: 2, EN: 3 } as const;
export type DependencyType = (typeof DependencyType)[keyof typeof DependencyType];
export const DEPENDENCY_TYPE_NAMES = ['SR', 'ER', 'SN', 'EN'] as const;

export function dependencyTypeOf(prevMode: LockMode, nextMode: LockMode): DependencyType {
  return ((prevMode === LockMode.Write ? 1 : 0) + (nextMode !== LockMode.RecursiveRead ? 2 : 0)) as DependencyType;
}
/** -(Ex)->: the previous lock was held as a writer. */
export const startsExclusive = (type: DependencyType): boolean => (type & 1) !== 0;
/** -(xR)->: the next lock was taken as a recursive reader. */
export const endsRecursive = (type: DependencyType): boolean => (type & 2) === 0;

export const MAX_HELD_LOCKS = 16;
/**
 * Main + one worker per vCPU (up to 4096, x2AVIC with the 4K extension) + 8 main-thread async
 * contexts = 4105, rounded up to whole 32-bit reader-bitmap words. The locks use thread slots even
 * with the validator off (holder words), so every VM needs one per vCPU.
 */
export const MAX_THREAD_SLOTS = 4128;
/** Longest cycle a report stores (closed: the first class is repeated at the end). */
export const MAX_REPORTED_CYCLE = 32;
const READER_BITMAP_WORDS = MAX_THREAD_SLOTS / 32;

/** One held-lock entry: 4 consecutive words of a thread's `held` array. */
export const HELD_ENTRY = { classId: 0, mode: 1, site: 2, instance: 3, words: 4 } as const;

/** One edge record: 8 consecutive words of edgeRecords, for (prev, next, dependency type). */
export const EDGE_RECORD = {
  /** Thread slot + 1 of the thread that first added the edge; claimed by compareExchange 0 -> slot + 1. */
  recordedBy: 0,
  /** Label id of that thread's name at the time ("vCPU 2/worker 3", "main/memslot-update"). */
  threadName: 1,
  vcpu: 2,
  /** Label ids of where prev was taken and where next was taken with prev held. */
  prevSite: 3,
  nextSite: 4,
  prevMode: 5,
  nextMode: 6,
  /** 1 when next was a synchronize (lock_sync), not a held acquisition. */
  synchronize: 7,
  words: 8,
} as const;

export const LockdepHeader = defineStruct('LockdepHeader', {
  debugLocks: { type: 'i32', writer: 'main at creation (1); the first reporter, compareExchange 1 -> 0' },
  classCount: { type: 'i32', writer: 'main at creation' },
  classFingerprint: { type: 'i32', writer: 'main at creation', description: 'checked when a worker attaches' },
  threadSlots: { type: 'i32', writer: 'main at creation' },
  nextInstance: { type: 'i32', writer: 'any thread registering a lock instance: Atomics.add' },
  labelCount: { type: 'i32', writer: 'any thread interning a label: Atomics.add' },
  labelBytesUsed: { type: 'i32', writer: 'any thread interning a label: Atomics.add' },
  dependencyCount: { type: 'i32', writer: 'any validating thread: Atomics.add (diagnostics)' },
  waitsAborted: { type: 'i32', writer: 'main, tearing a run down: store 1 (every lock wait then gives up within a slice)' },
  reportState: { type: 'i32', writer: 'the first reporter: 1 while writing, 2 when ready' },
  reportKind: { type: 'i32', writer: 'the first reporter' },
  reportThread: { type: 'i32', writer: 'the first reporter', description: 'label id of the reporting thread name' },
  reportTextBytes: { type: 'i32', writer: 'the first reporter' },
  reportCycleLength: { type: 'i32', writer: 'the first reporter' },
  reportCycle: { type: 'i32', count: MAX_REPORTED_CYCLE + 1, writer: 'the first reporter', description: 'class ids' },
});

export const LockdepThread = defineStruct('LockdepThread', {
  claimed: { type: 'i32', writer: 'the attaching worker; main contexts: compareExchange 0 -> 1, store 0 at the end' },
  vcpu: { type: 'i32', writer: 'the owning thread (-1: no vCPU)' },
  nameLabel: { type: 'i32', writer: 'the owning thread', description: 'label id of the thread name' },
  depth: { type: 'i32', writer: 'the owning thread', description: 'held-lock stack depth' },
  waitingFor: { type: 'i32', writer: 'the owning thread', description: 'lock instance + 1 it is blocked on; 0: none' },
  waitingMode: { type: 'i32', writer: 'the owning thread', description: 'LockMode, or 3 for a grace period wait' },
  waitingSinceMs: {
    type: 'f64',
    writer: 'the owning thread',
    description: 'the host clock (threadNowMs, src/host/host-thread.ts) when the wait began',
  },
  held: { type: 'i32', count: MAX_HELD_LOCKS * HELD_ENTRY.words, writer: 'the owning thread', description: 'HELD_ENTRY records' },
});

export const LockInstanceKind = { Unused: 0, Mutex: 1, RwSemaphore: 2, Srcu: 3 } as const;
export type LockInstanceKind = (typeof LockInstanceKind)[keyof typeof LockInstanceKind];

export const LockInstance = defineStruct('LockInstance', {
  kind: { type: 'i32', writer: 'the registering thread, before it publishes the id' },
  classId: { type: 'i32', writer: 'the registering thread' },
  nameLabel: { type: 'i32', writer: 'the registering thread' },
  flags: { type: 'i32', writer: 'the registering thread', description: 'bit 0: writer-preferring rwsem' },
  state: { type: 'i32', writer: 'lockers: compareExchange / add / and (see each lock)' },
  owner: { type: 'i32', writer: 'the exclusive holder: thread slot + 1; 0 when free' },
  waiters: { type: 'i32', writer: 'each waiter: Atomics.add +1 / -1 around its wait' },
  readerBits: { type: 'i32', count: READER_BITMAP_WORDS, writer: 'each reader: Atomics.or / and its own bit' },
});

export interface LockdepDimensions {
  /** Worker thread slots, numbered 1..workerThreads (slot 0 is main). */
  readonly workerThreads: number;
  /** Extra slots for the main thread's async contexts (Lockdep.runInMainContext). */
  readonly mainContexts: number;
  readonly lockInstances: number;
  /** Distinct site labels and thread names. */
  readonly labels: number;
  readonly labelBytes: number;
  readonly reportBytes: number;
}

export const DEFAULT_DIMENSIONS: Omit<LockdepDimensions, 'workerThreads'> = {
  mainContexts: 8,
  lockInstances: 256,
  labels: 2048,
  labelBytes: 128 * 1024,
  reportBytes: 32 * 1024,
};

export type LockdepRegion =
  | 'header'
  | 'threads'
  | 'instances'
  | 'dependencies'
  | 'edgeRecords'
  | 'labelEntries'
  | 'labelHash'
  | 'labelBytes'
  | 'reportText';

export const threadSlotCount = (dimensions: LockdepDimensions): number => 1 + dimensions.workerThreads + dimensions.mainContexts;

export function lockdepLayout(classCount: number, dimensions: LockdepDimensions): BufferLayout<LockdepRegion> {
  const pairs = classCount * classCount;
  return defineBufferLayout('Lockdep', {
    header: { struct: LockdepHeader, writer: 'see fields' },
    threads: { struct: LockdepThread, count: threadSlotCount(dimensions), writer: 'each slot its own thread' },
    instances: { struct: LockInstance, count: dimensions.lockInstances, writer: 'see fields' },
    dependencies: { bytes: pairs * 4, writer: 'validating threads: Atomics.or only (set-only)' },
    edgeRecords: { bytes: pairs * 4 * EDGE_RECORD.words * 4, writer: 'the thread that claimed the record' },
    labelEntries: { bytes: dimensions.labels * 2 * 4, writer: 'the interning thread, before it publishes the hash slot' },
    labelHash: { bytes: dimensions.labels * 2 * 4, writer: 'interning threads: compareExchange 0 -> label id + 1' },
    labelBytes: { bytes: dimensions.labelBytes, writer: 'the interning thread, in the span it reserved' },
    reportText: { bytes: dimensions.reportBytes, writer: 'the first reporter' },
  });
}

type HeaderField = keyof typeof LockdepHeader.fields;
type ThreadField = keyof typeof LockdepThread.fields;
type InstanceField = keyof typeof LockInstance.fields;

/** Word offsets of every field of a struct, and its stride, from the layout (computed once). */
interface StructWords<F extends string> {
  readonly base: number;
  readonly stride: number;
  readonly fields: Readonly<Record<F, number>>;
}

function structWords<F extends string>(
  layout: BufferLayout<LockdepRegion>,
  region: LockdepRegion,
  struct: StructLayout<F>,
  baseWord: number,
): StructWords<F> {
  const regionStart = baseWord + regionInt32Index(layout, region);
  const fields = fastRecord(
    (Object.keys(struct.fields) as F[]).map(
      (field) => [field, baseWord + int32IndexOf(layout, region, struct, 0, field) - regionStart] as const,
    ),
  );
  return { base: regionStart, stride: struct.byteSize >> 2, fields };
}

/**
 * Int32 (and Float64) indices into the whole buffer for every field; `byteOffset` is where the
 * region starts. Every offset comes from the layout; they are turned into plain numbers once,
 * because these lookups sit on the lock acquisition path.
 */
export class LockdepIndices {
  readonly layout: BufferLayout<LockdepRegion>;
  readonly classCount: number;
  readonly #baseWord: number;
  readonly #header: StructWords<HeaderField>;
  readonly #thread: StructWords<ThreadField>;
  readonly #instance: StructWords<InstanceField>;
  readonly #dependencies: number;
  readonly #edgeRecords: number;
  readonly #labelEntries: number;
  readonly #labelHash: number;

  constructor(layout: BufferLayout<LockdepRegion>, classCount: number, byteOffset: number) {
    this.layout = layout;
    this.classCount = classCount;
    this.#baseWord = byteOffset >> 2;
    this.#header = structWords(layout, 'header', LockdepHeader, this.#baseWord);
    this.#thread = structWords(layout, 'threads', LockdepThread, this.#baseWord);
    this.#instance = structWords(layout, 'instances', LockInstance, this.#baseWord);
    this.#dependencies = this.#baseWord + regionInt32Index(layout, 'dependencies');
    this.#edgeRecords = this.#baseWord + regionInt32Index(layout, 'edgeRecords');
    this.#labelEntries = this.#baseWord + regionInt32Index(layout, 'labelEntries');
    this.#labelHash = this.#baseWord + regionInt32Index(layout, 'labelHash');
  }

  header(field: HeaderField): number {
    return this.#header.base + this.#header.fields[field];
  }

  thread(slot: number, field: ThreadField): number {
    return this.#thread.base + slot * this.#thread.stride + this.#thread.fields[field];
  }

  /** Float64Array index of a thread's waitingSinceMs (8-byte aligned by the layout). */
  threadWaitingSince(slot: number): number {
    return this.thread(slot, 'waitingSinceMs') >> 1;
  }

  heldEntry(slot: number, position: number, field: Exclude<keyof typeof HELD_ENTRY, 'words'>): number {
    return this.thread(slot, 'held') + position * HELD_ENTRY.words + HELD_ENTRY[field];
  }

  instance(id: number, field: InstanceField): number {
    return this.#instance.base + id * this.#instance.stride + this.#instance.fields[field];
  }

  dependency(prev: number, next: number): number {
    return this.#dependencies + prev * this.classCount + next;
  }

  edgeRecord(prev: number, next: number, type: DependencyType, field: Exclude<keyof typeof EDGE_RECORD, 'words'>): number {
    const record = (prev * this.classCount + next) * 4 + type;
    return this.#edgeRecords + record * EDGE_RECORD.words + EDGE_RECORD[field];
  }

  labelEntry(id: number, field: 'offset' | 'length'): number {
    return this.#labelEntries + id * 2 + (field === 'offset' ? 0 : 1);
  }

  labelHash(slot: number): number {
    return this.#labelHash + slot;
  }

  /** Byte offset (in the whole buffer) of a byte region. */
  bytes(region: 'labelBytes' | 'reportText'): number {
    return (this.#baseWord << 2) + this.layout.regionOffsets[region];
  }
}
