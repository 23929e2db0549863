// A deterministic run's schedule (docs/deterministic.md): the threads of a VM keep running as
// threads, but only one at a time, the one holding the baton; every choice of who holds it next
// comes from a seeded generator (as CHESS and rr serialise a program's threads). This file is the
// entry point others code against; schedule-core.ts decides, schedule-threads.ts is the seam of
// src/host/host-thread.ts for workers and for the main thread.
//
// Use: main allocates scheduleBytes(participants) of a SharedArrayBuffer, builds a
// DeterministicSchedule over it and calls initialise(options), then mainThread(p).start() if main
// takes part, then starts the workers; each worker builds its own DeterministicSchedule over the same
// region, watch()es the same buffers in the same order, and brackets its work with
// thread(i).start() and thread(i).finish().

import { SCHEDULING_POINT_NAMES } from '../host-thread.js';
import { ScheduleCore, ScheduleStrategy, type ScheduleAborted } from './schedule-core.js';
import { DeterministicHostThread, DeterministicMainHostThread } from './schedule-threads.js';
import { MAX_DEPTH, ParticipantStatus, ScheduleState } from './schedule-layout.js';
import { FNV_OFFSET_HIGH, FNV_OFFSET_LOW, hashText, nextBelow, nextUnit, seedState } from './schedule-random.js';

export { scheduleBytes, MAX_DEPTH } from './schedule-layout.js';
export { ScheduleAborted } from './schedule-core.js';
export { DeterministicHostThread, DeterministicMainHostThread, VIRTUAL_ORIGIN_MS } from './schedule-threads.js';

export type ScheduleStrategyName = 'random' | 'pct';
export const SCHEDULE_STRATEGIES: readonly ScheduleStrategyName[] = ['random', 'pct'];

/**
 * PCT's k when none is given: the number of scheduling points over which the d - 1 change points
 * are drawn. A run that sees many more points than k has its change points all near its start; pass
 * the pointsSeen total of an earlier run with the same options (the summary prints it) to spread them.
 */
export const DEFAULT_EXPECTED_POINTS = 10_000;
export const DEFAULT_DEPTH = 3;
/** Real time with no decision after which a thread waiting for the baton aborts the schedule. */
export const DEFAULT_STALL_MS = 30_000;

export interface ScheduleOptions {
  /** 0..2^53-1. */
  readonly seed: number;
  readonly strategy: ScheduleStrategyName;
  /** PCT's d: d - 1 change points (1..MAX_DEPTH). Default DEFAULT_DEPTH. */
  readonly depth?: number;
  /** Preemptive switches allowed; beyond it only forced switches (a wait, a finish, a Spin). Default no limit. */
  readonly maxSwitches?: number;
  /** PCT's k, the points over which change points are drawn. Default DEFAULT_EXPECTED_POINTS. */
  readonly expectedPoints?: number;
  /** Real ms without a decision before a waiting thread aborts the schedule. Default DEFAULT_STALL_MS. */
  readonly stallTimeoutMs?: number;
}

/** What a worker needs to join a schedule main set up (structured-cloneable). */
export interface SharedSchedule {
  readonly buffer: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly participants: number;
}

export interface ScheduleSummary {
  readonly seed: number;
  readonly strategy: ScheduleStrategyName;
  readonly depth: number;
  readonly maxSwitches: number | null;
  readonly expectedPoints: number;
  readonly decisions: number;
  /** Decisions that handed the baton to another participant. */
  readonly switches: number;
  /** Switches at a point where the running thread could have gone on (the ones maxSwitches limits). */
  readonly preemptions: number;
  readonly pointsSeen: Readonly<Record<string, number>>;
  readonly virtualNs: number;
  /** FNV-1a 64 over every decision's chosen participant and point kind, 16 hex digits. */
  readonly scheduleHash: string;
}

/** The options' problem in one line, or undefined when they are valid. */
export function scheduleOptionsProblem(options: ScheduleOptions): string | undefined {
  const { seed, strategy, depth = DEFAULT_DEPTH, maxSwitches, expectedPoints = DEFAULT_EXPECTED_POINTS } = options;
  if (!Number.isSafeInteger(seed) || seed < 0) return `seed must be a whole number from 0 to 2^53-1, got ${String(seed)}`;
  if (!SCHEDULE_STRATEGIES.includes(strategy)) return `strategy must be random or pct, got ${String(strategy)}`;
  if (!Number.isInteger(depth) || depth < 1 || depth > MAX_DEPTH)
    return `depth must be a whole number from 1 to ${MAX_DEPTH}, got ${String(depth)}`;
  if (maxSwitches !== undefined && (!Number.isSafeInteger(maxSwitches) || maxSwitches < 0))
    return `maxSwitches must be a whole number from 0, got ${String(maxSwitches)}`;
  if (!Number.isSafeInteger(expectedPoints) || expectedPoints < 1)
    return `expectedPoints must be a whole number from 1, got ${String(expectedPoints)}`;
  const stall = options.stallTimeoutMs;
  if (stall !== undefined && !(Number.isFinite(stall) && stall > 0)) return `stallTimeoutMs must be a number above 0, got ${String(stall)}`;
  return undefined;
}

export class DeterministicSchedule {
  readonly participants: number;
  readonly #core: ScheduleCore;
  readonly #threads = new Map<number, DeterministicHostThread | DeterministicMainHostThread>();

  constructor(buffer: SharedArrayBuffer, byteOffset: number, participants: number) {
    this.#core = new ScheduleCore(buffer, byteOffset, participants);
    this.participants = participants;
  }

  /** The buffers whose words participants wait on: every thread passes the same ones, in the same order. */
  watch(buffers: readonly SharedArrayBuffer[]): this {
    this.#core.watch(buffers);
    return this;
  }

  /** Main, once, before any participant starts: the options, the seeded generator, PCT's priorities and change points. */
  initialise(options: ScheduleOptions): void {
    const problem = scheduleOptionsProblem(options);
    if (problem !== undefined) throw new RangeError(problem);
    const core = this.#core;
    const { int32, float64 } = core;
    if (Atomics.load(int32, core.state) !== ScheduleState.Uninitialised) throw new RangeError('a schedule is initialised once');
    const depth = options.depth ?? DEFAULT_DEPTH;
    const expectedPoints = options.expectedPoints ?? DEFAULT_EXPECTED_POINTS;
    int32.set(seedState(options.seed), core.prng);
    int32[core.hash] = FNV_OFFSET_HIGH;
    int32[core.hash + 1] = FNV_OFFSET_LOW;
    int32[core.headerInt32('strategy')] = options.strategy === 'pct' ? ScheduleStrategy.Pct : ScheduleStrategy.Random;
    int32[core.headerInt32('depth')] = depth;
    float64[core.headerFloat64('seed')] = options.seed;
    float64[core.headerFloat64('maxSwitches')] = options.maxSwitches ?? -1;
    float64[core.headerFloat64('expectedPoints')] = expectedPoints;
    float64[core.headerFloat64('stallMs')] = options.stallTimeoutMs ?? DEFAULT_STALL_MS;
    // PCT: the priorities d..d+n-1 in a random order (Fisher-Yates), change points uniform in [1, k].
    const priorities = Array.from({ length: this.participants }, (_, participant) => depth + participant);
    for (let last = priorities.length - 1; last > 0; last--) {
      const pick = nextBelow(int32, core.prng, last + 1);
      [priorities[last], priorities[pick]] = [priorities[pick]!, priorities[last]!];
    }
    priorities.forEach((priority, participant) => {
      float64[core.priority(participant)] = priority;
      int32[core.status(participant)] = ParticipantStatus.NotStarted;
    });
    const changePoints = Array.from({ length: depth - 1 }, () => 1 + Math.floor(nextUnit(int32, core.prng) * expectedPoints)).sort(
      (a, b) => a - b,
    );
    float64.set(changePoints, core.headerFloat64('changePoints'));
    // Change points and yields lower a thread to d - 1, then d - 2, ...: below every initial priority.
    float64[core.headerFloat64('nextLowPriority')] = depth - 1;
    Atomics.store(int32, core.running, -1);
    Atomics.store(int32, core.state, ScheduleState.Running);
  }

  /** Participant `participant` as a worker thread (HostThread). */
  thread(participant: number): DeterministicHostThread {
    return this.#participant(participant, DeterministicHostThread) as DeterministicHostThread;
  }

  /** Participant `participant` as the main thread (MainHostThread). */
  mainThread(participant: number): DeterministicMainHostThread {
    return this.#participant(participant, DeterministicMainHostThread) as DeterministicMainHostThread;
  }

  #participant(
    participant: number,
    kind: typeof DeterministicHostThread | typeof DeterministicMainHostThread,
  ): DeterministicHostThread | DeterministicMainHostThread {
    if (!Number.isInteger(participant) || participant < 0 || participant >= this.participants)
      throw new RangeError(`no participant ${participant} (0..${this.participants - 1})`);
    const existing = this.#threads.get(participant);
    if (existing !== undefined) {
      if (!(existing instanceof kind)) throw new RangeError(`participant ${participant} is already a ${existing.constructor.name}`);
      return existing;
    }
    const thread = new kind(this.#core, participant);
    this.#threads.set(participant, thread);
    return thread;
  }

  summary(): ScheduleSummary {
    const { int32, float64 } = this.#core;
    const core = this.#core;
    const maxSwitches = float64[core.headerFloat64('maxSwitches')]!;
    const points = core.headerFloat64('pointsSeen');
    return {
      seed: float64[core.headerFloat64('seed')]!,
      strategy: int32[core.headerInt32('strategy')] === ScheduleStrategy.Pct ? 'pct' : 'random',
      depth: int32[core.headerInt32('depth')]!,
      maxSwitches: maxSwitches < 0 ? null : maxSwitches,
      expectedPoints: float64[core.headerFloat64('expectedPoints')]!,
      decisions: float64[core.headerFloat64('decisions')]!,
      switches: float64[core.headerFloat64('switches')]!,
      preemptions: float64[core.headerFloat64('preemptions')]!,
      pointsSeen: Object.fromEntries(SCHEDULING_POINT_NAMES.map((name, kind) => [name, float64[points + kind]!])),
      virtualNs: float64[core.virtualNs]!,
      scheduleHash: hashText(int32[core.hash]!, int32[core.hash + 1]!),
    };
  }

  /** Ends the schedule from any thread: each participant waiting for the baton throws ScheduleAborted naming `reason`. */
  abort(reason: string): ScheduleAborted {
    return this.#core.abort(reason);
  }

  aborted(): boolean {
    return this.#core.aborted();
  }

  /** One line: seed, strategy, progress, the baton's holder and each participant's status. */
  describe(): string {
    return this.#core.describe();
  }
}
