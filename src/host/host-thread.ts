// The calling thread's view of the host: its clock, its bounded waits, and the points where a
// deterministic run may switch to another thread. Every vCPU-side and host-CPU-side clock read and
// Atomics.wait goes through the thread's HostThread, so one seam decides whether the threads run in
// parallel (performance.now(), Atomics.wait: what the OS scheduler interleaves) or one at a time on a
// seeded schedule with virtual time (src/host/deterministic/, docs/deterministic.md).
//
// A worker installs its HostThread once at start (setHostThread); code reaches it through
// hostThread(), as kernel code reaches `current`. The main thread's async counterpart is MainHostThread.

// The module's binding, not the global: Node's global `performance` is a lazy accessor whose getter
// runs at every read (about 6-10 ns of a ~45 ns performance.now() here), and rdtsc reads the clock.
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

/**
 * Where a deterministic run may switch threads: the accesses the AVIC protocol and KVM's locking are
 * made of (AMD APM vol. 2, 15.29.3-15.29.4; avic_vcpu_load/put, avic_vcpu_blocking/unblocking,
 * avic_incomplete_ipi_interception, kvm_vcpu_block). A parallel run ignores them.
 */
export const SchedulingPoint = {
  /** A vCPU's quantum ended (the host scheduler's tick). */
  QuantumEnd: 0,
  /** The sender set the vector's IRR bit in the target's backing page. */
  IrrSet: 1,
  /** The sender's hardware read the target's IsRunning bit in the physical APIC ID table. */
  IsRunningRead: 2,
  /** The target's IsRunning bit was set (avic_vcpu_load) or cleared (avic_vcpu_put, avic_vcpu_blocking). */
  IsRunningWrite: 3,
  /** A blocking vCPU re-checks for events after clearing IsRunning (kvm_vcpu_check_block). */
  BlockRecheck: 4,
  /** The AVIC doorbell was rung (avic_ring_doorbell). */
  Doorbell: 5,
  /** The guest wrote EOI. */
  Eoi: 6,
  /** The guest wrote the ICR (before the hardware acts on it). */
  IcrWrite: 7,
  /** The guest executed HLT (before KVM decides to block). */
  Halt: 8,
  /** A KVM lock is about to be taken. */
  LockAcquire: 9,
  /** An SRCU read section begins or ends. */
  SrcuRead: 10,
  /** synchronize_srcu waits for a grace period. */
  SrcuSynchronize: 11,
  /** kvm_vcpu_wake_up / kvm_vcpu_kick made a vCPU runnable or kicked it. */
  WakeUp: 12,
  /** A guest pause loop or a host poll loop spun once (a yield: the spinner waits for another thread). */
  Spin: 13,
} as const;
export type SchedulingPoint = (typeof SchedulingPoint)[keyof typeof SchedulingPoint];

export const SCHEDULING_POINT_NAMES: readonly string[] = Object.keys(SchedulingPoint);

export type HostWaitResult = 'ok' | 'not-equal' | 'timed-out';

/** A worker thread's host: clock, bounded waits, scheduling points, and the time its work costs. */
export interface HostThread {
  /** The host clock in ms, comparable across the VM's threads. */
  nowMs(): number;
  /** Atomics.wait(words, index, expected, timeoutMs); a deterministic run yields until the word changes or the bound passes in virtual time. */
  wait(words: Int32Array, index: number, expected: number, timeoutMs: number): HostWaitResult;
  /** A place a deterministic run may switch threads. */
  point(kind: SchedulingPoint): void;
  /** Work that took `ns` of host time (guest instructions, modelled exit and wake-up costs): moves a virtual clock. */
  advance(ns: number): void;
  /**
   * point() may run other threads before it returns (a deterministic run): their work moves the
   * clock, so a spin loop looks at its deadline on every pass rather than now and then.
   */
  readonly pointMaySwitch: boolean;
}

/** The main thread's host: the same, with waits that must not block the event loop. */
export interface MainHostThread {
  nowMs(): number;
  waitAsync(words: Int32Array, index: number, expected: number, timeoutMs: number): Promise<HostWaitResult>;
  /** Lets the other threads run for `ms` of host time (virtual in a deterministic run); resolves early on abort. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Runs `callback` from the event loop (setImmediate), not synchronously. A deterministic run keeps
   * the baton until it has run, so what it does happens inside main's turn, in the schedule.
   */
  defer(callback: () => void): void;
}

// performance.now() counts from the calling thread's own start, so the parallel clock shifts it onto
// process.hrtime (the monotonic clock every thread of the process shares), once per thread. Not
// timeOrigin + now(): near 1.8e12 ms a double's step is 244 ns, too coarse for the VM clock in ns
// (rdtsc, the APIC timer, erratum #1235's window); monotonic ms since boot keep sub-ns steps.
const MONOTONIC_SHIFT_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** The parallel host: the OS schedules the threads, time is the host's monotonic clock. */
export const parallelHostThread: HostThread = {
  nowMs: () => performance.now() + MONOTONIC_SHIFT_MS,
  wait: (words, index, expected, timeoutMs) => Atomics.wait(words, index, expected, timeoutMs),
  point: () => undefined,
  advance: () => undefined,
  pointMaySwitch: false,
};

export const parallelMainHostThread: MainHostThread = {
  nowMs: () => performance.now() + MONOTONIC_SHIFT_MS,
  waitAsync: (words, index, expected, timeoutMs) => {
    const wait = Atomics.waitAsync(words, index, expected, timeoutMs);
    return wait.async ? settleWithin(wait.value, timeoutMs) : Promise.resolve(wait.value);
  },
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
  defer: (callback) => {
    setImmediate(callback);
  },
};

// Node 20 does not count a pending waitAsync as event-loop work (a process with nothing else to do
// exits under it), so the wait is raced against a timer of the same length, which also bounds it.
function settleWithin(wait: Promise<'ok' | 'timed-out'>, timeoutMs: number): Promise<HostWaitResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timed-out'), timeoutMs);
    wait.then(
      (result) => {
        clearTimeout(timer);
        resolve(result);
      },
      () => {
        clearTimeout(timer);
        resolve('timed-out');
      },
    );
  });
}

let current: HostThread = parallelHostThread;
let currentMain: MainHostThread = parallelMainHostThread;

/** This thread's host (the parallel host unless a deterministic run installed its own). */
export function hostThread(): HostThread {
  return current;
}

export function setHostThread(thread: HostThread): void {
  current = thread;
}

export function mainHostThread(): MainHostThread {
  return currentMain;
}

export function setMainHostThread(thread: MainHostThread): void {
  currentMain = thread;
}

/** The calling thread's clock, main or worker: for code that runs on both (lockdep, run queues). */
export function threadNowMs(): number {
  return isMainThread ? currentMain.nowMs() : current.nowMs();
}

/** The wall clock in ms, for what is wall-clock by nature (a CLI's progress bar, explore's runs per second), never a VM's time. */
export function wallClockMs(): number {
  return performance.now();
}
