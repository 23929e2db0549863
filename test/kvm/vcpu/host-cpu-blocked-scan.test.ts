// A host CPU looks at its blocked vCPUs' APIC timers (to wake those whose timer is due, as the
// hrtimer callback does) only when one may be due, not at every vCPU switch: with N vCPUs that each
// run once and block with no timer armed, it reads their timers O(N) times, not O(N^2). At 4096
// vCPUs the scan at every switch took half of each host CPU's time in an SMP boot.
import { describe, expect, it } from 'vitest';
import { standInVcpu, testHostCpuStartup } from '../../support/host-cpu-startup.js';
import { TaskState } from '../../../src/host/run-queue.js';
import { runHostCpu } from '../../../src/kvm/vcpu/host-cpu-loop.js';
import { SliceEnd } from '../../../src/kvm/vcpu/vcpu-startup.js';
import type { Vcpu } from '../../../src/kvm/vcpu/vcpu.js';
import { Vm } from '../../../src/kvm/vm/vm.js';

const VCPUS = 200;

describe('a host CPU and its blocked vCPUs', () => {
  it(`reads the timers of ${VCPUS} vCPUs that block with none armed O(vCPUs) times, and still finishes`, async () => {
    const vm = await Vm.create({ vcpus: VCPUS, hostCpus: 1 });
    const views = vm.memory;
    const queues = views.runQueues;
    for (let vcpu = 0; vcpu < VCPUS; vcpu++) views.scheduling.start(vcpu);
    let timerReads = 0;
    let runs = 0;
    // Stand-ins for the vCPUs: each blocks at its first slice (HLT, no timer); the last to run ends
    // the VM (every other one finished, the stop word set) so that the loop returns.
    const fake = (index: number): Vcpu =>
      standInVcpu(
        index,
        (): SliceEnd => {
          runs++;
          if (runs < VCPUS) {
            queues.setState(index, TaskState.Blocked);
            return SliceEnd.Blocked;
          }
          for (let other = 0; other < VCPUS; other++) if (other !== index) queues.setState(other, TaskState.Finished);
          Atomics.store(views.control, views.headerIndex('stopRequested'), 1);
          return SliceEnd.Finished;
        },
        () => {
          timerReads++;
          return Infinity;
        },
      );
    const startup = testHostCpuStartup(vm);
    const report = runHostCpu(startup, (vcpuStartup) => fake(vcpuStartup.vcpu), 1);
    expect(report.errors).toEqual([]);
    expect(runs).toBe(VCPUS);
    // Once per run and once per blocked vCPU in each 100 ms lost-wake-up check: far below the
    // VCPUS * (VCPUS - 1) / 2 = 19900 of a scan at every switch.
    expect(timerReads).toBeLessThan(4 * VCPUS);
  });
});
