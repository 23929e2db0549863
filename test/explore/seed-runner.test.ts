// The real seed runner (src/explore/seed-runner.ts: one child process per seed) and the seed loop
// over it, against a stand-in CLI (test/fixtures/explore/fake-cli.mjs) whose behaviour depends on
// the seed: a report, a failure, a hang, a refusal, a crash.

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/explore/classify-failure.js';
import { exploreSeeds, RunRejectedArguments } from '../../src/explore/explore-seeds.js';
import type { ExplorePlan } from '../../src/explore/explore-plan.js';
import { childProcessRunner } from '../../src/explore/seed-runner.js';

const FAKE_CLI = fileURLToPath(new URL('../fixtures/explore/fake-cli.mjs', import.meta.url));
const PLAN: ExplorePlan = { subcommand: 'run', target: ['run', 'x.s'], strategy: 'random' };
const args = (seed: number): string[] => ['run', 'x.s', '--deterministic', '--schedule-seed', String(seed)];
const never = new AbortController().signal;

describe('childProcessRunner', () => {
  it("runs `node <bin> <args> --json` and returns the child's whole report and exit status", async () => {
    const outcome = await childProcessRunner({ bin: FAKE_CLI, runTimeoutSeconds: 30 }).run({ seed: 1, args: args(1) }, never);

    expect(outcome).toMatchObject({ exitCode: 0, signal: null, timedOut: false, cancelled: false });
    expect(JSON.parse(outcome.stdout).args).toEqual([...args(1), '--json']);
    expect(classifyRun('run', outcome, 30)).toEqual({ verdict: 'pass', switches: 5 });
  });

  it('kills a run that outlives the run timeout (a hang), and one whose exploring stopped (cancelled)', async () => {
    const runner = childProcessRunner({ bin: FAKE_CLI, runTimeoutSeconds: 0.5 });
    const hung = await runner.run({ seed: 3, args: args(3) }, never);
    expect(hung).toMatchObject({ exitCode: null, signal: 'SIGKILL', timedOut: true, cancelled: false });
    expect(classifyRun('run', hung, 0.5)).toMatchObject({ failure: { signature: 'hang run timeout' } });

    const stop = new AbortController();
    const running = childProcessRunner({ bin: FAKE_CLI, runTimeoutSeconds: 30 }).run({ seed: 3, args: args(3) }, stop.signal);
    stop.abort();
    expect(await running).toMatchObject({ signal: 'SIGKILL', timedOut: false, cancelled: true });
  });

  it('a child killed by a signal without a report is a crash', async () => {
    const outcome = await childProcessRunner({ bin: FAKE_CLI, runTimeoutSeconds: 30 }).run({ seed: 5, args: args(5) }, never);
    expect(classifyRun('run', outcome, 30)).toMatchObject({ failure: { kind: 'crash', signature: 'crash signal SIGABRT' } });
  });
});

describe('exploreSeeds over child processes', () => {
  it('stops at the lost wake-up of seed 2, with the hang of seed 3 cancelled, not waited for', async () => {
    const runner = childProcessRunner({ bin: FAKE_CLI, runTimeoutSeconds: 30 });
    const result = await exploreSeeds({ plan: PLAN, runner, seedStart: 1, runs: 3, jobs: 3, keepGoing: false, runTimeoutSeconds: 30 });

    expect(result.failures.map(({ seed, failure }) => [seed, failure.signature])).toEqual([[2, 'lost-wakeup vCPU 1 vector 0x40']]);
    expect(result.stoppedEarly).toBe(true);
  });

  it('a child that refuses its arguments (exit 2) ends exploring as bad input', async () => {
    const runner = childProcessRunner({ bin: FAKE_CLI, runTimeoutSeconds: 30 });
    const exploring = exploreSeeds({ plan: PLAN, runner, seedStart: 4, runs: 1, jobs: 1, keepGoing: true, runTimeoutSeconds: 30 });

    await expect(exploring).rejects.toThrow(RunRejectedArguments);
    await expect(exploring).rejects.toThrow("run refused the arguments: error: unknown option '--deterministic'");
  });
});
