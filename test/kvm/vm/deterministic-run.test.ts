// The main thread's side of a deterministic run (src/kvm/vm/deterministic-run.ts), without workers:
// one run at a time on the main thread, and a run that left its schedule (or was aborted) does not
// block the next one even if it never restored the main thread's host.
import { afterEach, describe, expect, it } from 'vitest';
import { mainHostThread, parallelMainHostThread, setMainHostThread } from '../../../src/host/host-thread.js';
import { DeterministicRun } from '../../../src/kvm/vm/deterministic-run.js';
import { VmConfigError } from '../../../src/kvm/vm/vm-config.js';

const OPTIONS = { seed: 1, strategy: 'random' } as const;

afterEach(() => setMainHostThread(parallelMainHostThread));

describe('DeterministicRun', () => {
  it('is nothing for a parallel run', () => {
    expect(DeterministicRun.begin(undefined, 2, {})).toBeUndefined();
    expect(mainHostThread()).toBe(parallelMainHostThread);
  });

  it('installs main as the main thread host; a second run while it takes part is refused', () => {
    const run = DeterministicRun.begin(OPTIONS, 1, { words: new SharedArrayBuffer(8) })!;
    expect(mainHostThread()).not.toBe(parallelMainHostThread);
    expect(() => DeterministicRun.begin(OPTIONS, 1, {})).toThrow(VmConfigError);
    expect(run.shared.participants).toBe(2);
  });

  it('a run whose main left (its host never restored) lets the next one begin; endWithReport restores and reports', () => {
    const first = DeterministicRun.begin(OPTIONS, 1, {})!;
    first.leave();
    const second = DeterministicRun.begin({ seed: 2, strategy: 'pct' }, 1, {})!;
    const report = DeterministicRun.endWithReport({ ok: true }, second);
    expect(mainHostThread()).toBe(parallelMainHostThread);
    expect(report.schedule).toMatchObject({ seed: 2, strategy: 'pct', decisions: 0 });
    expect(DeterministicRun.endWithReport({ ok: true }, undefined)).toEqual({ ok: true });
  });
});
