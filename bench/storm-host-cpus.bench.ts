// Issue 11: the IPI storm (the scenario library's `storm`, time-based, its checks must pass) with
// more vCPUs than host CPUs: 8, 32 and 255 vCPUs on 2 host CPUs (VmConfig.hostCpus = 2), each
// beside the 2-vCPU storm on the same 2 host CPUs in the same repetition. Goals:
//   - delivered IPIs/s >= 0.5x the 2-vCPU figure (the vCPUs' own counters over a steady-state
//     window, start-up and teardown excluded, as storm.bench.ts counts);
//   - send-to-handled p50 (the storm's own samples, report.latencyNs, merged over the senders)
//     within 2 quanta x (runnable vCPUs / host CPUs) (bench/lib/host-cpus.ts quantumBoundUs), the
//     quantum read from the run's report (VmConfig.quantumUs) and every storm vCPU runnable: a
//     storm vCPU never halts while it sends;
//   - the coalesced share (IPIs that found their vector already pending / IPIs sent) reported.
// The "before" column: the same storms with one host CPU per vCPU (hostCpus = vCPUs, one OS thread
// per vCPU, the model before host CPUs), so the table shows what host CPUs changed.
// BENCH_STORM_BEFORE: which sizes get the "before" run (default all; 'none'; e.g. '8,32' to leave
// out the 255-thread VM, which takes a minute or more to start on 2 cores). BENCH_QUICK=1: 64
// vCPUs instead of 255, shorter windows.

import { main, repeat, type Row } from './lib/harness.js';
import { runScenarioSteadyState, type SteadyStateResult } from './lib/guest.js';
import { coalescedShare, quantumBoundUs, sizesFromEnvironment } from './lib/host-cpus.js';
import { finishBench, goalResult, QUICK, us, type Measured } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'storm-host-cpus';
const HOST_CPUS = 2;
const SIZES = QUICK ? [8, 32, 64] : [8, 32, 255];
const BEFORE_SIZES = sizesFromEnvironment('BENCH_STORM_BEFORE', process.env['BENCH_STORM_BEFORE'], SIZES);
const WARMUP_MS = QUICK ? 100 : 300;
const WINDOW_MS = QUICK ? 300 : 1000;

/** One storm's figures into the row, under `prefix`. */
function record(row: Row, prefix: string, run: SteadyStateResult): void {
  const { report } = run;
  row[`${prefix}Rate`] = run.deliveredPerSecond / 1e3;
  row[`${prefix}P50`] = report.latencyNs === undefined ? Number.NaN : us(report.latencyNs.p50);
  row[`${prefix}P99`] = report.latencyNs === undefined ? Number.NaN : us(report.latencyNs.p99);
  row[`${prefix}Coalesced`] = 100 * coalescedShare(report.ipis);
  row[`${prefix}Startup`] = run.startupMs;
  row[`${prefix}Quantum`] = report.quantumUs;
  row[`${prefix}HostCpus`] = report.hostCpuCount;
  row[`${prefix}Bound`] = quantumBoundUs(report.quantumUs, report.vcpus, report.hostCpuCount);
}

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(
    BENCH,
    async (repetition) => {
      const row: Row = {};
      const seed = repetition + 1;
      record(row, 'two', await runScenarioSteadyState('storm', { vcpus: 2, seed }, WARMUP_MS, WINDOW_MS, { hostCpus: HOST_CPUS }));
      for (const vcpus of SIZES) {
        record(row, `after${vcpus}`, await runScenarioSteadyState('storm', { vcpus, seed }, WARMUP_MS, WINDOW_MS, { hostCpus: HOST_CPUS }));
      }
      for (const vcpus of BEFORE_SIZES) {
        record(row, `before${vcpus}`, await runScenarioSteadyState('storm', { vcpus, seed }, WARMUP_MS, WINDOW_MS, { hostCpus: vcpus }));
      }
      return row;
    },
    (row) => ({
      [`on ${HOST_CPUS} host CPUs`]:
        [2, ...SIZES].map((n) => `${n}:${formatValue(row[n === 2 ? 'twoRate' : `after${n}Rate`]!, 'k/s')}`).join(' ') + ' k/s',
      p50: [2, ...SIZES].map((n) => `${n}:${formatValue(row[n === 2 ? 'twoP50' : `after${n}P50`]!, 'µs')}`).join(' ') + ' µs',
      'one thread per vCPU': BEFORE_SIZES.map((n) => `${n}:${formatValue(row[`before${n}Rate`]!, 'k/s')}`).join(' ') + ' k/s',
    }),
  );
  const quantumUs = reps.column('twoQuantum');
  const notes = [
    `${HOST_CPUS} host CPUs, quantum ${[...new Set(quantumUs)].join('/')} µs (from the report); window ${WINDOW_MS} ms after every vCPU started + ${WARMUP_MS} ms; p50 and coalesced share over the whole run; 0 IPIs lost in every run`,
  ];
  // A "before" figure, where BENCH_STORM_BEFORE ran that size.
  const column = (name: string, label: string, unit: string): Measured[] =>
    name in reps.rows[0]! ? [{ label, unit, values: reps.column(name) }] : [];
  const goals = SIZES.flatMap((vcpus, index) => {
    const number = `12${'abc'[index]}`;
    const after = `after${vcpus}`;
    const before = `before${vcpus}`;
    return [
      goalResult({
        id: `storm-host-cpus-${vcpus}-rate`,
        title: `${number}. storm, ${vcpus} vCPUs on ${HOST_CPUS} host CPUs: delivered IPIs/s`,
        figure: { label: `${vcpus} vCPUs, ${HOST_CPUS} host CPUs`, unit: 'k/s', values: reps.column(`${after}Rate`) },
        baseline: { label: `2 vCPUs, ${HOST_CPUS} host CPUs (same repetition)`, unit: 'k/s', values: reps.column('twoRate') },
        goal: { text: '≥ 0.5× the 2-vCPU storm', kind: 'ratio-at-least', threshold: 0.5 },
        extras: [
          { label: 'coalesced share (coalesced / sent)', unit: '%', values: reps.column(`${after}Coalesced`) },
          { label: 'coalesced share, 2 vCPUs', unit: '%', values: reps.column('twoCoalesced') },
          ...column(`${before}Rate`, `before: one OS thread per vCPU (hostCpus = ${vcpus})`, 'k/s'),
          ...column(`${before}Coalesced`, 'before: coalesced share', '%'),
          { label: 'start-up, Vm.create → every vCPU loaded once', unit: 'ms', values: reps.column(`${after}Startup`) },
          ...column(`${before}Startup`, 'before: start-up', 'ms'),
        ],
        notes,
      }),
      goalResult({
        id: `storm-host-cpus-${vcpus}-latency`,
        title: `${number}. storm, ${vcpus} vCPUs on ${HOST_CPUS} host CPUs: send-to-handled p50`,
        figure: { label: "p50 (the storm's samples, all senders)", unit: 'µs', values: reps.column(`${after}P50`) },
        baseline: {
          label: `bound: 2 quanta × ${vcpus} runnable / ${HOST_CPUS} host CPUs`,
          unit: 'µs',
          values: reps.column(`${after}Bound`),
        },
        goal: { text: 'p50 within 2 quanta × (runnable vCPUs / host CPUs)', kind: 'ratio-at-most', threshold: 1 },
        extras: [
          { label: 'p99', unit: 'µs', values: reps.column(`${after}P99`) },
          { label: 'p50, 2 vCPUs', unit: 'µs', values: reps.column('twoP50') },
          ...column(`${before}P50`, `before: p50, one OS thread per vCPU`, 'µs'),
          ...column(`${before}P99`, 'before: p99', 'µs'),
        ],
        notes,
      }),
    ];
  });
  finishBench(BENCH, goals, reps, startedAt);
});
