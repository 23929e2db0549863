// Fake participants for the deterministic schedule's tests (test/host/deterministic/): real worker
// threads that each run a small program of steps (scheduling points, waits on shared words, stores,
// virtual work) against the built schedule (dist/, so run `npm run build` first), and log which
// participant ran each step. Only the baton holder runs, so the log is the schedule's order.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../../src/host/package-root.js';
import {
  DeterministicSchedule,
  scheduleBytes,
  type ScheduleOptions,
  type ScheduleSummary,
} from '../../src/host/deterministic/deterministic-schedule.js';

export type Step =
  | { readonly op: 'point'; readonly kind: number }
  | { readonly op: 'wait'; readonly word: number; readonly expected: number; readonly timeoutMs: number }
  | { readonly op: 'store'; readonly word: number; readonly value: number }
  | { readonly op: 'advance'; readonly ns: number }
  /** Reaches point `kind` (advancing 1 µs each time) until the word is non-zero: a guest polling memory. */
  | { readonly op: 'pollUntil'; readonly word: number; readonly kind: number };

export interface FakeResult {
  readonly ok: boolean;
  /** Per wait step: its result and nowMs() right after it. */
  readonly waits: readonly (readonly [string, number])[];
  readonly message?: string;
}

export interface FakeRun {
  /** The participant of each step, in the order they ran. */
  readonly log: readonly number[];
  readonly results: readonly FakeResult[];
  readonly summary: ScheduleSummary;
  readonly words: Int32Array;
}

export const WORDS = 16;
const LOG_ENTRIES = 4096;
const REAL_BOUND_MS = 10_000;

// A worker serves one program per message (a pool saves a worker start per participant per run).
const WORKER_SCRIPT = `
const { parentPort, workerData } = require('node:worker_threads');
const loaded = import(workerData.moduleUrl);
parentPort.on('message', async ({ sab, participants, participant, program, wordsOffset, logOffset }) => {
  const { DeterministicSchedule } = await loaded;
  const schedule = new DeterministicSchedule(sab, 0, participants).watch([sab]);
  const thread = schedule.thread(participant);
  const words = new Int32Array(sab, wordsOffset, ${WORDS});
  const log = new Int32Array(sab, logOffset, ${LOG_ENTRIES + 1});
  const waits = [];
  try {
    thread.start();
    for (const step of program) {
      log[1 + Atomics.add(log, 0, 1)] = participant;
      if (step.op === 'point') thread.point(step.kind);
      else if (step.op === 'wait') waits.push([thread.wait(words, step.word, step.expected, step.timeoutMs), thread.nowMs()]);
      else if (step.op === 'store') Atomics.store(words, step.word, step.value);
      else if (step.op === 'pollUntil') {
        for (let polls = 0; Atomics.load(words, step.word) === 0; polls++) {
          if (polls === 10000) throw new Error('the word never changed in 10000 polls');
          thread.advance(1000);
          thread.point(step.kind);
        }
      }
      else thread.advance(step.ns);
    }
    thread.finish();
    parentPort.postMessage({ ok: true, waits });
  } catch (error) {
    thread.finish();
    parentPort.postMessage({ ok: false, waits, message: error.message });
  }
});
`;

const pool: Worker[] = [];

/** Ends the pool's workers (call from afterAll). */
export async function closeFakePool(): Promise<void> {
  await Promise.all(pool.splice(0).map((worker) => worker.terminate()));
}

function poolWorker(index: number): Worker {
  while (pool.length <= index) {
    const worker = new Worker(WORKER_SCRIPT, { eval: true, workerData: { moduleUrl: moduleUrl() } });
    worker.unref();
    pool.push(worker);
  }
  return pool[index]!;
}

function moduleUrl(): string {
  const file = join(packageRoot(), 'dist', 'src', 'host', 'deterministic', 'deterministic-schedule.js');
  if (!existsSync(file)) throw new Error(`the schedule is not built (${file}); run "npm run build"`);
  return pathToFileURL(file).href;
}

export interface SharedRegion {
  readonly sab: SharedArrayBuffer;
  readonly schedule: DeterministicSchedule;
  readonly words: Int32Array;
  readonly wordsOffset: number;
  readonly logOffset: number;
}

export function sharedRegion(participants: number): SharedRegion {
  const wordsOffset = scheduleBytes(participants);
  const logOffset = wordsOffset + WORDS * 4;
  const sab = new SharedArrayBuffer(logOffset + (LOG_ENTRIES + 1) * 4);
  const schedule = new DeterministicSchedule(sab, 0, participants).watch([sab]);
  return { sab, schedule, words: new Int32Array(sab, wordsOffset, WORDS), wordsOffset, logOffset };
}

/** Runs one program per pool worker as participants firstWorker..; resolves with each one's result. */
export function startFakes(
  region: SharedRegion,
  participants: number,
  programs: readonly (readonly Step[])[],
  firstWorker = 0,
): Promise<FakeResult[]> {
  return Promise.all(
    programs.map(
      (program, index) =>
        new Promise<FakeResult>((resolve, reject) => {
          const worker = poolWorker(index);
          const participant = firstWorker + index;
          const timer = setTimeout(() => {
            worker.off('message', onMessage);
            reject(new Error(`fake participant ${participant} did not finish within ${REAL_BOUND_MS} ms`));
          }, REAL_BOUND_MS);
          const onMessage = (result: FakeResult): void => {
            clearTimeout(timer);
            worker.off('error', onError);
            resolve(result);
          };
          const onError = (error: Error): void => {
            clearTimeout(timer);
            worker.off('message', onMessage);
            reject(error);
          };
          worker.once('message', onMessage);
          worker.once('error', onError);
          const { sab, wordsOffset, logOffset } = region;
          worker.postMessage({ sab, participants, participant, program, wordsOffset, logOffset });
        }),
    ),
  );
}

export function readLog(region: SharedRegion): number[] {
  const log = new Int32Array(region.sab, region.logOffset, LOG_ENTRIES + 1);
  return Array.from(log.subarray(1, 1 + Atomics.load(log, 0)));
}

/** A schedule of fake workers only (participants 0..n-1), run to the end. */
export async function runFakes(options: ScheduleOptions, programs: readonly (readonly Step[])[]): Promise<FakeRun> {
  const region = sharedRegion(programs.length);
  region.schedule.initialise(options);
  const results = await startFakes(region, programs.length, programs);
  return { log: readLog(region), results, summary: region.schedule.summary(), words: region.words };
}

/** How often the running participant changes along a log. */
export function changesOf(log: readonly number[]): number {
  return log.filter((participant, index) => index > 0 && participant !== log[index - 1]).length;
}

export const points = (count: number, kind: number): Step[] => Array.from({ length: count }, () => ({ op: 'point', kind }) as const);
