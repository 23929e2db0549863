// SRCU (sleepable RCU) on shared memory: the emulator's kvm->srcu. Readers are threads that use the
// published memslot table (vCPU workers handling exits, the main thread); the synchronizer is a
// memslot writer that must know no reader still uses the copy it is about to overwrite
// (kvm_swap_active_memslots; O6 in docs/architecture.md#orderings).
//
// Shape (classic SRCU, one counter pair per reader thread, no shared hot counter):
//   index                       which counter new readers increment (0 or 1);
//   counters[slot][0..1]        per reader slot, on its own 64-byte line: read sections open on
//                               each index. Slot 0 is the main thread, slot i+1 is vCPU i.
// readLock:   idx = load(index); add(counters[slot][idx], 1)          (both seq-cst)
// readUnlock: sub(counters[slot][idx], 1); if it reached 0 and a synchronizer is waiting, notify.
// Grace period: wait until every slot's counter on the inactive index has been seen at 0
// (stragglers from before the previous flip), flip index, wait until every slot's counter on the
// old index has been seen at 0.
//
// Why that suffices (all Atomics are seq-cst, so there is one total order S of them):
// * The writer published (memslot snapshot store) before synchronize began, so before every
//   counter load the grace period makes.
// * For a reader in slot s, either its increment comes before the grace period's load that saw
//   counters[s][i] == 0 — then that load would have seen it, so the read section had already ended
//   (its decrement is a release the load acquires: the reader's plain reads of the old copy happen
//   before the writer's later plain writes) — or the increment comes after that load, and then the
//   reader's later load of the published pointer comes after the publish in S and sees the new
//   copy. That covers a reader that loaded the old index before the flip but incremented after the
//   drain: it is counted on an index nobody waits for, and it needs no waiting.
// * A slot seen at 0 once is done: slots are threads, a read section never migrates between slots,
//   so per-slot checks need no consistent sum (Linux needs lock/unlock count pairs only because its
//   readers migrate between CPUs).
// * The first drain (of the inactive index) catches readers of the previous era: one that
//   incremented the then-inactive index late saw the previous publish but maybe not this one.
//
// Concurrent synchronizers: the flip and the drains are not idempotent across two synchronizers (a
// second one that shared the first one's flip could miss a reader that entered between the first
// one's inactive-index drain and its own publish). So one synchronizer at a time: the
// synchronizeInProgress word is taken by compareExchange 0 -> holder tag and released with store 0
// plus notify. On the main thread, synchronize() calls are also chained in order on a promise, so
// they queue FIFO instead of polling the word; a worker's synchronizeBlocking() contends on the
// word. Every wait, on both sides, is bounded by the caller's timeout.
//
// Main thread: synchronize() uses waitAsync only (a blocked event loop freezes piscina), through the
// main thread's host (src/host/host-thread.ts); workers wait through theirs.
// Node 20 does not count a pending waitAsync as event-loop work (a process with nothing else to do
// exits under it), so each wait is raced against a timer of the same length, which keeps the loop
// alive and also bounds the wait.

import { isMainThread } from 'node:worker_threads';
import { hostThread, mainHostThread, SchedulingPoint } from './host-thread.js';
import { defineBufferLayout, defineStruct, int32IndexOf, type BufferLayout } from './shared-layout.js';

export type SrcuIndex = 0 | 1;

const HOLDER = 'the synchronizer holding synchronizeInProgress';

export const SrcuHeader = defineStruct('SrcuHeader', {
  index: { type: 'i32', writer: HOLDER, description: 'index new readers increment; flipped once per grace period' },
  synchronizeInProgress: {
    type: 'i32',
    writer: 'any synchronizer: compareExchange 0 -> holder tag (1 main, 2 worker); the holder stores 0',
  },
  synchronizerWaiting: { type: 'i32', writer: HOLDER, description: '1 while draining: readers notify on reaching 0' },
  completedGracePeriods: { type: 'i32', writer: HOLDER, description: 'diagnostics; wraps' },
});

export const SrcuReader = defineStruct('SrcuReader', {
  counters: { type: 'i32', count: 2, writer: 'the thread owning this reader slot (readLock / readUnlock)' },
});

export function srcuLayout(readerSlots: number): BufferLayout<'header' | 'readers'> {
  return defineBufferLayout('Srcu', {
    header: { struct: SrcuHeader, writer: HOLDER },
    readers: { struct: SrcuReader, count: readerSlots, writer: 'each slot its own thread' },
  });
}

const HOLDER_TAG = { main: 1, worker: 2 } as const;
type HolderName = keyof typeof HOLDER_TAG;
const holderName = (tag: number): HolderName | undefined =>
  tag === HOLDER_TAG.main ? 'main' : tag === HOLDER_TAG.worker ? 'worker' : undefined;

/** Longest single wait; the loop re-checks in between (no lost wakeups rely on it). */
const WAIT_SLICE_MS = 50;
/** One slot per vCPU (up to 4096, the x2AVIC 4K extension's reach) plus the main thread's. */
const MAX_READER_SLOTS = 4097;

const MISUSE_MESSAGES = {
  placement: 'the SRCU region must lie inside a SharedArrayBuffer-backed Int32Array, on a 64-byte boundary',
  readerSlotCount: `an SRCU region has 1..${MAX_READER_SLOTS} reader slots`,
  badReaderSlot: 'not a reader slot of this SRCU region',
  badIndex: 'an SRCU index is 0 or 1, as returned by readLock',
  unbalancedUnlock: 'readUnlock without a matching readLock on this slot and index',
  blockingOnMainThread: 'the main thread must not block: use synchronize(), not synchronizeBlocking()',
  unboundedTimeout: 'an SRCU grace period wait needs a finite, non-negative timeout in milliseconds',
} as const;
export type SrcuMisuseReason = keyof typeof MISUSE_MESSAGES;

/** Host misuse of the SRCU API. */
export class SrcuMisuseError extends Error {
  readonly reason: SrcuMisuseReason;
  readonly detail: number;

  constructor(reason: SrcuMisuseReason, detail: number) {
    super(`${MISUSE_MESSAGES[reason]} (${detail})`);
    this.name = 'SrcuMisuseError';
    this.reason = reason;
    this.detail = detail;
  }
}

/** Where a grace period was when it ran out of time. */
export type SrcuWaitPhase = 'queued' | 'drainInactive' | 'drainOld';

export interface SrcuStuckReader {
  readonly slot: number;
  /** Lower bound: measured from when the synchronizer first saw the slot inside. */
  readonly insideForAtLeastMs: number;
}

/** A grace period did not complete within its timeout. */
export class SrcuGracePeriodTimeout extends Error {
  readonly phase: SrcuWaitPhase;
  /** The index being drained (for 'queued', the index current at the time). */
  readonly index: SrcuIndex;
  readonly stuckReaders: readonly SrcuStuckReader[];
  readonly waitedMs: number;
  /** For 'queued': which synchronizer held synchronizeInProgress, if one did. */
  readonly holder: HolderName | undefined;

  constructor(phase: SrcuWaitPhase, index: SrcuIndex, stuckReaders: readonly SrcuStuckReader[], waitedMs: number, holder?: HolderName) {
    const readers = stuckReaders.map((reader) => `slot ${reader.slot} (inside >= ${reader.insideForAtLeastMs.toFixed(1)} ms)`).join(', ');
    const waitingFor =
      phase === 'queued'
        ? `an earlier synchronize (held by ${holder ?? 'this thread'}) to finish`
        : `reader slots to leave index ${index}: ${readers || 'none'}`;
    super(`SRCU grace period timed out after ${waitedMs.toFixed(1)} ms in phase ${phase}, waiting for ${waitingFor}`);
    this.name = 'SrcuGracePeriodTimeout';
    this.phase = phase;
    this.index = index;
    this.stuckReaders = stuckReaders;
    this.waitedMs = waitedMs;
    this.holder = holder;
  }
}

export interface SrcuSynchronizeOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** One wait the grace-period steps ask their runner to perform: wait while int32[word] === value. */
interface WaitRequest {
  readonly word: number;
  readonly value: number;
  readonly timeoutMs: number;
}

export class Srcu {
  readonly readerSlots: number;
  /** Int32 indices (in the caller's array) of the header words, for diagnostics and tests. */
  readonly indexWordIndex: number;
  readonly synchronizeInProgressWordIndex: number;
  readonly synchronizerWaitingWordIndex: number;
  readonly #completedWordIndex: number;
  readonly #counterBase: number;
  readonly #wordsPerReader: number;
  readonly #int32: Int32Array;
  /** Main-thread FIFO of synchronize() calls; never rejects. */
  #tail: Promise<void> = Promise.resolve();

  static regionBytes(readerSlots: number): number {
    return srcuLayout(readerSlots).byteSize;
  }

  /** A zero-filled region is valid: index 0, no readers, no synchronizer. */
  constructor(int32: Int32Array, baseIndex: number, readerSlots: number) {
    if (!Number.isInteger(readerSlots) || readerSlots < 1 || readerSlots > MAX_READER_SLOTS) {
      throw new SrcuMisuseError('readerSlotCount', readerSlots);
    }
    const layout = srcuLayout(readerSlots);
    const fits = Number.isInteger(baseIndex) && baseIndex >= 0 && baseIndex + layout.byteSize / 4 <= int32.length;
    const placedOnLine = (int32.byteOffset + baseIndex * 4) % 64 === 0;
    if (!(int32.buffer instanceof SharedArrayBuffer) || !fits || !placedOnLine) throw new SrcuMisuseError('placement', baseIndex);
    const header = (field: keyof typeof SrcuHeader.fields): number => baseIndex + int32IndexOf(layout, 'header', SrcuHeader, 0, field);
    this.readerSlots = readerSlots;
    this.indexWordIndex = header('index');
    this.synchronizeInProgressWordIndex = header('synchronizeInProgress');
    this.synchronizerWaitingWordIndex = header('synchronizerWaiting');
    this.#completedWordIndex = header('completedGracePeriods');
    this.#counterBase = baseIndex + int32IndexOf(layout, 'readers', SrcuReader, 0, 'counters');
    this.#wordsPerReader = SrcuReader.byteSize / 4;
    this.#int32 = int32;
  }

  /** Int32 index of counters[slot][index]. */
  counterWordIndex(slot: number, index: SrcuIndex): number {
    if (slot >>> 0 !== slot || slot >= this.readerSlots) throw new SrcuMisuseError('badReaderSlot', slot);
    if (index !== 0 && index !== 1) throw new SrcuMisuseError('badIndex', index);
    return this.#counterBase + slot * this.#wordsPerReader + index;
  }

  // ---- readers (the thread owning `slot`) ----

  readLock(slot: number): SrcuIndex {
    const index: SrcuIndex = Atomics.load(this.#int32, this.indexWordIndex) === 0 ? 0 : 1;
    // A synchronizer may flip the index between this load and the increment (see "Why that suffices").
    hostThread().point(SchedulingPoint.SrcuRead);
    Atomics.add(this.#int32, this.counterWordIndex(slot, index), 1);
    return index;
  }

  readUnlock(slot: number, index: SrcuIndex): void {
    const word = this.counterWordIndex(slot, index);
    const remaining = Atomics.sub(this.#int32, word, 1) - 1;
    if (remaining > 0) return;
    if (remaining < 0) {
      Atomics.add(this.#int32, word, 1);
      throw new SrcuMisuseError('unbalancedUnlock', slot);
    }
    // A draining synchronizer may load this 0 (and sleep, or go on) between our decrement and our load.
    hostThread().point(SchedulingPoint.SrcuRead);
    // Pairs with #drain: it stores synchronizerWaiting = 1, then loads this counter. Either it sees
    // our 0, or we see its 1 here and wake it (seq-cst store/load on both sides, Dekker-style).
    if (Atomics.load(this.#int32, this.synchronizerWaitingWordIndex) !== 0) Atomics.notify(this.#int32, word);
  }

  // ---- diagnostics (any thread) ----

  currentIndex(): SrcuIndex {
    return Atomics.load(this.#int32, this.indexWordIndex) === 0 ? 0 : 1;
  }

  completedGracePeriods(): number {
    return Atomics.load(this.#int32, this.#completedWordIndex);
  }

  /** Reader slots with a read section open on `index`. */
  readerSlotsInside(index: SrcuIndex): number[] {
    const inside: number[] = [];
    for (let slot = 0; slot < this.readerSlots; slot++) {
      if (Atomics.load(this.#int32, this.counterWordIndex(slot, index)) !== 0) inside.push(slot);
    }
    return inside;
  }

  // ---- synchronizers ----

  /** Main thread (or any thread that must not block): waits for a grace period with waitAsync. */
  synchronize(options: SrcuSynchronizeOptions): Promise<void> {
    const startedAt = mainHostThread().nowMs();
    const previous = this.#tail;
    const mine = this.#synchronizeAfter(previous, startedAt, options);
    this.#tail = previous
      .then(() => mine)
      .then(
        () => undefined,
        () => undefined,
      );
    return mine;
  }

  /** vCPU workers only: the same grace period, blocking in bounded waits (the worker's host). */
  synchronizeBlocking(timeoutMs: number): void {
    if (isMainThread) throw new SrcuMisuseError('blockingOnMainThread', timeoutMs);
    checkTimeout(timeoutMs);
    const host = hostThread();
    const startedAt = host.nowMs();
    const steps = this.#gracePeriod(HOLDER_TAG.worker, () => host.nowMs(), startedAt, startedAt + timeoutMs);
    try {
      for (let step = steps.next(); step.done !== true; step = steps.next()) {
        host.wait(this.#int32, step.value.word, step.value.value, step.value.timeoutMs);
      }
    } finally {
      steps.return(); // if the wait threw: still release synchronizeInProgress
    }
  }

  async #synchronizeAfter(previous: Promise<void>, startedAt: number, options: SrcuSynchronizeOptions): Promise<void> {
    checkTimeout(options.timeoutMs);
    const { signal } = options;
    signal?.throwIfAborted();
    if ((await settleWithin(previous, options.timeoutMs, signal)) === 'timedOut') {
      throw new SrcuGracePeriodTimeout('queued', this.currentIndex(), [], mainHostThread().nowMs() - startedAt);
    }
    const host = mainHostThread();
    const steps = this.#gracePeriod(HOLDER_TAG.main, () => host.nowMs(), startedAt, startedAt + options.timeoutMs);
    try {
      for (let step = steps.next(); step.done !== true; step = steps.next()) {
        const { word, value, timeoutMs } = step.value;
        await settleWithin(host.waitAsync(this.#int32, word, value, timeoutMs), timeoutMs, signal);
        signal?.throwIfAborted();
      }
    } finally {
      steps.return(); // on abort: runs the generator's finally, releasing synchronizeInProgress
    }
  }

  /**
   * The whole grace period as a sequence of waits, shared by both runners. Owns
   * synchronizeInProgress and synchronizerWaiting from acquisition to its finally.
   */
  *#gracePeriod(tag: number, now: () => number, startedAt: number, deadline: number): Generator<WaitRequest, void, void> {
    yield* this.#acquire(tag, now, startedAt, deadline);
    try {
      const old = this.currentIndex();
      const other: SrcuIndex = old === 0 ? 1 : 0;
      Atomics.store(this.#int32, this.synchronizerWaitingWordIndex, 1);
      yield* this.#drain(other, 'drainInactive', now, startedAt, deadline);
      // The flip: readers that load index from here on count themselves on `other`.
      Atomics.store(this.#int32, this.indexWordIndex, other);
      // Readers that loaded the old index before the flip may increment it only now.
      hostThread().point(SchedulingPoint.SrcuSynchronize);
      yield* this.#drain(old, 'drainOld', now, startedAt, deadline);
      Atomics.store(this.#int32, this.#completedWordIndex, (this.completedGracePeriods() + 1) | 0);
    } finally {
      Atomics.store(this.#int32, this.synchronizerWaitingWordIndex, 0);
      Atomics.store(this.#int32, this.synchronizeInProgressWordIndex, 0);
      Atomics.notify(this.#int32, this.synchronizeInProgressWordIndex);
    }
  }

  *#acquire(tag: number, now: () => number, startedAt: number, deadline: number): Generator<WaitRequest, void, void> {
    for (;;) {
      const holder = Atomics.compareExchange(this.#int32, this.synchronizeInProgressWordIndex, 0, tag);
      if (holder === 0) return;
      const time = now();
      if (time >= deadline) {
        throw new SrcuGracePeriodTimeout('queued', this.currentIndex(), [], time - startedAt, holderName(holder));
      }
      yield { word: this.synchronizeInProgressWordIndex, value: holder, timeoutMs: Math.min(WAIT_SLICE_MS, deadline - time) };
    }
  }

  /**
   * Waits until each slot's counter on `index` has been seen at 0 once (see the file comment for
   * why once is enough). synchronizerWaiting is already 1, so every load here pairs with the
   * readers' decrement-then-load in readUnlock.
   */
  *#drain(
    index: SrcuIndex,
    phase: SrcuWaitPhase,
    now: () => number,
    startedAt: number,
    deadline: number,
  ): Generator<WaitRequest, void, void> {
    const phaseStartedAt = now();
    // When each slot was first seen inside, for the timeout report (undefined: not yet seen).
    const firstSeenInside: (number | undefined)[] = new Array<number | undefined>(this.readerSlots);
    for (const slot of this.readerSlotsInside(index)) firstSeenInside[slot] = phaseStartedAt;
    for (let slot = 0; slot < this.readerSlots; ) {
      const word = this.counterWordIndex(slot, index);
      const value = Atomics.load(this.#int32, word);
      if (value === 0) {
        slot++;
        continue;
      }
      const time = now();
      firstSeenInside[slot] ??= time;
      if (time >= deadline) {
        const stuckReaders = this.readerSlotsInside(index)
          .filter((stuck) => stuck >= slot)
          .map((stuck) => ({ slot: stuck, insideForAtLeastMs: time - (firstSeenInside[stuck] ?? time) }));
        throw new SrcuGracePeriodTimeout(phase, index, stuckReaders, time - startedAt);
      }
      yield { word, value, timeoutMs: Math.min(WAIT_SLICE_MS, deadline - time) };
    }
  }
}

function checkTimeout(timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new SrcuMisuseError('unboundedTimeout', timeoutMs);
}

/**
 * Resolves when `promise` settles or after `timeoutMs`, whichever is first; rejects with the
 * signal's reason on abort. The timer also keeps Node's event loop alive while a waitAsync is
 * pending. Listeners and timer are removed on every outcome.
 */
function settleWithin(promise: Promise<unknown>, timeoutMs: number, signal: AbortSignal | undefined): Promise<'settled' | 'timedOut'> {
  return new Promise((resolve, reject) => {
    const finish = (outcome: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      outcome();
    };
    const onAbort = (): void => finish(() => reject(signal?.reason));
    const timer = setTimeout(() => finish(() => resolve('timedOut')), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => finish(() => resolve('settled')),
      () => finish(() => resolve('settled')),
    );
  });
}
