// The schedule's pieces that need no threads: its generator and hash, option checks, the layout's
// documented writers, and decisions made in one thread.
import { describe, expect, it } from 'vitest';
import { DeterministicSchedule, scheduleBytes, scheduleOptionsProblem } from '../../../src/host/deterministic/deterministic-schedule.js';
import { scheduleLayout, ScheduleHeader, ScheduleParticipant, ScheduleWait } from '../../../src/host/deterministic/schedule-layout.js';
import { FNV_OFFSET_HIGH, FNV_OFFSET_LOW, fnvFold, hashText, next32, seedState } from '../../../src/host/deterministic/schedule-random.js';
import { SchedulingPoint } from '../../../src/host/host-thread.js';

function fnv1a64(bytes: readonly number[]): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte & 0xff)) * 0x100000001b3n) & ((1n << 64n) - 1n);
  return hash.toString(16).padStart(16, '0');
}

describe('the schedule hash and generator', () => {
  it('fnvFold computes FNV-1a 64 (checked against BigInt arithmetic)', () => {
    const bytes = Array.from({ length: 200 }, (_, index) => (index * 37 + 11) & 0xff);
    const state = new Int32Array([FNV_OFFSET_HIGH, FNV_OFFSET_LOW]);
    for (const byte of bytes) fnvFold(state, 0, byte);
    expect(hashText(state[0]!, state[1]!)).toBe(fnv1a64(bytes));
    expect(hashText(FNV_OFFSET_HIGH, FNV_OFFSET_LOW)).toBe(fnv1a64([]));
  });

  it('one seed gives one sequence; the next seed another', () => {
    const draw = (seed: number): number[] => {
      const state = new Int32Array(seedState(seed));
      return Array.from({ length: 8 }, () => next32(state, 0));
    };
    expect(draw(1)).toEqual(draw(1));
    expect(draw(1)).not.toEqual(draw(2));
    expect(draw(2 ** 53 - 1).every((value) => value >= 0 && value < 2 ** 32)).toBe(true);
  });
});

describe('schedule options', () => {
  it.each([
    [{ seed: -1, strategy: 'pct' }, 'seed must be a whole number from 0 to 2^53-1, got -1'],
    [{ seed: 2 ** 53, strategy: 'pct' }, `seed must be a whole number from 0 to 2^53-1, got ${2 ** 53}`],
    [{ seed: 1, strategy: 'fair' }, 'strategy must be random or pct, got fair'],
    [{ seed: 1, strategy: 'pct', depth: 0 }, 'depth must be a whole number from 1 to 16, got 0'],
    [{ seed: 1, strategy: 'pct', maxSwitches: 1.5 }, 'maxSwitches must be a whole number from 0, got 1.5'],
    [{ seed: 1, strategy: 'pct', expectedPoints: 0 }, 'expectedPoints must be a whole number from 1, got 0'],
  ] as const)('%j is refused: %s', (options, message) => {
    expect(scheduleOptionsProblem(options as never)).toBe(message);
  });

  it('accepts the defaults', () => {
    expect(scheduleOptionsProblem({ seed: 0, strategy: 'random' })).toBeUndefined();
  });
});

describe('the schedule layout', () => {
  it('names a writer for every word', () => {
    for (const struct of [ScheduleHeader, ScheduleParticipant, ScheduleWait])
      for (const field of Object.values(struct.fields)) expect(field.writer.length).toBeGreaterThan(10);
    expect(scheduleBytes(3)).toBe(scheduleLayout(3).byteSize);
  });

  it('keeps a region at an offset inside a larger buffer', () => {
    const offset = 128;
    const buffer = new SharedArrayBuffer(offset + scheduleBytes(2));
    const schedule = new DeterministicSchedule(buffer, offset, 2);
    schedule.initialise({ seed: 5, strategy: 'random' });
    expect(new Int32Array(buffer, 0, offset / 4).every((word) => word === 0)).toBe(true);
    expect(schedule.summary()).toMatchObject({ seed: 5, strategy: 'random', depth: 3, decisions: 0, maxSwitches: null });
    expect(() => new DeterministicSchedule(buffer, offset + 64, 2)).toThrow(/does not fit/);
  });
});

describe('decisions in one thread (one participant)', () => {
  it('a lone participant runs on at every point; its timed wait moves the clock to the deadline', () => {
    const buffer = new SharedArrayBuffer(scheduleBytes(1) + 64);
    const schedule = new DeterministicSchedule(buffer, 0, 1).watch([buffer]);
    schedule.initialise({ seed: 1, strategy: 'pct' });
    const thread = schedule.thread(0);
    thread.start();
    const before = thread.nowMs();
    thread.point(SchedulingPoint.IrrSet);
    thread.advance(250);
    const words = new Int32Array(buffer, scheduleBytes(1), 4);
    expect(thread.wait(words, 0, 0, 2)).toBe('timed-out');
    expect(thread.wait(words, 0, 1, 2)).toBe('not-equal');
    expect(thread.nowMs() - before).toBeCloseTo(2 + 250e-6, 9);
    thread.finish();
    expect(schedule.summary()).toMatchObject({ decisions: 3, switches: 0, virtualNs: 2_000_250 });
    expect(schedule.summary().pointsSeen['IrrSet']).toBe(1);
  });
});
