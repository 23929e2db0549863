// `avic-smp explore` finds a real bug of the zoo (docs/bug-zoo.md) and the command it prints replays
// it: erratum #1235's lost wake-up (the sender's AVIC acts on a stale IsRunning = 1 and rings the
// doorbell of a vCPU that is blocking) within a few seeds, with the built CLI and its real seed
// runner. The replay command is parsed from the text output and run twice: both runs show the same
// signature and the same schedule hash. The fixed twin runs clean over the same seeds.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/explore/classify-failure.js';

const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));

interface Ran {
  readonly status: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The built CLI in a child process; bounded by a kill after `timeoutMs`. */
function cli(args: readonly string[], timeoutMs = 90_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPOSITORY, timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

// A halting receiver and a sender on 2 vCPUs; 200 IPIs keep each run to a few seconds, and without
// halt-polling the receiver blocks at once (polling would hide the blocking window).
const TARGET = ['--pattern', 'halter-sender', '--vcpus', '2', '--ipis', '200', '--no-halt-poll'];
const EXPLORE = ['explore', ...TARGET, '--seed-start', '1', '--runs', '4', '--no-shrink'];

describe('explore finds erratum-1235 and the printed command replays it', () => {
  it('finds a lost wake-up within 4 seeds; two replays give its signature and one schedule hash; the twin is clean', async () => {
    // The search and the twin's clean sweep run side by side: every run of both is deterministic, so
    // no load can change what either finds, and neither depends on the other. The search takes one
    // job (it stops at its first failure: a second job's run would only be cancelled), the twin two.
    const [found, twin] = await Promise.all([
      cli([...EXPLORE, '--jobs', '1', '--inject', 'erratum-1235']),
      cli([...EXPLORE, '--jobs', '2', '--inject', 'erratum-1235-fixed', '--json']),
    ]);

    expect(found.status, found.stderr).toBe(1);
    const failure = /^FAIL seed (\d+): (lost-wakeup vCPU \d+ vector 0x[0-9a-f]+)$/m.exec(found.stdout);
    expect(failure, found.stdout).not.toBeNull();
    const signature = failure?.[2] ?? '';
    const replayLine = /^replay: avic-smp (.*)$/m.exec(found.stdout)?.[1] ?? '';
    // The command is shell-quoted; none of these words needs quotes, so words split at spaces.
    expect(replayLine).not.toMatch(/['"\\]/);
    const replayArgs = replayLine.split(' ');
    expect(replayArgs).toContain('--inject');
    expect(replayArgs.slice(replayArgs.indexOf('--schedule-seed'), replayArgs.indexOf('--schedule-seed') + 2)).toEqual([
      '--schedule-seed',
      failure?.[1],
    ]);

    const replays = await Promise.all([cli([...replayArgs, '--json']), cli([...replayArgs, '--json'])]);
    const hashes = replays.map((replay) => {
      const verdict = classifyRun(
        'stress',
        { exitCode: replay.status, signal: replay.signal, stdout: replay.stdout, stderr: replay.stderr, timedOut: false, cancelled: false },
        90,
      );
      expect(verdict.verdict === 'fail' ? verdict.failure.signature : verdict.verdict, replay.stderr).toBe(signature);
      return (JSON.parse(replay.stdout) as { schedule: { scheduleHash: string } }).schedule.scheduleHash;
    });
    expect(hashes[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(hashes[1]).toBe(hashes[0]);

    expect(twin.status, twin.stderr).toBe(0);
    expect(JSON.parse(twin.stdout)).toMatchObject({ seedsRun: 4, failures: 0, ok: true });
  }, 180_000);
});
