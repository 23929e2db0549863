// Output files that cannot be written after the run (--trace, --svg): a full disk, a path that became
// a directory. The run's results are printed first; then one line names the file and why, and the
// exit status is 2 (bad input), never a stack trace. The unit tests write straight into a directory
// (the pre-run check would catch one that already exists); the CLI tests write to /dev/full.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadInput } from '../../src/cli/bad-input.js';
import { writeOutputFile } from '../../src/cli/output-file.js';
import { writeTraceFile } from '../../src/cli/trace-file.js';

const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
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
  it('a --trace path that is a directory', () => {
    const error = thrown(() => writeTraceFile(directory, { traceEvents: [], displayTimeUnit: 'ns', otherData: {} }, {}));
    expect(error).toBeInstanceOf(BadInput);
    expect((error as Error).message).toBe(`--trace ${directory}: cannot write it: EISDIR (is a directory)`);
  });

  it('an --svg path that is a directory', () => {
    const error = thrown(() => writeOutputFile('--svg', directory, '<svg/>'));
    expect(error).toBeInstanceOf(BadInput);
    expect((error as Error).message).toBe(`--svg ${directory}: cannot write it: EISDIR (is a directory)`);
  });

  it.skipIf(!HAS_DEV_FULL)('a full device', () => {
    const error = thrown(() => writeOutputFile('--svg', '/dev/full', '<svg/>'));
    expect(error).toBeInstanceOf(BadInput);
    expect((error as Error).message).toBe('--svg /dev/full: cannot write it: ENOSPC (no space left on device)');
  });
});

function cli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(!HAS_DEV_FULL)('the CLI prints the results, then the write error, and exits 2', () => {
  it('stress --trace /dev/full (text)', () => {
    const result = cli(['stress', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--trace', '/dev/full']);
    expect(result.status, result.stderr).toBe(2);
    expect(result.stdout).toMatch(/^OK: ping-pong on 2 vCPUs/);
    expect(result.stdout).not.toContain('trace: /dev/full');
    expect(result.stderr).toBe('avic-smp: --trace /dev/full: cannot write it: ENOSPC (no space left on device)\n');
  });

  it('stress --trace /dev/full --json', () => {
    const result = cli(['stress', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--trace', '/dev/full', '--json']);
    expect(result.status, result.stderr).toBe(2);
    const summary = JSON.parse(result.stdout) as { ok: boolean; ipis: { lost: number }; trace?: string };
    expect(summary.ok).toBe(true);
    expect(summary.trace).toBeUndefined();
    expect(result.stderr).toBe('avic-smp: --trace /dev/full: cannot write it: ENOSPC (no space left on device)\n');
  });

  it('scale --svg /dev/full', () => {
    const result = cli(['scale', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--svg', '/dev/full']);
    expect(result.status, result.stderr).toBe(2);
    expect(result.stdout).toMatch(/^vCPUs +IPIs\/s/);
    expect(result.stdout).not.toContain('chart: /dev/full');
    expect(result.stderr).toBe('avic-smp: --svg /dev/full: cannot write it: ENOSPC (no space left on device)\n');
  });
});
