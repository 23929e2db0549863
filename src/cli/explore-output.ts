// What `avic-smp explore` prints: the --json object (docs/json.md) and the text made from it: the
// first failure with its signature, detail and replay command, the shrunk replay, then the summary.

import type { ExplorePlan } from '../explore/explore-plan.js';
import type { ExpectedPoints } from '../explore/measure-points.js';
import { replayCommand } from '../explore/explore-plan.js';
import type { ExploreSeedsResult, SignatureCount } from '../explore/explore-seeds.js';
import type { ShrinkResult } from '../explore/shrink-schedule.js';

export interface ExploreReplay {
  /** The command line, shell-quoted, starting `avic-smp`. */
  readonly command: string;
  /** The same as an argument list (after `avic-smp`). */
  readonly args: readonly string[];
}

export interface ExploreJson {
  readonly subcommand: ExplorePlan['subcommand'];
  readonly target: readonly string[];
  readonly strategy: ExplorePlan['strategy'];
  readonly depth: number | null;
  /** PCT's k every run was given; null for random, or when the runs kept their default (expectedPointsFrom says why). */
  readonly expectedPoints: number | null;
  /** Where k came from (ExpectedPointsFrom); null for random. */
  readonly expectedPointsFrom: ExpectedPoints['from'] | null;
  /** The seed whose measuring run gave k; null unless measured. */
  readonly expectedPointsSeed: number | null;
  readonly maxSwitches: number | null;
  readonly seedStart: number;
  readonly runs: number;
  readonly jobs: number;
  readonly keepGoing: boolean;
  readonly seedsRun: number;
  readonly failures: number;
  readonly stoppedEarly: boolean;
  readonly durationSeconds: number;
  readonly runsPerSecond: number;
  readonly signatures: readonly SignatureCount[];
  readonly firstFailure: {
    readonly seed: number;
    readonly kind: string;
    readonly signature: string;
    readonly detail: string;
    readonly also: readonly string[];
    readonly switches: number | null;
    readonly replay: ExploreReplay;
  } | null;
  readonly shrink: {
    readonly fromSwitches: number;
    readonly toSwitches: number;
    readonly runs: number;
    readonly replay: ExploreReplay;
  } | null;
  /** Why the failing schedule was not shrunk; null when it was, or when nothing failed. */
  readonly shrinkSkipped: string | null;
  readonly ok: boolean;
}

export interface ExploreRunSettings {
  readonly plan: ExplorePlan;
  readonly seedStart: number;
  readonly runs: number;
  readonly jobs: number;
  readonly keepGoing: boolean;
  /** PCT's k and where it came from; undefined for random. */
  readonly expectedPoints?: ExpectedPoints;
}

const replay = (args: readonly string[]): ExploreReplay => ({ command: replayCommand(args), args: [...args] });

export function exploreJson(
  settings: ExploreRunSettings,
  result: ExploreSeedsResult,
  durationSeconds: number,
  firstReplayArgs: readonly string[] | undefined,
  shrink: ShrinkResult | string | undefined,
): ExploreJson {
  const first = result.failures[0];
  return {
    subcommand: settings.plan.subcommand,
    target: settings.plan.target,
    strategy: settings.plan.strategy,
    depth: settings.plan.depth ?? null,
    expectedPoints: settings.expectedPoints?.k ?? null,
    expectedPointsFrom: settings.expectedPoints?.from ?? null,
    expectedPointsSeed: settings.expectedPoints?.seed ?? null,
    maxSwitches: settings.plan.maxSwitches ?? null,
    seedStart: settings.seedStart,
    runs: settings.runs,
    jobs: settings.jobs,
    keepGoing: settings.keepGoing,
    seedsRun: result.seedsRun,
    failures: result.failures.length,
    stoppedEarly: result.stoppedEarly,
    durationSeconds,
    runsPerSecond: durationSeconds > 0 ? result.seedsRun / durationSeconds : 0,
    signatures: result.signatures,
    firstFailure:
      first === undefined || firstReplayArgs === undefined
        ? null
        : {
            seed: first.seed,
            kind: first.failure.kind,
            signature: first.failure.signature,
            detail: first.failure.detail,
            also: first.failure.also,
            switches: first.failure.switches ?? null,
            replay: replay(firstReplayArgs),
          },
    shrink:
      shrink === undefined || typeof shrink === 'string'
        ? null
        : { fromSwitches: shrink.fromSwitches, toSwitches: shrink.toSwitches, runs: shrink.runs, replay: replay(shrink.args) },
    shrinkSkipped: typeof shrink === 'string' ? shrink : null,
    ok: result.failures.length === 0,
  };
}

const count = (value: number): string => value.toLocaleString('en-US');

/** How k was measured, for the header: which seed's run, and whether every measuring run failed. */
function measuredText(json: ExploreJson): string {
  if (json.expectedPointsFrom === 'measured') return ` (measured: the points seed ${json.expectedPointsSeed}'s run passed)`;
  if (json.expectedPointsFrom === 'measured-failing')
    return ` (measured: the fewest points of the failing measuring runs, seed ${json.expectedPointsSeed}'s)`;
  return '';
}

export function formatExplore(json: ExploreJson): string {
  const lines: string[] = [];
  const seeds = `seeds ${json.seedStart}-${json.seedStart + json.runs - 1}`;
  const k =
    json.expectedPointsFrom === null
      ? ''
      : json.expectedPoints === null
        ? ", k the runs' default (not measured)"
        : `, k ${count(json.expectedPoints)}${measuredText(json)}`;
  const schedule = `strategy ${json.strategy}${json.depth === null ? '' : `, depth ${json.depth}`}${k}`;
  lines.push(`explore: ${replayCommand(json.target).replace(/^avic-smp /, '')}; ${schedule}; ${seeds}; ${json.jobs} job(s)`);
  const first = json.firstFailure;
  if (first !== null) {
    lines.push('', `FAIL seed ${first.seed}: ${first.signature}`, `  ${first.detail}`);
    for (const other of first.also) lines.push(`  also: ${other}`);
    lines.push('', `replay: ${first.replay.command}`);
    if (json.shrink !== null) {
      const { fromSwitches, toSwitches, runs } = json.shrink;
      lines.push(
        `shrunk: ${count(fromSwitches)} -> ${count(toSwitches)} thread switches (${runs} re-run(s)): ${json.shrink.replay.command}`,
      );
    } else if (json.shrinkSkipped !== null) {
      lines.push(`not shrunk: ${json.shrinkSkipped}`);
    }
  }
  lines.push('');
  const stopped = json.stoppedEarly ? ' (stopped at the first failure; --keep-going runs them all)' : '';
  lines.push(
    `${json.ok ? 'OK' : 'FAILED'}: seeds run ${count(json.seedsRun)} of ${count(json.runs)}${stopped}, failures ${count(json.failures)}, ` +
      `distinct signatures ${json.signatures.length}, ${json.runsPerSecond.toFixed(2)} runs/s`,
  );
  if (json.signatures.length > 0) {
    lines.push('signatures:');
    const width = Math.max(...json.signatures.map((each) => String(each.count).length));
    for (const each of json.signatures)
      lines.push(`  ${String(each.count).padStart(width)}  ${each.signature}  (first seed ${each.firstSeed})`);
  }
  return lines.join('\n');
}
