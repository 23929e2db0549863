// The seed runner: runs one seed's command and says how it ended. The real one spawns the CLI as a
// child process (`node <bin> <args...> --json`), so every seed has its own process, its own worker
// threads and its own memory: a seed that hangs or crashes cannot take the others with it. Tests
// give explore a fake runner that returns canned reports.

import { spawn } from 'node:child_process';
import type { RunOutcome } from './classify-failure.js';

export interface SeedRunRequest {
  readonly seed: number;
  /** --max-switches for this run (shrinking), when set. */
  readonly maxSwitches?: number;
  /** The run's arguments without --json (seedArguments). */
  readonly args: readonly string[];
}

export interface SeedRunner {
  /** Runs one seed; resolves (never rejects) once the run ended, timed out or was cancelled by `signal`. */
  run(request: SeedRunRequest, signal: AbortSignal): Promise<RunOutcome>;
}

export interface ChildProcessRunnerOptions {
  /** The CLI's entry script (dist/src/cli/bin.js). */
  readonly bin: string;
  /** A run that has not ended by then is killed and counted as a hang. */
  readonly runTimeoutSeconds: number;
  /** Default process.execPath. */
  readonly node?: string;
}

/**
 * Spawns `node <bin> <args...> --json` per seed. Every run is bounded: the run timeout kills it
 * (SIGKILL: a hung run may not be listening), and so does `signal` when exploring stops early.
 */
export function childProcessRunner(options: ChildProcessRunnerOptions): SeedRunner {
  return {
    run(request, signal) {
      return new Promise((resolve) => {
        let timedOut = false;
        let cancelled = false;
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        const child = spawn(options.node ?? process.execPath, [options.bin, ...request.args, '--json'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const kill = (): void => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        };
        const timer = setTimeout(() => {
          timedOut = true;
          kill();
        }, options.runTimeoutSeconds * 1000);
        const onAbort = (): void => {
          cancelled = true;
          kill();
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
        child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
        child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        const finish = (exitCode: number | null, signalName: string | null, error?: Error): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve({
            exitCode,
            signal: signalName,
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: error === undefined ? Buffer.concat(stderr).toString('utf8') : `cannot start the run: ${error.message}`,
            timedOut,
            cancelled: cancelled && !timedOut,
          });
        };
        // 'close' comes after the pipes drained, so stdout holds the whole report.
        child.on('close', (code, signalName) => finish(code, signalName));
        child.on('error', (error) => finish(null, null, error));
      });
    },
  };
}
