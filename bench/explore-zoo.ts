// Runs to find each bug of the zoo (docs/bug-zoo.md) with `avic-smp explore`, per schedule strategy,
// and each fixed twin clean over at least as many seeds. Standalone: `node dist/bench/explore-zoo.js
// [bug ...]` after `npm run build`; it prints the table BENCHMARKS.md ("Issue 12: runs to find each
// zoo bug") is written from and keeps bench/results/explore-zoo.json.
//
// One exploration = `explore <target> --inject BUG --strategy S --seed-start S0 --runs CAP --jobs 2
// --no-shrink --json`; the i-th exploration starts at seed 1 + 1000 i, so the explorations see
// disjoint seeds. Runs to find = the failing seed's index in the exploration (1 = its first seed);
// an exploration that ends without a failure counts as "not found in CAP". Wall time is the whole
// explore process (its child runs, Node start-up and the kill of the run still in flight included).
// Environment: ZOO_EXPLORATIONS (default 10), ZOO_RUNS_CAP (default 50), ZOO_TWIN_MIN (fewest seeds a
// twin runs, default 10), ZOO_STRATEGIES (default "random,pct").

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineNotes } from './lib/machine.js';
import { REPO_ROOT, RESULTS_DIR } from './lib/report.js';

interface ZooTarget {
  readonly bug: string;
  /** The explore target and the subcommand options, without --inject. */
  readonly target: readonly string[];
  /** Fewer explorations than ZOO_EXPLORATIONS: why (printed under the table). */
  readonly fewer?: { readonly explorations: number; readonly why: string };
  readonly runTimeoutSeconds?: number;
  /** Fewest seeds the twin runs when not ZOO_TWIN_MIN (a passing run is slow): never fewer than the max runs to find. */
  readonly twinMin?: { readonly seeds: number; readonly why: string };
}

const HALTER_SENDER = ['--pattern', 'halter-sender', '--vcpus', '2', '--ipis', '200', '--no-halt-poll'];

const ZOO: readonly ZooTarget[] = [
  { bug: 'erratum-1235', target: HALTER_SENDER },
  { bug: 'blocking-no-recheck', target: HALTER_SENDER },
  { bug: 'isrunning-before-irr', target: HALTER_SENDER },
  { bug: 'not-running-reemulated', target: ['--pattern', 'ack-halt', '--vcpus', '2', '--ipis', '200', '--no-halt-poll'] },
  {
    bug: 'x2avic-logical-kick',
    target: ['examples/x2apic-logical-halter.s'],
    // A failing run ends at the watchdog's lost-wake-up report: ~4 s, a passing run ~1 s (since b49f4b6).
    runTimeoutSeconds: 180,
  },
  {
    bug: 'invalid-target-ignored',
    target: ['examples/mixed-logical-mask.s'],
    // The guest waits out its 1 s (virtual) round before it reports the missing IPI: ~35 s a run.
    fewer: { explorations: 3, why: 'one failing run takes ~35 s (the guest waits out a 1 s virtual round); no race decides it' },
    runTimeoutSeconds: 180,
    twinMin: { seeds: 2, why: 'a passing run (1000 rounds) is slow under a deterministic schedule' },
  },
];

const EXPLORATIONS = Math.max(1, Number(process.env['ZOO_EXPLORATIONS'] ?? 10));
const RUNS_CAP = Math.max(1, Number(process.env['ZOO_RUNS_CAP'] ?? 50));
const TWIN_MIN = Math.max(1, Number(process.env['ZOO_TWIN_MIN'] ?? 10));
const STRATEGIES = (process.env['ZOO_STRATEGIES'] ?? 'random,pct').split(',').filter((s) => s === 'random' || s === 'pct');
const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'bin.js');

interface ExploreJson {
  readonly seedsRun: number;
  readonly failures: number;
  readonly ok: boolean;
  readonly firstFailure: { readonly seed: number; readonly signature: string } | null;
  /** PCT's k every run was given (measured by explore's first run unless --expected-points). */
  readonly expectedPoints?: number | null;
}

interface Exploration {
  readonly seedStart: number;
  /** The failing seed's index (1-based); null: not found within the cap. */
  readonly runsToFind: number | null;
  readonly signature: string | null;
  readonly seconds: number;
  /** PCT's k the exploration used (null for random). */
  readonly expectedPoints: number | null;
}

interface TwinRun {
  readonly seeds: number;
  readonly failures: number;
  readonly signature: string | null;
  readonly seconds: number;
}

function explore(args: readonly string[], timeoutSeconds: number): { json: ExploreJson; seconds: number } {
  const t0 = performance.now();
  const child = spawnSync(process.execPath, [CLI, 'explore', ...args, '--jobs', '2', '--no-shrink', '--json'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // Bounded: every run is bounded by --run-timeout; this bounds the whole exploration too.
    timeout: timeoutSeconds * 1000,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (child.status !== 0 && child.status !== 1) {
    throw new Error(`explore ${args.join(' ')}: exit ${child.status ?? child.signal}: ${child.stderr.split('\n')[0] ?? ''}`);
  }
  return { json: JSON.parse(child.stdout) as ExploreJson, seconds };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

const fmt = (value: number): string => (Number.isInteger(value) ? String(value) : value.toFixed(1));
const range = (values: readonly number[]): string =>
  values.length === 0 ? '–' : `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;

const requested = process.argv.slice(2);
const zoo = requested.length > 0 ? ZOO.filter((entry) => requested.includes(entry.bug)) : ZOO;
const results: { bug: string; strategy: string; target: readonly string[]; explorations: Exploration[]; twin: TwinRun }[] = [];
const notes: string[] = [];
for (const entry of zoo) {
  const explorations = Math.min(EXPLORATIONS, entry.fewer?.explorations ?? EXPLORATIONS);
  if (explorations < EXPLORATIONS && entry.fewer !== undefined)
    notes.push(`${entry.bug}: ${explorations} explorations per strategy: ${entry.fewer.why}`);
  const runTimeout = entry.runTimeoutSeconds ?? 60;
  for (const strategy of STRATEGIES) {
    const found: Exploration[] = [];
    for (let i = 0; i < explorations; i++) {
      const seedStart = 1 + 1000 * i;
      const args = [
        ...entry.target,
        '--inject',
        entry.bug,
        '--strategy',
        strategy,
        '--seed-start',
        String(seedStart),
        '--runs',
        String(RUNS_CAP),
      ];
      const { json, seconds } = explore([...args, '--run-timeout', String(runTimeout)], runTimeout * RUNS_CAP);
      const runsToFind = json.firstFailure === null ? null : json.firstFailure.seed - seedStart + 1;
      const expectedPoints = json.expectedPoints ?? null;
      found.push({ seedStart, runsToFind, signature: json.firstFailure?.signature ?? null, seconds, expectedPoints });
      console.log(
        `${entry.bug} ${strategy} seed-start ${seedStart}: ${runsToFind === null ? `not found in ${RUNS_CAP}` : `found at run ${runsToFind}: ${json.firstFailure?.signature}`} (${seconds.toFixed(1)} s${expectedPoints === null ? '' : `, k ${expectedPoints}`})`,
      );
    }
    const maxFound = Math.max(0, ...found.map((e) => e.runsToFind ?? 0));
    const twinSeeds = Math.max(entry.twinMin?.seeds ?? TWIN_MIN, maxFound);
    if (entry.twinMin !== undefined && strategy === STRATEGIES[0])
      notes.push(`${entry.bug}-fixed: ${twinSeeds} seeds per strategy (at least the max runs to find): ${entry.twinMin.why}`);
    const twinArgs = [
      ...entry.target,
      '--inject',
      `${entry.bug}-fixed`,
      '--strategy',
      strategy,
      '--seed-start',
      '1',
      '--runs',
      String(twinSeeds),
    ];
    const { json, seconds } = explore([...twinArgs, '--run-timeout', String(runTimeout)], runTimeout * twinSeeds);
    const twin = { seeds: json.seedsRun, failures: json.failures, signature: json.firstFailure?.signature ?? null, seconds };
    console.log(
      `${entry.bug}-fixed ${strategy}: ${twin.failures} failure(s) in ${twin.seeds} seeds${twin.signature === null ? '' : `: ${twin.signature}`} (${seconds.toFixed(1)} s)`,
    );
    results.push({ bug: entry.bug, strategy, target: entry.target, explorations: found, twin });
    const ks = found.flatMap((e) => (e.expectedPoints === null ? [] : [e.expectedPoints]));
    if (ks.length > 0) notes.push(`${entry.bug} ${strategy}: k (the points of each exploration's measuring run) ${range(ks)}`);
  }
}

const lines = [
  `| bug | explore target (+ \`--inject BUG\`) | strategy | explorations | found | runs to find: median (range) | wall s per exploration: median (range) | fixed twin: failures / seeds |`,
  '|---|---|---|---|---|---|---|---|',
];
for (const result of results) {
  const found = result.explorations.filter((e) => e.runsToFind !== null);
  const runs = found.map((e) => e.runsToFind ?? 0);
  const notFound = result.explorations.length - found.length;
  lines.push(
    `| \`${result.bug}\` | \`${result.target.join(' ')}\` | ${result.strategy} | ${result.explorations.length} | ${found.length}${notFound > 0 ? ` (${notFound} not found in ${RUNS_CAP})` : ''} | ${range(runs)} | ${range(result.explorations.map((e) => e.seconds))} | ${result.twin.failures} / ${result.twin.seeds} |`,
  );
}
const machine = machineNotes();
const table = [
  ...lines,
  '',
  ...notes.map((note) => `- ${note}`),
  `- ${machine.cpus} cores (${machine.cpuModel}), shared; Node ${machine.node}; commit ${machine.commit}; ${machine.date}`,
  `- explorations: --runs ${RUNS_CAP} --jobs 2 --no-shrink, seed starts 1, 1001, 2001, ...; twins: seeds 1..max(${TWIN_MIN}, max runs to find)`,
].join('\n');
console.log(`\n${table}`);
mkdirSync(RESULTS_DIR, { recursive: true });
writeFileSync(
  join(RESULTS_DIR, 'explore-zoo.json'),
  `${JSON.stringify({ machine, runsCap: RUNS_CAP, twinMin: TWIN_MIN, results, notes }, null, 2)}\n`,
);
writeFileSync(join(RESULTS_DIR, 'explore-zoo.md'), `${table}\n`);
const twinsClean = results.every((r) => r.twin.failures === 0);
process.exitCode = twinsClean ? 0 : 1;
