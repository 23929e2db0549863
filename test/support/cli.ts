// The built CLI (dist/src/cli/bin.js, built by the `pretest` script) run as a child process: its exit
// status and output. Asynchronous, so that tests which only check how bad input is refused can run
// side by side (describe.concurrent) while the CLI starts; every child is bounded by a timeout.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI_BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
export const REPOSITORY = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** The child's working directory (default the test process's). */
  readonly cwd?: string;
  /** Kill the child after this long (default 60 s); a killed child fails the test. */
  readonly timeoutMs?: number;
}

/** Fails at once, with the remedy, when the CLI has not been built. */
export function assertCliBuilt(): void {
  if (!existsSync(CLI_BIN)) throw new Error(`${CLI_BIN} is missing: run \`npm run build\` (the pretest script does)`);
}

/** Runs `avic-smp ...args`; resolves with its exit status and output, rejects if it was killed or could not start. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI_BIN, ...args],
      { cwd: options.cwd, encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, maxBuffer: 256 << 20 },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ status: 0, stdout, stderr });
        if (typeof error.code === 'number' && !error.signal && !error.killed) return resolve({ status: error.code, stdout, stderr });
        reject(
          new Error(
            `avic-smp ${args.join(' ')} ${error.killed ? `was killed (${String(error.signal)})` : `failed: ${error.message}`}\nstdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        );
      },
    );
  });
}
