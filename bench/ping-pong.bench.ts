// Goal 2: ping-pong with an IPI reply to a running sender (QEMU's `pong_spin`): vCPU 0 sends, vCPU
// 1's handler sends an IPI back, vCPU 0's handler counts it; vCPU 0 measures ICR write → pong seen
// with rdtsc (the scenario library's `ping-pong`, 1 µs gap before each send). The figure is the guest's own histogram p50 (no
// tinybench). Baseline: the raw spin round trip between two workers in this process.

import { measureSpinHandoff } from './baselines/raw.js';
import { main, repeat } from './lib/harness.js';
import { runScenarioBench, vcpuLatency } from './lib/guest.js';
import { finishBench, goalResult, QUICK, us } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'ping-pong';
const ROUNDS = QUICK ? 3000 : 20000; // raw baseline rounds (bounded by time as well)
const SECONDS = QUICK ? 0.3 : 1;
const WARMUP = QUICK ? 500 : 2000;
const GAP_NS = 1000;

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(
    BENCH,
    async () => {
      const raw = await measureSpinHandoff({ rounds: ROUNDS, warmup: WARMUP, gapNs: GAP_NS });
      const report = await runScenarioBench('ping-pong', { vcpus: 2, seconds: SECONDS, seed: 1 }, { defines: { GAP_NS } });
      const latency = vcpuLatency(report, 0);
      return {
        emulatorP50: us(latency.p50),
        emulatorP99: us(latency.p99),
        samples: latency.count,
        rawP50: us(raw.roundTrip.p50),
        rawP99: us(raw.roundTrip.p99),
        hostCpus: report.hostCpuCount,
      };
    },
    (row) => ({
      emulator: `p50 ${formatValue(row['emulatorP50']!, 'µs')} p99 ${formatValue(row['emulatorP99']!, 'µs')} µs`,
      raw: `spin RT p50 ${formatValue(row['rawP50']!, 'µs')} µs`,
    }),
  );
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'ping-pong',
        title: '2. ping-pong, IPI reply to a running sender: ICR write → pong handler seen',
        figure: { label: 'emulator p50 (guest rdtsc histogram)', unit: 'µs', values: reps.column('emulatorP50') },
        baseline: { label: 'raw spin round trip p50', unit: 'µs', values: reps.column('rawP50') },
        goal: { text: 'p50 ≤ 2 µs (QEMU MTTCG 4.6–5.2 µs)', kind: 'figure-at-most', threshold: 2 },
        extras: [
          { label: 'emulator p99', unit: 'µs', values: reps.column('emulatorP99') },
          { label: 'raw spin round trip p99', unit: 'µs', values: reps.column('rawP99') },
        ],
        notes: [
          `scenario ping-pong for ${SECONDS} s (${reps.column('samples').join('/')} rounds), GAP_NS ${GAP_NS}; raw: up to ${ROUNDS} rounds after ${WARMUP} warm-up, same gap; the default host CPUs (VmConfig.hostCpus unset): ${[...new Set(reps.column('hostCpus'))].join('/')} for 2 vCPUs`,
        ],
      }),
    ],
    reps,
    startedAt,
  );
});
