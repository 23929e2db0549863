// The raw memslot-update baseline's worker: plain Node, no emulator. It stays busy (a short
// arithmetic loop standing for guest code) and polls its own doorbell word once per pass, as a vCPU
// polls its doorbell once per taken branch. When the doorbell moved it reads the published
// generation and acknowledges it in its own line (store, then notify: the main thread waits with
// Atomics.waitAsync on that word). See raw-generation-ack.ts for the layout and the main side.

import { parentPort, workerData } from 'node:worker_threads';
import { RawGenerationLine, type RawGenerationTask } from './raw-generation-layout.js';

const task = workerData as RawGenerationTask;
const words = new Int32Array(task.sab);
const line = RawGenerationLine.perWorker + RawGenerationLine.wordsPerWorker * task.index;
const doorbell = line + RawGenerationLine.doorbell;
const ack = line + RawGenerationLine.acknowledged;
let state = Math.imul(task.index + 1, 0x9e3779b9) | 0 || 1;
let seen = Atomics.load(words, doorbell);
Atomics.add(words, RawGenerationLine.control + RawGenerationLine.ready, 1);
for (;;) {
  // Stand-in for a guest basic block: a few dependent ALU operations the JIT cannot drop.
  for (let i = 0; i < 8; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
  }
  const ring = Atomics.load(words, doorbell);
  if (ring === seen) continue;
  seen = ring;
  if (Atomics.load(words, RawGenerationLine.control + RawGenerationLine.stop) !== 0) break;
  // Pairs with the main side's "publish generation, then ring": the ring we saw was rung after the
  // store of the generation, so this load sees it (all seq-cst).
  Atomics.store(words, ack, Atomics.load(words, RawGenerationLine.generation));
  Atomics.notify(words, ack);
}
parentPort!.postMessage(state);
