// piscina task module: one task is one vCPU, for the VM's whole life. Wiring only.
import { Vcpu, type VcpuExitReport, type VcpuStartup } from '../src/kvm/vcpu.js';

export default function runVcpu(startup: VcpuStartup): VcpuExitReport {
  return new Vcpu(startup).run();
}
