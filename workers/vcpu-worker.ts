// piscina task module: one task is one host CPU, for the VM's whole life. Wiring only: the vCPUs it
// builds get their lock replay's vCPU part (debug only) as their first-exit hook.
import { Vcpu, type VcpuStartup } from '../src/kvm/vcpu/vcpu.js';
import { runHostCpu, type HostCpuReport, type HostCpuStartup } from '../src/kvm/vcpu/host-cpu-loop.js';
import { currentHostThreadId } from '../src/kvm/vm/vcpu-run-time.js';
import { vcpuLockReplay } from '../src/scenarios/lock-scenarios/lock-replays-vcpu.js';

export default function runHostCpuTask(startup: HostCpuStartup): HostCpuReport {
  const createVcpu = (vcpu: VcpuStartup): Vcpu => new Vcpu(vcpu, vcpuLockReplay(vcpu.locks.injectLockBug, vcpu.vcpu));
  return runHostCpu(startup, createVcpu, currentHostThreadId());
}
