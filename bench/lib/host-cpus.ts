// What the issue-11 benches compute from a run on host CPUs (VmConfig.hostCpus): the latency bound
// a scheduler with a quantum implies, the coalesced share of a storm, a process's peak resident set,
// and whether a VM refused its vCPU count (so the 4096-vCPU start-up can be skipped, with the
// reason, on a tree whose VMs stop at 512).

import { readFileSync } from 'node:fs';

/**
 * The send-to-handled bound for a vCPU that shares its host CPU: with `runnable` vCPUs spread over
 * `hostCpus` host CPUs, each running a quantum at a time in turn, a target waits at most one round
 * of the others' quanta for its next load, and the sender that measures it waits as long again to
 * notice the handled count: 2 quanta x (runnable / hostCpus), never less than 2 quanta (a vCPU alone
 * on its host CPU is still subject to one quantum either side). In microseconds, as quantumUs.
 */
export function quantumBoundUs(quantumUs: number, runnableVcpus: number, hostCpus: number): number {
  if (!(quantumUs > 0) || !(runnableVcpus >= 1) || !(hostCpus >= 1)) {
    throw new RangeError(
      `quantumBoundUs needs a positive quantum and at least one runnable vCPU and host CPU, got ${quantumUs} µs, ${runnableVcpus}, ${hostCpus}`,
    );
  }
  return 2 * quantumUs * Math.max(1, runnableVcpus / hostCpus);
}

/** The share of IPI messages sent that found their vector already pending in the target's IRR (0..1). */
export function coalescedShare(ipis: { readonly sent: number; readonly coalesced: number }): number {
  return ipis.sent > 0 ? ipis.coalesced / ipis.sent : 0;
}

export interface PeakRss {
  readonly mib: number;
  /**
   * Where it came from: `VmHWM` (/proc/self/status, the kernel's high-water mark of the process's
   * resident set) or `maxRSS` (process.resourceUsage(), getrusage's ru_maxrss, where /proc is absent).
   */
  readonly source: 'VmHWM' | 'maxRSS';
}

/** The VmHWM line of a /proc/<pid>/status text, in KiB (the kernel prints kB meaning KiB), or undefined. */
export function parseVmHwmKiB(status: string): number | undefined {
  const match = /^VmHWM:\s*(\d+)\s*kB\s*$/m.exec(status);
  return match === null ? undefined : Number(match[1]);
}

/** This process's peak resident set so far: VmHWM where Linux's /proc has it, else maxRSS. */
export function peakRss(readStatus: () => string = () => readFileSync('/proc/self/status', 'utf8')): PeakRss {
  let kib: number | undefined;
  try {
    kib = parseVmHwmKiB(readStatus());
  } catch {
    kib = undefined;
  }
  if (kib !== undefined) return { mib: kib / 1024, source: 'VmHWM' };
  // ru_maxrss is in KiB on Linux (Node passes it through).
  return { mib: process.resourceUsage().maxRSS / 1024, source: 'maxRSS' };
}

/**
 * Whether Vm.create's error is the VM refusing this many vCPUs (a VmConfigError about `vcpus`), as
 * opposed to any other failure, which a bench must report as one.
 */
export function refusesVcpuCount(error: unknown): boolean {
  return error instanceof Error && error.name === 'VmConfigError' && /^vcpus must be\b/.test(error.message);
}

/**
 * A comma-separated list of vCPU counts from the environment (e.g. BENCH_STORM_BEFORE=8,32), kept
 * to the ones in `allowed`; undefined or empty gives `allowed`, 'none' gives none. Anything else is
 * a mistake worth a one-line error.
 */
export function sizesFromEnvironment(name: string, value: string | undefined, allowed: readonly number[]): number[] {
  if (value === undefined || value.trim() === '') return [...allowed];
  if (value.trim() === 'none') return [];
  const sizes = value.split(',').map((part) => Number(part.trim()));
  const wrong = sizes.filter((size) => !allowed.includes(size));
  if (wrong.length > 0) throw new RangeError(`${name} must be 'none' or a comma-separated subset of ${allowed.join(',')}, got '${value}'`);
  return allowed.filter((size) => sizes.includes(size));
}
