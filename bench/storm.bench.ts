// Goal 6: the IPI storm, every vCPU sending fixed IPIs to seeded random other vCPUs, all to all,
// IF = 1 (the scenario library's `storm`, time-based; its checks must pass). Throughput = interrupts delivered per second over a steady-state
// window, read from the vCPUs' own counters (start-up and teardown excluded); no IPI may be lost.
// Baselines in this process: the raw "poll" storm (bench/baselines/raw.ts) (Atomics.or into the other's IRR word,
// exchange-and-popcount own) with 2, 8 and 32 workers. Goals: 2 vCPUs >= 0.3x raw 2 workers;
// 8 and 32 vCPUs >= 0.5x the 2-vCPU emulator throughput of the same repetition.

import { measureAtomicsStorm } from './baselines/raw.js';
import { main, repeat } from './lib/harness.js';
import { runScenarioSteadyState } from './lib/guest.js';
import { finishBench, goalResult, QUICK } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'storm';
const SIZES = [2, 8, 32] as const;
const RAW_WINDOW_MS = QUICK ? 200 : 500;
const WARMUP_MS = QUICK ? 100 : 300;
const WINDOW_MS = QUICK ? 300 : 1000;

main(async () => {
  const startedAt = performance.now();
  const reps = await repeat(
    BENCH,
    async (repetition) => {
      const row: Record<string, number> = {};
      for (const workers of SIZES) {
        const raw = await measureAtomicsStorm({ workers, windowMs: RAW_WINDOW_MS, seed: repetition + 1 });
        row[`raw${workers}`] = raw.deliveredPerSecond / 1e6;
        row[`rawCoalesced${workers}`] = raw.coalescedPerDelivered;
      }
      for (const vcpus of SIZES) {
        const run = await runScenarioSteadyState('storm', { vcpus, seed: repetition + 1 }, WARMUP_MS, WINDOW_MS);
        row[`emu${vcpus}`] = run.deliveredPerSecond / 1e6;
        row[`emuCoalesced${vcpus}`] = (run.sentPerSecond - run.deliveredPerSecond) / Math.max(1, run.deliveredPerSecond);
        row[`emuSent${vcpus}`] = run.sentPerSecond / 1e6;
        row[`emuMips${vcpus}`] = run.instructionsPerSecond / 1e6;
        row[`startup${vcpus}`] = run.startupMs;
      }
      return row;
    },
    (row) => ({
      emulator: SIZES.map((n) => `${n}:${formatValue(row[`emu${n}`]!, 'M/s')}`).join(' ') + ' M/s',
      raw: SIZES.map((n) => `${n}:${formatValue(row[`raw${n}`]!, 'M/s')}`).join(' ') + ' M/s',
    }),
  );
  const notes = [
    `raw window ${RAW_WINDOW_MS} ms; emulator window ${WINDOW_MS} ms after every vCPU started + ${WARMUP_MS} ms; 0 IPIs lost in every run`,
  ];
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'storm-2',
        title: '6a. IPI storm, 2 vCPUs: delivered IPIs/s',
        figure: { label: 'emulator, 2 vCPUs', unit: 'M/s', values: reps.column('emu2') },
        baseline: { label: 'raw Atomics storm, 2 workers', unit: 'M/s', values: reps.column('raw2') },
        goal: { text: '≥ 0.3× the raw two-worker storm', kind: 'ratio-at-least', threshold: 0.3 },
        extras: [
          { label: 'emulator coalesced per delivered', unit: '', values: reps.column('emuCoalesced2') },
          { label: 'raw coalesced per delivered', unit: '', values: reps.column('rawCoalesced2') },
        ],
        notes,
      }),
      ...([8, 32] as const).map((vcpus) =>
        goalResult({
          id: `storm-${vcpus}`,
          title: `6${vcpus === 8 ? 'b' : 'c'}. IPI storm, ${vcpus} vCPUs on 2 cores: delivered IPIs/s`,
          figure: { label: `emulator, ${vcpus} vCPUs`, unit: 'M/s', values: reps.column(`emu${vcpus}`) },
          baseline: { label: 'emulator, 2 vCPUs (same repetition)', unit: 'M/s', values: reps.column('emu2') },
          goal: { text: '≥ 0.5× the 2-vCPU emulator throughput', kind: 'ratio-at-least', threshold: 0.5 },
          extras: [
            { label: `raw Atomics storm, ${vcpus} workers`, unit: 'M/s', values: reps.column(`raw${vcpus}`) },
            { label: `emulator coalesced per delivered`, unit: '', values: reps.column(`emuCoalesced${vcpus}`) },
            { label: `start-up, Vm.create → every vCPU running`, unit: 'ms', values: reps.column(`startup${vcpus}`) },
          ],
          notes,
        }),
      ),
    ],
    reps,
    startedAt,
  );
});
