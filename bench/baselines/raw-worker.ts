// The raw baselines' worker threads: plain Node (no emulator), Atomics on a SharedArrayBuffer,
// every hot word on its own 64-byte line. One file, several roles (workerData.role); each role
// posts its result once and returns. See raw.ts for what each measures.

import { parentPort, workerData } from 'node:worker_threads';
import { Line, SENT_AT_FLOAT64, type RawRole } from './raw-layout.js';

/**
 * A nanosecond clock shared by every thread: performance.now() (fast, but relative to each thread's
 * own time origin) plus this thread's offset to a process.hrtime origin, calibrated on the pair of
 * reads that were closest together.
 */
function sharedClock(originNs: string): () => number {
  const origin = BigInt(originNs);
  let best = Infinity;
  let offset = 0;
  for (let attempt = 0; attempt < 500; attempt++) {
    const before = performance.now();
    const hr = process.hrtime.bigint();
    const after = performance.now();
    if (after - before < best) {
      best = after - before;
      offset = Number(hr - origin) - ((before + after) / 2) * 1e6;
    }
  }
  return () => performance.now() * 1e6 + offset;
}

/** How far past its deadline a spin of the wake baseline waits for a sleeper before it fails. */
const STUCK_AFTER_NS = 30e9;

function spinUntil(clock: () => number, deadlineNs: number): void {
  while (clock() < deadlineNs) {
    /* spin */
  }
}

function spinInitiator(task: Extract<RawRole, { role: 'spin-initiator' }>): Float64Array {
  const words = new Int32Array(task.sab);
  const float64 = new Float64Array(task.sab);
  const clock = sharedClock(task.originNs);
  const samples = new Float64Array(task.rounds);
  Atomics.add(words, Line.control + 2, 1);
  while (Atomics.load(words, Line.control + 2) < 2) {
    /* wait for the responder */
  }
  const total = task.rounds + task.warmup;
  // Bounded: two spinners sharing one core take a scheduler slice per round (BENCHMARKS.md goal 4), so stop
  // at the deadline and keep the rounds done so far.
  const deadline = clock() + task.deadlineMs * 1e6;
  let measured = 0;
  for (let round = 1; round <= total; round++) {
    spinUntil(clock, clock() + task.gapNs);
    const start = clock();
    if (task.oneWay) float64[SENT_AT_FLOAT64] = start;
    Atomics.store(words, Line.ping, round);
    while (Atomics.load(words, Line.pong) !== round) {
      /* spin */
    }
    const end = clock();
    if (round > task.warmup) samples[measured++] = end - start;
    if (end > deadline) break;
  }
  Atomics.store(words, Line.control, 1);
  return samples.slice(0, measured);
}

function spinResponder(task: Extract<RawRole, { role: 'spin-responder' }>): Float64Array {
  const words = new Int32Array(task.sab);
  const float64 = new Float64Array(task.sab);
  const clock = sharedClock(task.originNs);
  const oneWay: number[] = [];
  Atomics.add(words, Line.control + 2, 1);
  let last = 0;
  for (;;) {
    let value = Atomics.load(words, Line.ping);
    while (value === last) {
      if (Atomics.load(words, Line.control) !== 0) return Float64Array.from(oneWay);
      value = Atomics.load(words, Line.ping);
    }
    if (task.oneWay) oneWay.push(clock() - float64[SENT_AT_FLOAT64]!);
    last = value;
    Atomics.store(words, Line.pong, value);
  }
}

function waker(task: Extract<RawRole, { role: 'waker' }>): Float64Array {
  const words = new Int32Array(task.sab);
  const float64 = new Float64Array(task.sab);
  const clock = sharedClock(task.originNs);
  const samples = new Float64Array(task.rounds);
  const total = task.rounds + task.warmup;
  const deadline = clock() + task.deadlineMs * 1e6;
  // The spins below end long before this unless a sleeper is gone: then fail, never hang.
  const giveUp = deadline + STUCK_AFTER_NS;
  let measured = 0;
  for (let round = 1; round <= total; round++) {
    // Every sleeper has announced it is going to sleep for this round...
    for (let k = 0; k < task.sleepers; k++) {
      const announced = Line.perWorker + 16 * k + 1;
      for (let spins = 1; Atomics.load(words, announced) !== round; spins++) {
        if (spins % 4096 === 0 && clock() > giveUp) throw new Error(`raw wake: sleeper ${k} never announced round ${round}`);
      }
    }
    // ...and then it has had GAP_NS to really fall asleep (futex wait, idle core).
    spinUntil(clock, clock() + task.gapNs);
    const start = clock();
    float64[SENT_AT_FLOAT64] = start;
    for (let k = 0; k < task.sleepers; k++) {
      const door = Line.perWorker + 16 * k;
      Atomics.add(words, door, 1);
      Atomics.notify(words, door, 1);
    }
    const wanted = round * task.sleepers;
    for (let spins = 1; Atomics.load(words, Line.acks) !== wanted; spins++) {
      if (spins % 4096 === 0 && clock() > giveUp)
        throw new Error(`raw wake: round ${round} has ${Atomics.load(words, Line.acks)} acks, wanted ${wanted}`);
    }
    const end = clock();
    if (round > task.warmup) samples[measured++] = end - start;
    if (end > deadline) break;
  }
  Atomics.store(words, Line.control, 1);
  for (let k = 0; k < task.sleepers; k++) {
    const door = Line.perWorker + 16 * k;
    Atomics.add(words, door, 1);
    Atomics.notify(words, door, 1);
  }
  return samples.slice(0, measured);
}

function sleeper(task: Extract<RawRole, { role: 'sleeper' }>): Float64Array {
  const words = new Int32Array(task.sab);
  const float64 = new Float64Array(task.sab);
  const clock = sharedClock(task.originNs);
  const door = Line.perWorker + 16 * task.index;
  const oneWay = new Float64Array(task.rounds);
  let measured = 0;
  for (let round = 1; ; round++) {
    const seen = Atomics.load(words, door);
    Atomics.store(words, door + 1, round);
    // Until this round's add, not any notify: the waker's notify of the round before may come late
    // (the waker descheduled between its add and its notify, this sleeper already through that round
    // on the add alone and asleep again), and a wake-up taken for it acks a round early, after which
    // the waker's acks never equal what it waits for.
    while (Atomics.load(words, door) === seen) Atomics.wait(words, door, seen);
    const woke = clock();
    if (Atomics.load(words, Line.control) !== 0) return oneWay.slice(0, measured);
    if (round > task.warmup && measured < task.rounds) oneWay[measured++] = woke - float64[SENT_AT_FLOAT64]!;
    Atomics.add(words, Line.acks, 1);
  }
}

function popcount(value: number): number {
  let v = value - ((value >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * The raw "poll" storm (BENCHMARKS.md goal 6): send = Atomics.or of this worker's bit into a random other worker's IRR
 * word (an already-set bit is a coalesced IPI, as an APIC merges it); receive = exchange own IRR
 * with 0 and popcount. Counts only between `go` and `stop`.
 */
function storm(task: Extract<RawRole, { role: 'storm' }>): { sent: number; coalesced: number; delivered: number } {
  const words = new Int32Array(task.sab);
  const self = task.index;
  const bit = 1 << (self & 31);
  const own = Line.perWorker + 16 * self;
  let state = (Math.imul(self + 1, 0x9e3779b9) ^ task.seed) | 0 || 1;
  Atomics.add(words, Line.control + 2, 1);
  while (Atomics.load(words, Line.control + 1) === 0) {
    /* wait for go */
  }
  let sent = 0;
  let coalesced = 0;
  let delivered = 0;
  for (;;) {
    for (let i = 0; i < 256; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      let target = (state >>> 0) % (task.workers - 1);
      if (target >= self) target++;
      const old = Atomics.or(words, Line.perWorker + 16 * target, bit);
      if ((old & bit) !== 0) coalesced++;
      else sent++;
      const pending = Atomics.exchange(words, own, 0);
      if (pending !== 0) delivered += popcount(pending);
    }
    if (Atomics.load(words, Line.control) !== 0) return { sent, coalesced, delivered };
  }
}

/**
 * A thread that only spins on the clock, one per core: every pass further apart than `stallNs` is a
 * time the OS or the hypervisor took the core away (nothing else in this thread can take that long:
 * its clock reads allocate, but the scavenge of a heap this small takes tens of µs).
 */
function stalls(task: Extract<RawRole, { role: 'stalls' }>): { stalls: number; stalledNs: number; spunNs: number } {
  const words = new Int32Array(task.sab);
  Atomics.add(words, Line.control + 2, 1);
  while (Atomics.load(words, Line.control + 2) < task.threads) {
    /* start together, so the threads spin on every core at once */
  }
  const stallMs = task.stallNs / 1e6;
  const started = performance.now();
  const end = started + task.durationMs;
  let count = 0;
  let stalledMs = 0;
  let last = started;
  for (;;) {
    const now = performance.now();
    const gap = now - last;
    last = now;
    if (gap > stallMs) {
      count++;
      stalledMs += gap;
    }
    if (now >= end) break;
  }
  return { stalls: count, stalledNs: stalledMs * 1e6, spunNs: (last - started) * 1e6 };
}

const task = workerData as RawRole;
let result: unknown;
switch (task.role) {
  case 'spin-initiator':
    result = spinInitiator(task);
    break;
  case 'spin-responder':
    result = spinResponder(task);
    break;
  case 'waker':
    result = waker(task);
    break;
  case 'sleeper':
    result = sleeper(task);
    break;
  case 'storm':
    result = storm(task);
    break;
  case 'stalls':
    result = stalls(task);
    break;
}
parentPort!.postMessage(result);
