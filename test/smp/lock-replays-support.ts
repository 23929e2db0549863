// Setup for the lock-replay tests (no assertions here): run a registered replay on the storm
// workload, and normalise a report for a text snapshot (worker slots and wait times vary by run).
import { findLockReplay, type LockReplayOutcome } from '../../src/scenarios/lock-scenarios/lock-replays.js';
import { stormWorkload } from '../../src/cli/lockdep-command.js';

/** The watchdog's bound and the stop's: 1 s each unless a test that waits them out asks for less. */
export interface ReplayBounds {
  readonly watchdogSeconds: number;
  readonly stopTimeoutSeconds: number;
}

export async function runReplay(
  name: string,
  validator: boolean,
  bounds: ReplayBounds = { watchdogSeconds: 1, stopTimeoutSeconds: 1 },
): Promise<LockReplayOutcome> {
  const replay = findLockReplay(name);
  if (replay === undefined) throw new Error(`no lock replay named ${name}`);
  return replay.run({ validator, workload: stormWorkload(10_000), vcpus: 2, ...bounds });
}

/** Worker slot numbers and waited milliseconds differ between runs; the rest of a report does not. */
export function normalizeReport(text: string): string {
  return text
    .replace(/worker \d+/g, 'worker N')
    .replace(/\(\d+ ms\)/g, '(T ms)')
    .replace(/for \d+(\.\d+)? s/g, 'for T s');
}
