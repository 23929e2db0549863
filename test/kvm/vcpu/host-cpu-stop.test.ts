// A host CPU leaves its loop at the VM's stop only when nothing it could still run is left: a vCPU
// another host CPU homes may sit in its run queue (a wake-up places a vCPU on an idle host CPU, as
// select_idle_sibling does), and leaving it there strands it: its home host CPU never sees it (an
// idle steal takes only from a queue of two or more), so it never finishes and the VM's stop times
// out. Seen in test/smp/smp-boot.test.ts as "vCPU 2 did not stop within 5 s" in about 5% of runs.
import { describe, expect, it } from 'vitest';
import { standInVcpu, testHostCpuStartup } from '../../support/host-cpu-startup.js';
import { TaskState } from '../../../src/host/run-queue.js';
import { runHostCpu } from '../../../src/kvm/vcpu/host-cpu-loop.js';
import { SliceEnd } from '../../../src/kvm/vcpu/vcpu-startup.js';
import { Vm } from '../../../src/kvm/vm/vm.js';

describe('a host CPU at the VM stop', () => {
  it("runs the vCPU of another host CPU's home still in its run queue before it leaves", async () => {
    const vm = await Vm.create({ vcpus: 2, hostCpus: 2 });
    const views = vm.memory;
    const queues = views.runQueues;
    expect(views.scheduling.homeHostCpu(0)).toBe(0);
    expect(views.scheduling.homeHostCpu(1)).toBe(1);
    // vCPU 1 (homed here, on host CPU 1) is done; vCPU 0 (homed on host CPU 0) was woken onto this
    // idle host CPU and waits in its queue; then the VM is asked to stop.
    queues.setState(1, TaskState.Finished);
    queues.setState(0, TaskState.Queued);
    queues.enqueue(1, 0);
    Atomics.store(views.control, views.headerIndex('stopRequested'), 1);
    const ran: number[] = [];
    const report = runHostCpu(
      testHostCpuStartup(vm, 1),
      (startup) =>
        standInVcpu(startup.vcpu, () => {
          ran.push(startup.vcpu);
          return SliceEnd.Finished;
        }),
      1,
    );
    expect(report.errors).toEqual([]);
    expect(ran).toEqual([0]);
    expect(queues.length(1)).toBe(0);
    expect(queues.state(0)).toBe(TaskState.Finished);
  });
});
