// Output files that cannot be written after the run (--trace, --svg): a full disk, a path that became
// a directory. The run's results are printed first; then one line names the file and why, and the
// exit status is 2 (bad input), never a stack trace. The unit tests write straight into a directory
// (the pre-run check would catch one that already exists); the CLI tests write to /dev/full.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadInput } from '../../src/cli/bad-input.js';
import { writeOutputFile } from '../../src/cli/output-file.js';
import { writeTraceFile } from '../../src/cli/trace-file.js';
import { type CliResult, runCli } from '../support/cli.js';

const HAS_DEV_FULL = existsSync('/dev/full');
let directory = '';

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'avic-smp-output-'));
});
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

function thrown(write: () => unknown): unknown {
  try {
    write();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('writing an output file that cannot be written is bad input with a one-line message', () => {
  it('a --trace path that is a directory', async () => {
    const error = thrown(() => writeTraceFile(directory, { traceEvents: [], displayTimeUnit: 'ns', otherData: {} }, {}));
    expect(error).toBeInstanceOf(BadInput);
    expect((error as Error).message).toBe(`--trace ${directory}: cannot write it: EISDIR (is a directory)`);
  });

  it('an --svg path that is a directory', async () => {
    const error = thrown(() => writeOutputFile('--svg', directory, '<svg/>'));
    expect(error).toBeInstanceOf(BadInput);
    expect((error as Error).message).toBe(`--svg ${directory}: cannot write it: EISDIR (is a directory)`);
  });

  it.skipIf(!HAS_DEV_FULL)('a full device', async () => {
    const error = thrown(() => writeOutputFile('--svg', '/dev/full', '<svg/>'));
    expect(error).toBeInstanceOf(BadInput);
    expect((error as Error).message).toBe('--svg /dev/full: cannot write it: ENOSPC (no space left on device)');
  });
});

/** `avic-smp ...args`, killed after 60 s. */
function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(args, { timeoutMs: 60_000 });
}

describe.skipIf(!HAS_DEV_FULL)('the CLI prints the results, then the write error, and exits 2', () => {
  it('stress --trace /dev/full (text)', async () => {
    const result = await cli(['stress', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--trace', '/dev/full']);
    expect(result.status, result.stderr).toBe(2);
    expect(result.stdout).toMatch(/^OK: ping-pong on 2 vCPUs/);
    expect(result.stdout).not.toContain('trace: /dev/full');
    expect(result.stderr).toBe('avic-smp: --trace /dev/full: cannot write it: ENOSPC (no space left on device)\n');
  });

  it('stress --trace /dev/full --json', async () => {
    const result = await cli(['stress', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--trace', '/dev/full', '--json']);
    expect(result.status, result.stderr).toBe(2);
    const summary = JSON.parse(result.stdout) as { ok: boolean; ipis: { lost: number }; trace?: string };
    expect(summary.ok).toBe(true);
    expect(summary.trace).toBeUndefined();
    expect(result.stderr).toBe('avic-smp: --trace /dev/full: cannot write it: ENOSPC (no space left on device)\n');
  });

  it('scale --svg /dev/full', async () => {
    const result = await cli(['scale', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--svg', '/dev/full']);
    expect(result.status, result.stderr).toBe(2);
    expect(result.stdout).toMatch(/^vCPUs +IPIs\/s/);
    expect(result.stdout).not.toContain('chart: /dev/full');
    expect(result.stderr).toBe('avic-smp: --svg /dev/full: cannot write it: ENOSPC (no space left on device)\n');
  });
});
