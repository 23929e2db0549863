// The raw baselines (plain Node, no emulator), measured in the same process as the emulator
// figure they sit beside:
//   - spin hand-off between two workers: one stores a word, the other spins on it with
//     Atomics.load and stores an ack, the first spins on the ack (BENCHMARKS.md goal 1's baseline);
//     also the one-way time, stamped with a calibrated clock shared by the threads;
//   - Atomics.wait/notify wake of sleeping workers: the sleepers announce they are going to sleep,
//     the waker idles a gap (so they really sleep, not spin), stores + notifies each and spins
//     until every one has answered (1 sleeper: the wake round trip; 7: the raw broadcast);
//   - the Atomics IPI storm ("poll", BENCHMARKS.md goal 6), N workers all to all;
//   - the machine's own stalls: one thread per core spinning on the clock, nothing else to do
//     (the floor under a tail goal: a round that one of them overlaps is late however fast the
//     code it runs).

import { Worker } from 'node:worker_threads';
import { latencyPercentiles, type LatencyPercentiles } from '../lib/stats.js';
import { Line, type RawRole } from './raw-layout.js';

const WORKER_URL = new URL('./raw-worker.js', import.meta.url);

function startWorker<T>(data: RawRole): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(WORKER_URL, { workerData: data });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', (message: T) => resolve(message));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`raw baseline worker (${data.role}) exited with code ${code}`));
    });
  });
  return { worker, result };
}

async function finish<T>(started: { worker: Worker; result: Promise<T> }): Promise<T> {
  const value = await started.result;
  await started.worker.terminate();
  return value;
}

const originNs = (): string => process.hrtime.bigint().toString();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface SpinHandoffResult {
  /** store → the other worker sees it and stores an ack → the ack is seen (a round trip). */
  readonly roundTrip: LatencyPercentiles;
  /** store → the other worker sees it (calibrated shared clock; ±~20 ns). */
  readonly oneWay: LatencyPercentiles;
}

/** Two workers, `rounds` hand-offs (after `warmup`), `gapNs` idle between rounds; each pair stops at `deadlineMs` (default 1500). */
export async function measureSpinHandoff(options: {
  rounds: number;
  warmup: number;
  gapNs: number;
  deadlineMs?: number;
}): Promise<SpinHandoffResult> {
  const run = async (oneWay: boolean): Promise<{ initiator: Float64Array; responder: Float64Array }> => {
    const sab = new SharedArrayBuffer(4096);
    const origin = originNs();
    const responder = startWorker<Float64Array>({ role: 'spin-responder', sab, originNs: origin, oneWay });
    const initiator = startWorker<Float64Array>({
      role: 'spin-initiator',
      sab,
      originNs: origin,
      oneWay,
      rounds: options.rounds,
      warmup: options.warmup,
      gapNs: options.gapNs,
      deadlineMs: options.deadlineMs ?? 1500,
    });
    return { initiator: await finish(initiator), responder: await finish(responder) };
  };
  // Round trips with no clock read on the responder's path, then one-way stamps in a second pair.
  const plain = await run(false);
  const stamped = await run(true);
  return { roundTrip: latencyPercentiles(plain.initiator), oneWay: latencyPercentiles(stamped.responder.subarray(options.warmup)) };
}

export interface WakeResult {
  /** send (store + notify to each sleeper) → every sleeper's ack seen by the waker. */
  readonly roundTrip: LatencyPercentiles;
  /** send → sleeper 0 runs again (shared clock). */
  readonly oneWay: LatencyPercentiles;
}

/** One waker and `sleepers` sleeping workers; each round waits until all announced sleep, then `gapNs`; stops at `deadlineMs` (default 3000). */
export async function measureWaitNotifyWake(options: {
  sleepers: number;
  rounds: number;
  warmup: number;
  gapNs: number;
  deadlineMs?: number;
}): Promise<WakeResult> {
  const sab = new SharedArrayBuffer(4096 + 64 * options.sleepers);
  const origin = originNs();
  const sleepers = Array.from({ length: options.sleepers }, (_, index) =>
    startWorker<Float64Array>({ role: 'sleeper', sab, originNs: origin, index, rounds: options.rounds, warmup: options.warmup }),
  );
  const waker = startWorker<Float64Array>({
    role: 'waker',
    sab,
    originNs: origin,
    sleepers: options.sleepers,
    rounds: options.rounds,
    warmup: options.warmup,
    gapNs: options.gapNs,
    deadlineMs: options.deadlineMs ?? 3000,
  });
  const roundTrip = await finish(waker);
  const oneWays = await Promise.all(sleepers.map(finish));
  return { roundTrip: latencyPercentiles(roundTrip), oneWay: latencyPercentiles(oneWays[0]!) };
}

export interface StormResult {
  readonly workers: number;
  readonly deliveredPerSecond: number;
  /** IPIs whose bit was already set at the target, per delivered IPI. */
  readonly coalescedPerDelivered: number;
}

/** The raw "poll" storm (BENCHMARKS.md goal 6) with `workers` threads for `windowMs`. */
export async function measureAtomicsStorm(options: { workers: number; windowMs: number; seed?: number }): Promise<StormResult> {
  const sab = new SharedArrayBuffer(4096 + 64 * options.workers);
  const words = new Int32Array(sab);
  const started = Array.from({ length: options.workers }, (_, index) =>
    startWorker<{ sent: number; coalesced: number; delivered: number }>({
      role: 'storm',
      sab,
      index,
      workers: options.workers,
      seed: options.seed ?? 1,
    }),
  );
  while (Atomics.load(words, Line.control + 2) < options.workers) await sleep(1);
  Atomics.store(words, Line.control + 1, 1);
  const t0 = performance.now();
  await sleep(options.windowMs);
  Atomics.store(words, Line.control, 1);
  const seconds = (performance.now() - t0) / 1000;
  const counts = await Promise.all(started.map(finish));
  const delivered = counts.reduce((sum, count) => sum + count.delivered, 0);
  const coalesced = counts.reduce((sum, count) => sum + count.coalesced, 0);
  return { workers: options.workers, deliveredPerSecond: delivered / seconds, coalescedPerDelivered: coalesced / Math.max(1, delivered) };
}

export interface StallResult {
  /** Stalls longer than the bound, per second, summed over the threads. */
  readonly stallsPerSecond: number;
  /** The share of each thread's time spent inside those stalls, summed over the threads. */
  readonly stalledShare: number;
  /** The share of rounds of length `roundNs` that need every thread and that a stall hits. */
  readonly roundsHit: number;
}

/**
 * `threads` threads (one per core) spin on the clock for `durationMs`, counting the passes further
 * apart than `stallNs`. A round of length `roundNs` that needs every thread escapes thread i's stalls
 * if none starts inside it and it does not start inside one: with stalls arriving at random, a
 * probability of (1 - stalled share_i) x exp(-stalls per second_i x roundNs); `roundsHit` is one
 * minus the product over the threads (BENCHMARKS.md row 13b).
 */
export async function measureSpinStalls(options: {
  threads: number;
  durationMs: number;
  stallNs: number;
  roundNs: number;
}): Promise<StallResult> {
  const sab = new SharedArrayBuffer(4096);
  const { threads, durationMs, stallNs } = options;
  const started = Array.from({ length: threads }, () =>
    startWorker<{ stalls: number; stalledNs: number; spunNs: number }>({ role: 'stalls', sab, threads, durationMs, stallNs }),
  );
  const results = await Promise.all(started.map(finish));
  let stallsPerSecond = 0;
  let stalledShare = 0;
  let escaped = 1;
  for (const result of results) {
    const rate = result.stalls / (result.spunNs / 1e9);
    const share = Math.min(1, result.stalledNs / result.spunNs);
    stallsPerSecond += rate;
    stalledShare += share;
    escaped *= (1 - share) * Math.exp(-rate * (options.roundNs / 1e9));
  }
  return { stallsPerSecond, stalledShare, roundsHit: 1 - escaped };
}
