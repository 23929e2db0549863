// The file piscina loads. piscina require()s a worker module first and import()s it only if that
// throws; with Node 20's require(esm), concurrent starts of many workers then hit "module imported
// again after being required". A CommonJS entry that require() loads cleanly and that reaches the
// ESM host CPU code only through import() takes that path away. Wiring only.

import type { HostCpuReport, HostCpuStartup } from '../src/kvm/vcpu/host-cpu-loop.js';

module.exports = async function runHostCpuEntry(startup: HostCpuStartup): Promise<HostCpuReport> {
  const { default: runHostCpuTask } = (await import('./vcpu-worker.js')) as { default: (startup: HostCpuStartup) => HostCpuReport };
  return runHostCpuTask(startup);
};
