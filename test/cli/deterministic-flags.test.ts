// The deterministic-run flags on every command that runs a VM (src/cli/deterministic-options.ts):
// each bad value is bad input, exit 2 with one line and no stack trace; the flags other than
// --deterministic imply it. Spawns the built CLI (dist/, built by `pretest`); nothing here runs a VM.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { deterministicConfig, type DeterministicCommandOptions } from '../../src/cli/deterministic-options.js';
import { buildProgram } from '../../src/cli/main.js';
import { runCli } from '../support/cli.js';

const PROGRAM = fileURLToPath(new URL('../../examples/halter-sender.s', import.meta.url));

const COMMANDS: readonly (readonly string[])[] = [
  ['run', PROGRAM],
  ['stress', '--pattern', 'storm', '--vcpus', '2'],
  ['scale', '--pattern', 'storm', '--vcpus', '2'],
  ['lockdep', '--scenario', 's1'],
  ['conformance'],
];

const BAD: readonly (readonly [readonly string[], RegExp])[] = [
  [['--schedule-seed', '-1'], /--schedule-seed must be a whole number from 0 to 9007199254740991, got "-1"/],
  [['--strategy', 'fair'], /unknown strategy "fair"; the strategies are: random, pct/],
  [['--depth', '0'], /--depth must be from 1 to 16, got 0/],
  [['--max-switches', 'many'], /--max-switches must be a whole number/],
  [['--expected-points', '0'], /--expected-points must be from 1 to/],
];

async function refuses(command: readonly string[], flags: readonly string[], message: RegExp): Promise<void> {
  const result = await runCli([...command, ...flags], { timeoutMs: 30_000 });
  expect(result.status).toBe(2);
  expect(result.stderr.split('\n')[0]).toMatch(message);
  expect(result.stderr).not.toContain('    at ');
}

describe('deterministic flags', () => {
  // Every bad value on one command, and one bad value on every command (each spawn starts Node).
  it.concurrent.each(BAD)('run refuses %j', (flags, message) => refuses(COMMANDS[0]!, flags, message));

  it.concurrent.each(COMMANDS.slice(1))('%s refuses a bad --depth', (...command) => refuses(command, BAD[2]![0], BAD[2]![1]));

  it.concurrent('lockdep --file with --deterministic is bad input (a scenario file runs no VM)', async () => {
    const result = await runCli(['lockdep', '--file', 'x.yaml', '--deterministic'], { timeoutMs: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      'avic-smp: --deterministic applies to a replay (--scenario): a scenario file runs on its own threads, not on a VM\n',
    );
  });

  it('any schedule flag implies --deterministic; defaults: seed 1, random, depth 3', async () => {
    const program = buildProgram();
    let seen: DeterministicCommandOptions | undefined;
    program.commands
      .find((command) => command.name() === 'run')!
      .action((_file: string, options: DeterministicCommandOptions) => {
        seen = options;
      });
    await program.parseAsync(['run', PROGRAM, '--depth', '2'], { from: 'user' });
    expect(deterministicConfig(seen!)).toEqual({ deterministic: { seed: 1, strategy: 'random', depth: 2 } });
    expect(deterministicConfig({})).toEqual({});
    expect(deterministicConfig({ deterministic: true, strategy: 'pct', scheduleSeed: 9, maxSwitches: 0 })).toEqual({
      deterministic: { seed: 9, strategy: 'pct', depth: 3, maxSwitches: 0 },
    });
  });
});
