// Goal 4: the wake-up of a vCPU that is truly asleep (QEMU's `ack_halt`, gap 50 µs): the scenario
// library's `ack-halt`, which turns halt-polling off and, before each IPI, waits until the target's
// run state is "blocked" (HC_VCPU_RUN_STATE); GAP_NS = 50 µs on top, so the target's host thread
// really sleeps in the kernel. The caller measures ICR write → the target's ack seen (guest rdtsc
// histogram p50; no tinybench). Baseline, same shape, same gap, in this process: a worker announces
// it sleeps and blocks in Atomics.wait; the waker idles 50 µs, stores + notifies and spins until the
// sleeper's answer.

import { measureWaitNotifyWake } from './baselines/raw.js';
import { main, repeat } from './lib/harness.js';
import { runScenarioBench, vcpuLatency } from './lib/guest.js';
import { finishBench, goalResult, QUICK, us } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'wake';
const ROUNDS = QUICK ? 200 : 1500; // raw baseline rounds (bounded by time as well)
const SECONDS = QUICK ? 0.3 : 0.6;
const WARMUP = QUICK ? 20 : 100;
const GAP_NS = 50_000;

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(BENCH, async () => {
    const raw = await measureWaitNotifyWake({ sleepers: 1, rounds: ROUNDS, warmup: WARMUP, gapNs: GAP_NS });
    const report = await runScenarioBench('ack-halt', { vcpus: 2, seconds: SECONDS, seed: 1 }, { defines: { GAP_NS }, vmConfig: { haltPolling: false } });
    const latency = vcpuLatency(report, 0);
    return {
      emulatorP50: us(latency.p50), emulatorP99: us(latency.p99), samples: latency.count,
      rawP50: us(raw.roundTrip.p50), rawP99: us(raw.roundTrip.p99), rawOneWayP50: us(raw.oneWay.p50),
      wakeups: report.perVcpu[1]!.counters.wakeups,
    };
  }, (row) => ({
    emulator: `p50 ${formatValue(row['emulatorP50']!, 'µs')} p99 ${formatValue(row['emulatorP99']!, 'µs')} µs`,
    raw: `wait/notify wake RT p50 ${formatValue(row['rawP50']!, 'µs')} (one-way ${formatValue(row['rawOneWayP50']!, 'µs')}) µs`,
  }));
  finishBench(BENCH, [goalResult({
    id: 'wake',
    title: '4. wake-up of a vCPU that is truly asleep (halt-polling off, 50 µs gap): ICR write → handler completion seen',
    figure: { label: 'emulator p50 (guest rdtsc histogram)', unit: 'µs', values: reps.column('emulatorP50') },
    baseline: { label: 'raw Atomics.wait/notify wake round trip p50', unit: 'µs', values: reps.column('rawP50') },
    goal: { text: '≤ 1.2× the raw wait/notify wake in the same run', kind: 'ratio-at-most', threshold: 1.2 },
    extras: [
      { label: 'emulator p99', unit: 'µs', values: reps.column('emulatorP99') },
      { label: 'raw wake p99', unit: 'µs', values: reps.column('rawP99') },
      { label: 'raw wake one-way p50 (notify → sleeper runs, shared clock)', unit: 'µs', values: reps.column('rawOneWayP50') },
      { label: 'target wake-ups (futex)', unit: '', values: reps.column('wakeups') },
    ],
    notes: [`scenario ack-halt for ${SECONDS} s (${reps.column('samples').join('/')} wake-ups), GAP_NS ${GAP_NS} after the target is blocked; raw: up to ${ROUNDS} after ${WARMUP} warm-up, same gap`],
  })], reps.otherLoad, startedAt);
});
