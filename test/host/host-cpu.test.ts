// The host CPUs' words and run queues (src/host/host-cpu.ts, run-queue.ts), in one thread: the ring
// and the wake word stay apart, the queue keeps FIFO order, promotes a directed yield's target within its fairness bound, and
// stamps when a task began to wait. (The cross-thread wake-up is the SMP tests' business.)
import { describe, expect, it } from 'vitest';
import { HostCpuState, HostCpuStatistics, HostCpus } from '../../src/host/host-cpu.js';
import { HostRunQueue, HostTask, RunQueues, TaskState } from '../../src/host/run-queue.js';

function hostCpus(count: number): HostCpus {
  const stateOffset = 128;
  const statisticsOffset = stateOffset + count * HostCpuState.byteSize;
  const words = new Int32Array(new SharedArrayBuffer(statisticsOffset + count * HostCpuStatistics.byteSize));
  return new HostCpus(words, stateOffset, statisticsOffset, count);
}

function runQueues(tasks: number, hosts = 1): RunQueues {
  const queueOffset = tasks * HostTask.byteSize;
  const words = new Int32Array(new SharedArrayBuffer(queueOffset + hosts * HostRunQueue.byteSize));
  return new RunQueues(words, 0, queueOffset, tasks);
}

describe('HostCpus', () => {
  it('places host CPU i at its struct, one cache line each', () => {
    const cpus = hostCpus(3);
    expect(cpus.index(0, 'ring')).toBe(128 / 4);
    expect(cpus.index(2, 'wake') - cpus.index(1, 'wake')).toBe(HostCpuState.byteSize / 4);
  });

  it("a doorbell ring moves only that host CPU's ring word, never its wake word", () => {
    const cpus = hostCpus(2);
    const first = cpus.own(0);
    const second = cpus.own(1);
    cpus.ring(1);
    cpus.ring(1);
    expect([first.ringValue(), second.ringValue()]).toEqual([0, 2]);
    expect([first.wakeValue(), second.wakeValue()]).toEqual([0, 0]);
  });

  it('an idle wait returns at once when the wake word moved since it was read; a ring does not move it', () => {
    const cpus = hostCpus(1);
    const cpu = cpus.own(0);
    const seen = cpu.wakeValue();
    cpus.ring(0);
    cpu.beginIdle();
    expect(cpu.idleWait(seen, 0)).toBe('timed-out');
    cpus.wake(0);
    expect(cpu.idleWait(seen, 1000)).toBe('not-equal');
    cpu.endIdle();
  });

  it('wake-ups that reach an idle host CPU before it runs again send it one notify, as resched_curr sends one IPI', () => {
    const cpus = hostCpus(1);
    const cpu = cpus.own(0);
    const seen = cpu.wakeValue();
    cpu.beginIdle();
    // Two waiters stand in for the sleeping thread, so that every notify sent takes one of them.
    Atomics.waitAsync(cpus.words, cpu.wakeIndex, seen);
    Atomics.waitAsync(cpus.words, cpu.wakeIndex, seen);
    cpus.wake(0);
    cpus.wake(0);
    cpus.wake(0);
    expect(cpu.wakeValue()).toBe(seen + 3);
    expect(cpus.isIdle(0)).toBe(true);
    // One waiter is left: the second and third wake-ups found the host CPU woken already.
    expect(Atomics.notify(cpus.words, cpu.wakeIndex)).toBe(1);
    // The next idle period is announced afresh: its first wake-up notifies again.
    cpu.endIdle();
    cpu.beginIdle();
    Atomics.waitAsync(cpus.words, cpu.wakeIndex, cpu.wakeValue());
    cpus.wake(0);
    expect(Atomics.notify(cpus.words, cpu.wakeIndex)).toBe(0);
    cpu.endIdle();
  });

  it('a host CPU that polls its wake word is sent no notify; its poll ends when the word moves', () => {
    const cpus = hostCpus(1);
    const cpu = cpus.own(0);
    const seen = cpu.wakeValue();
    cpu.beginIdle(true);
    expect(cpus.isIdle(0)).toBe(true);
    // A stand-in for a sleeping thread: a notify sent now would take it.
    Atomics.waitAsync(cpus.words, cpu.wakeIndex, seen);
    cpus.wake(0);
    expect(Atomics.notify(cpus.words, cpu.wakeIndex)).toBe(1);
    // The poll sees the add without any notify, whatever its deadline.
    expect(cpu.idlePoll(seen, Number.POSITIVE_INFINITY)).toBe(true);
    expect(cpus.statistic(0, 'idlePollWakeups')).toBe(1);
    cpu.endIdle();
  });

  it('a poll that runs out announces the host CPU idle, so the next wake-up notifies; one made while it polled is seen by the wait', () => {
    const cpus = hostCpus(1);
    const cpu = cpus.own(0);
    let seen = cpu.wakeValue();
    cpu.beginIdle(true);
    expect(cpu.idlePoll(seen, 0)).toBe(false);
    Atomics.waitAsync(cpus.words, cpu.wakeIndex, seen);
    cpus.wake(0);
    expect(Atomics.notify(cpus.words, cpu.wakeIndex)).toBe(0);
    cpu.endIdle();
    expect(cpus.statistic(0, 'idlePollWakeups')).toBe(0);
    // A waker that came while the host CPU still polled sent no notify; the wait's own check of the word returns at once.
    seen = cpu.wakeValue();
    cpu.beginIdle(true);
    cpus.wake(0);
    expect(cpu.idleWait(seen, 1000)).toBe('not-equal');
    cpu.endIdle();
  });

  it('current reads -1 until a vCPU is loaded', () => {
    const cpus = hostCpus(1);
    const cpu = cpus.own(0);
    expect(cpus.currentVcpu(0)).toBe(-1);
    cpu.setCurrent(4);
    expect(cpus.currentVcpu(0)).toBe(4);
  });
});

describe('RunQueues', () => {
  it('is FIFO; the front is taken first; length follows', () => {
    const queues = runQueues(4);
    queues.enqueue(0, 2);
    queues.enqueue(0, 0);
    queues.enqueue(0, 3, true);
    expect(queues.queued(0)).toEqual([3, 2, 0]);
    expect(queues.length(0)).toBe(3);
    expect([queues.dequeue(0), queues.dequeue(0), queues.dequeue(0), queues.dequeue(0)]).toEqual([3, 2, 0, -1]);
    expect(queues.length(0)).toBe(0);
    queues.enqueue(0, 1);
    expect(queues.queued(0)).toEqual([1]);
  });

  it('promote moves the task ranked highest (the first of equals) to the front, else leaves the order', () => {
    const queues = runQueues(4);
    for (const task of [0, 1, 2, 3]) queues.enqueue(0, task);
    expect(queues.promote(0, (task) => (task === 2 ? 1 : 0), 9)).toBe(2);
    expect(queues.queued(0)).toEqual([2, 0, 1, 3]);
    expect(queues.promote(0, (task) => (task === 3 ? 2 : task === 1 ? 1 : 0), 9)).toBe(3);
    expect(queues.queued(0)).toEqual([3, 2, 0, 1]);
    expect(queues.promote(0, () => 0, 9)).toBe(-1);
    expect(queues.dequeue(0)).toBe(3);
    expect(queues.dequeue(0)).toBe(2);
    expect(queues.dequeue(0)).toBe(0);
    expect(queues.dequeue(0)).toBe(1);
    queues.enqueue(0, 1);
    expect(queues.queued(0)).toEqual([1]);
  });

  it('promote never jumps a task already passed over maxSkips times', () => {
    const queues = runQueues(4);
    for (const task of [0, 1, 2, 3]) queues.enqueue(0, task);
    expect(queues.promote(0, (task) => (task === 3 ? 1 : 0), 1)).toBe(3);
    expect(queues.queued(0)).toEqual([3, 0, 1, 2]);
    expect(queues.dequeue(0)).toBe(3);
    // 0, 1 and 2 were each passed over once: 2 cannot jump them again.
    expect(queues.promote(0, (task) => (task === 2 ? 1 : 0), 1)).toBe(-1);
    expect(queues.queued(0)).toEqual([0, 1, 2]);
  });

  it("steal takes the first eligible task of the victim's queue", () => {
    const queues = runQueues(6, 2);
    queues.enqueue(1, 1);
    queues.enqueue(1, 3);
    queues.enqueue(1, 5);
    expect(queues.steal(1, (task) => task !== 1)).toBe(3);
    expect(queues.queued(1)).toEqual([1, 5]);
    expect(queues.length(1)).toBe(2);
    expect(queues.steal(1, () => false)).toBe(-1);
    expect(queues.steal(0, () => true)).toBe(-1);
  });

  it('state transitions are compare-exchanges', () => {
    const queues = runQueues(1);
    expect(queues.transition(0, TaskState.Off, TaskState.Queued)).toBe(true);
    expect(queues.transition(0, TaskState.Off, TaskState.Queued)).toBe(false);
    expect(queues.state(0)).toBe(TaskState.Queued);
  });

  it('stamps when a task joined the queue', () => {
    const queues = runQueues(1);
    queues.enqueue(0, 0);
    expect(queues.float64[queues.taskTimeIndex(0, 'enqueuedAtMs')]).toBeGreaterThan(0);
  });
});
