// KVM's block / wake protocol (src/kvm/control/vcpu-scheduling.ts) played on one thread over a VM's
// control views: a doorbell never wakes a blocked vCPU, kvm_vcpu_wake_up does, a waker that finds
// the vCPU Blocking makes its commit fail, and kvm_vcpu_kick rings only a loaded vCPU's host CPU.
import { describe, expect, it } from 'vitest';
import { TaskState } from '../../../src/host/run-queue.js';
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
  it('a doorbell rung at a blocked vCPU\'s host CPU leaves it Blocked and wakes no host CPU; a wake-up queues it and wakes its host CPU', () => {
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

  it('a kick rings the doorbell of a loaded vCPU\'s host CPU, and not that of a queued one', () => {
    const memory = views(2, 1);
    memory.runQueues.setState(0, TaskState.Running);
    memory.scheduling.start(1);
    const cpu = memory.hostCpus.own(0);
    memory.kick(1, 0);
    expect(cpu.ringValue()).toBe(0);
    memory.kick(0, 0);
    expect(cpu.ringValue()).toBe(1);
  });

  it('a kick of a blocked vCPU wakes it instead of ringing', () => {
    const memory = views(1, 1);
    block(memory, 0);
    memory.kick(0, 0);
    expect(memory.hostCpus.own(0).ringValue()).toBe(0);
    expect(memory.runQueues.queued(0)).toEqual([0]);
  });
});
