// The CLI's main() called in this process, for tests about what a command prints rather than about
// the executable (test/cli/json-fields.test.ts): the exit status main() returns and what it wrote
// to stdout and stderr, as a child's would be. The executable itself (bin.ts: main's status as the
// process's exit code) is run as a child by the other CLI tests (test/support/cli.ts).
//
// Not for concurrent tests: stdout and stderr are this process's own while a command runs.

import { main } from '../../src/cli/main.js';
import type { CliResult } from './cli.js';

type Write = typeof process.stdout.write;

/** Runs `avic-smp ...args` through main() in the working directory `cwd`, which must be this process's. */
export async function runMainInProcess(args: readonly string[], cwd: string): Promise<CliResult> {
  if (process.cwd() !== cwd.replace(/\/$/, '')) throw new Error(`main() runs in ${process.cwd()}, not ${cwd}`);
  let stdout = '';
  let stderr = '';
  const capture =
    (append: (text: string) => void): Write =>
    (chunk: string | Uint8Array, ...rest: unknown[]) => {
      append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const callback = rest.find((argument) => typeof argument === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    };
  const [writeOut, writeErr, exitCode] = [process.stdout.write, process.stderr.write, process.exitCode];
  process.stdout.write = capture((text) => (stdout += text));
  process.stderr.write = capture((text) => (stderr += text));
  try {
    // main() sets process.exitCode, as the executable's status, before it returns it.
    process.exitCode = undefined;
    const status = await main(args);
    return { status, stdout, stderr };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    process.exitCode = exitCode;
  }
}
