// `avic-smp scale`, end to end (the built CLI) and in process (the rows and the chart): a small
// sweep, its JSON, its table, an SVG that parses as XML with the expected texts, and bad input.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderScaleChart } from '../../src/cli/scale-chart.js';
import type { ScaleResult, ScaleRow } from '../../src/cli/scale-sweep.js';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { assertCliBuilt, type CliResult, runCli } from '../support/cli.js';

let directory = '';

/** `avic-smp ...args`, killed after 45 s. */
function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(args, { timeoutMs: 45_000 });
}

/** The content of every <text> element (and of each <tspan> line inside one), in document order. */
function svgTexts(svg: string): string[] {
  const texts: string[] = [];
  const strings = (node: unknown): string[] =>
    typeof node === 'string' || typeof node === 'number'
      ? [String(node)]
      : Array.isArray(node)
        ? node.flatMap(strings)
        : node !== null && typeof node === 'object'
          ? Object.values(node).flatMap(strings)
          : [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'text') texts.push(...strings(value));
      else walk(value);
    }
  };
  walk(new XMLParser({ ignoreAttributes: true, parseTagValue: false }).parse(svg));
  return texts;
}

function expectWellFormedSvg(svg: string): void {
  expect(XMLValidator.validate(svg)).toBe(true);
  expect(svg).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
}

beforeAll(() => {
  assertCliBuilt();
  directory = mkdtempSync(join(tmpdir(), 'avic-smp-scale-'));
});
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe('avic-smp scale, a small sweep', () => {
  it('--vcpus 1,2 --ipis 2000 on ping-pong: skips 1 with a note, one row in JSON, and an SVG chart that parses with title, axis titles, ticks and legend', async () => {
    const svgPath = join(directory, 'ping-pong.svg');
    const result = await cli(['scale', '--pattern', 'ping-pong', '--vcpus', '1,2', '--ipis', '2000', '--json', '--svg', svgPath]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe('avic-smp: note: skipping 1 vCPU: ping-pong runs on exactly 2 vCPUs\n');
    const sweep = JSON.parse(result.stdout) as ScaleResult;
    expect(sweep).toMatchObject({
      pattern: 'ping-pong',
      seed: 1,
      requested: { ipis: 2000, seconds: null },
      skipped: [{ vcpus: 1 }],
      ok: true,
      svg: svgPath,
    });
    expect(sweep.rows).toHaveLength(1);
    const [row] = sweep.rows;
    expect(row).toMatchObject({ vcpus: 2, lost: 0, efficiency: 1, ok: true, failedChecks: [] });
    expect(row!.ipisPerSecond).toBeGreaterThan(0);
    expect(row!.exitsPerIpi).toEqual(expect.any(Number));
    expect(row!.latencyNs!.p50).toBeLessThanOrEqual(row!.latencyNs!.p99);

    const svg = readFileSync(svgPath, 'utf8');
    expectWellFormedSvg(svg);
    const texts = svgTexts(svg);
    expect(texts).toContain('ping-pong: IPI throughput and p99 latency against vCPU count');
    expect(texts).toContain('vCPUs (log₂ scale)');
    expect(texts).toContain('throughput (IPIs delivered/s)');
    expect(texts.some((text) => text.startsWith('latency (µs'))).toBe(true);
    expect(texts).toContain('p99 latency');
    expect(texts).toContain('2'); // the x tick
  });

  it.runIf(SCENARIOS.has('storm'))('--vcpus 2,3 --ipis 2000 on storm: the table has a row per count and defines its columns', async () => {
    const result = await cli(['scale', '--pattern', 'storm', '--vcpus', '2,3', '--ipis', '2000']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^vCPUs +IPIs\/s +p50 µs +p99 µs +exits\/IPI +efficiency +ok$/m);
    expect(result.stdout).toMatch(/^2 +[\d,]+ +\S+ +\S+ +[\d.]+ +1\.00 +✓$/m);
    expect(result.stdout).toMatch(/^3 +[\d,]+ +\S+ +\S+ +[\d.]+ +[\d.]+ +✓$/m);
    expect(result.stdout).toContain('of the 2-vCPU row');
  });

  it('the human table: columns, a ✓ per passing row, the definitions of efficiency and exits/IPI', async () => {
    const result = await cli(['scale', '--pattern', 'ack', '--vcpus', '2', '--ipis', '1000']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^vCPUs +IPIs\/s +p50 µs +p99 µs +exits\/IPI +efficiency +ok$/m);
    expect(result.stdout).toMatch(/^2 +[\d,]+ +[\d.,]+ +[\d.,]+ +[\d.]+ +1\.00 +✓$/m);
    expect(result.stdout).toContain('efficiency = (IPIs/s ÷ vCPUs) ÷ (IPIs/s ÷ vCPUs of the 2-vCPU row)');
    expect(result.stdout).toContain('exits/IPI = AVIC incomplete-IPI exits (all causes) ÷ IPIs delivered');
  });
});

describe('the scale chart, rendered in process', () => {
  const row = (vcpus: number, ipisPerSecond: number, p99: number | null, ok = true): ScaleRow => ({
    vcpus,
    ipisPerSecond,
    sent: 1000,
    delivered: 1000,
    lost: ok ? 0 : 1,
    exitsPerIpi: 0.1,
    efficiency: 1,
    durationSeconds: 1,
    exit: 'all-done',
    failedChecks: [],
    ok,
    latencyNs: p99 === null ? null : { count: 10, min: 100, mean: p99 / 2, p50: p99 / 4, p90: p99 / 2, p99, p999: p99, max: p99 },
  });

  it('four counts on a log2 axis with a linear-scaling reference, a failed row named in the subtitle, well-formed XML', async () => {
    const sweep: ScaleResult = {
      pattern: 'storm',
      seed: 9,
      requested: { ipis: null, seconds: 1 },
      skipped: [],
      ok: false,
      rows: [row(1, 1e6, 800), row(2, 1.8e6, 1_500), row(4, 2.5e6, 9_000), row(16, 2.6e6, 400_000, false)],
    };
    const svg = await renderScaleChart(sweep);
    expectWellFormedSvg(svg);
    const texts = svgTexts(svg);
    expect(texts).toContain('storm: IPI throughput and p99 latency against vCPU count');
    for (const tick of ['1', '2', '4', '16']) expect(texts).toContain(tick);
    expect(texts).toContain('linear scaling from 1 vCPU');
    expect(texts).toContain('latency (µs), log scale');
    expect(texts.some((text) => text.includes('FAILED at 16 vCPUs'))).toBe(true);
  });

  it('a pattern without latency samples still draws both panels and says so', async () => {
    const sweep: ScaleResult = {
      pattern: 'broadcast',
      seed: 1,
      requested: { ipis: 500, seconds: null },
      skipped: [],
      ok: true,
      rows: [row(2, 5e5, null), row(8, 9e5, null)],
    };
    const svg = await renderScaleChart(sweep);
    expectWellFormedSvg(svg);
    expect(svgTexts(svg)).toContain('Latency: this pattern records no samples');
  });
});

describe.concurrent('avic-smp scale bad input exits 2 with a one-line message and no stack trace', () => {
  const cases: ReadonlyArray<readonly [string, readonly string[], RegExp]> = [
    [
      '--vcpus 1,x',
      ['--pattern', 'ping-pong', '--vcpus', '1,x'],
      /--vcpus must be a comma-separated list of whole numbers from 1 to 255.*"1,x"/,
    ],
    ['--vcpus 0,2', ['--pattern', 'ping-pong', '--vcpus', '0,2'], /--vcpus values must be from 1 to 255, got 0/],
    [
      '--vcpus with nothing the pattern can run',
      ['--pattern', 'ping-pong', '--vcpus', '1,4'],
      /^avic-smp: none of --vcpus 1,4 can run: ping-pong runs on exactly 2 vCPUs$/,
    ],
    ['an unknown pattern', ['--pattern', 'nope'], /unknown pattern "nope"; the patterns are: /],
    ['both --ipis and --seconds', ['--pattern', 'ping-pong', '--ipis', '10', '--seconds', '1'], /cannot be used with option/],
    [
      '--svg into a missing directory',
      ['--pattern', 'ping-pong', '--vcpus', '2', '--svg', '/nonexistent-avic-smp/x.svg'],
      /^avic-smp: --svg .*does not exist/,
    ],
  ];
  it.each(cases)('%s', async (_name, args, message) => {
    const result = await cli(['scale', ...args]);
    expect(result.status, `stderr:\n${result.stderr}`).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toContain('    at ');
    expect(result.stderr.split('\n')[0]).toMatch(message);
  });
});
