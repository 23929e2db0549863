// The host scheduler's tasks and run queues, as shared words: one task per vCPU (its state, its link
// in a run queue, its run-time accounting) and one FIFO run queue per host CPU. Mechanism only: the
// block / wake protocol that moves a task between states is KVM's (src/kvm/control/vcpu-scheduling.ts).
//
// A run queue is intrusive (each task's `next` word links it) with a head, a tail and a length per
// host CPU, guarded by a compare-exchange spinlock word. Critical sections are a handful of stores and
// never block, so a waiter spins (the main thread may enqueue too and never calls Atomics.wait); the
// spin is bounded all the same (RUN_QUEUE_LOCK_TIMEOUT_MS), an emulator bug if it ever runs out.
// Index + 1 encodings keep zeroed memory meaning "empty".

import { defineStruct } from './shared-layout.js';
import { hostThread, SchedulingPoint } from './host-thread.js';
import { VirtualTimeCost } from './virtual-time-costs.js';

/** A task's scheduling state (the vCPU task of KVM; written as the protocol's comments say). */
export const TaskState = {
  /** Not started yet (main enqueues it at start or hot-add). */
  Off: 0,
  /** On a host CPU's run queue, waiting to be loaded. */
  Queued: 1,
  /** Loaded on a host CPU (vcpu_load done, not yet put). */
  Running: 2,
  /** Loaded and about to block: it re-checks for events before it commits (kvm_vcpu_block). */
  Blocking: 3,
  /** Put and off every queue: only a wake-up makes it runnable again. */
  Blocked: 4,
  /** A waker found it Blocking: it must not block (the blocker's compare-exchange fails). */
  Woken: 5,
  /** Its run ended (done, stopped, fault): nothing enqueues it again. */
  Finished: 6,
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

export const TASK_STATE_NAMES = ['off', 'queued', 'running', 'blocking', 'blocked', 'woken', 'finished'] as const;

/** Per task (vCPU). */
export const HostTask = defineStruct('HostTask', {
  state: {
    type: 'i32',
    writer:
      'see TaskState: the loading host CPU (Queued -> Running, Running -> Blocking / Queued / Finished), wakers (compare-exchange Blocking -> Woken, Blocked -> Queued), the blocker (compare-exchange Blocking -> Blocked), main (Off -> Queued at start)',
  },
  next: { type: 'i32', writer: 'the holder of the run queue lock the task is on: task index + 1 of the next task (0 = last)' },
  preempted: { type: 'i32', writer: 'the host CPU it was loaded on: 1 when put while still runnable (KVM vcpu->preempted), 0 at load' },
  residentHost: { type: 'i32', writer: 'the host CPU that loads it: its index + 1 (0 = never loaded); where wake-ups queue it' },
  onCpu: {
    type: 'i32',
    writer:
      'the host CPU that loads it: 1 from its load until its state is saved after its put (Linux p->on_cpu: no other host CPU may take it meanwhile)',
  },
  skipped: {
    type: 'i32',
    writer:
      'the holder of the run queue lock the task is on: times a promoted task went ahead of it while it waited (0 when it joins a queue)',
  },
  enqueuedAtMs: { type: 'f64', writer: 'the enqueuer, under the run queue lock: hostThread().nowMs() as it joined the queue' },
  loadedSinceMs: { type: 'f64', writer: 'the host CPU it is loaded on: hostThread().nowMs() at load' },
  loadedNs: { type: 'f64', writer: "the host CPU it is loaded on: total time loaded, added at put (the watchdog's run time)" },
  runnableWaitNs: { type: 'f64', writer: 'the host CPU it is loaded on: total time runnable but not loaded, added at load' },
});

/** Per host CPU. */
export const HostRunQueue = defineStruct('HostRunQueue', {
  lock: { type: 'i32', writer: 'any thread: compare-exchange 0 -> 1 to take it, store 0 to release' },
  head: { type: 'i32', writer: 'the lock holder: task index + 1 of the first task (0 = empty)' },
  tail: { type: 'i32', writer: 'the lock holder: task index + 1 of the last task' },
  length: { type: 'i32', writer: 'the lock holder: tasks queued (read without the lock as a hint: single_task_running)' },
});

/** A spin that long on a lock held for a few stores means an emulator bug. */
export const RUN_QUEUE_LOCK_TIMEOUT_MS = 2000;

export class RunQueues {
  readonly words: Int32Array;
  readonly float64: Float64Array;
  readonly #taskOffset: number;
  readonly #queueOffset: number;
  readonly #tasks: number;

  constructor(words: Int32Array, taskOffset: number, queueOffset: number, tasks: number) {
    this.words = words;
    this.float64 = new Float64Array(words.buffer);
    this.#taskOffset = taskOffset;
    this.#queueOffset = queueOffset;
    this.#tasks = tasks;
  }

  taskIndex(task: number, field: 'state' | 'next' | 'preempted' | 'residentHost' | 'onCpu' | 'skipped'): number {
    return (this.#taskOffset + task * HostTask.byteSize + HostTask.fieldOffsets[field]) >> 2;
  }

  taskTimeIndex(task: number, field: 'enqueuedAtMs' | 'loadedSinceMs' | 'loadedNs' | 'runnableWaitNs'): number {
    return (this.#taskOffset + task * HostTask.byteSize + HostTask.fieldOffsets[field]) >> 3;
  }

  queueIndex(host: number, field: keyof typeof HostRunQueue.fieldOffsets): number {
    return (this.#queueOffset + host * HostRunQueue.byteSize + HostRunQueue.fieldOffsets[field]) >> 2;
  }

  state(task: number): TaskState {
    return Atomics.load(this.words, this.taskIndex(task, 'state')) as TaskState;
  }

  /** A plain state change by the one thread the transition belongs to (see HostTask.state). */
  setState(task: number, state: TaskState): void {
    Atomics.store(this.words, this.taskIndex(task, 'state'), state);
  }

  /** A contended transition: true if the state was `from` and is now `to`. */
  transition(task: number, from: TaskState, to: TaskState): boolean {
    return Atomics.compareExchange(this.words, this.taskIndex(task, 'state'), from, to) === from;
  }

  /** Tasks queued on `host` (a hint without the lock). */
  length(host: number): number {
    return Atomics.load(this.words, this.queueIndex(host, 'length'));
  }

  /**
   * The tasks queued on `host`, first to last, read without the lock: a snapshot for reports (the
   * watchdog's), which a concurrent enqueue or dequeue may cut short; never more than every task.
   */
  queuedTasks(host: number): number[] {
    const tasks: number[] = [];
    for (
      let task = Atomics.load(this.words, this.queueIndex(host, 'head')) - 1;
      task >= 0 && tasks.length < this.#tasks;
      task = Atomics.load(this.words, this.taskIndex(task, 'next')) - 1
    )
      tasks.push(task);
    return tasks;
  }

  /** Appends `task` (or puts it first); stamps when it became runnable-waiting. */
  enqueue(host: number, task: number, atFront = false): void {
    this.#withLock(host, () => {
      this.float64[this.taskTimeIndex(task, 'enqueuedAtMs')] = hostThread().nowMs();
      this.#link(host, task, atFront);
    });
  }

  /** Takes the first task of `host`'s queue, or -1. */
  dequeue(host: number): number {
    if (this.length(host) === 0) return -1;
    return this.#withLock(host, () => {
      const head = Atomics.load(this.words, this.queueIndex(host, 'head')) - 1;
      if (head < 0) return -1;
      this.#unlink(host, head, -1);
      return head;
    });
  }

  /**
   * Moves the queued task `rank` scores highest (above 0; the first of equals) to the front of
   * `host`'s queue, a directed yield's target, and returns it; -1 when none scores or the queue is
   * empty. Fairness bound: a task already passed over `maxSkips` times in this wait is never jumped,
   * so the scan stops there (the tasks behind it stay behind it); each task a promotion jumps counts
   * one more skip. A task waits at most maxSkips promotions plus the slices of those ahead of it.
   */
  promote(host: number, rank: (task: number) => number, maxSkips: number): number {
    if (this.length(host) === 0) return -1;
    return this.#withLock(host, () => {
      const words = this.words;
      let best = -1;
      let bestPrevious = -1;
      let bestRank = 0;
      let previous = -1;
      for (
        let task = Atomics.load(words, this.queueIndex(host, 'head')) - 1;
        task >= 0;
        previous = task, task = Atomics.load(words, this.taskIndex(task, 'next')) - 1
      ) {
        const score = rank(task);
        if (score > bestRank) {
          best = task;
          bestPrevious = previous;
          bestRank = score;
        }
        if (Atomics.load(words, this.taskIndex(task, 'skipped')) >= maxSkips) break;
      }
      if (best < 0 || bestPrevious < 0) return best;
      for (
        let task = Atomics.load(words, this.queueIndex(host, 'head')) - 1;
        task !== best;
        task = Atomics.load(words, this.taskIndex(task, 'next')) - 1
      ) {
        Atomics.add(words, this.taskIndex(task, 'skipped'), 1);
      }
      this.#unlink(host, best, bestPrevious);
      this.#link(host, best, true);
      return best;
    });
  }

  /**
   * Load balancing: takes from `victim`'s queue the task that has waited longest among those
   * `eligible` accepts (FIFO: the first), or -1. One lock is taken (the victim's): the stolen task goes
   * straight to the thief to be loaded and never sits on the thief's queue, so no two run-queue locks
   * are ever held together.
   */
  steal(victim: number, eligible: (task: number) => boolean): number {
    if (this.length(victim) === 0) return -1;
    return this.#withLock(victim, () => {
      let previous = -1;
      for (
        let task = Atomics.load(this.words, this.queueIndex(victim, 'head')) - 1;
        task >= 0;
        previous = task, task = Atomics.load(this.words, this.taskIndex(task, 'next')) - 1
      ) {
        if (!eligible(task)) continue;
        this.#unlink(victim, task, previous);
        return task;
      }
      return -1;
    });
  }

  /** The tasks queued on `host`, first to last (tests, reports). */
  queued(host: number): number[] {
    return this.#withLock(host, () => {
      const tasks: number[] = [];
      for (
        let task = Atomics.load(this.words, this.queueIndex(host, 'head')) - 1;
        task >= 0 && tasks.length <= this.#tasks;
        task = Atomics.load(this.words, this.taskIndex(task, 'next')) - 1
      )
        tasks.push(task);
      return tasks;
    });
  }

  #link(host: number, task: number, atFront: boolean): void {
    const words = this.words;
    const head = this.queueIndex(host, 'head');
    const tail = this.queueIndex(host, 'tail');
    Atomics.store(words, this.taskIndex(task, 'skipped'), 0);
    if (Atomics.load(words, head) === 0) {
      Atomics.store(words, this.taskIndex(task, 'next'), 0);
      Atomics.store(words, head, task + 1);
      Atomics.store(words, tail, task + 1);
    } else if (atFront) {
      Atomics.store(words, this.taskIndex(task, 'next'), Atomics.load(words, head));
      Atomics.store(words, head, task + 1);
    } else {
      Atomics.store(words, this.taskIndex(task, 'next'), 0);
      Atomics.store(words, this.taskIndex(Atomics.load(words, tail) - 1, 'next'), task + 1);
      Atomics.store(words, tail, task + 1);
    }
    Atomics.add(words, this.queueIndex(host, 'length'), 1);
  }

  /** Unlinks `task`, whose predecessor is `previous` (-1: it is the head). */
  #unlink(host: number, task: number, previous: number): void {
    const words = this.words;
    const next = Atomics.load(words, this.taskIndex(task, 'next'));
    if (previous < 0) Atomics.store(words, this.queueIndex(host, 'head'), next);
    else Atomics.store(words, this.taskIndex(previous, 'next'), next);
    if (next === 0) Atomics.store(words, this.queueIndex(host, 'tail'), previous + 1);
    Atomics.store(words, this.taskIndex(task, 'next'), 0);
    Atomics.sub(words, this.queueIndex(host, 'length'), 1);
  }

  #withLock<T>(host: number, body: () => T): T {
    const lock = this.queueIndex(host, 'lock');
    if (Atomics.compareExchange(this.words, lock, 0, 1) !== 0) this.#spin(host, lock);
    try {
      return body();
    } finally {
      Atomics.store(this.words, lock, 0);
    }
  }

  #spin(host: number, lock: number): void {
    const thread = hostThread();
    const deadline = thread.nowMs() + RUN_QUEUE_LOCK_TIMEOUT_MS;
    for (let spins = 1; ; spins++) {
      if (Atomics.load(this.words, lock) === 0 && Atomics.compareExchange(this.words, lock, 0, 1) === 0) return;
      thread.point(SchedulingPoint.Spin); // the holder must run for the lock to come free
      thread.advance(VirtualTimeCost.spinIterationNs);
      if ((spins & 1023) === 0 && thread.nowMs() > deadline)
        throw new Error(`host CPU ${host}'s run queue lock was held for over ${RUN_QUEUE_LOCK_TIMEOUT_MS} ms`);
    }
  }
}
