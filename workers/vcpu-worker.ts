// piscina task module: one task is one host CPU, for the VM's whole life. Wiring only: the vCPUs it
// builds get their lock replay's vCPU part (debug only) as their first-exit hook, and in a
// deterministic run (docs/deterministic.md) the host CPU joins the schedule as participant i + 1
// for its whole loop.
import { Vcpu, type VcpuStartup } from '../src/kvm/vcpu/vcpu.js';
import { runHostCpu, type HostCpuReport, type HostCpuStartup } from '../src/kvm/vcpu/host-cpu-loop.js';
import { currentHostThreadId } from '../src/kvm/vm/vcpu-run-time.js';
import { vcpuLockReplay } from '../src/scenarios/lock-scenarios/lock-replays-vcpu.js';
import { parallelHostThread, setHostThread } from '../src/host/host-thread.js';
import { DeterministicSchedule } from '../src/host/deterministic/deterministic-schedule.js';
import { sharedBuffersOf } from '../src/host/deterministic/shared-buffers.js';
import { UNWATCHED_STARTUP_KEYS } from '../src/kvm/vm/deterministic-run.js';

export default function runHostCpuTask(startup: HostCpuStartup): HostCpuReport {
  const createVcpu = (vcpu: VcpuStartup): Vcpu => new Vcpu(vcpu, vcpuLockReplay(vcpu.locks.injectLockBug, vcpu.vcpu));
  const shared = startup.schedule;
  if (shared === undefined) return runHostCpu(startup, createVcpu, currentHostThreadId());
  // The same buffers in the same order as main listed them (deterministic-run.ts).
  const schedule = new DeterministicSchedule(shared.buffer, shared.byteOffset, shared.participants);
  const thread = schedule.watch(sharedBuffersOf(startup, UNWATCHED_STARTUP_KEYS)).thread(startup.hostCpu + 1);
  setHostThread(thread);
  try {
    thread.start();
    return runHostCpu(startup, createVcpu, currentHostThreadId());
  } finally {
    thread.finish();
    setHostThread(parallelHostThread);
  }
}
