// `avic-smp explore` in-process with a fake seed runner: canned run reports shaped as docs/json.md
// lists them, and a helper that parses an explore command line and collects what it printed, its
// exit status and the runs it asked for (test/cli/explore-command.test.ts, json-fields.test.ts).

import { Command } from 'commander';
import type { RunOutcome } from '../../src/explore/classify-failure.js';
import type { SeedRunRequest } from '../../src/explore/seed-runner.js';
import { addExploreCommand, type ExploreDependencies } from '../../src/cli/explore-command.js';

export const passing = (switches = 50): RunOutcome => report(0, { exit: { reason: 'all-done', detail: '' }, schedule: { switches } });

export function report(exitCode: number, fields: Record<string, unknown>): RunOutcome {
  const json = {
    exit: { reason: 'all-done', detail: '' },
    ipis: { lost: 0 },
    lostWakeups: 0,
    faults: [],
    errors: [],
    perVcpu: [],
    ...fields,
  };
  return { exitCode, signal: null, stdout: JSON.stringify(json), stderr: '', timedOut: false, cancelled: false };
}

/** A lost wake-up on vCPU 1, vector 0x40, in a run of `switches` thread switches. */
export const lostWakeup = (switches = 50): RunOutcome =>
  report(1, {
    exit: {
      reason: 'watchdog',
      detail: 'vCPU 1 is blocked with vector 64 (0x40) deliverable in its IRR and no wake-up coming (a lost wake-up)',
    },
    lostWakeups: 1,
    schedule: { switches },
  });

export type Fake = (request: SeedRunRequest, signal: AbortSignal) => RunOutcome | Promise<RunOutcome>;

/** Runs `avic-smp explore <args>` in-process with `fake` as the seed runner; BadInput rejects. */
export async function explore(
  args: readonly string[],
  fake: Fake,
  progress: Pick<ExploreDependencies, 'progressStream' | 'progressAfterSeconds'> = {},
): Promise<{ status: number; output: string; requests: SeedRunRequest[] }> {
  const requests: SeedRunRequest[] = [];
  let output = '';
  let status = -1;
  const program = new Command('avic-smp').exitOverride().configureOutput({ writeErr: () => undefined });
  addExploreCommand(program, (code) => (status = code), {
    runner: () => ({
      run: async (request, signal) => {
        requests.push(request);
        return fake(request, signal);
      },
    }),
    write: (text) => (output += text),
    ...progress,
  });
  await program.parseAsync(['explore', ...args], { from: 'user' });
  return { status, output, requests };
}
