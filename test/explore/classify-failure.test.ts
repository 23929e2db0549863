// Failure classification (src/explore/classify-failure.ts) on reports shaped as docs/json.md lists
// them: which kind a finding is, and signatures that keep where a bug struck but drop the numbers
// that change from seed to seed.

import { describe, expect, it } from 'vitest';
import { classifyRun, stableText, type RunOutcome } from '../../src/explore/classify-failure.js';

const outcome = (exitCode: number | null, report: unknown, more: Partial<RunOutcome> = {}): RunOutcome => ({
  exitCode,
  signal: null,
  stdout: report === undefined ? '' : JSON.stringify(report),
  stderr: '',
  timedOut: false,
  cancelled: false,
  ...more,
});

const IPIS = { accepted: 10, delivered: 10, pending: 0, lost: 0 };
const runReport = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  exit: { reason: 'all-done', detail: 'every vCPU reported done' },
  ok: true,
  ipis: IPIS,
  lostWakeups: 0,
  faults: [],
  errors: [],
  perVcpu: [{ vcpu: 0, counters: { lostWakeups: 0 }, guest: { done: true, doneStatus: 0 } }],
  lockdep: { enabled: false },
  schedule: { seed: 1, switches: 42 },
  ...overrides,
});

describe('classifyRun', () => {
  it('a clean report passes, and carries the schedule switch count', () => {
    expect(classifyRun('run', outcome(0, runReport()), 60)).toEqual({ verdict: 'pass', switches: 42 });
  });

  it('the switch count is the one --max-switches limits: schedule.preemptions when the report has it, else schedule.switches', () => {
    expect(classifyRun('run', outcome(0, runReport({ schedule: { switches: 40, preemptions: 12 } })), 60)).toEqual({
      verdict: 'pass',
      switches: 12,
    });
    expect(classifyRun('run', outcome(0, runReport({ schedule: { switches: 40 } })), 60)).toEqual({ verdict: 'pass', switches: 40 });
  });

  it("the watchdog's lost wake-up is one finding named by vCPU and vector, not also a hang", () => {
    const detail =
      'vCPU 1 is blocked with vector 64 (0x40) deliverable in its IRR and no wake-up coming (a lost wake-up)\nwait-for graph: empty';
    const verdict = classifyRun('run', outcome(1, runReport({ exit: { reason: 'watchdog', detail }, lostWakeups: 1 })), 60);

    expect(verdict).toMatchObject({
      verdict: 'fail',
      failure: { kind: 'lost-wakeup', signature: 'lost-wakeup vCPU 1 vector 0x40', also: [], switches: 42 },
    });
  });

  it('a lost IPI, a guest fault (run and stress shapes), a lockdep report and a failed check each have their kind', () => {
    const lost = classifyRun('run', outcome(1, runReport({ ipis: { ...IPIS, delivered: 7, lost: 3 } })), 60);
    expect(lost).toMatchObject({ failure: { kind: 'lost-ipi', signature: 'lost-ipi', detail: expect.stringContaining('3 IPI(s) lost') } });

    const fault = { vcpu: 1, fault: { kind: 'guest-abort', pc: 0x40, detail: 'x' }, description: 'guest-abort at pc 0x40: x' };
    const runFault = classifyRun(
      'run',
      outcome(1, runReport({ exit: { reason: 'fault', detail: 'vCPU 1 stopped the VM' }, faults: [fault] })),
      60,
    );
    expect(runFault).toMatchObject({ failure: { kind: 'guest-fault', signature: 'guest-fault vCPU 1 guest-abort at pc 0x40' } });
    const stressFault = classifyRun(
      'stress',
      outcome(1, runReport({ faults: ['vCPU 1: guest-abort at pc 0x40 in a.s:3:5 (abort): x'] })),
      60,
    );
    expect(stressFault).toMatchObject({ failure: { signature: 'guest-fault vCPU 1 guest-abort at pc 0x40' } });

    const splat = {
      report: { kind: 'circular', cycle: ['a', 'b', 'a'], text: '=====\nWARNING: possible circular locking dependency detected' },
    };
    const lockdep = classifyRun('run', outcome(1, runReport({ lockdep: { enabled: true, ...splat } })), 60);
    expect(lockdep).toMatchObject({
      failure: { kind: 'lockdep', signature: 'lockdep a -> b -> a', detail: 'WARNING: possible circular locking dependency detected' },
    });

    const checks = [
      { name: 'every ping handled', ok: false, detail: 'target handled 4999 ping(s) for 5000 round(s)' },
      { name: 'no IPI lost', ok: true, detail: '' },
    ];
    expect(classifyRun('stress', outcome(1, runReport({ checks })), 60)).toMatchObject({
      failure: { kind: 'check-failed', signature: 'check-failed every ping handled' },
    });
  });

  it("a guest's HC_DONE status other than 0 fails even a run that exited 0", () => {
    const perVcpu = [{ vcpu: 2, counters: { lostWakeups: 0 }, guest: { done: true, doneStatus: 7 } }];
    expect(classifyRun('run', outcome(0, runReport({ perVcpu })), 60)).toMatchObject({
      failure: { signature: 'guest-failure vCPU 2 status 7' },
    });
  });

  it('a stuck vCPU is a hang whose signature drops the times; a timeout is a hang too', () => {
    const stuck = (seconds: string): RunOutcome =>
      outcome(
        1,
        runReport({
          exit: { reason: 'watchdog', detail: `vCPU 0 made no progress for 2 s (vCPU 0 is running; it ran ${seconds} s in 2.1 s)` },
        }),
      );
    const first = classifyRun('run', stuck('1.93'), 60);
    const second = classifyRun('run', stuck('2.07'), 60);
    expect(first).toMatchObject({ failure: { kind: 'hang' } });
    expect(first.verdict === 'fail' && second.verdict === 'fail' && first.failure.signature === second.failure.signature).toBe(true);

    expect(classifyRun('run', outcome(1, runReport({ exit: { reason: 'timeout', detail: 'x' } })), 60)).toMatchObject({
      failure: { signature: 'hang timeout' },
    });
  });

  it('lockdep --json: a deadlock, a possible deadlock and problems', () => {
    const report = {
      scenario: 's5',
      verdict: 'deadlock',
      cycle: ['x', 'y', 'x'],
      report: 'deadlock: ...',
      validator: false,
      problems: ['a thread failed after 1234 ms'],
    };
    const verdict = classifyRun('lockdep', outcome(1, report), 60);
    expect(verdict).toMatchObject({
      failure: { kind: 'deadlock', signature: 'deadlock x -> y -> x', also: ['problem a thread failed after N ms'] },
    });
    expect(classifyRun('lockdep', outcome(1, { ...report, verdict: 'possible-deadlock', problems: [] }), 60)).toMatchObject({
      failure: { signature: 'lockdep x -> y -> x' },
    });
    expect(classifyRun('lockdep', outcome(0, { ...report, verdict: 'clean', cycle: [], problems: [] }), 60)).toEqual({ verdict: 'pass' });
  });

  it('the run timeout is a hang; exit 2 is bad input; no JSON or another status is a crash; a cancelled run is neither', () => {
    expect(classifyRun('run', outcome(null, undefined, { signal: 'SIGKILL', timedOut: true }), 30)).toMatchObject({
      failure: { kind: 'hang', signature: 'hang run timeout', detail: expect.stringContaining('30 s') },
    });
    expect(classifyRun('run', outcome(2, undefined, { stderr: "error: unknown option '--deterministic'\n(run with --help)" }), 60)).toEqual(
      { verdict: 'bad-input', message: "error: unknown option '--deterministic'" },
    );
    const internal = outcome(1, undefined, { stderr: 'avic-smp: internal error: RangeError: offset 70000 out of range\n    at x.js:1' });
    expect(classifyRun('run', internal, 60)).toMatchObject({
      failure: { kind: 'crash', signature: 'crash exit 1: avic-smp: internal error: RangeError: offset N out of range' },
    });
    expect(classifyRun('run', outcome(null, undefined, { signal: 'SIGSEGV' }), 60)).toMatchObject({
      failure: { signature: 'crash signal SIGSEGV' },
    });
    expect(classifyRun('run', outcome(134, runReport()), 60)).toMatchObject({ failure: { signature: 'crash exit 134' } });
    expect(classifyRun('run', outcome(null, undefined, { signal: 'SIGKILL', cancelled: true }), 60)).toEqual({ verdict: 'cancelled' });
  });

  it('exit 1 with a report that names nothing explore knows is still a failure', () => {
    expect(classifyRun('run', outcome(1, runReport({ exit: { reason: 'fault', detail: 'a host CPU failed: x' } })), 60)).toMatchObject({
      failure: { kind: 'failed', signature: 'failed fault' },
    });
  });
});

describe('stableText', () => {
  it('keeps small integers and hex, drops decimals, long numbers and grouped counts; first line only', () => {
    expect(stableText('vCPU 3 vector 0x40 after 1.25 s, 12345 exits, 1,234,567 IPIs\nmore')).toBe(
      'vCPU 3 vector 0x40 after N s, N exits, N IPIs',
    );
  });
});
