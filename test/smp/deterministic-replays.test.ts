// Deterministic runs of the scenarios whose main thread acts during the run (docs/deterministic.md):
// hot-add under the rfc-v2 backing-page policy (the main thread creates vCPUs, resizes the
// APIC-access memslot and waits for SRCU grace periods while the senders run) and a lock replay (the
// main thread takes KVM's locks while the vCPUs' exit handlers take them too). Ten runs of one seed
// give one report, byte for byte, and one schedule hash; two seeds give two hashes. The reports are
// compared whole: every time in them is virtual.
import { describe, expect, it } from 'vitest';
import { summarizeStress } from '../../src/cli/stress-summary.js';
import { stormWorkload } from '../../src/cli/lockdep-command.js';
import type { ScheduleOptions } from '../../src/host/deterministic/deterministic-schedule.js';
import { BackingPagePolicyName } from '../../src/kvm/control/backing-page-policy.js';
import { hotAdd } from '../../src/scenarios/hot-add.js';
import { findLockReplay } from '../../src/scenarios/lock-scenarios/lock-replays.js';
import { runScenario } from '../../src/scenarios/run-scenario.js';

const RUNS = 10;

/**
 * `avic-smp stress --pattern hot-add --vcpus 2 --hot-add 2 --seconds 0.002 --policy rfc-v2 --json`
 * with the schedule's options, as its JSON text. rfc-v2 loses IPIs by design (pages re-initialised
 * under running senders), so the run is not "ok"; every hot-add must have happened.
 */
async function hotAddJson(deterministic: ScheduleOptions): Promise<string> {
  const { result, vm } = await runScenario(
    hotAdd,
    { vcpus: 2, hotAdd: 2, seconds: 0.002, seed: 1 },
    { vmConfig: { deterministic, policy: BackingPagePolicyName.RfcV2 } },
  );
  const summary = summarizeStress(result, { haltPolling: vm.config.haltPolling });
  expect(summary.vcpuCreation.hotAdds).toBe(2);
  return JSON.stringify(summary, null, 2);
}

/** `avic-smp lockdep --scenario s4-fixed --ipis 2000` with the schedule's options: the outcome with its whole VM report. */
async function lockReplayJson(deterministic: ScheduleOptions): Promise<string> {
  const outcome = await findLockReplay('s4-fixed')!.run({ validator: true, workload: stormWorkload(2000), deterministic });
  expect(outcome.verdict).toBe('clean');
  expect(outcome.problems).toEqual([]);
  return JSON.stringify(outcome, null, 2);
}

const hashOf = (json: string): string => {
  const parsed = JSON.parse(json) as { schedule?: { scheduleHash: string }; vmReport?: { schedule: { scheduleHash: string } } };
  return (parsed.schedule ?? parsed.vmReport!.schedule).scheduleHash;
};

// PCT: a thread runs on until a change point, a wait or the end of its quantum, so a run makes a few
// dozen switches instead of hundreds of thousands and ten of them fit in seconds.
const runs = [
  ['hot-add under rfc-v2', hotAddJson],
  ['lock replay s4-fixed', lockReplayJson],
] as const;

describe('deterministic runs with main-thread actions', () => {
  it.each(runs)(`%s: ${RUNS} runs of one seed give one report and one schedule hash`, async (_name, run) => {
    const options: ScheduleOptions = { seed: 7, strategy: 'pct', depth: 3 };
    const first = await run(options);
    expect(hashOf(first)).toMatch(/^[0-9a-f]{16}$/);
    for (let again = 1; again < RUNS; again++) expect(await run(options)).toBe(first);
  });

  it.each(runs)('%s: two seeds give two schedule hashes', async (_name, run) => {
    const one = hashOf(await run({ seed: 1, strategy: 'pct' }));
    const two = hashOf(await run({ seed: 2, strategy: 'pct' }));
    expect(two).not.toBe(one);
  });
});
