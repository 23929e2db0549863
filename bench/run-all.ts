// `npm run bench`: builds (the npm script), then runs every bench in its own Node process, one after
// the other (each process measures its own raw baselines beside its emulator figures), and prints
// the summary table that BENCHMARKS.md is written from. Results: bench/results/<bench>.json and
// bench/results/summary.md. `node dist/bench/run-all.js ack storm` runs only those.
// Environment: BENCH_REPS (default 5), BENCH_QUICK=1 (fewer rounds), BENCH_REPS_255 (default 1),
// BENCH_REPS_MEMSLOT (memslot-update, default 2), BENCH_STORM_BEFORE (storm-host-cpus: the sizes that
// also run with one OS thread per vCPU, default all, 'none'), BENCH_STARTUP_BEFORE=0 (startup: skip
// the 255-thread "before" VM),
// BENCH_QUIET_MAX_MS (how long to wait for a quiet machine before each repetition, default 4000),
// BENCH_STRICT=1 (a missed goal fails the bench with status 2; by default only a failed measurement does).

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULTS_DIR, type BenchResult, type GoalResult } from './lib/report.js';
import { machineNotes } from './lib/machine.js';
import { formatSpread, formatValue } from './lib/stats.js';

const BENCHES = [
  'ack',
  'ping-pong',
  'sync-call',
  'wake',
  'broadcast',
  'storm',
  'storm-host-cpus',
  'startup',
  'interpreter',
  'scale-255',
  'x2avic-512',
  'memslot-update',
  'lockdep-overhead',
  'deterministic',
] as const;

function cell(goal: GoalResult): string[] {
  const figure = formatSpread(goal.figure.spread, goal.figure.unit);
  const baseline = goal.baseline === undefined ? '–' : `${goal.baseline.label}: ${formatSpread(goal.baseline.spread, goal.baseline.unit)}`;
  const ratio =
    goal.ratio === undefined
      ? '–'
      : `${formatValue(goal.ratio.ofMedians, '×')}× (${formatValue(goal.ratio.perRepetition.min, '×')}–${formatValue(goal.ratio.perRepetition.max, '×')})`;
  const verdict =
    goal.skipped !== undefined
      ? `skipped: ${goal.skipped}`
      : goal.met
        ? 'met'
        : goal.missFactor === undefined
          ? 'MISSED'
          : `MISSED ×${formatValue(goal.missFactor, '×')}`;
  return [goal.title, figure, baseline, ratio, goal.goal.text, verdict];
}

const requested = process.argv.slice(2);
const names = requested.length > 0 ? BENCHES.filter((name) => requested.includes(name)) : [...BENCHES];
const here = fileURLToPath(new URL('.', import.meta.url));
const began = Date.now();
const outcomes: { name: string; status: number | null; seconds: number }[] = [];
for (const name of names) {
  console.log(`\n=== ${name} ===`);
  const t0 = performance.now();
  const child = spawnSync(process.execPath, [join(here, `${name}.bench.js`)], { stdio: 'inherit', env: process.env });
  outcomes.push({ name, status: child.status, seconds: (performance.now() - t0) / 1000 });
}

const rows: string[][] = [];
const loads: string[] = [];
const warned: string[] = [];
for (const name of names) {
  const file = join(RESULTS_DIR, `${name}.json`);
  if (!existsSync(file) || statSync(file).mtimeMs < began) {
    rows.push([`${name}: no result (the bench failed; see above)`, '', '', '', '', 'FAILED']);
    continue;
  }
  const result = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
  for (const goal of result.goals) rows.push(cell(goal));
  warned.push(...(result.warnings ?? []));
  const perRepetition = (values: readonly number[]) => values.map((value) => (Number.isFinite(value) ? value.toFixed(2) : '?')).join('/');
  loads.push(
    `${name} ${perRepetition(result.otherLoad)}${(result.steal ?? []).length === 0 ? '' : ` (steal ${perRepetition(result.steal)})`}`,
  );
}
const machine = machineNotes();
const table = [
  `Run ${machine.date}, emulator ${machine.commit}: Node ${machine.node} (V8 ${machine.v8}), ${machine.cpus} CPUs (${machine.cpuModel}), kernel ${machine.kernel}${machine.cpuidle === undefined ? '' : `, cpuidle ${machine.cpuidle}`}.`,
  '',
  '| goal | figure: median (range of runs) | baseline, same process | ratio | goal | verdict |',
  '|---|---|---|---|---|---|',
  ...rows.map((row) => `| ${row.join(' | ')} |`),
  '',
  `Other processes' load per repetition (cores), and the hypervisor's steal: ${loads.join('; ')}.`,
  ...(warned.length === 0 ? [] : ['', `Warnings (recorded, not fatal): ${warned.join('; ')}.`]),
  `Bench wall times: ${outcomes.map((outcome) => `${outcome.name} ${outcome.seconds.toFixed(0)} s${outcome.status === 0 ? '' : ` (exit ${outcome.status})`}`).join(', ')}; total ${((Date.now() - began) / 1000).toFixed(0)} s.`,
].join('\n');
console.log(`\n${table}`);
writeFileSync(join(RESULTS_DIR, 'summary.md'), `${table}\n`);
process.exitCode = outcomes.every((outcome) => outcome.status === 0) ? 0 : 1;
