// The raw baseline of a memslot update (plain Node, no emulator): what any design with the same
// contract must at least pay. The writer publishes a new generation, makes every busy thread look
// (rings each one's doorbell word), and waits, without blocking the event loop (Atomics.waitAsync,
// bounded), until each has acknowledged that generation; `rounds` = 2 does that twice, as a memslot
// move or delete waits for two grace periods. The threads are N plain workers spinning in an
// arithmetic loop that polls their doorbell once per pass. No SRCU, no locks, no memslot copies:
// the emulator's update adds those on top (and kvm_swap_active_memslots's bookkeeping).
// The writer rings every doorbell first and then waits for each acknowledgement (as KVM's
// kvm_make_all_cpus_request kicks every vCPU, then waits), so the N threads answer in parallel.

import { Worker } from 'node:worker_threads';
import { RawGenerationLine, rawGenerationBytes, type RawGenerationTask } from './raw-generation-layout.js';

const WORKER_URL = new URL('./raw-generation-ack-worker.js', import.meta.url);
const ACK_TIMEOUT_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RawGenerationAck {
  readonly workers: number;
  readonly #words: Int32Array;
  readonly #threads: Worker[];
  readonly #exited: Promise<unknown>[];
  #generation = 0;

  private constructor(workers: number, words: Int32Array, threads: Worker[], exited: Promise<unknown>[]) {
    this.workers = workers;
    this.#words = words;
    this.#threads = threads;
    this.#exited = exited;
  }

  /** Starts `workers` busy threads; resolves once every one is in its loop (bounded). */
  static async start(workers: number): Promise<RawGenerationAck> {
    const sab = new SharedArrayBuffer(rawGenerationBytes(workers));
    const words = new Int32Array(sab);
    const threads: Worker[] = [];
    const exited: Promise<unknown>[] = [];
    for (let index = 0; index < workers; index++) {
      const worker = new Worker(WORKER_URL, { workerData: { sab, index } satisfies RawGenerationTask });
      threads.push(worker);
      exited.push(
        new Promise((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
          worker.once('exit', (code) => {
            if (code !== 0) reject(new Error(`raw generation worker ${index} exited with code ${code}`));
          });
        }),
      );
    }
    const raw = new RawGenerationAck(workers, words, threads, exited);
    const deadline = performance.now() + 30_000 + 1_000 * workers;
    while (Atomics.load(words, RawGenerationLine.control + RawGenerationLine.ready) < workers) {
      if (performance.now() > deadline) {
        await raw.close();
        throw new Error(`raw baseline: not every one of ${workers} workers started in time`);
      }
      await sleep(1);
    }
    return raw;
  }

  /** One update: `rounds` times, publish a generation, ring every doorbell, wait for every acknowledgement. */
  async update(rounds: number): Promise<void> {
    const words = this.#words;
    for (let round = 0; round < rounds; round++) {
      const generation = (this.#generation + 1) | 0;
      this.#generation = generation;
      // Publish, then ring: pairs with the worker's "see the ring, then load the generation".
      Atomics.store(words, RawGenerationLine.generation, generation);
      for (let index = 0; index < this.workers; index++) Atomics.add(words, this.#line(index) + RawGenerationLine.doorbell, 1);
      for (let index = 0; index < this.workers; index++) {
        const ack = this.#line(index) + RawGenerationLine.acknowledged;
        const deadline = performance.now() + ACK_TIMEOUT_MS;
        for (;;) {
          const seen = Atomics.load(words, ack);
          if (((seen - generation) | 0) >= 0) break;
          if (performance.now() > deadline)
            throw new Error(`raw baseline: worker ${index} did not acknowledge generation ${generation} within ${ACK_TIMEOUT_MS} ms`);
          const wait = Atomics.waitAsync(words, ack, seen, 5);
          if (wait.async) await wait.value;
        }
      }
    }
  }

  /** Stops the workers (they see stop at their next ring) and waits for them to exit. */
  async close(): Promise<void> {
    Atomics.store(this.#words, RawGenerationLine.control + RawGenerationLine.stop, 1);
    for (let index = 0; index < this.workers; index++) Atomics.add(this.#words, this.#line(index) + RawGenerationLine.doorbell, 1);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 10_000);
    });
    await Promise.race([Promise.allSettled(this.#exited), timeout]);
    clearTimeout(timer);
    await Promise.all(this.#threads.map((worker) => worker.terminate()));
  }

  #line(index: number): number {
    return RawGenerationLine.perWorker + RawGenerationLine.wordsPerWorker * index;
  }
}
