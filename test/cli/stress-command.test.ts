// `avic-smp stress`, end to end: spawns the built CLI (dist/src/cli/bin.js, built by `pretest`) on
// small scenario runs and checks the JSON shape, the human summary, the exit statuses and the
// messages for bad input. Children are spawned without a terminal, so no progress bar may appear.

import { beforeAll, describe, expect, it } from 'vitest';
import { IPI_JSON_KEYS } from '../support/ipi-json-keys.js';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { type CliResult, assertCliBuilt, runCli } from '../support/cli.js';

/** `avic-smp ...args`, killed after 30 s. */
function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(args, { timeoutMs: 30_000 });
}

const LATENCY_KEYS = ['count', 'min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'];
const EXIT_CAUSES = ['invalidInterruptType', 'targetNotRunning', 'invalidTarget', 'invalidBackingPage', 'invalidIpiVector'];

/** Asserts the documented --json shape and returns the object. */
function expectStressJson(stdout: string, pattern: string, vcpus: number): Record<string, any> {
  const summary = JSON.parse(stdout) as Record<string, any>; // exactly one JSON object, nothing else
  expect(summary).toMatchObject({ pattern, vcpus, seed: expect.any(Number), ok: expect.any(Boolean) });
  expect(Object.keys(summary.ipis).sort()).toEqual(IPI_JSON_KEYS);
  expect(Object.keys(summary.ipis.dropped).sort()).toEqual(['illegalVector', 'invalidTarget', 'unsupported']);
  expect(summary.ipis.lost).toBe(0);
  expect(summary.ipis.sent).toBeGreaterThan(0);
  expect(summary.ipis.delivered).toBeGreaterThan(0);
  expect(summary.ipisPerSecond).toBeGreaterThan(0);
  if (summary.latencyNs !== null) {
    expect(Object.keys(summary.latencyNs).sort()).toEqual([...LATENCY_KEYS].sort());
    expect(summary.latencyNs.p50).toBeLessThanOrEqual(summary.latencyNs.p99);
    expect(summary.latencyNs.p99).toBeLessThanOrEqual(summary.latencyNs.max);
  }
  expect(Object.keys(summary.exits.incompleteIpi).sort()).toEqual([...EXIT_CAUSES].sort());
  expect(summary.exits.unacceleratedAccess).toEqual({ trap: expect.any(Number), fault: expect.any(Number) });
  expect(summary.exits.halt).toEqual(expect.any(Number));
  expect(summary.doorbells).toEqual(expect.any(Number));
  expect(summary.wakeups).toEqual(expect.any(Number));
  expect(summary.checks.length).toBeGreaterThan(0);
  for (const check of summary.checks)
    expect(check).toEqual({ name: expect.any(String), ok: expect.any(Boolean), detail: expect.any(String) });
  expect(summary.perVcpu).toHaveLength(vcpus);
  summary.perVcpu.forEach((vcpu: Record<string, any>, index: number) => {
    expect(vcpu).toMatchObject({
      vcpu: index,
      sent: expect.any(Number),
      received: expect.any(Number),
      doorbells: expect.any(Number),
      halts: expect.any(Number),
      wakeups: expect.any(Number),
    });
    expect(Object.keys(vcpu.exits.incompleteIpi).sort()).toEqual([...EXIT_CAUSES].sort());
    expect(vcpu.latencyNs === null || typeof vcpu.latencyNs.p99 === 'number').toBe(true);
  });
  const perVcpuSent = summary.perVcpu.reduce((total: number, vcpu: { sent: number }) => total + vcpu.sent, 0);
  expect(perVcpuSent).toBe(summary.ipis.sent);
  return summary;
}

beforeAll(assertCliBuilt);

describe('avic-smp stress --json', () => {
  it('ping-pong, 2 vCPUs, 2000 IPIs: one JSON object, nothing lost, guest latency samples, exit 0', async () => {
    const result = await cli(['stress', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '2000', '--json']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const summary = expectStressJson(result.stdout, 'ping-pong', 2);
    expect(summary.ok).toBe(true);
    expect(summary.seed).toBe(1);
    expect(summary.requested).toEqual({ ipis: 2000, seconds: null });
    expect(summary.latencyNs.count).toBeGreaterThan(0);
    expect(summary.checks.every((check: { ok: boolean }) => check.ok)).toBe(true);
  });

  it('ack-halt, 2 vCPUs, 200 IPIs with --seed 7: the halted target is woken, wake-ups and HLT exits are counted', async () => {
    const result = await cli(['stress', '--pattern', 'ack-halt', '--vcpus', '2', '--ipis', '200', '--seed', '7', '--json']);
    expect(result.status, result.stderr).toBe(0);
    const summary = expectStressJson(result.stdout, 'ack-halt', 2);
    expect(summary.seed).toBe(7);
    expect(summary.exits.halt).toBeGreaterThan(0);
    expect(summary.wakeups).toBeGreaterThan(0);
    expect(summary.perVcpu[1].halts).toBeGreaterThan(0);
  });

  it.runIf(SCENARIOS.has('storm'))('storm, 3 vCPUs, 3000 IPIs: every vCPU sends', async () => {
    const result = await cli(['stress', '--pattern', 'storm', '--vcpus', '3', '--ipis', '3000', '--json']);
    expect(result.status, result.stderr).toBe(0);
    const summary = expectStressJson(result.stdout, 'storm', 3);
    for (const vcpu of summary.perVcpu) expect(vcpu.sent).toBeGreaterThan(0);
  });

  it('--no-ipiv makes every IPI exit; --no-halt-poll is reported in the JSON', async () => {
    const result = await cli([
      'stress',
      '--pattern',
      'ping-pong',
      '--vcpus',
      '2',
      '--ipis',
      '400',
      '--no-ipiv',
      '--no-halt-poll',
      '--json',
    ]);
    expect(result.status, result.stderr).toBe(0);
    const summary = expectStressJson(result.stdout, 'ping-pong', 2);
    expect(summary.ipiVirtualization).toBe(false);
    expect(summary.haltPolling).toBe(false);
    expect(summary.exits.incompleteIpi.targetNotRunning).toBeGreaterThanOrEqual(summary.ipis.commands);
  });

  it('hot-add under --policy rfc-v2: the creation cost is reported, and the exit status follows the IPI balance', async () => {
    const result = await cli([
      'stress',
      '--pattern',
      'hot-add',
      '--vcpus',
      '2',
      '--hot-add',
      '2',
      // The two hot-adds come at 0.2 s and 0.4 s and take milliseconds each.
      '--seconds',
      '0.6',
      '--policy',
      'rfc-v2',
      '--json',
    ]);
    const summary = JSON.parse(result.stdout) as Record<string, any>;
    expect(summary).toMatchObject({ pattern: 'hot-add', vcpus: 4, policy: 'rfc-v2' });
    expect(summary.vcpuCreation).toMatchObject({
      created: 4,
      maxVcpus: 4,
      hotAdds: 2,
      apicAccessMemslotResizes: 3,
      backingPagesReinitialised: 6,
    });
    expect(summary.memslots.gracePeriods).toBe(4);
    // Losses are the design's cost and vary with timing; whatever they are, they decide the status.
    expect(summary.ipis.lost).toBeGreaterThanOrEqual(summary.vcpuCreation.strandedIrrBits);
    expect(result.status, result.stderr).toBe(summary.ipis.lost > 0 || !summary.ok ? 1 : 0);
    expect(summary.ok).toBe(summary.ipis.lost === 0 && summary.checks.every((check: { ok: boolean }) => check.ok));
  });
});

describe('avic-smp stress, human summary', () => {
  it('shows the IPI balance, rate, latency, exits by cause, doorbells, wake-ups, checks and a per-vCPU table; no progress bar without a terminal', async () => {
    const result = await cli(['stress', '--pattern', 'ping-pong', '--vcpus', '2', '--seconds', '1.2']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe(''); // a run over a second, but stderr is a pipe: no bar
    const out = result.stdout;
    expect(out).toMatch(/^OK: ping-pong on 2 vCPUs, seed 1, 1\.2 s;/);
    expect(out).toMatch(/^IPIs +sent [\d,]+ +delivered [\d,]+ +lost 0$/m);
    expect(out).toMatch(/^rate +[\d,]+ IPIs\/s delivered$/m);
    expect(out).toMatch(/^latency +p50 [\d.,]+ µs +p99 [\d.,]+ µs +max [\d.,]+ µs/m);
    expect(out).toMatch(
      /^exits +incomplete IPI: 0 invalid type \d+, 1 target not running [\d,]+, 2 invalid target \d+, 3 invalid backing page \d+, 4 vector < 16 \d+$/m,
    );
    expect(out).toMatch(/NOACCEL: trap \d+, fault \d+ +APIC MMIO emulated \(AVIC inhibited\) [\d,]+ +HLT [\d,]+/);
    expect(out).toMatch(/^doorbells +[\d,]+ +wake-ups [\d,]+/m);
    expect(out).toMatch(/^ {2}✓ no IPI lost: /m);
    expect(out).not.toContain('✗');
    expect(out).toMatch(/^vCPU +sent +received +doorbells +IPI exits +HLT +wake-ups +p50 µs +p99 µs +max µs +host CPU +runnable wait ms$/m);
    expect(out).toMatch(/^0 +[\d,]+ +[\d,]+/m);
    expect(out).toMatch(/^1 +[\d,]+ +[\d,]+/m);
  });

  it('--deterministic: the duration, rate and latencies say they are virtual time (docs/deterministic.md)', async () => {
    const [stress, run] = await Promise.all([
      cli(['stress', '--pattern', 'storm', '--vcpus', '2', '--ipis', '300', '--deterministic']),
      cli(['run', 'test/fixtures/cli/report-index.s', '--vcpus', '2', '--deterministic']),
    ]);
    expect(stress.status, stress.stderr).toBe(0);
    expect(stress.stdout).toMatch(/^OK: storm on 2 vCPUs, seed 1, 300 IPIs; ran [\d.]+ virtual ms, ended by all-done/);
    expect(stress.stdout).toMatch(/^rate +[\d,]+ IPIs delivered per virtual second$/m);
    expect(stress.stdout).toMatch(/^latency +in virtual time: p50 [\d.,]+ µs/m);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^OK: all-done \(.*\) after [\d.]+ virtual ms$/m);
    expect(run.stdout).toMatch(/^IPIs delivered per virtual second: [\d,]+$/m);
  });
});

describe.concurrent('avic-smp stress bad input exits 2 with a one-line message and no stack trace', () => {
  const patterns = [...SCENARIOS.keys()];
  const cases: ReadonlyArray<readonly [string, readonly string[], RegExp]> = [
    [
      'an unknown pattern (lists the valid ones)',
      ['--pattern', 'nope', '--vcpus', '2'],
      new RegExp(`unknown pattern "nope"; the patterns are: ${patterns.join(', ')}`),
    ],
    ['--vcpus 0', ['--pattern', 'ping-pong', '--vcpus', '0'], /--vcpus must be from 1 to 255, got 0/],
    [
      'more vCPUs than the pattern allows',
      ['--pattern', 'ping-pong', '--vcpus', '3'],
      /^avic-smp: pattern ping-pong needs exactly 2 vCPUs.*got 3/,
    ],
    [
      '--hot-add with a pattern that cannot',
      ['--pattern', 'storm', '--vcpus', '2', '--hot-add', '1', '--seconds', '1'],
      /^avic-smp: pattern storm does not support hot-add \(pattern hot-add does\)/,
    ],
    [
      '--hot-add without --seconds',
      ['--pattern', 'hot-add', '--vcpus', '2', '--hot-add', '1'],
      /^avic-smp: hot-add needs a time-based run/,
    ],
    [
      'an unknown --policy',
      ['--pattern', 'storm', '--vcpus', '2', '--policy', 'rfc-v3'],
      /unknown policy "rfc-v3"; the policies are: upstream, rfc-v2/,
    ],
    ['--vcpus abc', ['--pattern', 'ping-pong', '--vcpus', 'abc'], /--vcpus must be a whole number, got "abc"/],
    [
      '--host-idle-poll beyond 100 ms',
      ['--pattern', 'ping-pong', '--vcpus', '2', '--host-idle-poll', '100001'],
      /--host-idle-poll must be from 0 to 100000, got 100001/,
    ],
    [
      '--host-idle-poll in a deterministic run',
      ['--pattern', 'ping-pong', '--vcpus', '2', '--host-idle-poll', '50', '--deterministic'],
      /^avic-smp: hostIdlePollUs is for parallel runs/,
    ],
    ['--ipis 1.5', ['--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '1.5'], /--ipis must be a whole number, got "1\.5"/],
    ['--seconds ten', ['--pattern', 'ping-pong', '--vcpus', '2', '--seconds', 'ten'], /--seconds must be a number above 0, got "ten"/],
    ['--seed x', ['--pattern', 'ping-pong', '--vcpus', '2', '--seed', 'x'], /--seed must be a whole number from 0 to 4294967295, got "x"/],
    [
      'both --ipis and --seconds',
      ['--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '100', '--seconds', '1'],
      /option '--ipis <m>' cannot be used with option '--seconds <s>'/,
    ],
    ['no --pattern', ['--vcpus', '2'], /required option '--pattern <name>' not specified/],
    ['no --vcpus', ['--pattern', 'ping-pong'], /required option '--vcpus <n>' not specified/],
    [
      '--trace into a missing directory',
      ['--pattern', 'ping-pong', '--vcpus', '2', '--trace', '/nonexistent-avic-smp/trace.json'],
      /^avic-smp: --trace .*does not exist/,
    ],
    [
      'an unknown --trace-format',
      ['--pattern', 'ping-pong', '--vcpus', '2', '--trace', 'out.txt', '--trace-format', 'perf'],
      /unknown trace format "perf"; the trace formats are: chrome, ftrace/,
    ],
    [
      '--trace-format without --trace',
      ['--pattern', 'ping-pong', '--vcpus', '2', '--trace-format', 'ftrace'],
      /^avic-smp: --trace-format needs --trace FILE$/,
    ],
  ];
  it.each(cases)('%s', async (_name, args, message) => {
    const result = await cli(['stress', ...args]);
    expect(result.status, `stderr:\n${result.stderr}`).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toContain('    at ');
    expect(result.stderr.split('\n')[0]).toMatch(message);
  });
});

describe.concurrent('avic-smp help covers stress and scale', () => {
  const STRESS_OPTIONS = [
    '--pattern',
    '--vcpus',
    '--ipis',
    '--seconds',
    '--seed',
    '--json',
    '--trace',
    '--trace-format',
    '--no-ipiv',
    '--no-halt-poll',
    '--no-x2avic-ext',
  ];
  const SCALE_OPTIONS = [
    '--pattern',
    '--vcpus',
    '--ipis',
    '--seconds',
    '--seed',
    '--json',
    '--svg',
    '--no-ipiv',
    '--no-halt-poll',
    '--no-x2avic-ext',
  ];

  it('`stress --help` explains every option and lists every pattern', async () => {
    const result = await cli(['stress', '--help']);
    expect(result.status).toBe(0);
    for (const option of STRESS_OPTIONS) expect(result.stdout).toMatch(new RegExp(`^ +${option}\\b.* \\w+`, 'm'));
    for (const pattern of SCENARIOS.keys()) expect(result.stdout).toMatch(new RegExp(`^ +${pattern} +\\S`, 'm'));
  });

  it('`--help` explains the options of run, stress and scale, and defines efficiency', async () => {
    const result = await cli(['--help']);
    expect(result.status).toBe(0);
    const [, stress = '', scale = ''] = result.stdout.split(/^Options of (?:stress|scale):$/m);
    for (const option of STRESS_OPTIONS) expect(stress).toContain(option);
    for (const option of SCALE_OPTIONS) expect(scale).toContain(option);
    expect(result.stdout).toContain('efficiency = (IPIs/s ÷ vCPUs) ÷ (IPIs/s ÷ vCPUs of the first row)');
  });
});
