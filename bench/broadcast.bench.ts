// Goal 5: broadcast (all-excluding-self shorthand) to 7 HALTED receivers, 8 vCPUs, the sender
// waiting for every handler (QEMU's `bcast_halt`, smp 8, gap 50 µs: 55.6 µs):
// bench/programs/broadcast.s, halt-polling on (the default). Before each round the sender waits
// until all 7 are blocked, then idles 50 µs. Figure: the guest's rdtsc histogram p50 (no
// tinybench). Baseline, same shape, in this process: one waker, 7 workers asleep in Atomics.wait,
// store + notify each, spin until all 7 answered.
// Issue 11: the VM runs on 2 host CPUs (VmConfig.hostCpus = 2, 4 vCPUs each); goals p50 at or below
// the raw 1->7 baseline of the same repetition and p99 <= 5x its own p50. The "before" column: the
// same broadcast with one host CPU per vCPU (hostCpus = 8, one OS thread per vCPU). The receivers
// really block (IsRunning clear, woken by kvm_vcpu_wake_up); their idle host CPU polls its wake word
// for up to VmConfig.hostIdlePollUs (200 µs by default) before its thread sleeps, so within the gap
// the round needs no OS thread wake-up. The "idle polling off" extras (hostIdlePollUs = 0) keep the
// figure where it sleeps in the kernel and each round starts with an OS wake-up.
// Warm-up: the sampled rounds start WARMUP_NS after the first broadcast (bench/programs/broadcast.s
// says why: V8's background compile threads compete with the host CPUs for the cores during the
// first second, and this kernel (preempt=none, HZ=250) lets a woken thread wait for the next tick
// on a busy core). The "cold" extras sample from the first broadcast, so that cost stays visible.
// 13b's floor: each repetition also spins one thread per host CPU on the clock, alone, and counts
// the stalls the OS and the hypervisor give it that are longer than 4x the broadcast's p50 (a round
// one of them hits is past 5x): the share of rounds they hit is reported beside the goal.

import { measureSpinStalls, measureWaitNotifyWake } from './baselines/raw.js';
import { main, repeat } from './lib/harness.js';
import { runProgramBench, vcpuLatency } from './lib/guest.js';
import { finishBench, goalResult, QUICK, us } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'broadcast';
const VCPUS = 8;
const HOST_CPUS = 2;
const ROUNDS = QUICK ? 100 : 500;
const WARMUP_NS = QUICK ? 200_000_000 : 1_500_000_000;
/** The raw baseline's warm-up rounds (its worker's code is small; this is about 0.3 s). */
const RAW_WARMUP = QUICK ? 100 : 2000;
const GAP_NS = 50_000;
/** How long the stall probe spins per repetition (one thread per host CPU). */
const STALL_PROBE_MS = QUICK ? 300 : 1000;

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(
    BENCH,
    async () => {
      const raw = await measureWaitNotifyWake({ sleepers: VCPUS - 1, rounds: ROUNDS, warmup: RAW_WARMUP, gapNs: GAP_NS, deadlineMs: 5000 });
      const defines = { VCPUS, ROUNDS, WARMUP_NS, GAP_NS };
      const latency = vcpuLatency(await runProgramBench('broadcast', defines, { vcpus: VCPUS, hostCpus: HOST_CPUS }), 0);
      const sleeping = vcpuLatency(
        await runProgramBench('broadcast', defines, { vcpus: VCPUS, hostCpus: HOST_CPUS, hostIdlePollUs: 0 }),
        0,
      );
      const cold = vcpuLatency(await runProgramBench('broadcast', { ...defines, WARMUP_NS: 0 }, { vcpus: VCPUS, hostCpus: HOST_CPUS }), 0);
      const before = vcpuLatency(await runProgramBench('broadcast', defines, { vcpus: VCPUS, hostCpus: VCPUS }), 0);
      // 13b's floor in this repetition: a stall longer than 4x the p50 puts the round it hits past 5x.
      const stalls = await measureSpinStalls({
        threads: HOST_CPUS,
        durationMs: STALL_PROBE_MS,
        stallNs: 4 * latency.p50,
        roundNs: latency.p50,
      });
      return {
        emulatorP50: us(latency.p50),
        emulatorP99: us(latency.p99),
        coldP50: us(cold.p50),
        coldP99: us(cold.p99),
        rawP50: us(raw.roundTrip.p50),
        rawP99: us(raw.roundTrip.p99),
        sleepingP50: us(sleeping.p50),
        sleepingP99: us(sleeping.p99),
        beforeP50: us(before.p50),
        beforeP99: us(before.p99),
        rawP99OverP50: raw.roundTrip.p99 / raw.roundTrip.p50,
        stallsPerSecond: stalls.stallsPerSecond,
        stallHitPercent: 100 * stalls.roundsHit,
      };
    },
    (row) => ({
      [`${HOST_CPUS} host CPUs`]: `p50 ${formatValue(row['emulatorP50']!, 'µs')} p99 ${formatValue(row['emulatorP99']!, 'µs')} µs`,
      'idle polling off': `p50 ${formatValue(row['sleepingP50']!, 'µs')} p99 ${formatValue(row['sleepingP99']!, 'µs')} µs`,
      cold: `p50 ${formatValue(row['coldP50']!, 'µs')} p99 ${formatValue(row['coldP99']!, 'µs')} µs`,
      'one thread per vCPU': `p50 ${formatValue(row['beforeP50']!, 'µs')} p99 ${formatValue(row['beforeP99']!, 'µs')} µs`,
      raw: `1→7 wait/notify p50 ${formatValue(row['rawP50']!, 'µs')} µs, p99 / p50 ${formatValue(row['rawP99OverP50']!, '×')}×`,
      stalls: `${formatValue(row['stallsPerSecond']!, '/s')}/s over 4× p50, ${formatValue(row['stallHitPercent']!, '%')} % of rounds hit`,
    }),
  );
  const figure = { label: `emulator p50 (guest rdtsc histogram), ${HOST_CPUS} host CPUs`, unit: 'µs', values: reps.column('emulatorP50') };
  const notes = [
    `${ROUNDS} sampled broadcasts after ${WARMUP_NS / 1e9} s of warm-up broadcasts; ${VCPUS} vCPUs on ${HOST_CPUS} host CPUs (idle polling on, the default; and off), "before" on ${VCPUS} (one OS thread per vCPU, so no idle polling); raw: ${RAW_WARMUP} warm-up rounds`,
    'cold: the same VM sampled from its first broadcast (no warm-up): JIT compilation on V8 background threads competes for the 2 cores',
  ];
  const coldExtras = [
    { label: 'cold (sampled from the first broadcast): p50', unit: 'µs', values: reps.column('coldP50') },
    { label: 'cold: p99', unit: 'µs', values: reps.column('coldP99') },
  ];
  const sleepingExtras = [
    {
      label: 'idle polling off (hostIdlePollUs = 0: the idle host CPU sleeps, every wake-up an OS one), p50',
      unit: 'µs',
      values: reps.column('sleepingP50'),
    },
    { label: 'idle polling off: p99', unit: 'µs', values: reps.column('sleepingP99') },
  ];
  const before = [
    { label: `before: one OS thread per vCPU (hostCpus = ${VCPUS}), p50`, unit: 'µs', values: reps.column('beforeP50') },
    { label: 'before: p99', unit: 'µs', values: reps.column('beforeP99') },
  ];
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'broadcast',
        title: `5. broadcast to 7 halted receivers (8 vCPUs on ${HOST_CPUS} host CPUs, 50 µs gap): ICR write → all 7 handlers seen`,
        figure,
        baseline: { label: 'raw 1→7 Atomics.wait/notify wake p50', unit: 'µs', values: reps.column('rawP50') },
        goal: { text: 'p50 ≤ 56 µs (QEMU MTTCG smp 8: 55.6 µs)', kind: 'figure-at-most', threshold: 56 },
        extras: [
          { label: 'emulator p99', unit: 'µs', values: reps.column('emulatorP99') },
          { label: 'raw 1→7 wake p99', unit: 'µs', values: reps.column('rawP99') },
        ],
        notes,
      }),
      goalResult({
        id: 'broadcast-host-cpus-p50',
        title: `13a. broadcast to 7 halted receivers on ${HOST_CPUS} host CPUs: p50 against the raw 1→7 wake`,
        figure,
        baseline: { label: 'raw 1→7 Atomics.wait/notify wake p50 (same repetition)', unit: 'µs', values: reps.column('rawP50') },
        goal: { text: 'p50 at or below the raw 1→7 wait/notify baseline (≤ 1×)', kind: 'ratio-at-most', threshold: 1 },
        extras: [...sleepingExtras, ...coldExtras, ...before],
        notes,
      }),
      goalResult({
        id: 'broadcast-host-cpus-p99',
        title: `13b. broadcast to 7 halted receivers on ${HOST_CPUS} host CPUs: p99 against its own p50`,
        figure: { label: 'emulator p99', unit: 'µs', values: reps.column('emulatorP99') },
        baseline: { label: 'emulator p50 (same run)', unit: 'µs', values: reps.column('emulatorP50') },
        goal: { text: 'p99 ≤ 5× its p50', kind: 'ratio-at-most', threshold: 5 },
        extras: [
          { label: 'raw 1→7 wake: its own p99 / p50 (the same rounds in plain Node)', unit: '×', values: reps.column('rawP99OverP50') },
          {
            label: `machine floor: stalls over 4× the p50 per second, ${HOST_CPUS} threads spinning alone on the clock`,
            unit: '/s',
            values: reps.column('stallsPerSecond'),
          },
          {
            label: 'machine floor: share of p50-long rounds such a stall hits; the goal needs < 1 %',
            unit: '%',
            values: reps.column('stallHitPercent'),
          },
          ...sleepingExtras,
          ...coldExtras,
          ...before,
        ],
        notes: [
          ...notes,
          'machine floor: after the VM runs, one thread per host CPU spins on the clock alone for ' +
            `${STALL_PROBE_MS} ms (bench/baselines/raw.ts, measureSpinStalls); a round of length p50 overlaps a stall longer than ` +
            '4× p50 unless, on every thread, none starts inside it and it does not start inside one (raw.ts says how that is estimated); where that share is 1 % or more, p99 ≤ 5× p50 ' +
            'cannot be met in that repetition whatever the code does',
        ],
      }),
    ],
    reps,
    startedAt,
  );
});
