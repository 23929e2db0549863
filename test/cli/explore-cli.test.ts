// `avic-smp explore` end to end: the built CLI (dist/src/cli/bin.js) with its real seed runner, one
// child process per seed. Bad input exits 2 with one line. The passing exploration needs the
// subcommands' --deterministic flag; until `avic-smp run --help` lists it, that case is skipped and
// the case that is not shows what explore does meanwhile: the child's refusal is explore's bad input.

import { describe, expect, it } from 'vitest';
import { type CliResult, REPOSITORY, runCli } from '../support/cli.js';

/** `avic-smp ...args`, killed after 60 s. */
function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(args, { cwd: REPOSITORY, timeoutMs: 60_000 });
}

const RUN_KNOWS_DETERMINISTIC = (await cli(['run', '--help'])).stdout.includes('--deterministic');
const PROGRAM = 'test/fixtures/cli/report-index.s';

describe('avic-smp explore (built CLI)', () => {
  it.concurrent.each([
    [['--runs', '0', PROGRAM], "option '--runs <n>' argument '0' is invalid"],
    [['--jobs', 'x', PROGRAM], "option '--jobs <j>' argument 'x' is invalid"],
    [[PROGRAM, '--pattern', 'storm', '--vcpus', '2'], 'avic-smp: give exactly one of <program.s>, --pattern P or --lock-scenario F'],
    [['missing.s'], 'avic-smp: cannot read missing.s: ENOENT'],
    [['--pattern', 'storm', '--vcpus', '2', '--memory', '8'], 'avic-smp: --memory does not apply to --pattern'],
  ])('explore %j is bad input: exit 2, one line, no stack trace', async (args, message) => {
    const { status, stdout, stderr } = await cli(['explore', ...args]);

    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it.skipIf(RUN_KNOWS_DETERMINISTIC)('until run knows --deterministic, explore reports the refusal as bad input (exit 2)', async () => {
    const { status, stdout, stderr } = await cli(['explore', PROGRAM, '--vcpus', '2', '--runs', '2', '--jobs', '2']);

    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe("avic-smp: run refused the arguments: error: unknown option '--deterministic'\n");
  });

  it.skipIf(!RUN_KNOWS_DETERMINISTIC)('two seeds of a passing program: exit 0, both run, no failure', async () => {
    const { status, stdout, stderr } = await cli(['explore', PROGRAM, '--vcpus', '2', '--runs', '2', '--jobs', '2', '--json']);

    expect(status, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ subcommand: 'run', seedsRun: 2, failures: 0, signatures: [], firstFailure: null, ok: true });
  });
});
