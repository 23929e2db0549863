// `avic-smp stress --trace FILE`: the file is Chrome trace-event JSON (what Perfetto loads): a
// traceEvents array whose every event has name, ph, ts, pid and tid, a thread_name track per vCPU,
// and the IPI sends, deliveries, halts and wake-ups of the run. With --trace-format ftrace it is the
// text a KVM host's tracefs prints: every line in the kernel's context format (and the shape
// Perfetto's systrace importer tokenizes), in time order, KVM's AVIC tracepoints with their fields,
// and sched_switch lines that pair up on each host CPU.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, type CliResult, runCli } from '../support/cli.js';

let directory = '';

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

/** `avic-smp stress ...args`, killed after 30 s. */
function stress(args: readonly string[]): Promise<CliResult> {
  return runCli(['stress', ...args], { timeoutMs: 30_000 });
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
  assertCliBuilt();
  directory = mkdtempSync(join(tmpdir(), 'avic-smp-trace-'));
});
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe('avic-smp stress --trace', () => {
  it('ping-pong: a trace-event file with a named track per vCPU, IPI sends and interrupts on both; the path is printed', async () => {
    const path = join(directory, 'ping-pong.json');
    const result = await stress(['--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '300', '--trace', path]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`trace: ${path} (`);
    const { traceEvents, otherData } = readTrace(path);
    const threads = traceEvents.filter((event) => event.ph === 'M' && event.name === 'thread_name');
    expect(threads.map((event) => [event.tid, event.args?.['name']])).toEqual([
      [0, 'vCPU 0'],
      [1, 'vCPU 1'],
    ]);
    const sends = traceEvents.filter((event) => event.name.startsWith('IPI send'));
    expect(sends.length).toBeGreaterThan(0);
    expect(new Set(sends.map((event) => event.tid))).toEqual(new Set([0, 1])); // the ping and the pong
    expect(traceEvents.some((event) => event.name.startsWith('interrupt 0x'))).toBe(true);
    expect(otherData).toMatchObject({ pattern: 'ping-pong', vcpus: 2, seed: 1 });
  });

  it('ping-pong-halt --no-halt-poll with --json: stdout stays one JSON object naming the file; HLT spans and wake-ups are traced', async () => {
    const path = join(directory, 'ping-pong-halt.json');
    const result = await stress([
      '--pattern',
      'ping-pong-halt',
      '--vcpus',
      '2',
      '--ipis',
      '100',
      '--no-halt-poll',
      '--json',
      '--trace',
      path,
    ]);
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

/** trace_print_context's line: "%16s-%-7d [%03d] " five flag columns, " %5lu.%06lu: ", the event's name and text. */
const FTRACE_LINE = /^(.{16})-(\d+) +\[(\d{3})\] [.a-zA-Z0-9]{5} +(\d+\.\d{6}): (\w+): (.*)$/;
/** Perfetto's systrace line tokenizer (src/trace_processor/importers/systrace/systrace_line_tokenizer.cc). */
const PERFETTO_TOKENIZER = /-(\d+)\s+\(?\s*(\d+|-+)?\)?\s?\[(\d+)\]\s*[a-zA-Z0-9.]{0,5}\s*(\d+\.\d+):\s+(\S+):/;

interface FtraceLine {
  task: string;
  pid: number;
  cpu: number;
  seconds: number;
  event: string;
  text: string;
}

function readFtrace(path: string): { header: string[]; lines: FtraceLine[] } {
  const all = readFileSync(path, 'utf8').split('\n');
  expect(all.pop()).toBe('');
  const header = all.filter((line) => line.startsWith('#'));
  const lines = all
    .filter((line) => !line.startsWith('#'))
    .map((line) => {
      const match = FTRACE_LINE.exec(line);
      expect(match, line).not.toBeNull();
      expect(PERFETTO_TOKENIZER.test(line), line).toBe(true);
      const [, task, pid, cpu, seconds, event, text] = match!;
      return { task: task!.trim(), pid: Number(pid), cpu: Number(cpu), seconds: Number(seconds), event: event!, text: text! };
    });
  return { header, lines };
}

/** Each host CPU's sched_switch lines chain: every switch's prev is the previous switch's next. */
function expectSwitchesPairPerCpu(lines: readonly FtraceLine[]): void {
  const current = new Map<number, string>();
  for (const line of lines.filter((entry) => entry.event === 'sched_switch')) {
    const match = /^prev_comm=(.+) prev_pid=(\d+) prev_prio=120 prev_state=(R|R\+|S) ==> next_comm=(.+) next_pid=(\d+) next_prio=120$/.exec(
      line.text,
    );
    expect(match, line.text).not.toBeNull();
    const [, prevComm, prevPid, , nextComm, nextPid] = match!;
    expect(`${prevComm}-${prevPid}`).toBe(current.get(line.cpu) ?? `swapper/${line.cpu}-0`);
    expect(line.task === '<idle>' ? `swapper/${line.cpu}` : line.task).toBe(prevComm);
    current.set(line.cpu, `${nextComm}-${nextPid}`);
  }
}

describe('avic-smp stress --trace-format ftrace', () => {
  it("halter-sender --no-halt-poll: KVM's incomplete-IPI exits with cause 1, the halted vCPU switched out and woken on its host CPU", async () => {
    const path = join(directory, 'halter-sender.txt');
    const result = await stress([
      '--pattern',
      'halter-sender',
      '--vcpus',
      '2',
      '--ipis',
      '200',
      '--no-halt-poll',
      '--trace',
      path,
      '--trace-format',
      'ftrace',
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`trace: ${path} (`);
    const { header, lines } = readFtrace(path);
    expect(header.slice(0, 2)).toEqual(['# tracer: nop', '#']);
    expect(header[2]).toBe(`# entries-in-buffer/entries-written: ${lines.length}/${lines.length}   #P:2`);
    for (let index = 1; index < lines.length; index++) expect(lines[index]!.seconds).toBeGreaterThanOrEqual(lines[index - 1]!.seconds);
    for (const line of lines) {
      if (line.task !== '<idle>') expect(`${line.task}-${line.pid}`).toMatch(/^CPU ([01])\/KVM-100\1$/);
    }

    const incomplete = lines.filter((line) => line.event === 'kvm_avic_incomplete_ipi');
    expect(incomplete.length).toBeGreaterThan(0);
    for (const line of incomplete) expect(line.text).toMatch(/^vcpu=[01], icrh:icrl=0x[0-9a-f]{8}:[0-9a-f]{8}, id=1, index=[01]$/);
    const exits = lines.filter((line) => line.event === 'kvm_exit');
    expect(
      exits.some((line) =>
        / reason avic_incomplete_ipi rip 0x[0-9a-f]+ info1 0x[0-9a-f]{16} info2 0x000000010000000[01] intr_info 0x00000000 error_code 0x00000000$/.test(
          line.text,
        ),
      ),
    ).toBe(true);
    expect(exits.some((line) => / reason hlt /.test(line.text))).toBe(true);
    expect(lines.filter((line) => line.event === 'kvm_entry').every((line) => /^vcpu [01], rip 0x[0-9a-f]+$/.test(line.text))).toBe(true);

    const switches = lines.filter((line) => line.event === 'sched_switch');
    expect(switches.some((line) => /prev_state=S ==> next_comm=swapper\/\d next_pid=0/.test(line.text))).toBe(true);
    expectSwitchesPairPerCpu(lines);
    expect(lines.some((line) => line.event === 'kvm_vcpu_wakeup' && /^wait time \d+ ns, polling valid$/.test(line.text))).toBe(true);
    expect(
      lines.some((line) => line.event === 'sched_waking' && /^comm=CPU [01]\/KVM pid=100[01] prio=120 target_cpu=00[01]$/.test(line.text)),
    ).toBe(true);
  });

  it("ping-pong --no-ipiv: every IPI exits, and KVM rings the running target's doorbell at the host CPU it runs on", async () => {
    const path = join(directory, 'ping-pong.txt');
    const result = await stress([
      '--pattern',
      'ping-pong',
      '--vcpus',
      '2',
      '--ipis',
      '200',
      '--no-ipiv',
      '--json',
      '--trace',
      path,
      '--trace-format',
      'ftrace',
    ]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pattern: 'ping-pong', trace: path });
    const { lines } = readFtrace(path);
    const cpuOf = new Map(lines.filter((line) => line.task.startsWith('CPU ')).map((line) => [line.pid - 1000, line.cpu]));
    const doorbells = lines.filter((line) => line.event === 'kvm_avic_doorbell');
    expect(doorbells.length).toBeGreaterThan(0);
    for (const line of doorbells) {
      const [, vcpuId, apicId] = /^vcpuid=(\d+), apicid=(\d+)$/.exec(line.text)!;
      expect(Number(vcpuId)).not.toBe(line.pid - 1000);
      expect(Number(apicId)).toBe(cpuOf.get(Number(vcpuId)));
    }
    expectSwitchesPairPerCpu(lines);
  });
});
