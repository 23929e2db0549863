// Goal 4: the wake-up of a vCPU that is truly asleep (QEMU's `ack_halt`, gap 50 µs): the scenario
// library's `ack-halt`, which turns halt-polling off and, before each IPI, waits until the target's
// run state is "blocked" (HC_VCPU_RUN_STATE); GAP_NS = 50 µs on top. The target vCPU really blocks
// (IsRunning clear, woken only by kvm_vcpu_wake_up from the sender's incomplete-IPI exit); its host
// CPU, with nothing else to run, polls its wake word for up to VmConfig.hostIdlePollUs (200 µs by
// default) before its thread sleeps, so within the gap the wake-up needs no OS thread wake-up. The
// "idle polling off" extra (hostIdlePollUs = 0) keeps the figure where the host CPU's thread sleeps
// in the kernel and every wake-up is an OS one, the shape of the raw baseline. The caller measures
// ICR write → the target's ack seen (guest rdtsc histogram p50; no tinybench). Baseline, same
// shape, same gap, in this process: a worker announces it sleeps and blocks in Atomics.wait; the
// waker idles 50 µs, stores + notifies and spins until the sleeper's answer.
// Issue 11: the VM runs on host CPUs (VmConfig.hostCpus = 2, one per vCPU: the halted target is put,
// its host CPU idles on its wake word, and only kvm_vcpu_wake_up from the incomplete-IPI exit brings
// it back); goal <= 1.1x the raw wake. Also recorded, without a goal: the sender and the target
// sharing one host CPU (hostCpus = 1), where the woken target waits in the sender's run queue until
// the sender's pause loop yields or its quantum ends.

import { measureWaitNotifyWake } from './baselines/raw.js';
import { main, repeat } from './lib/harness.js';
import { runScenarioBench, vcpuLatency } from './lib/guest.js';
import { finishBench, goalResult, QUICK, us } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'wake';
const ROUNDS = QUICK ? 200 : 1500; // raw baseline rounds (bounded by time as well)
// The scenario samples every round from the first, so its run is long enough that the first ~0.5 s,
// while V8 still compiles the interpreter on background threads (bench/programs/broadcast.s), is a
// small share of the samples; the shared-host-CPU extra keeps the short run.
const SECONDS = QUICK ? 0.3 : 2.5;
const SHARED_SECONDS = QUICK ? 0.3 : 0.6;
const WARMUP = QUICK ? 20 : 1000;
const GAP_NS = 50_000;
const HOST_CPUS = 2;

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(
    BENCH,
    async () => {
      const raw = await measureWaitNotifyWake({ sleepers: 1, rounds: ROUNDS, warmup: WARMUP, gapNs: GAP_NS });
      const report = await runScenarioBench(
        'ack-halt',
        { vcpus: 2, seconds: SECONDS, seed: 1 },
        { defines: { GAP_NS }, vmConfig: { haltPolling: false, hostCpus: HOST_CPUS } },
      );
      const latency = vcpuLatency(report, 0);
      const sleeping = vcpuLatency(
        await runScenarioBench(
          'ack-halt',
          { vcpus: 2, seconds: SECONDS, seed: 1 },
          { defines: { GAP_NS }, vmConfig: { haltPolling: false, hostCpus: HOST_CPUS, hostIdlePollUs: 0 } },
        ),
        0,
      );
      const shared = vcpuLatency(
        await runScenarioBench(
          'ack-halt',
          { vcpus: 2, seconds: SHARED_SECONDS, seed: 1 },
          { defines: { GAP_NS }, vmConfig: { haltPolling: false, hostCpus: 1 } },
        ),
        0,
      );
      return {
        emulatorP50: us(latency.p50),
        emulatorP99: us(latency.p99),
        samples: latency.count,
        rawP50: us(raw.roundTrip.p50),
        rawP99: us(raw.roundTrip.p99),
        rawOneWayP50: us(raw.oneWay.p50),
        wakeups: report.perVcpu[1]!.counters.wakeups,
        idlePollWakeups: report.hostCpus[1]!.idlePollWakeups,
        sleepingP50: us(sleeping.p50),
        sleepingP99: us(sleeping.p99),
        sharedP50: us(shared.p50),
        sharedP99: us(shared.p99),
      };
    },
    (row) => ({
      emulator: `p50 ${formatValue(row['emulatorP50']!, 'µs')} p99 ${formatValue(row['emulatorP99']!, 'µs')} µs`,
      'idle polling off': `p50 ${formatValue(row['sleepingP50']!, 'µs')} µs`,
      'one host CPU': `p50 ${formatValue(row['sharedP50']!, 'µs')} µs`,
      raw: `wait/notify wake RT p50 ${formatValue(row['rawP50']!, 'µs')} (one-way ${formatValue(row['rawOneWayP50']!, 'µs')}) µs`,
    }),
  );
  const figure = { label: `emulator p50 (guest rdtsc histogram), ${HOST_CPUS} host CPUs`, unit: 'µs', values: reps.column('emulatorP50') };
  const baseline = { label: 'raw Atomics.wait/notify wake round trip p50', unit: 'µs', values: reps.column('rawP50') };
  const notes = [
    `scenario ack-halt for ${SECONDS} s (${reps.column('samples').join('/')} wake-ups), idle polling on (the default) and off, GAP_NS ${GAP_NS} after the target is blocked, every round sampled; raw: up to ${ROUNDS} after ${WARMUP} warm-up, same gap; sharing 1 host CPU: ${SHARED_SECONDS} s`,
  ];
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'wake',
        title: '4. wake-up of a vCPU that is truly asleep (halt-polling off, 50 µs gap): ICR write → handler completion seen',
        figure,
        baseline,
        goal: { text: '≤ 1.2× the raw wait/notify wake in the same run', kind: 'ratio-at-most', threshold: 1.2 },
        extras: [
          { label: 'emulator p99', unit: 'µs', values: reps.column('emulatorP99') },
          { label: 'raw wake p99', unit: 'µs', values: reps.column('rawP99') },
          { label: 'raw wake one-way p50 (notify → sleeper runs, shared clock)', unit: 'µs', values: reps.column('rawOneWayP50') },
          { label: 'target wake-ups (kvm_vcpu_wake_up)', unit: '', values: reps.column('wakeups') },
          { label: "of which its host CPU's idle poll caught (no OS thread wake-up)", unit: '', values: reps.column('idlePollWakeups') },
          { label: 'idle polling off (hostIdlePollUs = 0, every wake-up an OS one): p50', unit: 'µs', values: reps.column('sleepingP50') },
          { label: 'idle polling off: p99', unit: 'µs', values: reps.column('sleepingP99') },
        ],
        notes,
      }),
      goalResult({
        id: 'wake-host-cpus',
        title: `14. ack to a halted vCPU on host CPUs (2 vCPUs, ${HOST_CPUS} host CPUs, halt-polling off, 50 µs gap)`,
        figure,
        baseline,
        goal: { text: '≤ 1.1× the raw wait/notify wake in the same run', kind: 'ratio-at-most', threshold: 1.1 },
        extras: [
          { label: 'idle polling off (hostIdlePollUs = 0, every wake-up an OS one): p50', unit: 'µs', values: reps.column('sleepingP50') },
          { label: 'sender and target sharing 1 host CPU: p50 (no goal)', unit: 'µs', values: reps.column('sharedP50') },
          { label: 'sharing 1 host CPU: p99', unit: 'µs', values: reps.column('sharedP99') },
        ],
        notes,
      }),
    ],
    reps,
    startedAt,
  );
});
