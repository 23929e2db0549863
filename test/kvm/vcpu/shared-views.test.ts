// The vCPUs a host CPU builds share its VmControlViews: building one walks every vCPU (the
// per-vCPU index tables of the requests, host slots and APIC pages, the host CPUs' and run queues'
// tables), so a view per vCPU cost O(vCPUs) at every first load and every migration, O(vCPUs^2)
// for a whole VM: at 4096 vCPUs a third of each host CPU's time in an SMP boot.
import { describe, expect, it } from 'vitest';
import { testHostCpuStartup } from '../../support/host-cpu-startup.js';
import { vcpuStartupFor } from '../../../src/kvm/vcpu/host-cpu-loop.js';
import { Vcpu } from '../../../src/kvm/vcpu/vcpu.js';
import { createGuest } from '../../smp/smp-support.js';

describe('a host CPU builds its vCPUs on its own views', () => {
  it('vcpuStartupFor passes the host CPU views, and every Vcpu built from it uses them', async () => {
    const { vm, program } = await createGuest('        .entry start\nstart:  hypercall HC_DONE\n', { vcpus: 3, hostCpus: 1 });
    const views = vm.memory;
    for (let vcpu = 0; vcpu < 3; vcpu++) {
      const control = views.control;
      Atomics.store(control, views.controlBlockIndex(vcpu, 'entryPoint'), program.entryPoints.default!);
      Atomics.store(control, views.controlBlockIndex(vcpu, 'stackTop'), vm.config.memoryBytes - vcpu * vm.config.stackBytesPerVcpu);
    }
    const hostStartup = testHostCpuStartup(vm);
    const built = [0, 1, 2].map((vcpu) => new Vcpu(vcpuStartupFor(hostStartup, views, vcpu)));
    for (const vcpu of built) expect(vcpu.views).toBe(views);
    expect(built.map((vcpu) => vcpu.index)).toEqual([0, 1, 2]);
  });
});
