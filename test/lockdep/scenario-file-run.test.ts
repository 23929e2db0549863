// The shipped lock scenario files run on real threads (issue 4 item 6): "vcpu N" threads on worker
// threads attached to the shared lockdep region, "main" on this thread. Their steps are ordered by
// the files' own wait-for labels (handshakes), never by timing.
import { describe, expect, it, vi } from 'vitest';
import { loadLockScenarioFile } from '../../src/lockdep/scenario-file.js';
import { runLockScenario } from '../../src/scenarios/lock-scenarios/scenario-file-runner.js';

describe('running lock scenario files', () => {
  it('abba.yaml with the validator: a possible deadlock between the two workers; the reporter backs out and both finish', async () => {
    const outcome = await runLockScenario(loadLockScenarioFile('examples/locks/abba.yaml'), { validator: true, watchdogMs: 1000 });
    expect(outcome.verdict, outcome.report).toBe('possible-deadlock');
    // Either worker may validate its second acquisition last and close the cycle.
    expect([
      ['A', 'B', 'A'],
      ['B', 'A', 'B'],
    ]).toContainEqual(outcome.cycle);
    expect(outcome.report).toContain('WARNING: possible circular locking dependency detected');
    expect(outcome.report).toMatch(/vCPU [01]\/worker [12] is trying to acquire lock/);
    expect(outcome.report).toMatch(
      /first seen: vCPU [01]\/worker [12], step: acquire [AB] at threads\[[01]\]\.steps\[2\] \(abba\.yaml:(18|26)\)/,
    );
    expect(outcome.problems).toEqual([]);
    expect(outcome.threads.map((thread) => thread.outcome).sort()).toEqual(['backed-out', 'done']);
  });

  it('a finished run leaves no timer of its own pending (a CLI process would otherwise stay alive for the teardown grace)', async () => {
    // Every timer the run sets is recorded with its delay, and struck off when it fires or is cleared;
    // once the run has returned none may be left. Counting the process's timers instead would count
    // other code's. Without the runner's clearTimeout its 2 s teardown grace is left pending: [2000].
    const pending = new Map<NodeJS.Timeout, number>();
    const [setTimer, clearTimer] = [globalThis.setTimeout, globalThis.clearTimeout];
    const setSpy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      callback: (...args: unknown[]) => void,
      ms?: number,
      ...args: unknown[]
    ) => {
      const timer: NodeJS.Timeout = setTimer(() => {
        pending.delete(timer);
        callback(...args);
      }, ms);
      pending.set(timer, ms ?? 0);
      return timer;
    }) as typeof setTimeout);
    const clearSpy = vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((timer: NodeJS.Timeout | undefined) => {
      if (timer !== undefined) pending.delete(timer);
      clearTimer(timer);
    }) as typeof clearTimeout);
    let created = 0;
    try {
      const outcome = await runLockScenario(loadLockScenarioFile('examples/locks/abba.yaml'), { validator: true, watchdogMs: 1000 });
      expect(outcome.verdict, outcome.report).toBe('possible-deadlock');
      created = setSpy.mock.calls.length;
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
    expect(created).toBeGreaterThan(0);
    // The watchdog's last poll (50 ms) may still be pending when the threads end; nothing longer may.
    expect([...pending.values()].filter((ms) => ms > 50)).toEqual([]);
  });

  it('abba.yaml without the validator: a real deadlock, caught by the watchdog with the wait-for cycle, torn down within its bound', async () => {
    const started = performance.now();
    const outcome = await runLockScenario(loadLockScenarioFile('examples/locks/abba.yaml'), { validator: false, watchdogMs: 1000 });
    // The watchdog (1 s) ends it far below the waits' own bound; generous for a loaded host's worker start-up.
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(outcome.verdict).toBe('deadlock');
    expect([
      ['A', 'B', 'A'],
      ['B', 'A', 'B'],
    ]).toContainEqual(outcome.cycle);
    expect(outcome.report).toContain('no thread made progress for 1.0 s');
    expect(outcome.report).toMatch(/vCPU 0\/worker 1 waits \(\d+ ms\) for lock B, held by vCPU 1\/worker 2/);
    expect(outcome.report).toMatch(/vCPU 1\/worker 2 waits \(\d+ ms\) for lock A, held by vCPU 0\/worker 1/);
    expect(outcome.report).toContain('DEADLOCK: a cycle of waits:');
    // Aborting the waits undoes the deadlock: the first thread out releases its lock, so the other may finish.
    expect(outcome.threads.map((thread) => thread.outcome)).toContain('aborted');
  });

  it('srcu-vs-synchronize.yaml: the vCPU reading kvm->srcu, then slots_lock, against main synchronizing under slots_lock', async () => {
    const outcome = await runLockScenario(loadLockScenarioFile('examples/locks/srcu-vs-synchronize.yaml'), {
      validator: true,
      watchdogMs: 1000,
    });
    expect(outcome.verdict, outcome.report).toBe('possible-deadlock');
    // Who closes the cycle depends on scheduling: the vCPU may take slots_lock (validated) before
    // main validates its synchronize, or after. Either way the cycle is the same two edges.
    if (outcome.cycle[0] === 'kvm->slots_lock') {
      expect(outcome.cycle).toEqual(['kvm->slots_lock', 'kvm->srcu', 'kvm->slots_lock']);
      expect(outcome.report).toContain(
        'first seen: main, step: synchronize kvm->srcu at threads[1].steps[2] (srcu-vs-synchronize.yaml:23)',
      );
    } else {
      expect(outcome.cycle).toEqual(['kvm->srcu', 'kvm->slots_lock', 'kvm->srcu']);
      expect(outcome.report).toMatch(/first seen: vCPU 0[^\n]*, step: acquire kvm->slots_lock at threads\[0\]\.steps\[2\]/);
    }
    expect(outcome.report).toContain('(kvm->srcu){sync}');
    expect(outcome.problems).toEqual([]);
  });

  it("clean.json: KVM's documented order kept, on two workers and main, with and without the validator", async () => {
    for (const validator of [true, false]) {
      const outcome = await runLockScenario(loadLockScenarioFile('examples/locks/clean.json'), { validator, watchdogMs: 1000 });
      expect(outcome.verdict, outcome.report).toBe('clean');
      expect(outcome.cycle).toEqual([]);
      expect(outcome.problems).toEqual([]);
      expect(outcome.threads.map((thread) => `${thread.thread}: ${thread.outcome} after ${thread.stepsDone}`)).toEqual([
        'main: done after 5',
        'vcpu 0: done after 10',
        'vcpu 1: done after 2',
      ]);
    }
  });
});
