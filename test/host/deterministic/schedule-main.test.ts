// The main thread as a participant (DeterministicMainHostThread) beside two fake workers: it holds the
// baton from start() until its first wait, waits without blocking its event loop, and its sleeps
// and waits end at deterministic virtual times, so the whole interleaving repeats with the seed.
import { afterAll, describe, expect, it } from 'vitest';
import { SchedulingPoint } from '../../../src/host/host-thread.js';
import { VIRTUAL_ORIGIN_MS, type ScheduleOptions } from '../../../src/host/deterministic/deterministic-schedule.js';
import { closeFakePool, points, readLog, sharedRegion, startFakes, type Step } from '../../support/schedule-harness.js';

afterAll(closeFakePool);

const MAIN = 0;

/** Main polls word 0 in 1 ms sleeps until the workers have both added to it; returns what it saw. */
async function runWithMain(options: ScheduleOptions): Promise<{ log: number[]; seen: number[]; hash: string; virtualNs: number }> {
  const region = sharedRegion(3);
  region.schedule.initialise(options);
  const main = region.schedule.mainThread(MAIN);
  await main.start();
  const worker = (kind: number): Step[] => [
    ...points(6, kind),
    { op: 'advance', ns: 1_500_000 },
    { op: 'store', word: 0, value: kind },
    ...points(6, kind),
  ];
  const fakes = startFakes(region, 3, [worker(SchedulingPoint.IrrSet), worker(SchedulingPoint.Eoi)], 1);
  const seen: number[] = [];
  // Main's steps are logged as participant 0 (only the baton holder writes the log).
  const log = new Int32Array(region.sab, region.logOffset);
  for (let round = 0; round < 50 && Atomics.load(region.words, 1) < 2; round++) {
    log[1 + Atomics.add(log, 0, 1)] = MAIN;
    seen.push(Atomics.load(region.words, 0));
    if (Atomics.load(region.words, 0) !== 0) {
      Atomics.add(region.words, 1, 1);
      Atomics.store(region.words, 0, 0);
    }
    await main.sleep(1);
  }
  await main.finish();
  const results = await fakes;
  expect(results.every((result) => result.ok)).toBe(true);
  const summary = region.schedule.summary();
  return { log: readLog(region), seen, hash: summary.scheduleHash, virtualNs: summary.virtualNs };
}

describe('the main thread in a deterministic schedule', () => {
  it('takes part: the same seed repeats its interleaving with the workers, five times', async () => {
    const options: ScheduleOptions = { seed: 7, strategy: 'random' };
    const first = await runWithMain(options);
    expect(first.log).toContain(1);
    expect(first.log).toContain(2);
    expect(first.log.filter((participant) => participant === MAIN).length).toBeGreaterThan(1);
    for (let run = 0; run < 4; run++) expect(await runWithMain(options)).toEqual(first);
  });

  it('sleeps in virtual time: nobody else runnable, the clock jumps by the sleep', async () => {
    const region = sharedRegion(1);
    region.schedule.initialise({ seed: 1, strategy: 'pct' });
    const main = region.schedule.mainThread(0);
    await main.start();
    await main.sleep(25);
    expect(main.nowMs()).toBe(VIRTUAL_ORIGIN_MS + 25);
    expect(await main.waitAsync(region.words, 4, 0, 5)).toBe('timed-out');
    expect(await main.waitAsync(region.words, 4, 1, 5)).toBe('not-equal');
    expect(main.nowMs()).toBe(VIRTUAL_ORIGIN_MS + 30);
    await main.finish();
  });

  it('leaving the schedule ends pending waits as timed out; a sleep with a signal waits for its signal', async () => {
    const region = sharedRegion(1);
    region.schedule.initialise({ seed: 1, strategy: 'random' });
    const main = region.schedule.mainThread(0);
    await main.start();
    const settled: string[] = [];
    const plain = main.waitAsync(region.words, 6, 0, 1000).then((result) => settled.push(`plain ${result}`));
    const controller = new AbortController();
    const cancellable = main.sleep(2000, controller.signal).then(() => settled.push('cancellable'));
    await main.sleep(1);
    expect(settled).toEqual([]);
    await main.finish();
    await plain;
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toEqual(['plain timed-out']);
    controller.abort();
    await cancellable;
    expect(settled).toEqual(['plain timed-out', 'cancellable']);
    expect(main.nowMs()).toBe(VIRTUAL_ORIGIN_MS + 1);
  });

  it('an abort rejects the waits of the main thread with the reason', async () => {
    const region = sharedRegion(2);
    region.schedule.initialise({ seed: 1, strategy: 'pct' });
    const main = region.schedule.mainThread(0);
    await main.start();
    // The second participant never starts, so main's first hand-over waits for it until the abort.
    const sleeping = main.sleep(1);
    setImmediate(() => region.schedule.abort('no worker came'));
    await expect(sleeping).rejects.toThrow(/^deterministic schedule aborted: no worker came \(seed 1, pct d=3/);
  });
});
