// A host CPU's startup for tests that drive src/kvm/vcpu/host-cpu-loop.ts or build Vcpus in the test
// thread (no workers): host CPU `hostCpu` of `vm`, xAPIC/x2AVIC on, no halt-polling, a 1 ms quantum,
// no idle polling unless `idlePollMs` says otherwise.
import { PAUSE_LOOP_WINDOW } from '../../src/guest/guest-cpu.js';
import { parallelHostThread } from '../../src/host/host-thread.js';
import type { HostCpuStartup } from '../../src/kvm/vcpu/host-cpu-loop.js';
import type { SliceEnd } from '../../src/kvm/vcpu/vcpu-startup.js';
import type { Vcpu } from '../../src/kvm/vcpu/vcpu.js';
import type { Vm } from '../../src/kvm/vm/vm.js';

export function testHostCpuStartup(vm: Vm, hostCpu = 0, idlePollMs = 0): HostCpuStartup {
  return {
    buffers: vm.memory.buffers,
    hostCpu,
    policy: vm.config.policy,
    ipiVirtualization: true,
    x2avic: true,
    x2avicExtended: true,
    haltPolling: false,
    idlePollMs,
    pauseFilterCount: PAUSE_LOOP_WINDOW,
    quantumMs: 1,
    clockOriginNs: String(Math.round(parallelHostThread.nowMs() * 1e6)),
    trace: false,
    locks: vm.locks.shared,
  };
}

/**
 * A stand-in Vcpu for such a loop: loading, putting, saving and reporting do nothing; the test says
 * what each slice does (and sets the run-queue state a real vCPU would) and what its APIC timer reads.
 */
export function standInVcpu(index: number, runSlice: () => SliceEnd, timerRemainingNs: () => number = () => Infinity): Vcpu {
  return {
    index,
    load: () => undefined,
    put: () => undefined,
    save: () => undefined,
    restore: () => undefined,
    exitReport: undefined,
    movedReport: () => undefined,
    pendingEvent: () => -1,
    timerRemainingNs,
    runSlice,
  } as unknown as Vcpu;
}
