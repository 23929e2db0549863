// KVM's block / wake protocol (src/kvm/control/vcpu-scheduling.ts) played on one thread over a VM's
// control views: a doorbell never wakes a blocked vCPU, kvm_vcpu_wake_up does, a waker that finds
// the vCPU Blocking makes its commit fail, and kvm_vcpu_kick rings only a loaded vCPU's host CPU.
import { describe, expect, it } from 'vitest';
import { IdleState } from '../../../src/host/host-cpu.js';
import { TaskState } from '../../../src/host/run-queue.js';
import { setIrrAtomic, writeApicRegister } from '../../../src/hw/apic/apic-backing-page.js';
import { APIC_PAGE_WORDS, ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { DIRECTED_YIELD_MAX_SKIPS } from '../../../src/kvm/control/vcpu-scheduling.js';
import { VmControlViews, allocateVmBuffers } from '../../../src/kvm/control/vm-control-views.js';

function views(vcpus: number, hostCpus: number): VmControlViews {
  const memory = new VmControlViews(allocateVmBuffers(vcpus, 1 << 20));
  Atomics.store(memory.control, memory.headerIndex('hostCpus'), hostCpus);
  Atomics.store(memory.control, memory.headerIndex('createdVcpus'), vcpus);
  for (let vcpu = 0; vcpu < vcpus; vcpu++) Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'hostThreadSlot'), vcpu % hostCpus);
  return memory;
}

/** vCPU `vcpu` loaded, then blocked by the protocol's steps. */
function block(memory: VmControlViews, vcpu: number): void {
  memory.runQueues.setState(vcpu, TaskState.Running);
  memory.scheduling.beginBlocking(vcpu);
  expect(memory.scheduling.commitBlocking(vcpu)).toBe(true);
}

describe('the block / wake protocol', () => {
  it("a doorbell rung at a blocked vCPU's host CPU leaves it Blocked and wakes no host CPU; a wake-up queues it and wakes its host CPU", () => {
    const memory = views(2, 2);
    block(memory, 1);
    const wakeBefore = memory.hostCpus.own(1).wakeValue();

    memory.ringDoorbell(1);

    expect(memory.runQueues.state(1)).toBe(TaskState.Blocked);
    expect(memory.hostCpus.own(1).wakeValue()).toBe(wakeBefore);
    expect(memory.runQueues.queued(1)).toEqual([]);

    expect(memory.scheduling.wakeUp(1)).toBe(true);

    expect(memory.runQueues.state(1)).toBe(TaskState.Queued);
    expect(memory.runQueues.queued(1)).toEqual([1]);
    expect(memory.hostCpus.own(1).wakeValue()).toBe(wakeBefore + 1);
  });

  it('a waker that finds the vCPU Blocking makes its commit fail: it goes on running', () => {
    const memory = views(1, 1);
    memory.runQueues.setState(0, TaskState.Running);
    memory.scheduling.beginBlocking(0);
    expect(memory.scheduling.wakeUp(0)).toBe(true);
    expect(memory.runQueues.state(0)).toBe(TaskState.Woken);
    expect(memory.scheduling.commitBlocking(0)).toBe(false);
    memory.scheduling.cancelBlocking(0);
    expect(memory.runQueues.state(0)).toBe(TaskState.Running);
    expect(memory.runQueues.queued(0)).toEqual([]);
  });

  it('a wake-up of a running or queued vCPU does nothing', () => {
    const memory = views(2, 1);
    memory.runQueues.setState(0, TaskState.Running);
    memory.scheduling.start(1);
    expect(memory.scheduling.wakeUp(0)).toBe(false);
    expect(memory.scheduling.wakeUp(1)).toBe(false);
    expect(memory.runQueues.queued(0)).toEqual([1]);
  });

  it("a kick rings the doorbell of a loaded vCPU's host CPU, and not that of a queued one", () => {
    const memory = views(2, 1);
    memory.runQueues.setState(0, TaskState.Running);
    memory.scheduling.start(1);
    const cpu = memory.hostCpus.own(0);
    memory.kick(1, 0);
    expect(cpu.ringValue()).toBe(0);
    memory.kick(0, 0);
    expect(cpu.ringValue()).toBe(1);
  });

  it('a batch of wake-ups (avic_kick_target_vcpus) queues every target and notifies each idle host CPU once, after the last', () => {
    const memory = views(4, 2);
    const cpus = memory.hostCpus;
    const idleWord = (host: number): number => Atomics.load(cpus.words, cpus.index(host, 'idle'));
    for (const vcpu of [1, 2, 3]) block(memory, vcpu);
    for (const host of [0, 1]) {
      const cpu = cpus.own(host);
      cpu.beginIdle();
      // Two waiters stand in for the sleeping thread, so that every notify sent takes one of them.
      Atomics.waitAsync(cpus.words, cpu.wakeIndex, cpu.wakeValue());
      Atomics.waitAsync(cpus.words, cpu.wakeIndex, cpu.wakeValue());
    }

    memory.beginKicks();
    for (const vcpu of [1, 2, 3]) memory.kick(vcpu, 0);
    // All three queued and the wake words moved, but no host CPU notified yet.
    expect([...memory.runQueues.queued(0), ...memory.runQueues.queued(1)].sort()).toEqual([1, 2, 3]);
    expect([cpus.own(0).wakeValue(), cpus.own(1).wakeValue()].reduce((sum, value) => sum + value)).toBe(3);
    expect([idleWord(0), idleWord(1)]).toEqual([IdleState.Idle, IdleState.Idle]);
    memory.endKicks();

    expect([idleWord(0), idleWord(1)]).toEqual([IdleState.Notified, IdleState.Notified]);
    // One notify each: one of the two waiters of each host CPU is left.
    expect([0, 1].map((host) => Atomics.notify(cpus.words, cpus.index(host, 'wake')))).toEqual([1, 1]);
    // Outside a batch a wake-up notifies at once again.
    for (const host of [0, 1]) while (memory.runQueues.dequeue(host) >= 0);
    block(memory, 1);
    cpus.own(0).endIdle();
    cpus.own(1).beginIdle();
    memory.kick(1, 0);
    expect(memory.runQueues.queued(1)).toEqual([1]);
    expect(idleWord(1)).toBe(IdleState.Notified);
  });

  it('a kick of a blocked vCPU wakes it instead of ringing', () => {
    const memory = views(1, 1);
    block(memory, 0);
    memory.kick(0, 0);
    expect(memory.hostCpus.own(0).ringValue()).toBe(0);
    expect(memory.runQueues.queued(0)).toEqual([0]);
  });
});

/** A vCPU's backing page with the APIC software-enabled (and, if `vector` is given, that IRR bit set). */
function apicPage(memory: VmControlViews, vcpu: number, vector?: number): void {
  const base = vcpu * APIC_PAGE_WORDS;
  Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'apicPageBase'), base);
  writeApicRegister(memory.apicPageWords, base, ApicRegister.SpuriousInterruptVector, 0x1ff);
  if (vector !== undefined) setIrrAtomic(memory.apicPageWords, base, vector);
}

/** One host CPU's loop as host-cpu-loop.ts runs it when every vCPU spins: load the head, it yields. */
function spinRound(memory: VmControlViews): number {
  const vcpu = memory.runQueues.dequeue(0);
  memory.runQueues.setState(vcpu, TaskState.Running);
  Atomics.store(memory.runQueues.words, memory.runQueues.taskIndex(vcpu, 'preempted'), 0);
  memory.scheduling.yieldOnSpin(0, vcpu);
  return vcpu;
}

describe('directed yield (kvm_vcpu_on_spin)', () => {
  it('a pause-loop exit yields to a queued vCPU with an interrupt pending, else to a preempted one, before one that never ran', () => {
    const memory = views(4, 1);
    for (let vcpu = 0; vcpu < 4; vcpu++) apicPage(memory, vcpu);
    for (const vcpu of [1, 2, 3]) memory.scheduling.start(vcpu);
    Atomics.store(memory.runQueues.words, memory.runQueues.taskIndex(2, 'preempted'), 1);
    apicPage(memory, 3, 0x40);
    memory.runQueues.setState(0, TaskState.Running);

    memory.scheduling.yieldOnSpin(0, 0);
    expect(memory.runQueues.dequeue(0)).toBe(3);

    // 3 took its interrupt and spins in turn: of 1 (never ran), 2 and 0 (preempted), 2 goes first.
    apicPage(memory, 3);
    memory.runQueues.setState(3, TaskState.Running);
    memory.scheduling.yieldOnSpin(0, 3);
    expect(memory.runQueues.queued(0)).toEqual([2, 1, 0, 3]);
    expect(memory.runQueues.dequeue(0)).toBe(2);
    // 1 has been passed over DIRECTED_YIELD_MAX_SKIPS times: the next yield cannot jump it.
    memory.runQueues.setState(2, TaskState.Running);
    memory.scheduling.yieldOnSpin(0, 2);
    expect(memory.runQueues.dequeue(0)).toBe(1);
  });

  it('no vCPU starves when every vCPU spins: each runs within a bounded number of yields', () => {
    const vcpus = 6;
    const memory = views(vcpus, 1);
    for (let vcpu = 0; vcpu < vcpus; vcpu++) {
      apicPage(memory, vcpu);
      memory.scheduling.start(vcpu);
    }
    const lastRun = new Array<number>(vcpus).fill(-1);
    let longestWait = 0;
    for (let round = 0; round < 200; round++) {
      const vcpu = spinRound(memory);
      longestWait = Math.max(longestWait, round - lastRun[vcpu]!);
      lastRun[vcpu] = round;
    }
    for (let vcpu = 0; vcpu < vcpus; vcpu++) longestWait = Math.max(longestWait, 200 - lastRun[vcpu]!);
    expect(lastRun.filter((round) => round < 0)).toEqual([]);
    // At most DIRECTED_YIELD_MAX_SKIPS promotions pass a waiting vCPU, besides the vCPUs ahead of it.
    expect(longestWait).toBeLessThanOrEqual(vcpus * (DIRECTED_YIELD_MAX_SKIPS + 1));
  });
});

describe('load balancing', () => {
  it('an idle host CPU takes the first vCPU not being saved from the busiest other host CPU, one with two vCPUs or more', () => {
    const memory = views(6, 3);
    const queues = memory.runQueues;
    memory.scheduling.start(1);
    // Host CPU 1 has one vCPU queued and none loaded: it is about to run it, nothing to take.
    expect(memory.scheduling.steal(0)).toBe(-1);
    memory.hostCpus.own(1).setCurrent(4);
    expect(memory.scheduling.steal(0)).toBe(1);
    expect(queues.queued(1)).toEqual([]);
    memory.scheduling.start(2);
    memory.scheduling.start(5);
    expect(queues.queued(2)).toEqual([2, 5]);
    // Both still being saved by the host CPU that put them (onCpu): neither may be taken.
    for (const vcpu of [2, 5]) Atomics.store(queues.words, queues.taskIndex(vcpu, 'onCpu'), 1);
    expect(memory.scheduling.steal(0)).toBe(-1);
    Atomics.store(queues.words, queues.taskIndex(5, 'onCpu'), 0);
    expect(memory.scheduling.steal(0)).toBe(5);
  });

  it('a wake-up queues a vCPU where it last ran, or on an idle host CPU when that one is busy', () => {
    const memory = views(4, 2);
    const queues = memory.runQueues;
    Atomics.store(queues.words, queues.taskIndex(3, 'residentHost'), 1);
    block(memory, 3);
    memory.scheduling.wakeUp(3);
    expect(queues.queued(0)).toEqual([3]);
    expect(memory.scheduling.homeHostCpu(3)).toBe(0);
    queues.dequeue(0);
    memory.hostCpus.own(0).setCurrent(2);
    block(memory, 3);
    memory.hostCpus.own(1).beginIdle();
    memory.scheduling.wakeUp(3);
    expect(queues.queued(1)).toEqual([3]);
  });
});
