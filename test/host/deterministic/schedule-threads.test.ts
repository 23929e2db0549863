// The schedule with real worker threads as fake participants (test/support/schedule-harness.ts):
// the same seed gives the same order and hash whatever the OS does, waits end by a word change or by
// their virtual deadline, PCT with d = 1 and maxSwitches = 0 switch only where they must, and an
// abort ends every waiting thread with an error. Needs `npm run build` (the workers load dist/).
import { afterAll, describe, expect, it } from 'vitest';
import { SchedulingPoint } from '../../../src/host/host-thread.js';
import { VIRTUAL_ORIGIN_MS, type ScheduleOptions } from '../../../src/host/deterministic/deterministic-schedule.js';
import { changesOf, closeFakePool, points, runFakes, sharedRegion, startFakes, type Step } from '../../support/schedule-harness.js';

afterAll(closeFakePool);

/** Three participants that interleave points, advance, and meet at a flag word. */
function mixedPrograms(): Step[][] {
  const work = (kind: number): Step[] =>
    Array.from({ length: 20 }, (_, index) => (index % 3 === 0 ? { op: 'advance', ns: 1000 } : { op: 'point', kind }) as Step);
  return [
    [...work(SchedulingPoint.IrrSet), { op: 'store', word: 0, value: 1 }, ...work(SchedulingPoint.Doorbell)],
    [{ op: 'wait', word: 0, expected: 0, timeoutMs: 5 }, ...work(SchedulingPoint.IsRunningRead)],
    [...work(SchedulingPoint.Spin), { op: 'wait', word: 1, expected: 0, timeoutMs: 1 }, ...work(SchedulingPoint.Eoi)],
  ];
}

describe('a seed decides the schedule', () => {
  it.each(['random', 'pct'] as const)('%s: 10 runs of one seed give one order of steps and one hash', async (strategy) => {
    const options: ScheduleOptions = { seed: 42, strategy, depth: 3, expectedPoints: 60 };
    const runs = [];
    for (let run = 0; run < 10; run++) runs.push(await runFakes(options, mixedPrograms()));
    const first = runs[0]!;
    expect(first.results.every((result) => result.ok)).toBe(true);
    expect(first.summary.switches).toBeGreaterThan(2);
    for (const run of runs.slice(1)) {
      expect(run.log).toEqual(first.log);
      expect(run.summary).toEqual(first.summary);
      expect(run.results).toEqual(first.results);
    }
  });

  it.each(['random', 'pct'] as const)('%s: two seeds give two hashes', async (strategy) => {
    const one = await runFakes({ seed: 1, strategy, expectedPoints: 60 }, mixedPrograms());
    const two = await runFakes({ seed: 2, strategy, expectedPoints: 60 }, mixedPrograms());
    expect(one.summary.scheduleHash).toMatch(/^[0-9a-f]{16}$/);
    expect(two.summary.scheduleHash).not.toBe(one.summary.scheduleHash);
  });
});

describe('waits in virtual time', () => {
  // Participant 1 first waits for participant 0's flag (word 3), so whichever the seed runs first,
  // participant 0 reaches its wait at virtual time 0.
  it('a timed wait nobody ends returns timed-out with the clock at its deadline, even while others run', async () => {
    for (const strategy of ['random', 'pct'] as const) {
      const run = await runFakes({ seed: 3, strategy }, [
        [
          { op: 'store', word: 3, value: 1 },
          { op: 'wait', word: 5, expected: 0, timeoutMs: 7 },
        ],
        [{ op: 'wait', word: 3, expected: 0, timeoutMs: 100 }, { op: 'advance', ns: 2_000_000 }, ...points(5, SchedulingPoint.IcrWrite)],
      ]);
      expect(run.results[0]).toEqual({ ok: true, waits: [['timed-out', VIRTUAL_ORIGIN_MS + 7]] });
      expect(run.summary.virtualNs).toBe(7_000_000);
    }
  });

  it('a wait ends as soon as another participant changes its word, before its deadline', async () => {
    for (const strategy of ['random', 'pct'] as const) {
      const run = await runFakes({ seed: 4, strategy }, [
        [
          { op: 'store', word: 3, value: 1 },
          { op: 'wait', word: 2, expected: 0, timeoutMs: 1000 },
        ],
        [
          { op: 'wait', word: 3, expected: 0, timeoutMs: 100 },
          { op: 'advance', ns: 3_000_000 },
          { op: 'store', word: 2, value: 9 },
          ...points(3, SchedulingPoint.WakeUp),
        ],
      ]);
      expect(run.results[0]).toEqual({ ok: true, waits: [['ok', VIRTUAL_ORIGIN_MS + 3]] });
      expect(run.summary.virtualNs).toBe(3_000_000);
    }
  });
});

describe('forced switches only', () => {
  const busy = (): Step[][] => [
    points(25, SchedulingPoint.IrrSet),
    points(25, SchedulingPoint.LockAcquire),
    points(25, SchedulingPoint.Eoi),
  ];

  it('PCT with d = 1 runs each participant to its end (no change point, nothing to preempt)', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const run = await runFakes({ seed, strategy: 'pct', depth: 1 }, busy());
      expect(changesOf(run.log)).toBe(2);
      expect(run.summary.preemptions).toBe(0);
    }
  });

  it('PCT with d = 3 does preempt (the change points fall inside the run)', async () => {
    const run = await runFakes({ seed: 1, strategy: 'pct', depth: 3, expectedPoints: 40 }, busy());
    expect(run.summary.preemptions).toBeGreaterThan(0);
  });

  it('maxSwitches = 0: random switches only when the holder waits or finishes', async () => {
    const programs = busy();
    programs[1] = [{ op: 'wait', word: 3, expected: 0, timeoutMs: 1 }, ...programs[1]!];
    const run = await runFakes({ seed: 9, strategy: 'random', maxSwitches: 0 }, programs);
    expect(run.summary.preemptions).toBe(0);
    expect(run.summary.switches).toBeLessThanOrEqual(3);
    const unlimited = await runFakes({ seed: 9, strategy: 'random' }, busy());
    expect(unlimited.summary.preemptions).toBeGreaterThan(10);
  });

  it('maxSwitches = 0: a quantum end still yields, uncounted (a guest polling without PAUSE must let the others run)', async () => {
    // Participant 0 polls word 4 at quantum ends only; participant 1 sets it after a wait that makes
    // participant 0 hold the baton first.
    const poll = { op: 'pollUntil', word: 4, kind: SchedulingPoint.QuantumEnd } as const;
    const run = await runFakes({ seed: 9, strategy: 'random', maxSwitches: 0 }, [
      [{ op: 'store', word: 3, value: 1 }, poll],
      [
        { op: 'wait', word: 3, expected: 0, timeoutMs: 100 },
        { op: 'store', word: 4, value: 1 },
      ],
    ]);
    expect(run.results.every((result) => result.ok)).toBe(true);
    expect(run.summary.preemptions).toBe(0);
  });

  it('maxSwitches = 2 allows two preemptions and no more', async () => {
    const run = await runFakes({ seed: 9, strategy: 'random', maxSwitches: 2 }, busy());
    expect(run.summary.preemptions).toBe(2);
  });
});

describe('abort', () => {
  it('ends every participant waiting for the baton with one line naming the reason and the schedule state', async () => {
    // Three participants, two started: the first decision waits for the third, which never comes.
    const region = sharedRegion(3);
    region.schedule.initialise({ seed: 11, strategy: 'pct' });
    const fakes = startFakes(region, 3, [points(3, SchedulingPoint.Halt), points(3, SchedulingPoint.Halt)]);
    // Before or after they start, whichever: a started one is waiting for a first decision that never comes.
    region.schedule.abort('the test gave up');
    const results = await fakes;
    for (const result of results) {
      expect(result.ok).toBe(false);
      expect(result.message).toMatch(
        /^deterministic schedule aborted: the test gave up \(seed 11, pct d=3, decision 0, .*participants: .*2 not started\)$/,
      );
      expect(result.message).not.toContain('\n');
    }
  });
});
