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
    expect(json).toMatchObject({
      strategy: 'pct',
      expectedPoints: 42,
      expectedPointsFrom: 'measured',
      expectedPointsSeed: 1,
      firstFailure: { seed: 2 },
    });
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
    expect(JSON.parse(output)).toMatchObject({ expectedPoints: 500, expectedPointsFrom: 'option', expectedPointsSeed: null });
  });

  it('a failing measuring run is no measure (it runs on to the watchdog): the next seed is tried, up to 3; all failing, the fewest points', async () => {
    const failing = (points: number) =>
      report(1, { ...JSON.parse(lostWakeup().stdout), schedule: { switches: 5, pointsSeen: { IrrSet: points } } });
    const secondPasses = await explore([...TARGET, '--strategy', 'pct', '--runs', '5', '--jobs', '1', '--json'], (request) =>
      request.args.includes('--expected-points') ? passing() : request.seed === 1 ? failing(900) : measured(),
    );
    expect(secondPasses.requests.slice(0, 2).map((request) => request.seed)).toEqual([1, 2]);
    expect(JSON.parse(secondPasses.output)).toMatchObject({ expectedPoints: 42, expectedPointsFrom: 'measured', expectedPointsSeed: 2 });

    const allFail = await explore([...TARGET, '--strategy', 'pct', '--runs', '5', '--jobs', '1', '--no-shrink'], (request) =>
      request.args.includes('--expected-points') ? passing() : failing([0, 700, 300, 500][request.seed]!),
    );
    expect(allFail.requests.slice(0, 3).map((request) => request.seed)).toEqual([1, 2, 3]);
    expect(allFail.requests[3]!.args.slice(-2)).toEqual(['--expected-points', '300']);
    expect(allFail.output).toContain("k 300 (measured: the fewest points of the failing measuring runs, seed 2's)");

    // No more measuring runs than seeds to explore.
    const one = await explore([...TARGET, '--strategy', 'pct', '--runs', '1', '--no-shrink'], (request) =>
      request.args.includes('--expected-points') ? passing() : failing(800),
    );
    expect(one.requests.map((request) => request.args.includes('--expected-points'))).toEqual([false, true]);
  });

  it('measures --jobs seeds at a time, and takes the first passing seed in seed order', async () => {
    const { output, requests } = await explore([...TARGET, '--strategy', 'pct', '--runs', '4', '--jobs', '2', '--json'], (request) =>
      request.args.includes('--expected-points')
        ? passing()
        : report(0, { schedule: { switches: 5, pointsSeen: { IrrSet: request.seed === 1 ? 42 : 99 } } }),
    );
    expect(requests.slice(0, 2).map((request) => [request.seed, request.args.includes('--expected-points')])).toEqual([
      [1, false],
      [2, false],
    ]);
    expect(JSON.parse(output)).toMatchObject({ expectedPoints: 42, expectedPointsSeed: 1 });
  });

  it('measuring runs without a schedule leave the runs their default k, and it says so', async () => {
    const { output, requests } = await explore([...TARGET, '--strategy', 'pct', '--runs', '1', '--no-shrink'], () => passing());
    expect(requests.every((request) => !request.args.includes('--expected-points'))).toBe(true);
    expect(output).toContain("strategy pct, k the runs' default (not measured); seeds 1-1");
  });

  it('random has no k: no measuring run, null in --json; --expected-points with random is bad input', async () => {
    const { output, requests } = await explore([...TARGET, '--runs', '2', '--json'], () => passing());
    expect(requests).toHaveLength(2);
    expect(JSON.parse(output)).toMatchObject({ expectedPoints: null, expectedPointsFrom: null, expectedPointsSeed: null });
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
