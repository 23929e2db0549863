// SRCU across real threads. The first worker is an inline script that plays a vCPU reader with raw
// Atomics on the shared words (no TypeScript to load). The others run the real Srcu class in a
// worker: srcu.ts, shared-layout.ts and host-thread.ts are transpiled to a temporary directory,
// since Node 20 cannot load .ts files itself. Every handshake is a shared word; every wait is bounded.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineBufferLayout, defineStruct, int32IndexOf, regionInt32Index } from '../../src/host/shared-layout.js';
import { Srcu } from '../../src/host/srcu.js';

const READER_SLOTS = 3; // slot 0 = main, slots 1..2 = vCPUs
const LONG_MS = 10_000;

const Handshake = defineStruct('Handshake', {
  readerEntered: { type: 'i32', writer: 'worker', description: '1 + the index it locked' },
  goAhead: { type: 'i32', writer: 'main' },
  readerLeaving: { type: 'i32', writer: 'worker', description: 'stored just before its readUnlock' },
  workerStarted: { type: 'i32', writer: 'worker' },
  workerDone: { type: 'i32', writer: 'worker', description: '1 done, 2 threw' },
});
const LAYOUT = defineBufferLayout('SrcuThreadsTest', {
  srcu: { bytes: Srcu.regionBytes(READER_SLOTS), writer: 'see Srcu' },
  handshake: { struct: Handshake, writer: 'see fields' },
});
const word = (field: keyof typeof Handshake.fields): number => int32IndexOf(LAYOUT, 'handshake', Handshake, 0, field);

function makeShared(): { sab: SharedArrayBuffer; int32: Int32Array; srcu: Srcu } {
  const sab = new SharedArrayBuffer(LAYOUT.byteSize);
  const int32 = new Int32Array(sab);
  return { sab, int32, srcu: new Srcu(int32, regionInt32Index(LAYOUT, 'srcu'), READER_SLOTS) };
}

/** Waits (waitAsync, bounded) until int32[index] satisfies `accept`. */
async function waitForWord(int32: Int32Array, index: number, accept: (value: number) => boolean, what: string): Promise<number> {
  const deadline = performance.now() + LONG_MS;
  for (;;) {
    const value = Atomics.load(int32, index);
    if (accept(value)) return value;
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw new Error(`timed out waiting for ${what}`);
    const result = Atomics.waitAsync(int32, index, value, remaining);
    if (result.async) await result.value;
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + LONG_MS;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Starts a worker and rejects the returned `failed` promise on any error it raises. */
function start(worker: Worker): { worker: Worker; failed: Promise<never> } {
  const failed = new Promise<never>((_, reject) => worker.once('error', reject));
  failed.catch(() => undefined);
  return { worker, failed };
}

const READER_SCRIPT = `
const { workerData } = require('node:worker_threads');
const { sab, indexWord, counterWords, waitingWord, enteredWord, goWord, leavingWord, timeoutMs } = workerData;
const int32 = new Int32Array(sab);
const deadline = Date.now() + timeoutMs;
// readLock: load the index, then count ourselves on it.
const index = Atomics.load(int32, indexWord) === 0 ? 0 : 1;
Atomics.add(int32, counterWords[index], 1);
Atomics.store(int32, enteredWord, 1 + index);
Atomics.notify(int32, enteredWord);
while (Atomics.load(int32, goWord) === 0) {
  const remaining = deadline - Date.now();
  if (remaining <= 0) throw new Error('reader: no go-ahead from main');
  Atomics.wait(int32, goWord, 0, remaining);
}
Atomics.store(int32, leavingWord, 1);
// readUnlock: uncount, and wake a waiting synchronizer if we were the last.
if (Atomics.sub(int32, counterWords[index], 1) === 1 && Atomics.load(int32, waitingWord) !== 0) {
  Atomics.notify(int32, counterWords[index]);
}
`;

describe('Srcu with a real reader thread', () => {
  it('resolves synchronize only after the worker leaves its read section', async () => {
    const { sab, int32, srcu } = makeShared();
    const { worker, failed } = start(
      new Worker(READER_SCRIPT, {
        eval: true,
        workerData: {
          sab,
          indexWord: srcu.indexWordIndex,
          counterWords: [srcu.counterWordIndex(1, 0), srcu.counterWordIndex(1, 1)],
          waitingWord: srcu.synchronizerWaitingWordIndex,
          enteredWord: word('readerEntered'),
          goWord: word('goAhead'),
          leavingWord: word('readerLeaving'),
          timeoutMs: LONG_MS,
        },
      }),
    );
    try {
      const entered = await Promise.race([failed, waitForWord(int32, word('readerEntered'), (value) => value !== 0, 'the reader')]);
      const index = entered - 1;
      expect(srcu.readerSlotsInside(index === 0 ? 0 : 1)).toEqual([1]);

      let resolvedWhileReaderInside = false;
      const gracePeriod = srcu.synchronize({ timeoutMs: LONG_MS }).then(() => {
        resolvedWhileReaderInside = Atomics.load(int32, word('readerLeaving')) === 0;
      });
      let settled = false;
      void gracePeriod.then(
        () => (settled = true),
        () => (settled = true),
      );
      await Promise.race([
        failed,
        until(() => srcu.currentIndex() !== index && Atomics.load(int32, srcu.synchronizerWaitingWordIndex) === 1, 'the drain'),
      ]);
      expect(settled).toBe(false);

      Atomics.store(int32, word('goAhead'), 1);
      Atomics.notify(int32, word('goAhead'));
      await Promise.race([failed, gracePeriod]);
      expect(resolvedWhileReaderInside).toBe(false);
      expect(srcu.readerSlotsInside(0)).toEqual([]);
      expect(srcu.readerSlotsInside(1)).toEqual([]);
      expect(srcu.completedGracePeriods()).toBe(1);
    } finally {
      await worker.terminate();
    }
  });
});

// ---- the real Srcu class inside a worker ----

let moduleDirectory = '';

beforeAll(() => {
  moduleDirectory = mkdtempSync(join(tmpdir(), 'avic-smp-srcu-'));
  writeFileSync(join(moduleDirectory, 'package.json'), '{ "type": "module" }');
  for (const name of ['srcu', 'shared-layout', 'host-thread']) {
    const source = readFileSync(new URL(`../../src/host/${name}.ts`, import.meta.url), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(moduleDirectory, `${name}.js`), outputText);
  }
  // A vCPU worker that runs one synchronizeBlocking and reports through shared words and a message.
  writeFileSync(
    join(moduleDirectory, 'synchronizer.js'),
    `
import { workerData, parentPort } from 'node:worker_threads';
import { Srcu } from './srcu.js';
const { sab, srcuBase, readerSlots, startedWord, doneWord, timeoutMs } = workerData;
const int32 = new Int32Array(sab);
const srcu = new Srcu(int32, srcuBase, readerSlots);
Atomics.store(int32, startedWord, 1);
Atomics.notify(int32, startedWord);
try {
  srcu.synchronizeBlocking(timeoutMs);
  parentPort.postMessage({ ok: true });
  Atomics.store(int32, doneWord, 1);
} catch (error) {
  parentPort.postMessage({ ok: false, name: error.name, phase: error.phase, holder: error.holder, slots: (error.stuckReaders ?? []).map((r) => r.slot) });
  Atomics.store(int32, doneWord, 2);
}
Atomics.notify(int32, doneWord);
`,
  );
});

afterAll(() => {
  if (moduleDirectory !== '') rmSync(moduleDirectory, { recursive: true, force: true });
});

interface SynchronizerReport {
  readonly ok: boolean;
  readonly name?: string;
  readonly phase?: string;
  readonly holder?: string;
  readonly slots?: number[];
}

function startSynchronizer(
  sab: SharedArrayBuffer,
  timeoutMs: number,
): { worker: Worker; failed: Promise<never>; report: Promise<SynchronizerReport> } {
  const worker = new Worker(pathToFileURL(join(moduleDirectory, 'synchronizer.js')), {
    workerData: {
      sab,
      srcuBase: regionInt32Index(LAYOUT, 'srcu'),
      readerSlots: READER_SLOTS,
      startedWord: word('workerStarted'),
      doneWord: word('workerDone'),
      timeoutMs,
    },
  });
  const report = new Promise<SynchronizerReport>((resolve) => worker.once('message', resolve));
  return { ...start(worker), report };
}

describe('Srcu.synchronizeBlocking in a worker', () => {
  it('waits for a main-thread reader and returns after its readUnlock', async () => {
    const { sab, int32, srcu } = makeShared();
    const index = srcu.readLock(0);
    const { worker, failed, report } = startSynchronizer(sab, LONG_MS);
    try {
      await Promise.race([
        failed,
        until(() => srcu.currentIndex() !== index && Atomics.load(int32, srcu.synchronizerWaitingWordIndex) === 1, 'the drain'),
      ]);
      expect(Atomics.load(int32, word('workerDone'))).toBe(0);
      expect(Atomics.load(int32, srcu.synchronizeInProgressWordIndex)).toBe(2); // held by a worker
      srcu.readUnlock(0, index); // notifies: the worker is blocked in Atomics.wait on this counter
      expect(await Promise.race([failed, report])).toEqual({ ok: true });
      expect(srcu.completedGracePeriods()).toBe(1);
    } finally {
      await worker.terminate();
    }
  });

  it('times out naming the reader slot', async () => {
    const { sab, srcu } = makeShared();
    srcu.readLock(2);
    const { worker, failed, report } = startSynchronizer(sab, 30);
    try {
      expect(await Promise.race([failed, report])).toEqual({
        ok: false,
        name: 'SrcuGracePeriodTimeout',
        phase: 'drainOld',
        holder: undefined,
        slots: [2],
      });
    } finally {
      await worker.terminate();
    }
  });

  it('takes turns with the main thread: one synchronizer at a time, both complete', async () => {
    const { sab, int32, srcu } = makeShared();
    const index = srcu.readLock(1);
    const mainGracePeriod = srcu.synchronize({ timeoutMs: LONG_MS });
    await until(() => srcu.currentIndex() !== index, 'the main thread flips');
    const { worker, failed, report } = startSynchronizer(sab, LONG_MS);
    try {
      await Promise.race([failed, waitForWord(int32, word('workerStarted'), (value) => value === 1, 'the worker')]);
      expect(Atomics.load(int32, srcu.synchronizeInProgressWordIndex)).toBe(1); // main still holds it
      expect(Atomics.load(int32, word('workerDone'))).toBe(0);
      srcu.readUnlock(1, index);
      await mainGracePeriod;
      expect(await Promise.race([failed, report])).toEqual({ ok: true });
      expect(srcu.completedGracePeriods()).toBe(2);
      expect(srcu.currentIndex()).toBe(index);
    } finally {
      await worker.terminate();
    }
  });

  it('reports a queued timeout naming the main thread as holder', async () => {
    const { sab, srcu } = makeShared();
    const index = srcu.readLock(1);
    const mainGracePeriod = srcu.synchronize({ timeoutMs: LONG_MS });
    await until(() => srcu.currentIndex() !== index, 'the main thread flips');
    const { worker, failed, report } = startSynchronizer(sab, 20);
    try {
      expect(await Promise.race([failed, report])).toMatchObject({ ok: false, phase: 'queued', holder: 'main' });
      srcu.readUnlock(1, index);
      await mainGracePeriod;
    } finally {
      await worker.terminate();
    }
  });
});
