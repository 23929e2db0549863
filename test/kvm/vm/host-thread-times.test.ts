// What the watchdogs read about a host thread (vcpu-run-time.ts): its CPU time and, where Linux keeps
// it, the time it waited on a run queue for a core (/proc/self/task/<tid>/schedstat). The text is
// parsed as the kernel prints it; a kernel that keeps no statistics prints "0 0 0", which says
// nothing (not "never waited"), so the reader falls back to the CPU time of /proc/.../stat.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { currentHostThreadId, hostThreadTimes, parseSchedStat } from '../../../src/kvm/vm/vcpu-run-time.js';

describe('parseSchedStat', () => {
  it('reads ns on a CPU and ns waiting on a run queue as ms', () => {
    expect(parseSchedStat('376875209 2181037 8\n')).toEqual({ cpuMs: 376.875209, runQueueWaitMs: 2.181037 });
  });

  it('says nothing for a kernel that keeps no statistics ("0 0 0") or for text it cannot read', () => {
    for (const text of ['0 0 0\n', '', 'a b c', '12 34']) expect(parseSchedStat(text)).toBeUndefined();
  });
});

const schedStatKept =
  existsSync('/proc/thread-self/schedstat') && parseSchedStat(readFileSync('/proc/thread-self/schedstat', 'latin1')) !== undefined;

describe.skipIf(!schedStatKept)('hostThreadTimes on Linux with schedstat', () => {
  it("gives this thread's CPU time and its run-queue wait", () => {
    const times = hostThreadTimes(currentHostThreadId());
    expect(times?.cpuMs).toBeGreaterThan(0);
    expect(times?.runQueueWaitMs).toBeGreaterThanOrEqual(0);
  });
});
