// The words of a deterministic schedule (docs/deterministic.md), in one region of a
// SharedArrayBuffer: a header, one struct per participant (a thread that takes part: the main thread
// and each host-CPU worker), and each participant's wait records.
//
// Who writes: only the thread that holds the baton writes the schedule's state, with plain stores;
// the hand-over (Atomics.store of `running`, then Atomics.add of the next holder's `turn`) is
// sequentially consistent and the next holder's Atomics.load of `running` reads it, so everything
// the previous holder wrote happens-before what the next one reads. The exceptions are named per
// field: `started` (each participant once, before the first decision), `turn` (the passer, to wake
// the next holder) and the abort words (whichever thread aborts first).

import { defineBufferLayout, defineStruct, type BufferLayout } from '../shared-layout.js';

/** The PCT depth the layout has room for (d - 1 change points). */
export const MAX_DEPTH = 16;
/** Concurrent waits of one participant: a worker has one; the main thread may have several async contexts waiting. */
export const WAIT_SLOTS = 8;
/** Points are SchedulingPoint values 0..13 (src/host/host-thread.ts); room for a few more. */
export const POINT_KINDS = 16;
/** UTF-16 code units of an abort reason kept in shared memory (longer ones are cut). */
export const ABORT_REASON_UNITS = 240;

/** Values of ScheduleHeader.state. */
export const ScheduleState = { Uninitialised: 0, Running: 1, Aborted: 2 } as const;

/** Values of ScheduleParticipant.status. */
export const ParticipantStatus = { NotStarted: 0, Runnable: 1, Waiting: 2, Finished: 3 } as const;

export const ScheduleHeader = defineStruct('ScheduleHeader', {
  running: {
    type: 'i32',
    writer:
      "the baton holder: the participant it hands the baton to (-1: nobody), before it moves that one's turn word; main at initialise (-1) and in its start() (claims the baton)",
  },
  started: {
    type: 'i32',
    writer: 'each participant: Atomics.add(1) once in start(), then notify (main waits on it for its first decision)',
  },
  state: { type: 'i32', writer: 'main at initialise (Running); the first thread to abort (Aborted, after the reason)' },
  abortClaim: { type: 'i32', writer: 'the first thread to abort: compareExchange 0 -> 1 before it writes the reason' },
  abortLength: { type: 'i32', writer: 'the first thread to abort: the length of abortReason' },
  strategy: { type: 'i32', writer: 'main at initialise: 0 random, 1 pct' },
  depth: { type: 'i32', writer: 'main at initialise: PCT depth d' },
  nextChangePoint: { type: 'i32', writer: 'the baton holder: PCT change points passed so far' },
  prng: { type: 'i32', count: 4, writer: 'main at initialise (seeded), then the baton holder: xoshiro128** state' },
  hash: { type: 'i32', count: 2, writer: 'the baton holder: FNV-1a 64 of the decisions (high word, low word)' },
  seed: { type: 'f64', writer: 'main at initialise' },
  maxSwitches: { type: 'f64', writer: 'main at initialise (-1: no limit)' },
  expectedPoints: { type: 'f64', writer: 'main at initialise: PCT k' },
  stallMs: { type: 'f64', writer: 'main at initialise: real time without a decision before a waiting thread aborts the schedule' },
  virtualNs: { type: 'f64', writer: 'the baton holder: advance(), and the clock jump when nobody is runnable' },
  decisions: { type: 'f64', writer: 'the baton holder' },
  switches: { type: 'f64', writer: 'the baton holder: decisions that handed the baton to another participant' },
  preemptions: { type: 'f64', writer: 'the baton holder: switches at a point the running thread could have run on from' },
  pointsTotal: { type: 'f64', writer: 'the baton holder' },
  nextLowPriority: {
    type: 'f64',
    writer: 'main at initialise (d - 1), then the baton holder: the next PCT priority below every other (change points and demotions)',
  },
  pointsSeen: { type: 'f64', count: POINT_KINDS, writer: 'the baton holder: points by kind' },
  changePoints: { type: 'f64', count: MAX_DEPTH - 1, writer: 'main at initialise: PCT change points, ascending' },
  abortReason: { type: 'i32', count: ABORT_REASON_UNITS, writer: 'the first thread to abort (UTF-16 code units)' },
});

export const ScheduleParticipant = defineStruct('ScheduleParticipant', {
  turn: {
    type: 'i32',
    writer: 'whoever hands this participant the baton (or aborts): Atomics.add(1), then notify; the participant waits on it',
  },
  status: { type: 'i32', writer: 'the participant itself, holding the baton (in start() before the first decision): ParticipantStatus' },
  priority: { type: 'f64', writer: 'main at initialise, then the baton holder (PCT change points and demotions)' },
});

/** One wait of a participant: runnable again once the word differs from `expected` or the virtual deadline passed. */
export const ScheduleWait = defineStruct('ScheduleWait', {
  active: { type: 'i32', writer: 'the participant itself, holding the baton' },
  buffer: {
    type: 'i32',
    writer: 'the participant itself: the watched buffer the word lies in, -1 for none (the deadline alone ends the wait)',
  },
  index: { type: 'i32', writer: "the participant itself: the word's Int32 index in that buffer" },
  expected: { type: 'i32', writer: 'the participant itself' },
  deadlineNs: { type: 'f64', writer: 'the participant itself: virtual time when the wait times out' },
});

export type ScheduleRegion = 'header' | 'participants' | 'waits';

export function scheduleLayout(participants: number): BufferLayout<ScheduleRegion> {
  if (!Number.isInteger(participants) || participants < 1 || participants > 0xffff)
    throw new RangeError(`a schedule has 1 to 65535 participants, got ${participants}`);
  return defineBufferLayout('DeterministicSchedule', {
    header: { struct: ScheduleHeader, writer: 'see the fields' },
    participants: { struct: ScheduleParticipant, count: participants, writer: 'see the fields' },
    waits: { struct: ScheduleWait, count: participants * WAIT_SLOTS, writer: 'see the fields' },
  });
}

/** Bytes of the schedule region for `participants` threads (place it at a 64-byte aligned offset). */
export function scheduleBytes(participants: number): number {
  return scheduleLayout(participants).byteSize;
}
