import { isMainThread } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { defineBufferLayout, regionInt32Index } from '../../src/host/shared-layout.js';
import { Srcu, SrcuGracePeriodTimeout, SrcuMisuseError, srcuLayout } from '../../src/host/srcu.js';

const READER_SLOTS = 4; // slot 0 = main, slots 1..3 = vCPUs 0..2
const LONG_MS = 10_000; // bound for waits that are expected to succeed

function makeSrcu(readerSlots = READER_SLOTS): { srcu: Srcu; int32: Int32Array } {
  const layout = defineBufferLayout('SrcuTest', {
    before: { bytes: 4, writer: 'nobody' },
    srcu: { bytes: Srcu.regionBytes(readerSlots), writer: 'see Srcu' },
  });
  const int32 = new Int32Array(new SharedArrayBuffer(layout.byteSize));
  return { srcu: new Srcu(int32, regionInt32Index(layout, 'srcu'), readerSlots), int32 };
}

/** Yields to the event loop until `condition` holds; fails after a bound. Not a sleep: it re-checks. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + LONG_MS;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Tracks whether a promise has settled, without handling its rejection for the caller. */
function track<T>(promise: Promise<T>): { settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled };
}

/** The synchronizer has flipped away from `oldIndex` and is draining it (its published state). */
const drainingOld = (srcu: Srcu, int32: Int32Array, oldIndex: number) => (): boolean =>
  srcu.currentIndex() !== oldIndex && Atomics.load(int32, srcu.synchronizerWaitingWordIndex) === 1;

describe('Srcu layout', () => {
  it('gives every reader slot its own cache line after a header line', () => {
    expect(Srcu.regionBytes(3)).toBe(64 * 4);
    const layout = srcuLayout(3);
    expect(layout.regionOffsets).toEqual({ header: 0, readers: 64 });
    const { srcu } = makeSrcu(3);
    const lines = [0, 1, 2].map((slot) => Math.floor(srcu.counterWordIndex(slot, 0) / 16));
    expect(new Set(lines).size).toBe(3);
    expect(srcu.counterWordIndex(2, 1)).toBe(srcu.counterWordIndex(2, 0) + 1);
    expect(Math.floor(srcu.indexWordIndex / 16)).not.toBe(lines[0]);
  });

  it('refuses bad placement and bad slot counts with a typed error', () => {
    const int32 = new Int32Array(new SharedArrayBuffer(Srcu.regionBytes(2) + 64));
    expect(() => new Srcu(int32, 4, 2)).toThrow(SrcuMisuseError);
    expect(() => new Srcu(int32, 32, 2)).toThrow(/64-byte boundary/);
    expect(() => new Srcu(new Int32Array(64), 0, 2)).toThrow(SrcuMisuseError);
    expect(() => new Srcu(int32, 0, 0)).toThrow(/reader slots/);
    expect(() => new Srcu(int32, 16, 2)).not.toThrow();
  });
});

describe('Srcu readers', () => {
  it('counts nested read sections per slot and index', () => {
    const { srcu } = makeSrcu();
    const outer = srcu.readLock(2);
    const inner = srcu.readLock(2);
    expect([outer, inner]).toEqual([0, 0]);
    expect(srcu.readerSlotsInside(0)).toEqual([2]);
    srcu.readUnlock(2, inner);
    expect(srcu.readerSlotsInside(0)).toEqual([2]);
    srcu.readUnlock(2, outer);
    expect(srcu.readerSlotsInside(0)).toEqual([]);
  });

  it('refuses an unbalanced unlock and a slot that does not exist', () => {
    const { srcu } = makeSrcu();
    expect(() => srcu.readUnlock(1, 0)).toThrow(expect.objectContaining({ reason: 'unbalancedUnlock' }));
    expect(srcu.readerSlotsInside(0)).toEqual([]); // the failed unlock left the counter at 0
    expect(() => srcu.readLock(READER_SLOTS)).toThrow(expect.objectContaining({ reason: 'badReaderSlot' }));
    expect(() => srcu.readLock(-1)).toThrow(SrcuMisuseError);
  });
});

describe('Srcu.synchronize (main thread, waitAsync)', () => {
  it('resolves at once with no readers, flipping the index', async () => {
    const { srcu, int32 } = makeSrcu();
    await srcu.synchronize({ timeoutMs: LONG_MS });
    expect(srcu.currentIndex()).toBe(1);
    expect(srcu.completedGracePeriods()).toBe(1);
    expect(Atomics.load(int32, srcu.synchronizeInProgressWordIndex)).toBe(0);
    expect(srcu.readLock(1)).toBe(1); // new readers count themselves on the new index
  });

  it('waits for a reader that entered before it, and resolves after its readUnlock', async () => {
    const { srcu, int32 } = makeSrcu();
    const index = srcu.readLock(1);
    const gracePeriod = srcu.synchronize({ timeoutMs: LONG_MS });
    const state = track(gracePeriod);
    await until(drainingOld(srcu, int32, index), 'the synchronizer drains the old index');
    expect(state.settled()).toBe(false);
    expect(srcu.readerSlotsInside(index)).toEqual([1]);
    setTimeout(() => srcu.readUnlock(1, index), 0); // the unlock comes from the event loop, as a reader's would
    await gracePeriod;
    expect(srcu.readerSlotsInside(index)).toEqual([]);
    expect(srcu.completedGracePeriods()).toBe(1);
    expect(Atomics.load(int32, srcu.synchronizerWaitingWordIndex)).toBe(0);
  });

  it('is not held up by a reader that entered after the flip', async () => {
    const { srcu, int32 } = makeSrcu();
    const old = srcu.readLock(1);
    const gracePeriod = srcu.synchronize({ timeoutMs: LONG_MS });
    await until(drainingOld(srcu, int32, old), 'the flip');
    const late = srcu.readLock(2);
    expect(late).not.toBe(old);
    srcu.readUnlock(1, old);
    await gracePeriod; // slot 2 is still inside, on the new index
    expect(srcu.readerSlotsInside(late)).toEqual([2]);
    srcu.readUnlock(2, late);
  });

  it('times out with SrcuGracePeriodTimeout naming the slot, first on the old index, then as a straggler', async () => {
    const { srcu, int32 } = makeSrcu();
    const index = srcu.readLock(3);
    const first = await srcu.synchronize({ timeoutMs: 20 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(first).toBeInstanceOf(SrcuGracePeriodTimeout);
    const timeout = first as SrcuGracePeriodTimeout;
    expect(timeout).toMatchObject({ phase: 'drainOld', index });
    expect(timeout.stuckReaders.map((reader) => reader.slot)).toEqual([3]);
    expect(timeout.stuckReaders[0]?.insideForAtLeastMs).toBeGreaterThan(0);
    expect(timeout.waitedMs).toBeGreaterThanOrEqual(20);
    expect(timeout.message).toMatch(/slot 3/);
    expect(Atomics.load(int32, srcu.synchronizeInProgressWordIndex)).toBe(0);

    // The flip happened, so slot 3 now sits on the inactive index: the next grace period's first drain.
    const second = await srcu.synchronize({ timeoutMs: 20 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(second).toMatchObject({ name: 'SrcuGracePeriodTimeout', phase: 'drainInactive', index });
    srcu.readUnlock(3, index);
    await srcu.synchronize({ timeoutMs: LONG_MS });
    expect(srcu.completedGracePeriods()).toBe(1);
  });

  it('serializes concurrent calls in call order', async () => {
    const { srcu, int32 } = makeSrcu();
    const index = srcu.readLock(1);
    const order: string[] = [];
    const first = srcu.synchronize({ timeoutMs: LONG_MS }).then(() => order.push('first'));
    const second = srcu.synchronize({ timeoutMs: LONG_MS }).then(() => order.push('second'));
    await until(drainingOld(srcu, int32, index), 'the first call drains');
    expect(srcu.completedGracePeriods()).toBe(0);
    srcu.readUnlock(1, index);
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect(srcu.completedGracePeriods()).toBe(2);
    expect(srcu.currentIndex()).toBe(index); // flipped twice
  });

  it('bounds the time a queued call waits behind an earlier one', async () => {
    const { srcu, int32 } = makeSrcu();
    const index = srcu.readLock(1);
    const first = srcu.synchronize({ timeoutMs: LONG_MS });
    await until(drainingOld(srcu, int32, index), 'the first call drains');
    await expect(srcu.synchronize({ timeoutMs: 10 })).rejects.toMatchObject({ phase: 'queued' });
    srcu.readUnlock(1, index);
    await first;
    expect(srcu.completedGracePeriods()).toBe(1);
  });

  it('stops on abort and releases the synchronizer words', async () => {
    const { srcu, int32 } = makeSrcu();
    const index = srcu.readLock(1);
    const controller = new AbortController();
    const gracePeriod = srcu.synchronize({ timeoutMs: LONG_MS, signal: controller.signal });
    await until(drainingOld(srcu, int32, index), 'the drain');
    controller.abort();
    await expect(gracePeriod).rejects.toMatchObject({ name: 'AbortError' });
    expect(Atomics.load(int32, srcu.synchronizeInProgressWordIndex)).toBe(0);
    expect(Atomics.load(int32, srcu.synchronizerWaitingWordIndex)).toBe(0);
    srcu.readUnlock(1, index);
    await srcu.synchronize({ timeoutMs: LONG_MS });
    expect(srcu.completedGracePeriods()).toBe(1);
  });

  it('refuses an unbounded timeout', async () => {
    const { srcu } = makeSrcu();
    await expect(srcu.synchronize({ timeoutMs: Number.POSITIVE_INFINITY })).rejects.toMatchObject({ reason: 'unboundedTimeout' });
  });

  it.runIf(isMainThread)('refuses synchronizeBlocking on the main thread', () => {
    const { srcu } = makeSrcu();
    expect(() => srcu.synchronizeBlocking(10)).toThrow(expect.objectContaining({ reason: 'blockingOnMainThread' }));
  });
});
