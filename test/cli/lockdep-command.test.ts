// `avic-smp lockdep`, end to end: spawns the built CLI (dist/src/cli/bin.js) and checks --list, the
// --json shape, the verdict line, the documented exit statuses (0 clean, 1 a possible deadlock or
// a deadlock, 2 bad input) and that bad input gets one clear message, never a stack trace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IPI_JSON_KEYS } from '../support/ipi-json-keys.js';
import { formatIpiBalance } from '../../src/cli/format-report.js';
import { formatLockdepResult, lockdepExitStatus, type LockdepCommandResult } from '../../src/cli/lockdep-command.js';
import type { IpiBalance } from '../../src/kvm/report/vm-report.js';
import { type CliResult, runCli } from '../support/cli.js';

/** `avic-smp lockdep ...args`, killed after 30 s. */
function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(['lockdep', ...args], { timeoutMs: 30_000 });
}

/** sent = accepted + coalesced + dropped; accepted (with timer interrupts) = delivered + pending + lost (+ INIT discards, merged NMIs). */
function expectBalanced(ipis: IpiBalance): void {
  const dropped = ipis.dropped.illegalVector + ipis.dropped.invalidTarget + ipis.dropped.unsupported;
  expect(ipis.accepted + ipis.coalesced + dropped, JSON.stringify(ipis)).toBe(ipis.sent);
  expect(ipis.delivered + ipis.pending + ipis.lost + ipis.discardedByInit + ipis.nmisMerged, JSON.stringify(ipis)).toBe(
    ipis.accepted + ipis.timerInterrupts,
  );
}

describe("lockdep results: the replay VM's IPI balance, as run reports it", () => {
  const balance = (lost: number): IpiBalance => ({
    commands: 100,
    sent: 100,
    accepted: 60,
    coalesced: 40,
    dropped: { illegalVector: 0, invalidTarget: 0, unsupported: 0 },
    delivered: 60 - lost,
    pending: 0,
    timerInterrupts: 0,
    discardedByInit: 0,
    nmisMerged: 0,
    lost,
  });
  const result = (lost: number): LockdepCommandResult => ({
    scenario: 's4-fixed',
    verdict: 'clean',
    cycle: [],
    report: '',
    validator: true,
    ipis: balance(lost),
    problems: [],
  });

  it("prints the run report's balance line", async () => {
    expect(formatLockdepResult(result(0)).split('\n')).toContain(formatIpiBalance(balance(0)));
  });

  it('a lost IPI fails the run even when the verdict is clean and nothing else is a problem', async () => {
    expect(lockdepExitStatus(result(0))).toBe(0);
    expect(lockdepExitStatus(result(1))).toBe(1);
  });
});

describe('avic-smp lockdep', () => {
  it('--list names every replay with a one-line description', async () => {
    const { status, stdout } = await cli(['--list']);
    expect(status).toBe(0);
    const names = stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)[0]);
    expect(names).toEqual([
      's1',
      's1-fixed',
      's3',
      's3-fixed',
      's4',
      's4-fixed',
      's5',
      's5-fixed',
      'rfc-v2-hot-add',
      'rfc-v2-hot-add-fixed',
      'abba',
    ]);
  });

  it('--scenario s4 --json: one object with the verdict, the cycle, the report and the IPI counts; exit 1', async () => {
    const { status, stdout } = await cli(['--scenario', 's4', '--json', '--ipis', '5000']);
    expect(status).toBe(1);
    const result = JSON.parse(stdout) as Record<string, any>;
    expect(result).toMatchObject({
      scenario: 's4',
      verdict: 'possible-deadlock',
      cycle: ['kvm->lock', 'kvm->srcu', 'kvm->lock'],
      validator: true,
      problems: [],
    });
    expect(result.report).toContain('WARNING: possible circular locking dependency detected');
    // The same IPI balance as `run --json` and `stress --json`, and it balances.
    expect(Object.keys(result.ipis).sort()).toEqual(IPI_JSON_KEYS);
    expect(result.ipis.sent).toBeGreaterThan(0);
    expect(result.ipis.lost).toBe(0);
    expectBalanced(result.ipis as IpiBalance);
  });

  it('--scenario s4-fixed: the verdict line says clean; exit 0', async () => {
    const { status, stdout } = await cli(['--scenario', 's4-fixed', '--ipis', '5000']);
    expect(status).toBe(0);
    const line = stdout.split('\n').find((each) => each.startsWith('IPIs: '));
    const numbers =
      /^IPIs: sent ([\d,]+), delivered ([\d,]+), lost 0 \(accepted ([\d,]+), coalesced ([\d,]+), pending ([\d,]+), dropped: illegal vector ([\d,]+), invalid target ([\d,]+), unsupported ([\d,]+)\)$/.exec(
        line ?? '',
      );
    expect(numbers, `the run report's balance line, found: ${line}`).not.toBeNull();
    const [sent, delivered, accepted, coalesced, pending, ...dropped] = numbers!.slice(1).map((text) => Number(text.replaceAll(',', '')));
    expect(accepted! + coalesced! + dropped.reduce((total, count) => total + count, 0)).toBe(sent);
    expect(delivered! + pending!).toBe(accepted);
    expect(stdout.trim().split('\n').at(-1)).toBe('verdict: clean: no possible deadlock, nothing stuck');
  });

  it('--deterministic: the JSON carries the schedule (explore measures k and shrinks from it), the text its line', async () => {
    const args = ['--scenario', 's1-fixed', '--ipis', '500', '--deterministic', '--schedule-seed', '3'];
    const [json, text] = await Promise.all([cli([...args, '--json']), cli(args)]);
    expect(json.status, json.stdout + json.stderr).toBe(0);
    const schedule = (JSON.parse(json.stdout) as { schedule?: { seed: number; switches: number; pointsSeen: Record<string, number> } })
      .schedule;
    expect(schedule?.seed).toBe(3);
    expect(schedule?.switches).toBeGreaterThan(0);
    expect(Object.values(schedule?.pointsSeen ?? {}).reduce((total, count) => total + count, 0)).toBeGreaterThan(0);
    expect(text.status, text.stdout + text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^deterministic: schedule seed 3, random: .* hash [0-9a-f]+$/m);
  });

  it("--host-cpus 1: the replay VM's vCPUs share one host CPU, the first line says so; still clean", async () => {
    const { status, stdout, stderr } = await cli(['--scenario', 's1-fixed', '--vcpus', '3', '--host-cpus', '1', '--ipis', '3000']);
    expect(status, stdout + stderr).toBe(0);
    expect(stdout.split('\n')[0]).toBe('lockdep s1-fixed: validator on, 1 host CPU(s)');
    expect(stdout.trim().split('\n').at(-1)).toBe('verdict: clean: no possible deadlock, nothing stuck');
  });

  it('bad --host-cpus: exit 2 with one line, no stack trace', async () => {
    const cases = [
      [['--scenario', 's1', '--host-cpus', '0'], '--host-cpus must be from 1 to 254, got 0'],
      [['--scenario', 's1', '--host-cpus', 'two'], '--host-cpus must be a whole number'],
      [['--scenario', 's1', '--vcpus', '2', '--host-cpus', '3'], 'avic-smp: --host-cpus must be at most --vcpus (2), got 3'],
      [['--file', 'examples/locks/abba.yaml', '--host-cpus', '1'], 'avic-smp: --host-cpus applies to a replay (--scenario)'],
    ] as const;
    // Refused before anything runs: the children only start Node, side by side.
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    for (const [index, [args, message]] of cases.entries()) {
      const { status, stdout, stderr } = results[index]!;
      expect(status, args.join(' ')).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(message);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('--file abba.yaml --no-validator: the wait-for graph and a deadlock verdict; exit 1', async () => {
    const { status, stdout } = await cli(['--file', 'examples/locks/abba.yaml', '--no-validator', '--watchdog', '1']);
    expect(status).toBe(1);
    expect(stdout).toContain('DEADLOCK: a cycle of waits:');
    expect(stdout).toMatch(/verdict: deadlock \((A -> B -> A|B -> A -> B)\)/);
  });

  it('bad input: exit 2 with one clear message, no stack trace', async () => {
    const cases = [
      ['--scenario', 'nope'],
      ['--file', 'no/such/file.yaml'],
      ['--list', '--scenario', 's1'],
      ['--file', 'package.json'],
    ];
    // Refused before anything runs: the children only start Node, side by side.
    const results = await Promise.all(cases.map((args) => cli(args)));
    for (const [index, { status, stdout, stderr }] of results.entries()) {
      expect(status, cases[index]!.join(' ')).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/^avic-smp: /);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
    const [unknownScenario, , , notAScenario] = results;
    expect(unknownScenario!.stderr).toContain('unknown lock scenario "nope"; the scenarios are: s1, s1-fixed');
    expect(notAScenario!.stderr).toContain(
      'package.json:5:14: license: unknown key "license"; expected one of: name, description, documented-orders, locks, threads',
    );
  });

  it('a hostile scenario file (an alias bomb, an unanchored alias): exit 2 with one positioned line, no stack trace', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'lockdep-command-'));
    try {
      const bomb = join(directory, 'bomb.yaml');
      const levels = Array.from(
        { length: 8 },
        (_, level) =>
          `${String.fromCharCode(98 + level)}: &${String.fromCharCode(98 + level)} [${Array(9)
            .fill(`*${String.fromCharCode(97 + level)}`)
            .join(', ')}]`,
      );
      writeFileSync(bomb, ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]', ...levels].join('\n'));
      const unanchored = join(directory, 'unanchored.yaml');
      writeFileSync(unanchored, 'locks: *nowhere\n');
      const cases = [
        [
          bomb,
          `avic-smp: ${bomb}:2:8: malformed file: aliases expand to more than 100 copies of their anchors (an anchor may be reused, not multiplied)\n`,
        ],
        [unanchored, `avic-smp: ${unanchored}:1:8: malformed file: alias *nowhere has no anchor &nowhere before it\n`],
      ] as const;
      const results = await Promise.all(cases.map(([file]) => cli(['--file', file])));
      for (const [index, [, message]] of cases.entries()) {
        const { status, stdout, stderr } = results[index]!;
        expect(status, stderr).toBe(2);
        expect(stdout).toBe('');
        expect(stderr).toBe(message);
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
