// Setup file of the "threads" test project (vitest.config.ts), whose files share one process. A file
// in a process of its own could not leave worker threads behind: they ended with it. Sharing, a test
// that fails between vm.start() and vm.wait() would leave the VM's host CPUs running guest code into
// the next files. This keeps the old guarantee: every worker thread a file starts must have exited
// when the file ends; the guard waits for the stragglers (bounded), terminates what is left and fails
// the file, naming how many.

import { once } from 'node:events';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Worker, WorkerOptions } from 'node:worker_threads';
import { afterAll } from 'vitest';

/** How long threads still shutting down as the file ends (a pool's destroy, a terminate) get to exit. */
const EXIT_GRACE_MS = 5_000;

interface WorkerLedger {
  /** Which file started each live worker thread (its number in this process), or 0: none of them. */
  readonly live: Map<Worker, number>;
  /** The number of the file now running, 0 between files. */
  current: number;
  files: number;
}

const LEDGER = Symbol.for('avic-smp.test.workerLedger');

/**
 * The ledger of live worker threads, installed once per process (this setup file runs before every
 * test file): node:worker_threads' Worker becomes a subclass that enters itself at construction and
 * leaves at 'exit'. syncBuiltinESMExports hands the subclass to `import { Worker }` too, piscina's
 * included.
 */
function ledger(): WorkerLedger {
  const scope = globalThis as typeof globalThis & { [LEDGER]?: WorkerLedger };
  const installed = scope[LEDGER];
  if (installed !== undefined) return installed;
  const created: WorkerLedger = { live: new Map(), current: 0, files: 0 };
  const workerThreads = createRequire(import.meta.url)('node:worker_threads') as { Worker: typeof Worker };
  class LedgeredWorker extends workerThreads.Worker {
    constructor(filename: string | URL, options?: WorkerOptions) {
      super(filename, options);
      created.live.set(this, created.current);
      this.once('exit', () => created.live.delete(this));
    }
  }
  workerThreads.Worker = LedgeredWorker;
  syncBuiltinESMExports();
  scope[LEDGER] = created;
  return created;
}

const workers = ledger();
const thisFile = ++workers.files;
workers.current = thisFile;

afterAll(async () => {
  // Threads a pool starts to replace the ones terminated below are idle: they belong to no file.
  workers.current = 0;
  const started = [...workers.live].filter(([, file]) => file === thisFile).map(([worker]) => worker);
  if (started.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(started.map((worker) => once(worker, 'exit'))),
    new Promise((resolve) => {
      timer = setTimeout(resolve, EXIT_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
  const left = started.filter((worker) => workers.live.has(worker));
  if (left.length === 0) return;
  await Promise.all(left.map((worker) => worker.terminate()));
  throw new Error(
    `${left.length} worker thread(s) this file started still ran ${EXIT_GRACE_MS / 1000} s after its last test; terminated them (a VM started and never waited?)`,
  );
}, EXIT_GRACE_MS * 2);
