// The wait-for graph, read from the shared holder and waiter words (not from the validator's
// graph): who holds which lock instance, who waits for which, and the cycle of waits if there is
// one. This is what the deadlock watchdog prints when threads stay blocked past its bound; it works
// with the validator disabled, because the locks keep these words themselves.
//
// Edges: a thread waiting for a lock waits for
//   mutex                     its holder;
//   rw-semaphore, write       the writer, or else every reader;
//   rw-semaphore, read        the writer, and (writer-preferring) every writer queued ahead;
//   SRCU grace period         every thread inside a read section (an over-approximation: readers
//                             that began after the grace period are not waited for, but a reader
//                             blocked long enough to be in a cycle began before it).
// A thread waiting for a lock it holds itself (AA, or synchronize inside its own read section)
// is a cycle of one.
//
// The words are read one by one while threads run, so the picture is a snapshot that may be torn;
// a watchdog takes it only after threads have been stuck for its whole bound.

import { threadNowMs } from '../host/host-thread.js';
import { INSTANCE_FLAG_WRITER_PREFERRING } from './lock-instances.js';
import { LockInstanceKind, LockMode } from './lockdep-layout.js';
import { formatMode } from './lockdep-splat.js';
import { WAITING_FOR_GRACE_PERIOD, type ThreadWait } from './lockdep-threads.js';
import type { Lockdep } from './lockdep.js';

export interface LockHolding {
  readonly instance: number;
  readonly lockName: string;
  readonly kind: string;
  readonly writers: readonly number[];
  readonly readers: readonly number[];
}

export interface ThreadWaitEdge {
  readonly slot: number;
  readonly instance: number;
  readonly waitKind: string;
  readonly waitedMs: number;
  /** Thread slots this thread waits for. */
  readonly waitsFor: readonly number[];
}

export interface WaitForGraph {
  readonly holdings: readonly LockHolding[];
  readonly waits: readonly ThreadWaitEdge[];
  /** Thread slots around a cycle of waits, closed (the first slot repeated at the end), if any. */
  readonly cycle: readonly number[] | undefined;
  readonly threadNames: ReadonlyMap<number, string>;
  readonly lockNames: ReadonlyMap<number, string>;
  /** Validator held-lock stacks (empty when the validator is disabled). */
  readonly heldStacks: ReadonlyMap<number, readonly string[]>;
}

const KIND_NAMES: Readonly<Record<number, string>> = {
  [LockInstanceKind.Mutex]: 'mutex',
  [LockInstanceKind.RwSemaphore]: 'rw-semaphore',
  [LockInstanceKind.Srcu]: 'srcu',
};

export function buildWaitForGraph(lockdep: Lockdep, nowMs = threadNowMs()): WaitForGraph {
  const holdings = readHoldings(lockdep);
  const byInstance = new Map(holdings.map((holding) => [holding.instance, holding]));
  const waits = readWaits(lockdep, byInstance, nowMs);
  const threadNames = new Map<number, string>();
  const heldStacks = new Map<number, string[]>();
  for (let slot = 0; slot < lockdep.threads.threadSlots; slot++) {
    const held = lockdep.heldLocks(slot).map((lock) => `${lock.className}${formatMode(lock)} at ${lock.site}`);
    if (held.length > 0) heldStacks.set(slot, held);
    threadNames.set(slot, lockdep.threadName(slot));
  }
  const lockNames = new Map(holdings.map((holding) => [holding.instance, holding.lockName]));
  return { holdings, waits, cycle: findCycle(waits), threadNames, lockNames, heldStacks };
}

function readHoldings(lockdep: Lockdep): LockHolding[] {
  const int32 = new Int32Array(lockdep.shared.buffer);
  const holdings: LockHolding[] = [];
  for (let instance = 0; instance < lockdep.instances.count(); instance++) {
    const description = lockdep.instances.describe(instance);
    if (description.kind === LockInstanceKind.Unused) continue;
    const className = lockdep.classes.byId(description.classId).name;
    const lockName = description.name === className ? className : `${description.name} (${className})`;
    const state = Atomics.load(int32, lockdep.instances.stateIndex(instance));
    const owner = Atomics.load(int32, lockdep.instances.ownerIndex(instance));
    const writers = description.kind === LockInstanceKind.Mutex ? (state === 0 ? [] : [state - 1]) : owner === 0 ? [] : [owner - 1];
    const readers = description.kind === LockInstanceKind.Mutex ? [] : lockdep.instances.readers(instance);
    holdings.push({ instance, lockName, kind: KIND_NAMES[description.kind] ?? '?', writers, readers });
  }
  return holdings;
}

function readWaits(lockdep: Lockdep, byInstance: ReadonlyMap<number, LockHolding>, nowMs: number): ThreadWaitEdge[] {
  const waiting: (ThreadWait & { readonly slot: number })[] = [];
  for (let slot = 0; slot < lockdep.threads.threadSlots; slot++) {
    const wait = lockdep.threads.waiting(slot);
    if (wait !== undefined) waiting.push({ slot, ...wait });
  }
  return waiting.map((wait) => {
    const holding = byInstance.get(wait.instance);
    const queuedWriters = waiting.filter(
      (other) => other.instance === wait.instance && other.mode === LockMode.Write && other.slot !== wait.slot,
    );
    const writerPreferring = (lockdep.instances.describe(wait.instance).flags & INSTANCE_FLAG_WRITER_PREFERRING) !== 0;
    let waitsFor: number[] = [];
    let waitKind = 'lock';
    if (holding !== undefined && wait.mode === WAITING_FOR_GRACE_PERIOD) {
      [waitsFor, waitKind] = [[...holding.readers], 'a grace period of'];
    } else if (holding !== undefined && wait.mode === LockMode.Write) {
      [waitsFor, waitKind] = [
        holding.writers.length > 0 ? [...holding.writers] : [...holding.readers],
        holding.kind === 'mutex' ? 'lock' : 'write lock',
      ];
    } else if (holding !== undefined) {
      const ahead = writerPreferring ? queuedWriters.map((other) => other.slot) : [];
      [waitsFor, waitKind] = [[...holding.writers, ...ahead], 'read lock'];
    }
    return { slot: wait.slot, instance: wait.instance, waitKind, waitedMs: Math.max(0, nowMs - wait.sinceMs), waitsFor };
  });
}

/** The cycle of waits thread `slot` waits on or behind (following its "waits for" edges), closed; else undefined. */
export function cycleReachableFrom(graph: WaitForGraph, slot: number): readonly number[] | undefined {
  return findCycle(graph.waits, [slot]);
}

/** Depth-first search over "waits for" edges from `starts`; returns the first cycle found, closed. */
function findCycle(waits: readonly ThreadWaitEdge[], starts: readonly number[] = waits.map((wait) => wait.slot)): number[] | undefined {
  const edges = new Map(waits.map((wait) => [wait.slot, wait.waitsFor]));
  const onPath: number[] = [];
  const finished = new Set<number>();
  const visit = (slot: number): number[] | undefined => {
    const position = onPath.indexOf(slot);
    if (position >= 0) return [...onPath.slice(position), slot];
    if (finished.has(slot)) return undefined;
    onPath.push(slot);
    for (const next of edges.get(slot) ?? []) {
      const cycle = visit(next);
      if (cycle !== undefined) return cycle;
    }
    onPath.pop();
    finished.add(slot);
    return undefined;
  };
  for (const start of starts) {
    const cycle = visit(start);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}

export function formatWaitForGraph(graph: WaitForGraph): string {
  const thread = (slot: number): string => graph.threadNames.get(slot) ?? `thread ${slot}`;
  const lock = (instance: number): string => graph.lockNames.get(instance) ?? `lock #${instance}`;
  const names = (slots: readonly number[]): string => (slots.length === 0 ? 'nobody' : slots.map(thread).join(', '));
  const lines = [`Wait-for graph: ${graph.waits.length} thread${graph.waits.length === 1 ? '' : 's'} waiting`];
  for (const wait of graph.waits) {
    lines.push(
      `  ${thread(wait.slot)} waits (${wait.waitedMs.toFixed(0)} ms) for ${wait.waitKind} ${lock(wait.instance)}, held by ${names(wait.waitsFor)}`,
    );
  }
  const held = graph.holdings.filter((holding) => holding.writers.length + holding.readers.length > 0);
  lines.push(held.length === 0 ? 'Locks held: none' : 'Locks held:');
  for (const holding of held) {
    const parts = [
      ...(holding.writers.length > 0 ? [`${holding.kind === 'mutex' ? 'held' : 'written'} by ${names(holding.writers)}`] : []),
      ...(holding.readers.length > 0 ? [`${holding.kind === 'srcu' ? 'read sections' : 'read'}: ${names(holding.readers)}`] : []),
    ];
    lines.push(`  ${holding.lockName} [${holding.kind}]: ${parts.join('; ')}`);
  }
  lines.push(...formatCycle(graph, thread, lock));
  if (graph.heldStacks.size > 0) {
    lines.push('Held-lock stacks (validator):');
    for (const [slot, locks] of graph.heldStacks) lines.push(`  ${thread(slot)}: ${locks.join(' -> ')}`);
  }
  return lines.join('\n');
}

function formatCycle(graph: WaitForGraph, thread: (slot: number) => string, lock: (instance: number) => string): string[] {
  if (graph.cycle === undefined) return ['No cycle of waits (threads are blocked on something outside these locks, or slow).'];
  const waitOf = new Map(graph.waits.map((wait) => [wait.slot, wait]));
  const steps = graph.cycle.slice(0, -1).map((slot) => `${thread(slot)} -> ${lock(waitOf.get(slot)?.instance ?? -1)}`);
  return ['DEADLOCK: a cycle of waits:', `  ${steps.join(' -> ')} -> ${thread(graph.cycle[0] ?? -1)}`];
}

/** Lock classes the threads around the cycle of waits wait for, in order, closed; [] without a cycle. */
export function waitCycleClasses(lockdep: Lockdep): string[] {
  const graph = buildWaitForGraph(lockdep);
  if (graph.cycle === undefined) return [];
  const waitOf = new Map(graph.waits.map((wait) => [wait.slot, wait.instance]));
  const classes = graph.cycle
    .slice(0, -1)
    .map((slot) => lockdep.classes.byId(lockdep.instances.describe(waitOf.get(slot) ?? 0).classId).name);
  return classes.length === 0 ? [] : [...classes, classes[0]!];
}
