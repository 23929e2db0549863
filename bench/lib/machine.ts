// The machine the benches run on, and how busy the rest of it is. This is a 2-core VM shared with
// other work, so before each repetition a bench waits (bounded) for the other processes to go
// quiet, and it records how much CPU they used during the repetition ("other load", in cores):
// a repetition with other load near 1 core was measured on half a machine.

import os from 'node:os';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface MachineNotes {
  readonly node: string;
  readonly v8: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly platform: string;
  readonly kernel: string;
  readonly memoryGiB: number;
  readonly date: string;
  readonly cpuidle?: string;
  /** The emulator measured: git HEAD, plus "+dirty" when the work tree has changes. */
  readonly commit: string;
}

export function machineNotes(): MachineNotes {
  let cpuidle: string | undefined;
  try {
    cpuidle = readFileSync('/sys/devices/system/cpu/cpuidle/current_driver', 'utf8').trim();
  } catch {
    cpuidle = undefined;
  }
  let commit = 'unknown';
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'workers'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    commit = `${head}${dirty ? '+dirty' : ''}`;
  } catch {
    commit = 'unknown';
  }
  return {
    commit,
    node: process.version,
    v8: process.versions.v8,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    date: new Date().toISOString(),
    ...(cpuidle === undefined ? {} : { cpuidle }),
  };
}

interface CpuSample {
  readonly wallMs: number;
  /** Busy CPU time of the whole machine, ms. */
  readonly busyMs: number;
  /** This process's CPU time (all threads), ms. */
  readonly ownMs: number;
  /**
   * CPU time the hypervisor under this machine ran something else while a vCPU of ours wanted to
   * run (steal), ms. Our threads lose it without being descheduled by this kernel: a p99 of ms on a
   * path of µs follows it, raw baselines' included.
   */
  readonly stealMs: number;
}

function sampleCpu(): CpuSample {
  const wallMs = performance.now();
  let busyMs = Number.NaN;
  let stealMs = Number.NaN;
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal; USER_HZ = 100 on Linux
    busyMs = ((fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]!) * 1000) / 100;
    stealMs = ((fields[7] ?? 0) * 1000) / 100;
  } catch {
    busyMs = Number.NaN;
  }
  const usage = process.cpuUsage();
  return { wallMs, busyMs, ownMs: (usage.user + usage.system) / 1000, stealMs };
}

/** Cores used by other processes between two samples. */
function otherCores(from: CpuSample, to: CpuSample): number {
  const wall = to.wallMs - from.wallMs;
  if (!(wall > 0) || !Number.isFinite(from.busyMs)) return Number.NaN;
  return Math.max(0, (to.busyMs - from.busyMs - (to.ownMs - from.ownMs)) / wall);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Quiet means other processes use less than this many cores. */
const QUIET_CORES = Number(process.env['BENCH_QUIET_CORES'] ?? 0.3);
/** Wait at most this long for quiet before each repetition (then measure anyway, and say so). */
const QUIET_MAX_MS = Number(process.env['BENCH_QUIET_MAX_MS'] ?? 4000);

/** Waits (bounded) until the rest of the machine is quiet; returns the other load last seen. */
export async function waitQuiet(): Promise<number> {
  const deadline = performance.now() + QUIET_MAX_MS;
  let last = Number.NaN;
  for (;;) {
    const before = sampleCpu();
    await sleep(150);
    last = otherCores(before, sampleCpu());
    if (!(last >= QUIET_CORES) || performance.now() >= deadline) return last;
  }
}

/** Cores the hypervisor stole between two samples (NaN where /proc/stat cannot be read). */
function stolenCores(from: CpuSample, to: CpuSample): number {
  const wall = to.wallMs - from.wallMs;
  if (!(wall > 0) || !Number.isFinite(from.stealMs)) return Number.NaN;
  return Math.max(0, (to.stealMs - from.stealMs) / wall);
}

/** Measures the other processes' load, and the steal, over a piece of work. */
export async function withOtherLoad<T>(work: () => Promise<T>): Promise<{ value: T; otherLoad: number; steal: number }> {
  const before = sampleCpu();
  const value = await work();
  const after = sampleCpu();
  return { value, otherLoad: otherCores(before, after), steal: stolenCores(before, after) };
}
