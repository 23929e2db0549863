// The watchdog's judgement of a host CPU whose scheduler loop stands still: stuck only if no vCPU
// loaded there moved either and its thread ran the whole bound meanwhile, or, where the time it
// waited on a run queue for a core is known (Linux schedstat), slept it: only that wait is excused.
// On a fake clock and fake thread times: a host CPU spinning with its heartbeat still is named with
// what it has loaded and queued; a host CPU starved by a busy host, one running a vCPU alone slice
// after slice, one whose thread is unknown are not. With fake run-queue waits: one sleeping the bound
// is named and says it slept, one waiting for a core as long is not, one whose vCPU waits for a lock
// or for main is not (until that wait ends), nor one in a deterministic run; without them a sleeping
// one is not named (the CPU-time rule). Then on real threads (Linux /proc): threads that publish
// their id as a host CPU does and spin, or sleep, without beating are named, a beating one is not.
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { runWatchdogUntil } from '../../support/fake-clock-watchdog.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { HostCpuWatchdog } from '../../../src/kvm/vm/host-cpu-watchdog.js';
import { VcpuWaitReason } from '../../../src/kvm/control/vcpu-run-state.js';
import { vcpuLockdepSlot } from '../../../src/kvm/control/kvm-locks.js';
import { type HostThreadTimes, hostThreadRunQueueWaitAvailable, hostThreadTimesAvailable } from '../../../src/kvm/vm/vcpu-run-time.js';

const BOUND_MS = 10_000;

function vmMemory(vcpus: number, hostCpus: number): VmControlViews {
  const memory = new VmControlViews(allocateVmBuffers(vcpus, 1 << 16));
  Atomics.store(memory.control, memory.headerIndex('createdVcpus'), vcpus);
  Atomics.store(memory.control, memory.headerIndex('hostCpus'), hostCpus);
  // Thread ids 1001, 1002, ...: the fake thread clock below is keyed by them.
  for (let host = 0; host < hostCpus; host++) Atomics.store(memory.hostCpus.words, memory.hostCpus.index(host, 'threadId'), 1001 + host);
  return memory;
}

/** Thread times with CPU time only, as where the OS keeps no run-queue wait: the CPU-time rule. */
function cpuOnly(cpuMs: (tid: number) => number | undefined): (tid: number) => HostThreadTimes | undefined {
  return (tid) => {
    const ms = cpuMs(tid);
    return ms === undefined ? undefined : { cpuMs: ms };
  };
}

function beatHost(memory: VmControlViews, host: number): void {
  Atomics.add(memory.hostCpus.words, memory.hostCpus.index(host, 'heartbeat'), 1);
}

function load(memory: VmControlViews, host: number, vcpu: number): void {
  Atomics.store(memory.hostCpus.words, memory.hostCpus.index(host, 'current'), vcpu + 1);
}

describe('HostCpuWatchdog on a fake clock', () => {
  it("names a host CPU whose thread ran the whole bound while its loop's heartbeat stood still, with what it holds", () => {
    const memory = vmMemory(4, 2);
    const threadMs = new Map<number, number>([
      [1001, 0],
      [1002, 0],
    ]);
    const clock = { now: 0 };
    const watchdog = new HostCpuWatchdog(memory, { boundMs: BOUND_MS, threadTimes: cpuOnly((tid) => threadMs.get(tid)) });
    memory.runQueues.enqueue(1, 1);
    memory.runQueues.enqueue(1, 3);
    // Host CPU 0 makes progress; host CPU 1's thread runs at half a core and its loop never beats.
    const stuck = runWatchdogUntil(watchdog, clock, 60_000, () => {
      beatHost(memory, 0);
      for (const tid of [1001, 1002]) threadMs.set(tid, threadMs.get(tid)! + 50);
    });
    expect(stuck).toMatch(
      /^host CPU 1 made no progress for 10\.0 s of its thread's run time \(its scheduler loop's heartbeat stood still; loaded: none; run queue: vCPUs 1, 3 waiting for a host CPU \(runnable, not stuck\); it ran 10\.\d s in 2\d\.\d s\)$/,
    );
    expect(clock.now).toBeGreaterThanOrEqual(20_000);
  });

  it('does not name host CPUs a busy host starves, nor idle ones, however long their heartbeats stand still', () => {
    const memory = vmMemory(8, 4);
    const threadMs = new Map<number, number>([
      [1001, 0],
      [1002, 0],
      [1003, 0],
      [1004, 0],
    ]);
    const clock = { now: 0 };
    const watchdog = new HostCpuWatchdog(memory, { boundMs: BOUND_MS, threadTimes: cpuOnly((tid) => threadMs.get(tid)) });
    // Host CPUs 0-2 get a sliver of a core each, less than one loop iteration needs; 3 sleeps idle.
    expect(
      runWatchdogUntil(watchdog, clock, 300_000, () => {
        for (const tid of [1001, 1002, 1003]) threadMs.set(tid, threadMs.get(tid)! + 3);
      }),
    ).toBeUndefined();
  });

  it("does not name a host CPU running one vCPU slice after slice (the vCPU's heartbeat moves, the loop's need not)", () => {
    const memory = vmMemory(2, 2);
    let ran = 0;
    const clock = { now: 0 };
    const watchdog = new HostCpuWatchdog(memory, { boundMs: BOUND_MS, threadTimes: cpuOnly((tid) => (tid === 1001 ? ran : 0)) });
    load(memory, 0, 1);
    expect(
      runWatchdogUntil(watchdog, clock, 60_000, () => {
        ran += 100;
        Atomics.add(memory.control, memory.controlBlockIndex(1, 'heartbeat'), 1);
      }),
    ).toBeUndefined();
    // The same host CPU with its vCPU still too: the host CPU is named, with the vCPU it has loaded.
    const stuck = runWatchdogUntil(watchdog, clock, 120_000, () => {
      ran += 100;
    });
    expect(stuck).toMatch(
      /^host CPU 0 made no progress for 10\.0 s .*loaded: vCPU 1, whose heartbeat stood still too \(vCPU 1 is \w+, waiting for: [^;]+; holds: no lock\); run queue: empty;/,
    );
  });

  it('judges nothing for a host CPU whose thread time is unknown (thread id 0, or no /proc)', () => {
    const memory = vmMemory(2, 2);
    Atomics.store(memory.hostCpus.words, memory.hostCpus.index(0, 'threadId'), 0);
    const clock = { now: 0 };
    // Host CPU 0's thread id is 0; host CPU 1's thread time cannot be read; any other thread ran flat out.
    const watchdog = new HostCpuWatchdog(memory, {
      boundMs: BOUND_MS,
      threadTimes: cpuOnly((tid) => (tid === 1002 ? undefined : clock.now)),
    });
    expect(runWatchdogUntil(watchdog, clock, 60_000)).toBeUndefined();
  });

  it("forgets a host CPU's run time when its heartbeat moves", () => {
    const memory = vmMemory(1, 1);
    let ran = 0;
    const clock = { now: 0 };
    const watchdog = new HostCpuWatchdog(memory, { boundMs: BOUND_MS, threadTimes: cpuOnly(() => ran) });
    expect(
      runWatchdogUntil(watchdog, clock, 9_000, () => {
        ran += 100;
      }),
    ).toBeUndefined();
    beatHost(memory, 0);
    expect(
      runWatchdogUntil(watchdog, clock, 18_500, () => {
        ran += 100;
      }),
    ).toBeUndefined();
  });
});

/** A fake thread clock with schedstat: per thread id, CPU time and run-queue wait in ms. */
class FakeThreads {
  readonly #times = new Map<number, { cpuMs: number; runQueueWaitMs: number }>();

  constructor(tids: readonly number[]) {
    for (const tid of tids) this.#times.set(tid, { cpuMs: 0, runQueueWaitMs: 0 });
  }

  /** One step of `ms` for thread `tid`: it ran `ran`, waited for a core `waited`, and slept the rest. */
  step(tid: number, ran: number, waited: number): void {
    const times = this.#times.get(tid)!;
    times.cpuMs += ran;
    times.runQueueWaitMs += waited;
  }

  readonly read = (tid: number): HostThreadTimes | undefined => {
    const times = this.#times.get(tid);
    return times === undefined ? undefined : { ...times };
  };
}

describe('HostCpuWatchdog with run-queue waits (fake schedstat)', () => {
  /** 4 vCPUs on 2 host CPUs: host CPU 1 has vCPU 1 loaded and vCPU 3 queued, host CPU 0 beats. */
  function stalledHostCpu1(): VmControlViews {
    const memory = vmMemory(4, 2);
    load(memory, 1, 1);
    memory.runQueues.enqueue(1, 3);
    return memory;
  }

  it('names a host CPU whose thread slept the bound with both heartbeats still, saying it slept', () => {
    const memory = stalledHostCpu1();
    const threads = new FakeThreads([1001, 1002]);
    const clock = { now: 0 };
    const watchdog = new HostCpuWatchdog(memory, { boundMs: BOUND_MS, threadTimes: threads.read });
    const stuck = runWatchdogUntil(watchdog, clock, 60_000, () => {
      beatHost(memory, 0);
      threads.step(1001, 50, 50);
    });
    expect(stuck).toMatch(
      /^host CPU 1 made no progress for 10\.0 s while its thread slept or ran, not waiting for a core \(its scheduler loop's heartbeat stood still; loaded: vCPU 1, whose heartbeat stood still too \(vCPU 1 is \w+, waiting for: [^;]+; holds: no lock\); run queue: vCPU 3 waiting for a host CPU \(runnable, not stuck\); in 10\.\d s its thread slept 10\.\d s, ran 0\.0 s and waited for a core 0\.0 s\)$/,
    );
  });

  it('does not name one whose thread waited on a run queue as long (descheduled), nor one that ran a sliver of it', () => {
    const memory = stalledHostCpu1();
    const threads = new FakeThreads([1001, 1002]);
    const clock = { now: 0 };
    const watchdog = new HostCpuWatchdog(memory, { boundMs: BOUND_MS, threadTimes: threads.read });
    expect(
      runWatchdogUntil(watchdog, clock, 60_000, () => {
        beatHost(memory, 0);
        threads.step(1002, 0, 100);
      }),
    ).toBeUndefined();
    expect(
      runWatchdogUntil(watchdog, clock, 120_000, () => {
        beatHost(memory, 0);
        threads.step(1002, 3, 97);
      }),
    ).toBeUndefined();
    // Its loop moves once; then half the time on a run queue, half asleep: the sleep reaches the bound after twice it.
    beatHost(memory, 1);
    const started = clock.now;
    expect(
      runWatchdogUntil(watchdog, clock, 240_000, () => {
        beatHost(memory, 0);
        threads.step(1002, 0, 50);
      }),
    ).toMatch(/^host CPU 1 .* its thread slept 10\.\d s, ran 0\.0 s and waited for a core 10\.\d s\)$/);
    expect(clock.now - started).toBeGreaterThanOrEqual(20_000);
  });

  it('leaves out the time its vCPU waits for a lock or for main to rebuild the APIC map: each wait is bounded and judged elsewhere', () => {
    const memory = stalledHostCpu1();
    const threads = new FakeThreads([1001, 1002]);
    const clock = { now: 0 };
    let lockWait = true;
    const watchdog = new HostCpuWatchdog(memory, {
      boundMs: BOUND_MS,
      threadTimes: threads.read,
      waitsForLock: (slot) => lockWait && slot === vcpuLockdepSlot(1),
    });
    const beat0 = () => beatHost(memory, 0);
    expect(runWatchdogUntil(watchdog, clock, 60_000, beat0)).toBeUndefined();
    lockWait = false;
    const waitReason = memory.controlBlockIndex(1, 'waitReason');
    Atomics.store(memory.control, waitReason, VcpuWaitReason.ApicMapRebuild);
    expect(runWatchdogUntil(watchdog, clock, 120_000, beat0)).toBeUndefined();
    // The waits are over and nothing moves: the count starts there.
    Atomics.store(memory.control, waitReason, VcpuWaitReason.None);
    const waitsEnded = clock.now;
    expect(runWatchdogUntil(watchdog, clock, 180_000, beat0)).toMatch(/^host CPU 1 made no progress for 10\.0 s while its thread slept/);
    expect(clock.now - waitsEnded).toBeGreaterThanOrEqual(BOUND_MS);
  });

  it('judges only run time in a deterministic run (its threads sleep while they wait for their turn), and where schedstat is missing', () => {
    const threads = new FakeThreads([1001, 1002]);
    const cpuOnlyTimes = (tid: number) => {
      const times = threads.read(tid);
      return times === undefined ? undefined : { cpuMs: times.cpuMs };
    };
    for (const options of [{ threadTimes: threads.read, judgeSleep: false }, { threadTimes: cpuOnlyTimes }]) {
      const memory = stalledHostCpu1();
      const clock = { now: 0 };
      const watchdog = new HostCpuWatchdog(memory, { boundMs: BOUND_MS, ...options });
      // Asleep with nothing moving: not judged.
      expect(runWatchdogUntil(watchdog, clock, 60_000, () => beatHost(memory, 0))).toBeUndefined();
      // Spinning: named by its run time, as always.
      const stuck = runWatchdogUntil(watchdog, clock, 120_000, () => {
        beatHost(memory, 0);
        threads.step(1002, 100, 0);
      });
      expect(stuck).toMatch(/^host CPU 1 made no progress for 10\.0 s of its thread's run time .*; it ran 10\.\d s in \d+\.\d s\)$/);
    }
  });
});

describe.skipIf(!hostThreadTimesAvailable())('HostCpuWatchdog on real threads (Linux /proc)', () => {
  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.terminate()));
  });

  // Publishes its thread id as a host CPU does at start, then spins (beating or not) or sleeps.
  const THREAD = `
    const { readlinkSync } = require('node:fs');
    const { workerData } = require('node:worker_threads');
    const words = new Int32Array(workerData.words);
    Atomics.store(words, workerData.tidIndex, Number(/\\/task\\/(\\d+)$/.exec(readlinkSync('/proc/thread-self'))[1]));
    if (workerData.mode === 'spin') for (;;) {}
    if (workerData.mode === 'beat') for (;;) Atomics.add(words, workerData.heartbeatIndex, 1);
    const nothing = new Int32Array(new SharedArrayBuffer(4));
    for (;;) Atomics.wait(nothing, 0, 0);
  `;

  /** Starts one thread per mode, host CPU i running modes[i], each publishing its thread id there. */
  async function startThreads(memory: VmControlViews, modes: readonly ('beat' | 'spin' | 'sleep')[]): Promise<void> {
    const cpus = memory.hostCpus;
    for (const [host, mode] of modes.entries()) {
      const tidIndex = cpus.index(host, 'threadId');
      Atomics.store(cpus.words, tidIndex, 0);
      workers.push(
        new Worker(THREAD, {
          eval: true,
          workerData: { words: cpus.words.buffer, tidIndex, heartbeatIndex: cpus.index(host, 'heartbeat'), mode },
        }),
      );
      const deadline = performance.now() + 30_000;
      while (Atomics.load(cpus.words, tidIndex) === 0 && performance.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** The watchdog's first finding, looking every 20 ms; bounded generously, on a host other tests load too. */
  async function firstFinding(watchdog: HostCpuWatchdog): Promise<string | undefined> {
    let stuck: string | undefined;
    const deadline = performance.now() + 60_000;
    while (stuck === undefined && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      stuck = watchdog.check(performance.now());
    }
    return stuck;
  }

  it('names the host CPU whose thread spins with its heartbeat still, not the beating one', async () => {
    const memory = vmMemory(2, 2);
    await startThreads(memory, ['beat', 'spin']);
    expect(await firstFinding(new HostCpuWatchdog(memory, { boundMs: 300 }))).toMatch(
      /^host CPU 1 made no progress for 0\.3 s of its thread's run time/,
    );
  }, 70_000);

  it.skipIf(!hostThreadRunQueueWaitAvailable())(
    'names the host CPU whose thread sleeps with its heartbeat still (Linux schedstat), not the beating one',
    async () => {
      const memory = vmMemory(2, 2);
      await startThreads(memory, ['beat', 'sleep']);
      expect(await firstFinding(new HostCpuWatchdog(memory, { boundMs: 300 }))).toMatch(
        /^host CPU 1 made no progress for 0\.3 s while its thread slept or ran, not waiting for a core .*its thread slept 0\.\d s, ran 0\.0 s/,
      );
    },
    70_000,
  );
});
