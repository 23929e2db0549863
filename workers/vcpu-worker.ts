// piscina task module: one task is one vCPU, for the VM's whole life. Wiring only.
import { Vcpu, type VcpuExitReport, type VcpuStartup } from '../src/kvm/vcpu/vcpu.js';
import { currentHostThreadId } from '../src/kvm/vm/vcpu-run-time.js';
import { vcpuLockReplay } from '../src/scenarios/lock-scenarios/lock-replays-vcpu.js';

export default function runVcpu(startup: VcpuStartup): VcpuExitReport {
  // Debug only: this vCPU's part of an injected lock replay (docs/lock-scenarios.md), as its first-exit hook.
  const vcpu = new Vcpu(startup, vcpuLockReplay(startup.locks.injectLockBug, startup.vcpu));
  // This thread is the host CPU the vCPU is loaded on: it claims a doorbell line for the VM's life.
  const hostCpu = vcpu.views.doorbellLines.claim(startup.vcpu);
  // Before run() moves the vCPU to Running: the watchdog judges a running vCPU by its thread's CPU time.
  Atomics.store(vcpu.views.control, vcpu.views.controlBlockIndex(startup.vcpu, 'hostThreadId'), currentHostThreadId());
  return vcpu.run(hostCpu);
}
