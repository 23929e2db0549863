// The file piscina loads. piscina require()s a worker module first and import()s it only if that
// throws; with Node 20's require(esm), concurrent starts of many workers then hit "module imported
// again after being required". A CommonJS entry that require() loads cleanly and that reaches the
// ESM vCPU code only through import() takes that path away. Wiring only.

import type { VcpuExitReport, VcpuStartup } from '../src/kvm/vcpu/vcpu.js';

module.exports = async function runVcpuTask(startup: VcpuStartup): Promise<VcpuExitReport> {
  const { default: runVcpu } = (await import('./vcpu-worker.js')) as { default: (startup: VcpuStartup) => VcpuExitReport };
  return runVcpu(startup);
};
