// The host-CPU matrix (issue 11's must-show): a representative set of scenario checks, a lock replay
// and the whole conformance suite pass with the vCPUs scheduled onto 1 host CPU, 2 host CPUs and one
// host CPU per vCPU. Runs are short and send few IPIs: what is checked is that every count balances
// and every vCPU finishes whatever the host-CPU count, not how fast.
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { CONFORMANCE_CASES } from '../../src/conformance/catalogue.js';
import { runConformanceCase } from '../../src/conformance/run-conformance-case.js';
import { stormWorkload } from '../../src/cli/lockdep-command.js';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { findLockReplay } from '../../src/scenarios/lock-scenarios/lock-replays.js';
import { runScenario } from '../../src/scenarios/run-scenario.js';
import type { ScenarioParameters, ScenarioResult } from '../../src/scenarios/scenario.js';

/** 1, 2 and = vCPUs, each once (a 2-vCPU VM has two distinct counts). */
function hostCpuCounts(vcpus: number): number[] {
  return [...new Set([1, Math.min(2, vcpus), vcpus])];
}

function explain(result: ScenarioResult): string {
  const failed = result.checks.filter((check) => !check.ok).map((check) => `${check.name}: ${check.detail}`);
  return JSON.stringify({ exit: result.report.exit, ipis: result.report.ipis, lostWakeups: result.report.lostWakeups, failed }, null, 1);
}

const SCENARIO_RUNS: ReadonlyArray<readonly [pattern: string, parameters: ScenarioParameters, vcpusInAll: number]> = [
  ['storm', { vcpus: 4, ipis: 4000, seed: 11 }, 4],
  ['halter-sender', { vcpus: 3, ipis: 150, seed: 11 }, 3],
  ['ping-pong', { vcpus: 2, ipis: 200, seed: 11 }, 2],
  // Two vCPUs hot-added to two: the VM has room for 4, so "= vCPUs" is 4 host CPUs. The hot-adds
  // come at 0.2 s and 0.4 s of guest time; each takes milliseconds.
  ['hot-add', { vcpus: 2, hotAdd: 2, seconds: 0.6, seed: 11 }, 4],
];

const SCENARIO_MATRIX = SCENARIO_RUNS.flatMap(([pattern, parameters, vcpusInAll]) =>
  hostCpuCounts(vcpusInAll).map((hostCpus) => [pattern, hostCpus, parameters] as const),
);

describe('scenario checks pass with host CPUs = 1, 2 and = vCPUs', () => {
  it.each(SCENARIO_MATRIX)(
    '%s on %i host CPU(s)',
    async (pattern, hostCpus, parameters) => {
      const { result } = await runScenario(SCENARIOS.get(pattern)!, parameters, { vmConfig: { hostCpus } });
      expect(result.report.hostCpuCount).toBe(hostCpus);
      expect(result.ok, explain(result)).toBe(true);
      expect(result.report.exit.reason).toBe('all-done');
      expect(result.report.ipis.lost).toBe(0);
      expect(result.report.lostWakeups).toBe(0);
    },
    60_000,
  );
});

describe('a lock replay is reported and backs out with host CPUs = 1, 2 and = vCPUs', () => {
  it.each(hostCpuCounts(3))(
    's1 with 3 vCPUs on %i host CPU(s)',
    async (hostCpus) => {
      const outcome = await findLockReplay('s1')!.run({
        validator: true,
        workload: stormWorkload(6000),
        vcpus: 3,
        hostCpus,
        watchdogSeconds: 1,
        stopTimeoutSeconds: 1,
      });
      expect(outcome.verdict, outcome.report).toBe('possible-deadlock');
      expect(outcome.cycle).toEqual(['kvm->slots_lock', 'kvm->srcu', 'kvm->slots_lock']);
      expect(outcome.problems).toEqual([]);
      expect(outcome.vmReport?.hostCpuCount).toBe(hostCpus);
      expect(outcome.vmReport?.exit.reason).toBe('all-done');
      expect(outcome.vmReport?.ok).toBe(true);
      expect(outcome.ipis?.lost).toBe(0);
    },
    60_000,
  );
});

// test/conformance/conformance-catalogue.test.ts runs every case with the default host CPUs,
// min(vCPUs, cores); here each case runs at the other counts of 1, 2 and = vCPUs. With a shorter
// quantum and pause filter count than the defaults: the cases' waits spin, and sharing a host CPU,
// each hand-over costs the waiter a whole pause-loop window or quantum (1-2 ms), so some cases took
// 7-11 s on 1 host CPU; shorter ones hand over more often, which tests more interleavings, not fewer.
const SCHEDULER = { quantumUs: 200, pauseFilterCount: 256 } as const;
const defaultHostCpus = (vcpus: number): number => Math.min(vcpus, os.availableParallelism());
const CONFORMANCE_MATRIX = CONFORMANCE_CASES.flatMap((testCase) =>
  hostCpuCounts(testCase.vcpus)
    .filter((hostCpus) => hostCpus !== defaultHostCpus(testCase.vcpus))
    .map((hostCpus) => [testCase.name, hostCpus, testCase] as const),
);

describe('the conformance suite passes with host CPUs = 1, 2 and = vCPUs', () => {
  it('runs every multi-vCPU case at some count other than the default', () => {
    const covered = new Set(CONFORMANCE_MATRIX.map(([name]) => name));
    for (const testCase of CONFORMANCE_CASES) if (testCase.vcpus > 1) expect(covered.has(testCase.name), testCase.name).toBe(true);
  });

  it.each(CONFORMANCE_MATRIX)(
    '%s on %i host CPU(s)',
    async (name, hostCpus, testCase) => {
      const result = await runConformanceCase(testCase, { hostCpus, scheduler: SCHEDULER });
      expect(result, result.detail).toMatchObject({ name, status: 'pass' });
    },
    70_000,
  );
});
