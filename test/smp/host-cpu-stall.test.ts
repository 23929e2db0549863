// The watchdog's judgement of host CPUs end to end, in a running VM (VmConfig.stallHostCpu,
// src/kvm/vcpu/host-cpu-stall.ts): 4 counting vCPUs on 2 host CPUs (vCPUs 1 and 3 queue on host
// CPU 1), and host CPU 1 stops going round its loop at its third load, with vCPU 1 loaded and
// vCPU 3 runnable behind it.
//   spin         its thread runs on: a hang. The run ends by the watchdog, long before the stall's
//                own bound, naming host CPU 1, the vCPU loaded there (what it waits for, what it
//                holds) and vCPU 3 as waiting for a host CPU, not stuck.
//   sleep        its thread sleeps in waits that lead nowhere: a hang too, though it uses no CPU
//                time. The watchdog names the same, and says the thread slept (Linux schedstat: the
//                time it did not wait for a core).
//   descheduled  its thread waits for a core for three watchdog bounds (1.5 s against 0.5 s), as on
//                a busy host whose OS does not run it (the stall shows its time as run-queue wait,
//                host-cpu-stall.ts): slow, not a hang. The run ends at its time limit, nothing reported.
// And a busy host CPU: one vCPU running guest code alone slice after slice on host CPU 1 (its loop's
// heartbeat stands still for the whole run of five watchdog bounds, the vCPU's moves) while two
// share host CPU 0 is not reported either. Both runs are short in seconds but long in watchdog
// bounds, which is what they are about. Linux only: the host-CPU watchdog reads thread times from
// /proc.
import { describe, expect, it } from 'vitest';
import { countingProgram, runGuest, summary } from './smp-support.js';
import { hostThreadRunQueueWaitAvailable, hostThreadTimesAvailable } from '../../src/kvm/vm/vcpu-run-time.js';
import { validateConfig } from '../../src/kvm/vm/vm-config.js';
import type { HostCpuStall } from '../../src/kvm/vcpu/host-cpu-stall.js';

const counting = countingProgram(4);

describe.skipIf(!hostThreadTimesAvailable())('a host CPU that stops making progress, in a running VM', () => {
  it('spinning with vCPU 1 loaded: the watchdog names host CPU 1, vCPU 1 and its locks, and vCPU 3 as waiting for a host CPU', async () => {
    const started = performance.now();
    const report = await runGuest(
      counting,
      { vcpus: 4, hostCpus: 2, stallHostCpu: { hostCpu: 1, atLoad: 3, how: 'spin', seconds: 120 } },
      { timeoutSeconds: 240, watchdogSeconds: 1, stopTimeoutSeconds: 5 },
    );
    expect(report.exit.reason, summary(report)).toBe('watchdog');
    expect(report.ok).toBe(false);
    expect(report.exit.detail).toMatch(
      /^host CPU 1 made no progress for 1\.0 s of its thread's run time \(its scheduler loop's heartbeat stood still; loaded: vCPU 1, whose heartbeat stood still too \(vCPU 1 is running, waiting for: none; holds: vcpu1->mutex \(vcpu->mutex\)\); run queue: vCPU 3 waiting for a host CPU \(runnable, not stuck\); it ran \d+\.\d s in \d+\.\d s\)/,
    );
    // Ended by the watchdog and a clean stop (the stall ends at the stop word), far within the stall's 120 s.
    expect(report.exit.stuckVcpus).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(60_000);
  });

  it.skipIf(!hostThreadRunQueueWaitAvailable())(
    'sleeping with vCPU 1 loaded: the watchdog names host CPU 1, says its thread slept, and names vCPU 1 and its locks, and vCPU 3 as waiting for a host CPU',
    async () => {
      const report = await runGuest(
        counting,
        { vcpus: 4, hostCpus: 2, stallHostCpu: { hostCpu: 1, atLoad: 3, how: 'sleep', seconds: 20 } },
        { timeoutSeconds: 30, watchdogSeconds: 1, stopTimeoutSeconds: 5 },
      );
      expect(report.exit.reason, summary(report)).toBe('watchdog');
      expect(report.ok).toBe(false);
      expect(report.exit.detail).toMatch(
        /^host CPU 1 made no progress for 1\.0 s while its thread slept or ran, not waiting for a core \(its scheduler loop's heartbeat stood still; loaded: vCPU 1, whose heartbeat stood still too \(vCPU 1 is running, waiting for: none; holds: vcpu1->mutex \(vcpu->mutex\)\); run queue: vCPU 3 waiting for a host CPU \(runnable, not stuck\); in \d+\.\d s its thread slept \d+\.\d s, ran \d+\.\d s and waited for a core \d+\.\d s\)/,
      );
      // Ended by the watchdog and a clean stop (the stall ends at the stop word).
      expect(report.exit.stuckVcpus).toBeUndefined();
    },
  );

  it('descheduled for three watchdog bounds with vCPU 1 loaded (a busy host): nothing is reported, the run ends at its time limit', async () => {
    const report = await runGuest(
      counting,
      { vcpus: 4, hostCpus: 2, stallHostCpu: { hostCpu: 1, atLoad: 3, how: 'descheduled', seconds: 1.5 } },
      { seconds: 3, watchdogSeconds: 0.5 },
    );
    expect(report.exit.reason, summary(report)).toBe('time-limit');
    expect(report.ok, summary(report)).toBe(true);
    // The stall happened: vCPU 3 waited behind it for at least its 1.5 s.
    expect(report.perVcpu[3]!.scheduling.runnableWaitMs).toBeGreaterThanOrEqual(1500);
  });

  it('busy, not stuck: vCPU 1 alone on host CPU 1 runs guest code for the whole run while vCPUs 0 and 2 share host CPU 0', async () => {
    const report = await runGuest(counting, { vcpus: 3, hostCpus: 2 }, { seconds: 1.5, watchdogSeconds: 0.3 });
    expect(report.exit.reason, summary(report)).toBe('time-limit');
    expect(report.ok, summary(report)).toBe(true);
    // vCPUs 0 and 2 took turns on host CPU 0 (runnable behind each other); every vCPU ran guest code.
    expect(report.hostCpus[0]!.preemptions).toBeGreaterThan(0);
    expect(report.instructions).toBeGreaterThan(0);
  });
});

describe('VmConfig.stallHostCpu', () => {
  it('takes the three kinds; refuses, in one line, a host CPU the VM lacks, a load number below 1, an unknown kind, no bound, and a deterministic run', () => {
    const stall = (fields: Partial<HostCpuStall>) => ({ hostCpu: 1, atLoad: 1, how: 'spin', seconds: 5, ...fields }) as HostCpuStall;
    for (const how of ['spin', 'sleep', 'descheduled'] as const)
      expect(validateConfig({ vcpus: 4, hostCpus: 2, stallHostCpu: stall({ how }) }).stallHostCpu).toEqual(stall({ how }));
    for (const fields of [{ hostCpu: 2 }, { atLoad: 0 }, { how: 'nap' }, { seconds: Number.POSITIVE_INFINITY }] as Partial<HostCpuStall>[])
      expect(() => validateConfig({ vcpus: 4, hostCpus: 2, stallHostCpu: stall(fields) })).toThrow(
        /^stallHostCpu must be \{ hostCpu: 0\.\.1, atLoad: 1 or more, how: spin, sleep or descheduled, seconds: up to 3600 \}, got \{/,
      );
    expect(() =>
      validateConfig({ vcpus: 4, hostCpus: 2, stallHostCpu: stall({}), deterministic: { seed: 1, strategy: 'random' } }),
    ).toThrow('stallHostCpu is for parallel runs');
  });
});
