// PCT's decisions, made one at a time in this thread: ScheduleCore.decide() with the priorities and
// change points set by hand, so each case names who must run after which point. No workers: decide()
// only stores the baton's holder and notifies its turn word, which nobody waits on here.

import { describe, expect, it } from 'vitest';
import { SchedulingPoint } from '../../../src/host/host-thread.js';
import { DeterministicSchedule, scheduleBytes } from '../../../src/host/deterministic/deterministic-schedule.js';
import { DecisionReason, ScheduleCore } from '../../../src/host/deterministic/schedule-core.js';
import { ParticipantStatus } from '../../../src/host/deterministic/schedule-layout.js';

/** A PCT schedule of `priorities.length` runnable participants with the given priorities and change points. */
function pctCore(depth: number, priorities: readonly number[], changePoints: readonly number[]): ScheduleCore {
  const participants = priorities.length;
  const buffer = new SharedArrayBuffer(scheduleBytes(participants));
  new DeterministicSchedule(buffer, 0, participants).initialise({ seed: 1, strategy: 'pct', depth });
  const core = new ScheduleCore(buffer, 0, participants);
  priorities.forEach((priority, participant) => {
    core.float64[core.priority(participant)] = priority;
    core.int32[core.status(participant)] = ParticipantStatus.Runnable;
  });
  core.float64.set(changePoints, core.headerFloat64('changePoints'));
  return core;
}

/** What DeterministicHostThread.point() does before it decides: count the point, then decide. */
function point(core: ScheduleCore, current: number, kind: SchedulingPoint): number {
  core.float64[core.headerFloat64('pointsSeen') + kind]! += 1;
  core.float64[core.headerFloat64('pointsTotal')]! += 1;
  const reason = kind === SchedulingPoint.Spin ? DecisionReason.Spin : DecisionReason.Point;
  return core.decide(current, reason, kind);
}

describe('PCT decisions', () => {
  it('the highest-priority runnable participant runs until a change point drops it below the others', () => {
    // d = 2, n = 2: priorities 2 and 3, one change point at the 3rd point.
    const core = pctCore(2, [3, 2], [3]);
    expect(point(core, 0, SchedulingPoint.IrrSet)).toBe(0);
    expect(point(core, 0, SchedulingPoint.IrrSet)).toBe(0);
    expect(point(core, 0, SchedulingPoint.IsRunningRead)).toBe(1);
    expect(point(core, 1, SchedulingPoint.IrrSet)).toBe(1);
  });

  it('a change point drops the running participant below one that yielded before (a Spin or a quantum end)', () => {
    // Participant 0 (priority 3) ends its quantum and yields: it drops below participant 1 (2), which
    // runs. At the change point (the 3rd point) participant 1 must drop below everybody, participant 0
    // included: PCT's change point makes the running thread the lowest, or it changes nothing.
    const core = pctCore(2, [3, 2], [3]);
    expect(point(core, 0, SchedulingPoint.QuantumEnd)).toBe(1);
    expect(point(core, 1, SchedulingPoint.Halt)).toBe(1);
    expect(point(core, 1, SchedulingPoint.IsRunningWrite)).toBe(0);
    expect(core.float64[core.priority(1)]).toBeLessThan(core.float64[core.priority(0)]!);
  });

  it('later lowerings go lower: the second change point drops its participant below the first', () => {
    // d = 3, n = 3: change points at the 1st and 3rd points.
    const core = pctCore(3, [5, 4, 3], [1, 3]);
    expect(point(core, 0, SchedulingPoint.IrrSet)).toBe(1); // 0 drops below 1 and 2
    expect(point(core, 1, SchedulingPoint.Spin)).toBe(2); // 1 yields: below 0 now
    expect(point(core, 2, SchedulingPoint.IrrSet)).toBe(0); // 2 drops below everybody: 0 is the highest left
    expect(point(core, 0, SchedulingPoint.IrrSet)).toBe(0);
  });
});
