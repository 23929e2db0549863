// Runs a lock scenario file (src/lockdep/scenario-file.ts): builds a lockdep region with the KVM classes plus the
// file's own, registers one instance per declared lock, starts a worker per "vcpu N" thread (it
// attaches as vCPU N's worker slot, like the VM's workers) and runs the "main" threads on this
// thread, each in its own lockdep context. Then it watches:
//   - the validator's first report -> 'possible-deadlock' (threads back out, the run ends by itself);
//   - no step done by anyone for `watchdogMs` while no thread sleeps -> 'deadlock': the wait-for
//     graph is printed, every wait aborted (Lockdep.abortWaits), and workers still running after a
//     grace are terminated;
//   - otherwise 'clean'.

import { mainHostThread } from '../../host/host-thread.js';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { packageRoot } from '../../host/package-root.js';
import { Srcu } from '../../host/srcu.js';
import { InstrumentedMutex } from '../../lockdep/instrumented-lock.js';
import { InstrumentedRwSemaphore } from '../../lockdep/instrumented-rw-semaphore.js';
import { InstrumentedSrcu } from '../../lockdep/instrumented-srcu.js';
import { KVM_DOCUMENTED_ORDERS, KVM_LOCK_CLASS_SPECS } from '../../lockdep/kvm-lock-classes.js';
import { LockClassRegistry, LockKind } from '../../lockdep/lock-class.js';
import { Lockdep } from '../../lockdep/lockdep.js';
import type { LockScenario, LockScenarioThread } from '../../lockdep/scenario-file.js';
import {
  ScenarioThread,
  handshakeWords,
  scenarioWaitBoundMs,
  progressWord,
  sleepingWord,
  type ScenarioLockInstance,
  type ScenarioThreadData,
  type ScenarioThreadResult,
} from '../../lockdep/scenario-file-steps.js';
import { buildWaitForGraph, formatWaitForGraph, waitCycleClasses } from '../../lockdep/wait-for-graph.js';

export interface LockScenarioRunOptions {
  readonly validator: boolean;
  /** No step done for this long (and no thread sleeping) is a deadlock. Default 2000. */
  readonly watchdogMs?: number;
}

export interface LockScenarioOutcome {
  readonly scenario: string;
  readonly verdict: 'possible-deadlock' | 'deadlock' | 'clean';
  readonly cycle: readonly string[];
  readonly report: string;
  readonly validator: boolean;
  readonly problems: readonly string[];
  readonly threads: readonly ScenarioThreadResult[];
}

const POLL_MS = 50;
/** After abortWaits, how long workers get to notice before they are terminated. */
const TEARDOWN_GRACE_MS = 2000;

function workerUrl(): URL {
  const file = join(packageRoot(), 'dist', 'src', 'scenarios', 'lock-scenarios', 'scenario-file-worker.js');
  if (!existsSync(file)) throw new Error(`the scenario worker is not built (${file}); run "npm run build"`);
  return pathToFileURL(file);
}

export async function runLockScenario(scenario: LockScenario, options: LockScenarioRunOptions): Promise<LockScenarioOutcome> {
  const workerThreads = Math.max(1, ...scenario.threads.map((thread) => thread.vcpu + 1));
  const mainThreads = scenario.threads.filter((thread) => thread.vcpu < 0).length;
  const classes = new LockClassRegistry([...KVM_LOCK_CLASS_SPECS, ...scenario.classes]);
  const lockdep = Lockdep.create(
    classes,
    { workerThreads, mainContexts: mainThreads + 1, lockInstances: scenario.locks.length + 1 },
    { enabled: options.validator },
  );
  if (scenario.documentedOrders) for (const order of KVM_DOCUMENTED_ORDERS) lockdep.declareOrder(order);
  const srcuReaderSlots = workerThreads + 1;
  const locks: ScenarioLockInstance[] = scenario.locks.map((lock) => {
    if (lock.kind === LockKind.Mutex)
      return { name: lock.name, kind: lock.kind, instance: InstrumentedMutex.create(lockdep, lock.className, lock.name).instance };
    if (lock.kind === LockKind.RwSemaphore) {
      return {
        name: lock.name,
        kind: lock.kind,
        instance: InstrumentedRwSemaphore.create(lockdep, lock.className, { name: lock.name, writerPreferring: lock.writerPreferring })
          .instance,
      };
    }
    const srcuBuffer = new SharedArrayBuffer(Srcu.regionBytes(srcuReaderSlots));
    const srcu = new Srcu(new Int32Array(srcuBuffer), 0, srcuReaderSlots);
    return {
      name: lock.name,
      kind: lock.kind,
      instance: InstrumentedSrcu.create(lockdep, srcu, lock.className, lock.name).instance,
      srcuBuffer,
    };
  });
  const labels = scenario.threads.flatMap((thread) => thread.steps.flatMap((step) => (step.label === undefined ? [] : [step.label])));
  const handshake = new SharedArrayBuffer(4 * handshakeWords(labels.length, scenario.threads.length));
  const watchdogMs = options.watchdogMs ?? 2000;
  const waitBoundMs = scenarioWaitBoundMs(scenario, watchdogMs);
  const dataOf = (thread: LockScenarioThread, threadIndex: number): ScenarioThreadData => ({
    lockdep: lockdep.shared,
    enabled: options.validator,
    locks,
    srcuReaderSlots,
    handshake,
    labels,
    threadCount: scenario.threads.length,
    threadIndex,
    threadName: thread.name,
    vcpu: thread.vcpu,
    steps: thread.steps,
    waitBoundMs,
  });
  const workers: Worker[] = [];
  const url = scenario.threads.some((thread) => thread.vcpu >= 0) ? workerUrl() : undefined;
  const results = scenario.threads.map((thread, index) => {
    const data = dataOf(thread, index);
    if (thread.vcpu < 0) {
      const run = (): Promise<ScenarioThreadResult> => new ScenarioThread(data, lockdep).runAsync();
      return thread.name === 'main' ? run() : lockdep.runInMainContext(thread.name.replace(/^main\s+/, ''), run);
    }
    const worker = new Worker(url!, { workerData: data, execArgv: [] });
    workers.push(worker);
    return new Promise<ScenarioThreadResult>((resolve) => {
      worker.once('message', (result: ScenarioThreadResult) => resolve(result));
      worker.once('error', (error) => resolve({ thread: thread.name, outcome: 'error', stepsDone: 0, message: error.message }));
      worker.once('exit', () => resolve({ thread: thread.name, outcome: 'aborted', stepsDone: 0, message: 'its worker was terminated' }));
    });
  });
  const settled = results.map((result) =>
    result.catch((error: unknown) => ({ thread: '?', outcome: 'error' as const, stepsDone: 0, message: String(error) })),
  );
  const allDone = Promise.all(settled);
  const deadlock = await watch(lockdep, new Int32Array(handshake), { labels, threadCount: scenario.threads.length }, allDone, watchdogMs);
  if (deadlock !== undefined) lockdep.abortWaits();
  // Real time on purpose: terminating stuck worker threads is the host's business, not the run's
  // clock. Cleared once the race is decided: a pending timer would keep a CLI process alive.
  let teardownTimer: NodeJS.Timeout | undefined;
  const threads = await Promise.race([
    allDone,
    new Promise((resolve) => {
      teardownTimer = setTimeout(resolve, TEARDOWN_GRACE_MS);
    }).then(async () => {
      await Promise.all(workers.map((worker) => worker.terminate()));
      return allDone;
    }),
  ]);
  clearTimeout(teardownTimer);
  await Promise.all(workers.map((worker) => worker.terminate()));
  const report = lockdep.report();
  const problems = threads
    .filter((thread) => thread.outcome === 'error')
    .map((thread) => `${thread.thread}: ${thread.message ?? 'failed'}`);
  const verdict = report !== undefined ? 'possible-deadlock' : deadlock !== undefined ? 'deadlock' : 'clean';
  return {
    scenario: scenario.name,
    verdict,
    cycle: report?.cycle ?? deadlock?.cycle ?? [],
    report: report?.text ?? deadlock?.text ?? '',
    validator: options.validator,
    problems,
    threads,
  };
}

/** The watchdog: resolves when every thread ended (undefined), or with the deadlock it saw. */
async function watch(
  lockdep: Lockdep,
  words: Int32Array,
  data: { labels: readonly string[]; threadCount: number },
  allDone: Promise<unknown>,
  watchdogMs: number,
): Promise<{ text: string; cycle: string[] } | undefined> {
  let finished = false;
  void allDone.then(() => {
    finished = true;
  });
  const progress = (): number => {
    let total = 0;
    for (let thread = 0; thread < data.threadCount; thread++) total += Atomics.load(words, progressWord(data, thread));
    return total;
  };
  const sleeping = (): boolean =>
    Array.from({ length: data.threadCount }, (_, thread) => Atomics.load(words, sleepingWord(data, thread))).some((word) => word !== 0);
  let seen = progress();
  const host = mainHostThread();
  let since = host.nowMs();
  for (;;) {
    await Promise.race([allDone, host.sleep(POLL_MS)]);
    if (finished) return undefined;
    const now = host.nowMs();
    const current = progress();
    if (current !== seen || sleeping()) {
      [seen, since] = [current, now];
      continue;
    }
    if (now - since >= watchdogMs) {
      const graph = formatWaitForGraph(buildWaitForGraph(lockdep));
      return { text: `no thread made progress for ${(watchdogMs / 1000).toFixed(1)} s\n${graph}`, cycle: waitCycleClasses(lockdep) };
    }
  }
}
