// `avic-smp stress --trace FILE`: the file is Chrome trace-event JSON (what Perfetto loads): a
// traceEvents array whose every event has name, ph, ts, pid and tid, a thread_name track per vCPU,
// and the IPI sends, deliveries, halts and wake-ups of the run.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
let directory = '';

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

function stress(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, 'stress', ...args], { encoding: 'utf8', timeout: 30_000 });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function readTrace(path: string): { traceEvents: TraceEvent[]; otherData: Record<string, unknown> } {
  const trace = JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: TraceEvent[]; otherData: Record<string, unknown> };
  expect(Array.isArray(trace.traceEvents)).toBe(true);
  for (const event of trace.traceEvents) {
    expect(typeof event.name, JSON.stringify(event)).toBe('string');
    expect(['B', 'E', 'i', 'M', 'X']).toContain(event.ph);
    expect(Number.isFinite(event.ts), JSON.stringify(event)).toBe(true);
    expect(Number.isInteger(event.pid)).toBe(true);
    expect(Number.isInteger(event.tid)).toBe(true);
  }
  return trace;
}

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` (the pretest script does)`);
  directory = mkdtempSync(join(tmpdir(), 'avic-smp-trace-'));
});
afterAll(() => { rmSync(directory, { recursive: true, force: true }); });

describe('avic-smp stress --trace', () => {
  it('ping-pong: a trace-event file with a named track per vCPU, IPI sends and interrupts on both; the path is printed', () => {
    const path = join(directory, 'ping-pong.json');
    const result = stress(['--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '300', '--trace', path]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`trace: ${path} (`);
    const { traceEvents, otherData } = readTrace(path);
    const threads = traceEvents.filter((event) => event.ph === 'M' && event.name === 'thread_name');
    expect(threads.map((event) => [event.tid, event.args?.['name']])).toEqual([[0, 'vCPU 0'], [1, 'vCPU 1']]);
    const sends = traceEvents.filter((event) => event.name.startsWith('IPI send'));
    expect(sends.length).toBeGreaterThan(0);
    expect(new Set(sends.map((event) => event.tid))).toEqual(new Set([0, 1])); // the ping and the pong
    expect(traceEvents.some((event) => event.name.startsWith('interrupt 0x'))).toBe(true);
    expect(otherData).toMatchObject({ pattern: 'ping-pong', vcpus: 2, seed: 1 });
  });

  it('ping-pong-halt --no-halt-poll with --json: stdout stays one JSON object naming the file; HLT spans and wake-ups are traced', () => {
    const path = join(directory, 'ping-pong-halt.json');
    const result = stress(['--pattern', 'ping-pong-halt', '--vcpus', '2', '--ipis', '100', '--no-halt-poll', '--json', '--trace', path]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pattern: 'ping-pong-halt', trace: path });
    const { traceEvents } = readTrace(path);
    const begins = traceEvents.filter((event) => event.name === 'HLT' && event.ph === 'B').length;
    const ends = traceEvents.filter((event) => event.name === 'HLT' && event.ph === 'E').length;
    expect(begins).toBeGreaterThan(0);
    expect(ends).toBeGreaterThan(0);
    expect(Math.abs(begins - ends)).toBeLessThanOrEqual(2); // a vCPU may end the run inside HLT
    expect(traceEvents.some((event) => event.name === 'wake-up')).toBe(true);
  });
});
