// A real ABBA between two worker threads on instrumented mutexes in shared memory. The workers load
// the built JavaScript (npm run build: dist/test/lockdep/fixtures/lock-steps.worker.js, which
// imports dist/src/lockdep); the order of their steps is forced with handshake words, never sleeps.
//   - validator on: the report appears at worker 2's acquisition of A, before it blocks, naming
//     where worker 1 first took B under A;
//   - validator off: the two workers really deadlock; the wait-for dump shows the cycle, and worker
//     2's bounded acquire throws LockWaitTimeout naming the holder, which undoes the deadlock.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { defineBufferLayout, defineStruct, int32IndexOf } from '../../src/host/shared-layout.js';
import { InstrumentedMutex } from '../../src/lockdep/instrumented-lock.js';
import type { Lockdep } from '../../src/lockdep/lockdep.js';
import { buildWaitForGraph, formatWaitForGraph } from '../../src/lockdep/wait-for-graph.js';
import type { LockStep, LockStepsResult, LockStepsWorkerData } from './fixtures/lock-steps.worker.js';
import { selftestLockdep } from './lockdep-test-support.js';

const WORKER_URL = new URL('../../dist/test/lockdep/fixtures/lock-steps.worker.js', import.meta.url);
const LONG_MS = 10_000;

const Handshake = defineStruct('AbbaHandshake', {
  firstHoldsA: { type: 'i32', writer: 'worker 1' },
  secondHoldsB: { type: 'i32', writer: 'worker 2' },
  releaseA: { type: 'i32', writer: 'main' },
});
const HANDSHAKE_LAYOUT = defineBufferLayout('AbbaHandshakeBuffer', { handshake: { struct: Handshake, writer: 'see fields' } });
const word = (field: keyof typeof Handshake.fields): number => int32IndexOf(HANDSHAKE_LAYOUT, 'handshake', Handshake, 0, field);

const lock = (name: string, site: string, timeoutMs = LONG_MS): LockStep => ({ op: 'lock', lock: name, site, timeoutMs });
const unlock = (name: string): LockStep => ({ op: 'unlock', lock: name });
const signal = (field: keyof typeof Handshake.fields): LockStep => ({ op: 'signal', word: word(field) });
const waitFor = (field: keyof typeof Handshake.fields): LockStep => ({ op: 'waitFor', word: word(field), timeoutMs: LONG_MS });

interface Setup {
  readonly lockdep: Lockdep;
  readonly handshake: Int32Array;
  readonly start: (slot: number, steps: readonly LockStep[]) => Promise<LockStepsResult>;
}

function setUp(enabled: boolean): Setup {
  if (!existsSync(fileURLToPath(WORKER_URL))) throw new Error(`${fileURLToPath(WORKER_URL)} is missing: run npm run build first`);
  const lockdep = selftestLockdep({ enabled });
  const mutexes = { A: InstrumentedMutex.create(lockdep, 'A').instance, B: InstrumentedMutex.create(lockdep, 'B').instance };
  const buffer = new SharedArrayBuffer(HANDSHAKE_LAYOUT.byteSize);
  const start = (slot: number, steps: readonly LockStep[]): Promise<LockStepsResult> => {
    const workerData: LockStepsWorkerData = {
      shared: lockdep.shared,
      enabled,
      threadSlot: slot,
      vcpu: slot - 1,
      mutexes,
      handshake: buffer,
      steps,
    };
    const worker = new Worker(WORKER_URL, { workerData, execArgv: [] });
    return new Promise<LockStepsResult>((resolve, reject) => {
      worker.once('message', (result: LockStepsResult) => resolve(result));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker ${slot} exited (${code}) without a result`)));
    });
  };
  return { lockdep, handshake: new Int32Array(buffer), start };
}

/** Polls (never blocking the event loop) until `condition` holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + LONG_MS;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('ABBA between two real workers on instrumented mutexes', () => {
  it('the validator reports at the second order, before anything blocks', async () => {
    const { lockdep, handshake, start } = setUp(true);
    const first = start(1, [
      lock('A', 'worker 1: lock A'),
      lock('B', 'worker 1: lock B under A'),
      unlock('B'),
      unlock('A'),
      lock('A', 'worker 1: lock A again'),
      signal('firstHoldsA'),
      waitFor('releaseA'),
      unlock('A'),
    ]);
    const second = start(2, [
      waitFor('firstHoldsA'),
      lock('B', 'worker 2: lock B'),
      lock('A', 'worker 2: lock A under B'),
      unlock('A'),
      unlock('B'),
    ]);

    await until(() => lockdep.threads.waiting(2) !== undefined, 'worker 2 blocks on A');
    const report = lockdep.report();
    Atomics.store(handshake, word('releaseA'), 1);
    Atomics.notify(handshake, word('releaseA'));

    expect(report).toMatchObject({ kind: 'circular-dependency', cycle: ['A', 'B', 'A'], thread: 'vCPU 1/worker 2' });
    expect(report?.text).toContain('first seen: vCPU 0/worker 1, step: worker 1: lock B under A');
    expect(await first).toEqual({ outcome: 'done' });
    expect(await second).toEqual({ outcome: 'done' });
  });

  it('with the validator off, the workers deadlock: the dump shows the cycle, the bounded wait names the holder', async () => {
    const { lockdep, start } = setUp(false);
    const first = start(1, [
      lock('A', 'worker 1: lock A'),
      signal('firstHoldsA'),
      waitFor('secondHoldsB'),
      lock('B', 'worker 1: lock B'),
      unlock('B'),
      unlock('A'),
    ]);
    const second = start(2, [
      lock('B', 'worker 2: lock B'),
      signal('secondHoldsB'),
      waitFor('firstHoldsA'),
      lock('A', 'worker 2: lock A', 1_000),
      unlock('A'),
      unlock('B'),
    ]);

    await until(() => lockdep.threads.waiting(1) !== undefined && lockdep.threads.waiting(2) !== undefined, 'both workers block');
    const graph = buildWaitForGraph(lockdep);
    const dump = formatWaitForGraph(graph);

    expect(graph.cycle).toHaveLength(3);
    expect(dump).toContain('vCPU 1/worker 2 waits');
    expect(dump).toMatch(/lock A, held by vCPU 0\/worker 1/);
    expect(dump).toMatch(/lock B, held by vCPU 1\/worker 2/);
    expect(dump).toMatch(/DEADLOCK: a cycle of waits:\n {2}vCPU \d\/worker \d -> [AB] -> vCPU \d\/worker \d -> [AB] -> vCPU \d\/worker \d/);
    expect(await second).toMatchObject({ outcome: 'error', name: 'LockWaitTimeout', lockName: 'A', holderNames: ['vCPU 0/worker 1'] });
    expect(await first).toEqual({ outcome: 'done' });
    expect(lockdep.report()).toBeUndefined();
  });
});
