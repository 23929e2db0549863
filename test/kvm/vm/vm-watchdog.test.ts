// The watchdog's judgement of a running vCPU whose heartbeat stands still: stuck only if it could have
// moved. On a fake clock and a fake run-time source: a vCPU whose thread ran the whole bound without a
// heartbeat is reported, many vCPUs starved by a 2-core host are not, and a vCPU asleep in a cycle
// of waits is reported on wall time. Then the Linux source on real threads: a thread spinning with
// its heartbeat still is reported, a sleeping one is not.
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { runWatchdogUntil } from '../../support/fake-clock-watchdog.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { VcpuFinish, VcpuRunState } from '../../../src/kvm/control/vcpu-run-state.js';
import { TaskState } from '../../../src/host/run-queue.js';
import { allVcpusIdle, VcpuWatchdog } from '../../../src/kvm/vm/vm-watchdog.js';
import {
  FairShareRunTime,
  HostThreadRunTime,
  hostThreadTimesAvailable,
  type VcpuRunTimeSource,
} from '../../../src/kvm/vm/vcpu-run-time.js';

const BOUND_MS = 10_000;

function vmMemory(vcpus: number): VmControlViews {
  const memory = new VmControlViews(allocateVmBuffers(vcpus, 1 << 16));
  Atomics.store(memory.control, memory.headerIndex('createdVcpus'), vcpus);
  for (let vcpu = 0; vcpu < vcpus; vcpu++) setRunState(memory, vcpu, VcpuRunState.Running);
  return memory;
}

function setRunState(memory: VmControlViews, vcpu: number, state: number): void {
  Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'runState'), state);
}

function beat(memory: VmControlViews, vcpu: number): void {
  Atomics.add(memory.control, memory.controlBlockIndex(vcpu, 'heartbeat'), 1);
}

/** Run time the test hands out by hand, per vCPU. */
class FakeRunTime implements VcpuRunTimeSource {
  readonly ran: number[];
  refreshes = 0;

  constructor(vcpus: number) {
    this.ran = new Array<number>(vcpus).fill(0);
  }

  refresh(): void {
    this.refreshes++;
  }

  ranMs(vcpu: number): number {
    return this.ran[vcpu]!;
  }
}

describe('VcpuWatchdog on a fake clock', () => {
  it('reports a vCPU whose thread ran the whole bound while its heartbeat stood still (a loop with no way out), naming it', () => {
    const memory = vmMemory(4);
    const runTime = new FakeRunTime(4);
    const clock = { now: 0 };
    const watchdog = new VcpuWatchdog(memory, { boundMs: BOUND_MS, runTime });
    // vCPUs 0, 1, 3 make progress; vCPU 2's thread runs flat out and never beats.
    const stuck = runWatchdogUntil(watchdog, clock, 60_000, () => {
      for (const vcpu of [0, 1, 3]) beat(memory, vcpu);
      for (let vcpu = 0; vcpu < 4; vcpu++) runTime.ran[vcpu]! += 50; // 2 cores among 4 threads
    });
    expect(stuck).toMatch(
      /^vCPU 2 made no progress for 10\.0 s of its host thread's run time \(vCPU 2 is running, waiting for: none; holds: no lock; it ran 10\.\d s in 2\d\.\d s\)$/,
    );
    // Not before it could have run the bound: 10 s of run time at half a core takes 20 s.
    expect(clock.now).toBeGreaterThanOrEqual(20_000);
  });

  it('does not report 128 running vCPUs starved by a 2-core host, however long their heartbeats stand still', () => {
    const vcpus = 128;
    const memory = vmMemory(vcpus);
    const runTime = new FakeRunTime(vcpus);
    const clock = { now: 0 };
    const watchdog = new VcpuWatchdog(memory, { boundMs: BOUND_MS, runTime });
    // Each thread gets 2/129 of the wall clock (the main thread takes its share) and needs more than
    // that for one run-loop iteration: no heartbeat moves for five minutes of wall time.
    const stuck = runWatchdogUntil(watchdog, clock, 300_000, () => {
      for (let vcpu = 0; vcpu < vcpus; vcpu++) runTime.ran[vcpu]! += (100 * 2) / (vcpus + 1);
    });
    expect(stuck).toBeUndefined();
  });

  it("reads a still vCPU's run time only once it could have reached the bound", () => {
    const memory = vmMemory(2);
    const reads: number[] = [];
    const runTime: VcpuRunTimeSource = {
      refresh: () => undefined,
      ranMs: (vcpu) => {
        reads.push(vcpu);
        return 0;
      },
    };
    const clock = { now: 0 };
    const watchdog = new VcpuWatchdog(memory, { boundMs: BOUND_MS, runTime });
    expect(runWatchdogUntil(watchdog, clock, 35_000)).toBeUndefined();
    // Per vCPU: the baseline, then at 10 s, 20 s and 30 s after it (each read showed 0 ms run).
    expect(reads.filter((vcpu) => vcpu === 0)).toHaveLength(4);
  });

  it('reports a vCPU asleep in a cycle of waits after the bound in wall time, and not one in a wait outside a cycle', () => {
    const memory = vmMemory(3);
    const runTime = new FakeRunTime(3);
    const clock = { now: 0 };
    const onCycle = new Set([2]);
    const watchdog = new VcpuWatchdog(memory, { boundMs: 1000, runTime, waitsOnCycle: (vcpu) => onCycle.has(vcpu) });
    // vCPU 1 waits (no run time) outside any cycle; vCPU 2 waits in one; vCPU 0 runs normally.
    const stuck = runWatchdogUntil(watchdog, clock, 60_000, () => beat(memory, 0));
    expect(stuck).toBe('vCPU 2 made no progress for 1.0 s (vCPU 2 is running, waiting for: none; holds: no lock)');
    expect(clock.now).toBeGreaterThanOrEqual(1000);
    expect(clock.now).toBeLessThan(1500);
  });

  it("forgets a vCPU's run time when it halts or its heartbeat moves", () => {
    const memory = vmMemory(1);
    const runTime = new FakeRunTime(1);
    const clock = { now: 0 };
    const watchdog = new VcpuWatchdog(memory, { boundMs: BOUND_MS, runTime });
    // 9 s of run time, a halt, 9 s more: never 10 s of run without the vCPU going anywhere.
    expect(
      runWatchdogUntil(watchdog, clock, 9_000, () => {
        runTime.ran[0]! += 100;
      }),
    ).toBeUndefined();
    setRunState(memory, 0, VcpuRunState.Blocked);
    expect(runWatchdogUntil(watchdog, clock, 9_500)).toBeUndefined();
    setRunState(memory, 0, VcpuRunState.Running);
    expect(
      runWatchdogUntil(watchdog, clock, 18_500, () => {
        runTime.ran[0]! += 100;
      }),
    ).toBeUndefined();
    beat(memory, 0);
    expect(
      runWatchdogUntil(watchdog, clock, 27_500, () => {
        runTime.ran[0]! += 100;
      }),
    ).toBeUndefined();
  });
});

describe('allVcpusIdle', () => {
  function finish(memory: VmControlViews, vcpu: number): void {
    Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'finished'), VcpuFinish.Done);
  }

  function block(memory: VmControlViews, vcpu: number): void {
    setRunState(memory, vcpu, VcpuRunState.Blocked);
    memory.runQueues.setState(vcpu, TaskState.Blocked);
  }

  it('is idle when every unfinished vCPU is blocked with nothing that could wake it', () => {
    const memory = vmMemory(3);
    finish(memory, 0);
    block(memory, 1);
    block(memory, 2);
    expect(allVcpusIdle(memory)).toBe(true);
  });

  it('is not idle when every vCPU finished: that is all-done, and the supervisor must not call it all-halted', () => {
    // The supervisor counts unfinished vCPUs, then asks allVcpusIdle; the last ones can finish in between.
    const memory = vmMemory(2);
    finish(memory, 0);
    finish(memory, 1);
    expect(allVcpusIdle(memory)).toBe(false);
  });

  it('is not idle while one vCPU still runs', () => {
    const memory = vmMemory(2);
    block(memory, 0);
    expect(allVcpusIdle(memory)).toBe(false);
  });
});

describe('FairShareRunTime', () => {
  it('splits the process CPU time evenly among the threads that want to run (running or starting vCPUs, and main)', () => {
    const memory = vmMemory(4);
    setRunState(memory, 3, VcpuRunState.Blocked);
    const process = { cpuMs: 1000 };
    const share = new FairShareRunTime(memory, () => process.cpuMs);
    process.cpuMs += 2000;
    share.refresh();
    expect(share.ranMs()).toBe(500); // 2000 ms among vCPUs 0-2 and main
  });
});

describe.skipIf(!hostThreadTimesAvailable())('HostThreadRunTime on real threads (Linux /proc)', () => {
  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.terminate()));
  });

  // Publishes its thread id as the worker entry does, then spins or sleeps forever, never beating.
  const THREAD = `
    const { readlinkSync } = require('node:fs');
    const { workerData } = require('node:worker_threads');
    const control = new Int32Array(workerData.control);
    Atomics.store(control, workerData.tidIndex, Number(/\\/task\\/(\\d+)$/.exec(readlinkSync('/proc/thread-self'))[1]));
    if (workerData.spin) for (;;) {}
    const nothing = new Int32Array(new SharedArrayBuffer(4));
    for (;;) Atomics.wait(nothing, 0, 0);
  `;

  it('reports a vCPU thread spinning with its heartbeat still, not the sleeping one beside it', async () => {
    const memory = vmMemory(2);
    for (const [vcpu, spin] of [
      [0, false],
      [1, true],
    ] as const) {
      const tidIndex = memory.controlBlockIndex(vcpu, 'hostThreadId');
      workers.push(new Worker(THREAD, { eval: true, workerData: { control: memory.buffers.control, tidIndex, spin } }));
      const deadline = performance.now() + 30_000;
      while (Atomics.load(memory.control, tidIndex) === 0 && performance.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const watchdog = new VcpuWatchdog(memory, { boundMs: 300, runTime: new HostThreadRunTime(memory) });
    let stuck: string | undefined;
    // Bounded generously: the spinner needs 300 ms of CPU on a host other tests load too.
    const deadline = performance.now() + 60_000;
    while (stuck === undefined && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      stuck = watchdog.check(performance.now());
    }
    expect(stuck).toMatch(/^vCPU 1 made no progress for 0\.3 s of its host thread's run time/);
  });
});
