// `avic-smp explore` end to end: the built CLI (dist/src/cli/bin.js) with its real seed runner, one
// child process per seed. Bad input exits 2 with one line. The passing exploration needs the
// subcommands' --deterministic flag; until `avic-smp run --help` lists it, that case is skipped and
// the case that is not shows what explore does meanwhile: the child's refusal is explore's bad input.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));

function cli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: REPOSITORY, encoding: 'utf8', timeout: 60_000 });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const RUN_KNOWS_DETERMINISTIC = cli(['run', '--help']).stdout.includes('--deterministic');
const PROGRAM = 'test/fixtures/cli/report-index.s';

describe('avic-smp explore (built CLI)', () => {
  it.each([
    [['--runs', '0', PROGRAM], "option '--runs <n>' argument '0' is invalid"],
    [['--jobs', 'x', PROGRAM], "option '--jobs <j>' argument 'x' is invalid"],
    [[PROGRAM, '--pattern', 'storm', '--vcpus', '2'], 'avic-smp: give exactly one of <program.s>, --pattern P or --lock-scenario F'],
    [['missing.s'], 'avic-smp: cannot read missing.s: ENOENT'],
    [['--pattern', 'storm', '--vcpus', '2', '--memory', '8'], 'avic-smp: --memory does not apply to --pattern'],
  ])('explore %j is bad input: exit 2, one line, no stack trace', (args, message) => {
    const { status, stdout, stderr } = cli(['explore', ...args]);

    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it.skipIf(RUN_KNOWS_DETERMINISTIC)('until run knows --deterministic, explore reports the refusal as bad input (exit 2)', () => {
    const { status, stdout, stderr } = cli(['explore', PROGRAM, '--vcpus', '2', '--runs', '2', '--jobs', '2']);

    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe("avic-smp: run refused the arguments: error: unknown option '--deterministic'\n");
  });

  it.skipIf(!RUN_KNOWS_DETERMINISTIC)('two seeds of a passing program: exit 0, both run, no failure', () => {
    const { status, stdout, stderr } = cli(['explore', PROGRAM, '--vcpus', '2', '--runs', '2', '--jobs', '2', '--json']);

    expect(status, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ subcommand: 'run', seedsRun: 2, failures: 0, signatures: [], firstFailure: null, ok: true });
  });
});
