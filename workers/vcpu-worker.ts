// piscina task module: one task is one vCPU, for the VM's whole life. Wiring only.
import { Vcpu, type VcpuExitReport, type VcpuStartup } from '../src/kvm/vcpu/vcpu.js';
import { currentHostThreadId } from '../src/kvm/vm/vcpu-run-time.js';

export default function runVcpu(startup: VcpuStartup): VcpuExitReport {
  const vcpu = new Vcpu(startup);
  // This thread is the host CPU the vCPU is loaded on: it claims a doorbell line for the VM's life.
  const hostCpu = vcpu.memory.doorbellLines.claim(startup.vcpu);
  // Before run() moves the vCPU to Running: the watchdog judges a running vCPU by its thread's CPU time.
  Atomics.store(vcpu.memory.control, vcpu.memory.controlBlockIndex(startup.vcpu, 'hostThreadId'), currentHostThreadId());
  return vcpu.run(hostCpu);
}
