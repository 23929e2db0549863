// Goal 1: one-way IPI to a running vCPU (QEMU's `ack_spin`): the sender measures in the guest, with
// rdtsc, from its ICR write until it sees the receiver's ack (the scenario library's `ack`, with a
// 1 µs gap before each send so the target is back in its spin loop); the figure is
// the p50 of the guest's own HDR histogram (report.perVcpu[0].latencyNs), so tinybench has no part
// in it. Baseline: the raw spin hand-off between two workers (store, the other sees it and stores
// an ack, the ack is seen), the same shape without the emulator, measured in this process.

import { measureSpinHandoff } from './baselines/raw.js';
import { main, repeat } from './lib/harness.js';
import { runScenarioBench, vcpuLatency } from './lib/guest.js';
import { finishBench, goalResult, QUICK, us } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'ack';
const ROUNDS = QUICK ? 3000 : 20000; // raw baseline rounds (bounded by time as well)
const SECONDS = QUICK ? 0.3 : 1; // the scenario runs for this long (every round sampled)
const WARMUP = QUICK ? 500 : 2000; // raw baseline only: the scenario samples every round
const GAP_NS = 1000;

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(
    BENCH,
    async () => {
      const raw = await measureSpinHandoff({ rounds: ROUNDS, warmup: WARMUP, gapNs: GAP_NS });
      const report = await runScenarioBench('ack', { vcpus: 2, seconds: SECONDS, seed: 1 }, { defines: { GAP_NS } });
      const latency = vcpuLatency(report, 0);
      return {
        emulatorP50: us(latency.p50),
        emulatorP99: us(latency.p99),
        samples: latency.count,
        rawRoundTripP50: us(raw.roundTrip.p50),
        rawRoundTripP99: us(raw.roundTrip.p99),
        rawOneWayP50: us(raw.oneWay.p50),
        hostCpus: report.hostCpuCount,
      };
    },
    (row) => ({
      emulator: `p50 ${formatValue(row['emulatorP50']!, 'µs')} p99 ${formatValue(row['emulatorP99']!, 'µs')} µs`,
      raw: `hand-off p50 ${formatValue(row['rawRoundTripP50']!, 'µs')} one-way ${formatValue(row['rawOneWayP50']!, 'µs')} µs`,
    }),
  );
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'ack',
        title: '1. one-way IPI to a running vCPU (ack): ICR write → ack seen by the sender',
        figure: { label: 'emulator p50 (guest rdtsc histogram)', unit: 'µs', values: reps.column('emulatorP50') },
        baseline: { label: 'raw spin hand-off p50 (store → ack seen)', unit: 'µs', values: reps.column('rawRoundTripP50') },
        goal: { text: 'p50 ≤ 0.7 µs (QEMU MTTCG 1.2–1.5 µs)', kind: 'figure-at-most', threshold: 0.7 },
        extras: [
          { label: 'emulator p99', unit: 'µs', values: reps.column('emulatorP99') },
          { label: 'raw spin hand-off p99', unit: 'µs', values: reps.column('rawRoundTripP99') },
          { label: 'raw spin one-way p50 (store → seen, shared clock)', unit: 'µs', values: reps.column('rawOneWayP50') },
        ],
        notes: [
          `scenario ack for ${SECONDS} s (${reps.column('samples').join('/')} rounds), GAP_NS ${GAP_NS}; raw: up to ${ROUNDS} rounds after ${WARMUP} warm-up, same gap; the default host CPUs (VmConfig.hostCpus unset): ${[...new Set(reps.column('hostCpus'))].join('/')} for 2 vCPUs`,
        ],
      }),
    ],
    reps,
    startedAt,
  );
});
