// `avic-smp explore` with a fake seed runner (canned reports, no child processes): where it stops,
// what it collects with --keep-going, its exit statuses, the replay command, shrinking, the --json
// object and the options it hands on to the subcommand.

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunOutcome } from '../../src/explore/classify-failure.js';
import { BadInput } from '../../src/cli/bad-input.js';
import { explore, lostWakeup, passing, report } from '../support/explore-fake.js';

const PROGRAM = 'examples/halter-sender.s';

describe('avic-smp explore (fake runner)', () => {
  it('stops at the first failure, prints its signature and the command that replays it; exit 1', async () => {
    const { status, output, requests } = await explore(
      [PROGRAM, '--vcpus', '2', '--runs', '10', '--jobs', '1', '--no-shrink'],
      (request) => (request.seed === 4 ? lostWakeup() : passing()),
    );

    expect(status).toBe(1);
    expect(requests.map((request) => request.seed)).toEqual([1, 2, 3, 4]);
    expect(output).toContain('FAIL seed 4: lost-wakeup vCPU 1 vector 0x40');
    expect(output).toContain(`replay: avic-smp run ${PROGRAM} --vcpus 2 --deterministic --schedule-seed 4 --strategy random\n`);
    expect(output).toContain('FAILED: seeds run 4 of 10 (stopped at the first failure');
    expect(output).toContain('distinct signatures 1');
  });

  it('cancels the runs in flight when one fails (they are not counted as run)', async () => {
    const { status, output } = await explore([PROGRAM, '--runs', '6', '--jobs', '3', '--no-shrink', '--json'], (request, signal) => {
      if (request.seed === 2) return lostWakeup();
      // Every other seed runs until exploring stops, as a long run would.
      return new Promise((resolve) =>
        signal.addEventListener('abort', () => resolve({ ...passing(), exitCode: null, signal: 'SIGKILL', cancelled: true })),
      );
    });

    expect(status).toBe(1);
    expect(JSON.parse(output)).toMatchObject({ seedsRun: 1, failures: 1, stoppedEarly: true, firstFailure: { seed: 2 } });
  });

  it('--keep-going runs every seed and counts the distinct signatures', async () => {
    const { status, output } = await explore(
      [PROGRAM, '--runs', '10', '--jobs', '2', '--keep-going', '--no-shrink', '--json'],
      (request) => {
        if (request.seed === 5) return report(1, { ipis: { accepted: 9, delivered: 8, pending: 0, lost: 1 } });
        return request.seed % 2 === 0 ? lostWakeup(request.seed * 7) : passing();
      },
    );

    const json = JSON.parse(output);
    expect(status).toBe(1);
    expect(json).toMatchObject({
      seedsRun: 10,
      failures: 6,
      stoppedEarly: false,
      firstFailure: { seed: 2, signature: 'lost-wakeup vCPU 1 vector 0x40' },
    });
    expect(json.signatures).toEqual([
      { signature: 'lost-wakeup vCPU 1 vector 0x40', kind: 'lost-wakeup', count: 5, firstSeed: 2 },
      { signature: 'lost-ipi', kind: 'lost-ipi', count: 1, firstSeed: 5 },
    ]);
  });

  it('exit 0 when every seed passes; the seeds start at --seed-start', async () => {
    const { status, output, requests } = await explore([PROGRAM, '--runs', '5', '--seed-start', '100'], () => passing());

    expect(status).toBe(0);
    expect(requests.map((request) => request.seed).sort((a, b) => a - b)).toEqual([100, 101, 102, 103, 104]);
    expect(output).toContain('OK: seeds run 5 of 5, failures 0, distinct signatures 0');
    expect(output).not.toContain('replay');
  });

  it('shrinks to the fewest switches that still fail with the same signature (bisection over --max-switches)', async () => {
    // Fails the same way with 13 switches or more; with fewer it fails otherwise (a lost IPI), which must not count.
    const { output, requests } = await explore([PROGRAM, '--runs', '3', '--jobs', '1', '--json'], (request) => {
      if (request.maxSwitches === undefined) return request.seed === 2 ? lostWakeup(1000) : passing();
      return request.maxSwitches >= 13
        ? lostWakeup(request.maxSwitches)
        : report(1, { ipis: { accepted: 2, delivered: 1, pending: 0, lost: 1 } });
    });

    const json = JSON.parse(output);
    const shrinkRuns = requests.filter((request) => request.maxSwitches !== undefined);
    expect(json.shrink).toMatchObject({ fromSwitches: 1000, toSwitches: 13, runs: shrinkRuns.length });
    expect(shrinkRuns.length).toBeLessThanOrEqual(Math.ceil(Math.log2(1000)) + 1);
    expect(shrinkRuns.every((request) => request.seed === 2 && request.args.includes('--max-switches'))).toBe(true);
    expect(json.shrink.replay.command).toBe(
      `avic-smp run ${PROGRAM} --deterministic --schedule-seed 2 --strategy random --max-switches 13`,
    );
    expect(json.shrinkSkipped).toBeNull();
  });

  it('says why it did not shrink: no schedule in the report (a run timeout), or --no-shrink', async () => {
    const timedOut: RunOutcome = { exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '', timedOut: true, cancelled: false };
    const { output } = await explore([PROGRAM, '--runs', '2', '--run-timeout', '5'], () => timedOut);

    expect(output).toContain('FAIL seed 1: hang run timeout');
    expect(output).toContain('no result within the run timeout (5 s)');
    expect(output).toContain('not shrunk: the failing run has no schedule in its report');
  });

  it('a re-run that refuses --max-switches leaves the failure unshrunk, saying why, instead of claiming a shrink', async () => {
    const refused: RunOutcome = {
      exitCode: 2,
      signal: null,
      stdout: '',
      stderr: "error: unknown option '--max-switches'\n",
      timedOut: false,
      cancelled: false,
    };
    const { status, output } = await explore([PROGRAM, '--runs', '1', '--json'], (request) =>
      request.maxSwitches === undefined ? lostWakeup(8) : refused,
    );

    expect(status).toBe(1);
    expect(JSON.parse(output)).toMatchObject({
      firstFailure: { seed: 1, switches: 8 },
      shrink: null,
      shrinkSkipped: "the re-runs refused their arguments: error: unknown option '--max-switches'",
    });
  });

  it('--json prints one object with the documented top-level fields', async () => {
    const { output } = await explore(
      ['--pattern', 'storm', '--vcpus', '2', '--runs', '2', '--strategy', 'pct', '--depth', '3', '--json'],
      (request) => (request.seed === 1 ? lostWakeup(4) : passing()),
    );

    const json = JSON.parse(output);
    expect(Object.keys(json)).toEqual([
      'subcommand',
      'target',
      'strategy',
      'depth',
      'expectedPoints',
      'expectedPointsFrom',
      'expectedPointsSeed',
      'maxSwitches',
      'seedStart',
      'runs',
      'jobs',
      'keepGoing',
      'seedsRun',
      'failures',
      'stoppedEarly',
      'durationSeconds',
      'runsPerSecond',
      'signatures',
      'firstFailure',
      'shrink',
      'shrinkSkipped',
      'ok',
    ]);
    expect(json).toMatchObject({
      subcommand: 'stress',
      target: ['stress', '--pattern', 'storm', '--vcpus', '2'],
      strategy: 'pct',
      depth: 3,
      ok: false,
    });
    expect(json.firstFailure.replay.args).toEqual([
      'stress',
      '--pattern',
      'storm',
      '--vcpus',
      '2',
      '--deterministic',
      '--schedule-seed',
      '1',
      '--strategy',
      'pct',
      '--depth',
      '3',
    ]);
  });

  it('hands on the options given (not their defaults) to the subcommand; --lock-scenario picks --scenario or --file', async () => {
    const args = [
      '--pattern',
      'storm',
      '--vcpus',
      '3',
      '--no-ipiv',
      '--policy',
      'rfc-v2',
      '--inject',
      'some-bug',
      '--host-cpus',
      '1',
      '--runs',
      '1',
    ];
    const { requests } = await explore(args, () => passing());
    expect(requests[0]!.args).toEqual([
      'stress',
      '--pattern',
      'storm',
      '--vcpus',
      '3',
      '--host-cpus',
      '1',
      '--inject',
      'some-bug',
      '--no-ipiv',
      '--policy',
      'rfc-v2',
      '--deterministic',
      '--schedule-seed',
      '1',
      '--strategy',
      'random',
    ]);

    const replay = await explore(['--lock-scenario', 's1', '--watchdog', '1', '--runs', '1'], () => passing());
    expect(replay.requests[0]!.args.slice(0, 5)).toEqual(['lockdep', '--scenario', 's1', '--watchdog', '1']);
    const file = await explore(['--lock-scenario', 'examples/locks/abba.yaml', '--runs', '1'], () => passing());
    expect(file.requests[0]!.args.slice(0, 3)).toEqual(['lockdep', '--file', 'examples/locks/abba.yaml']);
  });

  it('quotes the replay command for a shell', async () => {
    const { output } = await explore(['--lock-scenario', 's1', '--inject', "it's here", '--runs', '1', '--no-shrink'], () => lostWakeup());
    expect(output).toContain(
      `replay: avic-smp lockdep --scenario s1 --inject 'it'\\''s here' --deterministic --schedule-seed 1 --strategy random\n`,
    );
  });

  it('bad input is a BadInput (exit 2 through main): a child refusing its arguments, an option that does not apply, two targets', async () => {
    const refused: RunOutcome = {
      exitCode: 2,
      signal: null,
      stdout: '',
      stderr: "error: unknown option '--deterministic'\n",
      timedOut: false,
      cancelled: false,
    };
    await expect(explore([PROGRAM, '--runs', '3'], () => refused)).rejects.toThrow(
      new BadInput("run refused the arguments: error: unknown option '--deterministic'"),
    );
    await expect(explore(['--pattern', 'storm', '--vcpus', '2', '--memory', '8'], () => passing())).rejects.toThrow(
      /--memory does not apply to --pattern/,
    );
    await expect(explore([PROGRAM, '--pattern', 'storm'], () => passing())).rejects.toThrow(/exactly one of/);
    await expect(explore(['--pattern', 'storm'], () => passing())).rejects.toThrow(/--pattern needs --vcpus/);
    await expect(explore(['missing.s'], () => passing())).rejects.toThrow('cannot read missing.s: ENOENT');
    await expect(explore(['--pattern', 'storm', '--vcpus', '2', '--inject', 'list'], () => passing())).rejects.toThrow(
      'explore runs one bug at a time: list them with `avic-smp run --inject list`',
    );
  });

  it('draws its progress bar on a terminal only, on the progress stream, never in the output', async () => {
    const stderr = (isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } => {
      const stream = new PassThrough();
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      Object.assign(stream, { isTTY, columns: 100 });
      return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
    };
    const terminal = stderr(true);
    const onTerminal = await explore([PROGRAM, '--runs', '3', '--jobs', '1'], () => passing(), {
      progressStream: terminal.stream,
      progressAfterSeconds: 0,
    });
    expect(terminal.text()).toContain('explore run, 3 seeds');
    expect(onTerminal.output).not.toContain('explore run, 3 seeds');

    const pipe = stderr(false);
    await explore([PROGRAM, '--runs', '3', '--jobs', '1'], () => passing(), { progressStream: pipe.stream, progressAfterSeconds: 0 });
    expect(pipe.text()).toBe('');
  });
});
