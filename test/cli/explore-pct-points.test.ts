// `avic-smp explore --strategy pct` and PCT's k (src/explore/measure-points.ts): without
// --expected-points one run of the first seed measures it, and every seed's run (and its replay
// command) carries it; given, it is handed on as it is; it needs --strategy pct.

import { describe, expect, it } from 'vitest';
import { BadInput } from '../../src/cli/bad-input.js';
import { pointsTotal } from '../../src/explore/measure-points.js';
import { explore, lostWakeup, passing, report } from '../support/explore-fake.js';

const TARGET = ['--pattern', 'storm', '--vcpus', '2'];
/** A passing report whose schedule passed 30 + 12 scheduling points. */
const measured = () => report(0, { schedule: { switches: 5, pointsSeen: { IrrSet: 30, Spin: 12 } } });

describe('explore --strategy pct: PCT k', () => {
  it('measures k with a first run of the first seed, then gives it to every seed and to the replay command', async () => {
    const { status, output, requests } = await explore(
      [...TARGET, '--strategy', 'pct', '--runs', '3', '--jobs', '1', '--no-shrink'],
      (request) => (!request.args.includes('--expected-points') ? measured() : request.seed === 8 ? lostWakeup() : passing()),
    );
    // The measuring run: seed 1 with the runs' default k; then seeds 1, 2, 3 with k = 42.
    expect(requests[0]!.args).toEqual([...['stress', ...TARGET], '--deterministic', '--schedule-seed', '1', '--strategy', 'pct']);
    expect(requests.slice(1).map((request) => request.args.slice(-2))).toEqual([
      ['--expected-points', '42'],
      ['--expected-points', '42'],
      ['--expected-points', '42'],
    ]);
    expect(status).toBe(0);
    expect(output).toContain("strategy pct, k 42 (measured: the points seed 1's run passed); seeds 1-3");
  });

  it('a failure replays with the measured k; --json says where k came from', async () => {
    const { output, requests } = await explore(
      [...TARGET, '--strategy', 'pct', '--runs', '2', '--jobs', '1', '--no-shrink', '--json'],
      (request) => (!request.args.includes('--expected-points') ? measured() : request.seed === 2 ? lostWakeup() : passing()),
    );
    const json = JSON.parse(output);
    expect(json).toMatchObject({ strategy: 'pct', expectedPoints: 42, expectedPointsFrom: 'measured', firstFailure: { seed: 2 } });
    expect(json.firstFailure.replay.command).toMatch(/--schedule-seed 2 --strategy pct --expected-points 42$/);
    expect(requests).toHaveLength(3);
  });

  it('--expected-points k is handed on as given, with no measuring run', async () => {
    const { output, requests } = await explore([...TARGET, '--strategy', 'pct', '--expected-points', '500', '--runs', '2', '--json'], () =>
      passing(),
    );
    expect(requests.map((request) => request.args.slice(-2))).toEqual([
      ['--expected-points', '500'],
      ['--expected-points', '500'],
    ]);
    expect(JSON.parse(output)).toMatchObject({ expectedPoints: 500, expectedPointsFrom: 'option' });
  });

  it('a measuring run without a schedule leaves the runs their default k, and says so', async () => {
    const { output, requests } = await explore([...TARGET, '--strategy', 'pct', '--runs', '1', '--no-shrink'], () => passing());
    expect(requests.every((request) => !request.args.includes('--expected-points'))).toBe(true);
    expect(output).toContain("strategy pct, k the runs' default (not measured); seeds 1-1");
  });

  it('random has no k: no measuring run, null in --json; --expected-points with random is bad input', async () => {
    const { output, requests } = await explore([...TARGET, '--runs', '2', '--json'], () => passing());
    expect(requests).toHaveLength(2);
    expect(JSON.parse(output)).toMatchObject({ expectedPoints: null, expectedPointsFrom: null });
    await expect(explore([...TARGET, '--expected-points', '9'], () => passing())).rejects.toThrow(
      new BadInput("--expected-points is PCT's k: it needs --strategy pct"),
    );
  });

  it("pointsTotal sums a report's schedule.pointsSeen; none without a schedule", () => {
    expect(pointsTotal(JSON.stringify({ schedule: { pointsSeen: { IrrSet: 3, Halt: 4 } } }))).toBe(7);
    expect(pointsTotal(JSON.stringify({ schedule: { switches: 2 } }))).toBeUndefined();
    expect(pointsTotal('not json')).toBeUndefined();
    expect(pointsTotal('null')).toBeUndefined();
  });
});
