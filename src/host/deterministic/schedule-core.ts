// The schedule's state and its one operation: the decision of who holds the baton next. Mechanism
// only (no APIC here): participants, their waits on words, a virtual clock, and the two strategies.
// Every thread that takes part builds its own ScheduleCore over the same region; only the baton
// holder calls decide() (see schedule-layout.ts for who writes what).
//
// A decision, made by the holder at a scheduling point, a wait, or its finish:
//   1. The runnable set: participants that are Runnable, or Waiting with a wait whose word now
//      differs from what they expected or whose virtual deadline has passed.
//   2. Nobody runnable, somebody waiting: the clock jumps to the earliest deadline (virtual time
//      passes only as work or as timeouts).
//   3. The strategy picks (random: uniformly; PCT: the highest priority), the choice is counted and
//      folded into the hash, and the baton goes to it.
// Strategies (docs/deterministic.md): random picks among all runnable participants at every point.
// PCT (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010) gives the n participants distinct
// random priorities d..d+n-1 and draws d-1 change points in [1, k]; when the i-th change point
// comes (counted over every point any thread passes) the running participant drops to priority
// d-i, below every initial one; the highest-priority runnable participant always runs. A Spin or
// QuantumEnd point demotes the running one below everybody, so a spinning thread cannot starve the
// thread it waits for; a change point then drops its thread below the demoted ones too (the next
// priority down, as a demotion), or it would preempt nothing.

import { SchedulingPoint } from '../host-thread.js';
import {
  ABORT_REASON_UNITS,
  ParticipantStatus,
  ScheduleHeader,
  ScheduleParticipant,
  ScheduleState,
  ScheduleWait,
  WAIT_SLOTS,
  scheduleLayout,
} from './schedule-layout.js';
import { fnvFold, nextBelow } from './schedule-random.js';

export const ScheduleStrategy = { Random: 0, Pct: 1 } as const;
export type ScheduleStrategy = (typeof ScheduleStrategy)[keyof typeof ScheduleStrategy];

/** Why a decision is made; Point and Spin decisions may keep the holder running. */
export const DecisionReason = { Start: 0, Point: 1, Spin: 2, Wait: 3, Finish: 4 } as const;
export type DecisionReason = (typeof DecisionReason)[keyof typeof DecisionReason];

/** What a decision folds into the hash besides the participant: the point kind, or one of these. */
export const DecisionKind = { Wait: 32, Finish: 33, Start: 34 } as const;

/** A schedule that was aborted (by abort(), a stall, or a deadlock): the reason and the schedule's state. */
export class ScheduleAborted extends Error {
  override readonly name = 'ScheduleAborted';
}

const f64Index = (byteOffset: number): number => byteOffset >> 3;
const i32Index = (byteOffset: number): number => byteOffset >> 2;

export class ScheduleCore {
  readonly int32: Int32Array;
  readonly float64: Float64Array;
  readonly participants: number;
  // Header word indices.
  readonly running: number;
  readonly started: number;
  readonly state: number;
  readonly prng: number;
  readonly hash: number;
  readonly virtualNs: number;
  readonly #h: (field: keyof typeof ScheduleHeader.fieldOffsets) => number;
  readonly #participantBase: number;
  readonly #waitBase: number;
  /** The buffers waits may name (watch()), the same list in every thread. */
  readonly #watched: Int32Array[] = [];
  readonly #watchedIds = new Map<ArrayBufferLike, number>();

  constructor(buffer: SharedArrayBuffer, byteOffset: number, participants: number) {
    if (!(buffer instanceof SharedArrayBuffer)) throw new TypeError('a schedule lives in a SharedArrayBuffer');
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0)
      throw new RangeError(`a schedule region starts at a multiple of 8 bytes, got ${byteOffset}`);
    const layout = scheduleLayout(participants);
    if (byteOffset + layout.byteSize > buffer.byteLength)
      throw new RangeError(
        `the schedule region (${layout.byteSize} bytes at ${byteOffset}) does not fit the ${buffer.byteLength}-byte buffer`,
      );
    this.int32 = new Int32Array(buffer);
    this.float64 = new Float64Array(buffer, 0, buffer.byteLength >> 3);
    this.participants = participants;
    const header = byteOffset + layout.regionOffsets.header;
    this.#h = (field) => header + ScheduleHeader.fieldOffsets[field];
    this.#participantBase = byteOffset + layout.regionOffsets.participants;
    this.#waitBase = byteOffset + layout.regionOffsets.waits;
    this.running = i32Index(this.#h('running'));
    this.started = i32Index(this.#h('started'));
    this.state = i32Index(this.#h('state'));
    this.prng = i32Index(this.#h('prng'));
    this.hash = i32Index(this.#h('hash'));
    this.virtualNs = f64Index(this.#h('virtualNs'));
  }

  /** Int32 index of header field `field` (an i32 field). */
  headerInt32(field: keyof typeof ScheduleHeader.fieldOffsets): number {
    return i32Index(this.#h(field));
  }

  /** Float64 index of header field `field` (an f64 field). */
  headerFloat64(field: keyof typeof ScheduleHeader.fieldOffsets): number {
    return f64Index(this.#h(field));
  }

  turn(participant: number): number {
    return i32Index(this.#participantBase + participant * ScheduleParticipant.byteSize + ScheduleParticipant.fieldOffsets.turn);
  }

  status(participant: number): number {
    return i32Index(this.#participantBase + participant * ScheduleParticipant.byteSize + ScheduleParticipant.fieldOffsets.status);
  }

  priority(participant: number): number {
    return f64Index(this.#participantBase + participant * ScheduleParticipant.byteSize + ScheduleParticipant.fieldOffsets.priority);
  }

  /** Byte offset of wait record `slot` of `participant`. */
  waitRecord(participant: number, slot: number): number {
    return this.#waitBase + (participant * WAIT_SLOTS + slot) * ScheduleWait.byteSize;
  }

  /**
   * The buffers waited-on words live in. Each thread passes the same buffers in the same order (its
   * own objects for them), so a wait's buffer number means the same memory in every thread.
   */
  watch(buffers: readonly SharedArrayBuffer[]): void {
    for (const buffer of buffers) {
      if (this.#watchedIds.has(buffer)) continue;
      this.#watchedIds.set(buffer, this.#watched.length);
      this.#watched.push(new Int32Array(buffer, 0, buffer.byteLength >> 2));
    }
  }

  /** The number of `words`' buffer among the watched ones, or -1 (then only the deadline ends a wait on it). */
  bufferId(words: Int32Array): number {
    return this.#watchedIds.get(words.buffer) ?? -1;
  }

  /** Records a wait of `participant` in `slot` (the holder only). */
  recordWait(participant: number, slot: number, words: Int32Array, index: number, expected: number, deadlineNs: number): void {
    const record = this.waitRecord(participant, slot);
    const int32 = this.int32;
    int32[i32Index(record + ScheduleWait.fieldOffsets.buffer)] = this.bufferId(words);
    int32[i32Index(record + ScheduleWait.fieldOffsets.index)] = index + (words.byteOffset >> 2);
    int32[i32Index(record + ScheduleWait.fieldOffsets.expected)] = expected;
    this.float64[f64Index(record + ScheduleWait.fieldOffsets.deadlineNs)] = deadlineNs;
    int32[i32Index(record + ScheduleWait.fieldOffsets.active)] = 1;
  }

  clearWait(participant: number, slot: number): void {
    this.int32[i32Index(this.waitRecord(participant, slot) + ScheduleWait.fieldOffsets.active)] = 0;
  }

  waitActive(participant: number, slot: number): boolean {
    return this.int32[i32Index(this.waitRecord(participant, slot) + ScheduleWait.fieldOffsets.active)] !== 0;
  }

  /** Whether wait `slot` of `participant` is over: its word moved, or its deadline passed. */
  waitOver(participant: number, slot: number, nowNs: number): boolean {
    const record = this.waitRecord(participant, slot);
    const int32 = this.int32;
    if (int32[i32Index(record + ScheduleWait.fieldOffsets.active)] === 0) return false;
    if (this.float64[f64Index(record + ScheduleWait.fieldOffsets.deadlineNs)]! <= nowNs) return true;
    const buffer = int32[i32Index(record + ScheduleWait.fieldOffsets.buffer)]!;
    if (buffer < 0) return false;
    const words = this.#watched[buffer]!;
    return (
      Atomics.load(words, int32[i32Index(record + ScheduleWait.fieldOffsets.index)]!) !==
      int32[i32Index(record + ScheduleWait.fieldOffsets.expected)]
    );
  }

  #earliestDeadline(participant: number): number {
    let earliest = Infinity;
    for (let slot = 0; slot < WAIT_SLOTS; slot++) {
      const record = this.waitRecord(participant, slot);
      if (this.int32[i32Index(record + ScheduleWait.fieldOffsets.active)] === 0) continue;
      earliest = Math.min(earliest, this.float64[f64Index(record + ScheduleWait.fieldOffsets.deadlineNs)]!);
    }
    return earliest;
  }

  #runnable(participant: number, nowNs: number): boolean {
    const status = this.int32[this.status(participant)];
    if (status === ParticipantStatus.Runnable) return true;
    if (status !== ParticipantStatus.Waiting) return false;
    for (let slot = 0; slot < WAIT_SLOTS; slot++) if (this.waitOver(participant, slot, nowNs)) return true;
    return false;
  }

  readonly #candidates: number[] = [];

  /**
   * Who holds the baton next (the holder `current` calls it; -1 for the first decision). Returns the
   * participant, or -1 when every participant has finished. Hands the baton over when it is not
   * `current`: the caller then waits for its turn.
   */
  decide(current: number, reason: DecisionReason, kind: number): number {
    if (Atomics.load(this.int32, this.state) === ScheduleState.Aborted) throw this.abortedError();
    const float64 = this.float64;
    const candidates = this.#candidates;
    candidates.length = 0;
    for (let participant = 0; participant < this.participants; participant++)
      if (this.#runnable(participant, float64[this.virtualNs]!)) candidates.push(participant);
    if (candidates.length === 0) {
      let earliest = Infinity;
      let waiting = 0;
      for (let participant = 0; participant < this.participants; participant++) {
        if (this.int32[this.status(participant)] !== ParticipantStatus.Waiting) continue;
        waiting++;
        earliest = Math.min(earliest, this.#earliestDeadline(participant));
      }
      if (waiting === 0) {
        this.#handTo(current, -1);
        return -1;
      }
      if (earliest === Infinity) throw this.abort(`deadlock: ${waiting} participant(s) wait with no deadline and nobody can run`);
      float64[this.virtualNs] = Math.max(float64[this.virtualNs]!, earliest);
      for (let participant = 0; participant < this.participants; participant++)
        if (this.#runnable(participant, earliest)) candidates.push(participant);
    }
    // Past maxSwitches a quantum end still yields as a spin does, uncounted (the host's tick is not
    // the schedule's choice): a guest polling without PAUSE would otherwise never let the thread it waits for run.
    if (reason === DecisionReason.Point && kind === SchedulingPoint.QuantumEnd && this.#switchesUsedUp()) reason = DecisionReason.Spin;
    const chosen = this.#choose(current, reason, kind, candidates);
    float64[this.headerFloat64('decisions')]! += 1;
    fnvFold(this.int32, this.hash, chosen);
    fnvFold(this.int32, this.hash, chosen >> 8);
    fnvFold(this.int32, this.hash, kind);
    if (chosen !== current) {
      if (current >= 0) float64[this.headerFloat64('switches')]! += 1;
      if (reason === DecisionReason.Point && current >= 0) float64[this.headerFloat64('preemptions')]! += 1;
      this.#handTo(current, chosen);
    }
    return chosen;
  }

  #switchesUsedUp(): boolean {
    const maxSwitches = this.float64[this.headerFloat64('maxSwitches')]!;
    return maxSwitches >= 0 && this.float64[this.headerFloat64('preemptions')]! >= maxSwitches;
  }

  #choose(current: number, reason: DecisionReason, kind: number, candidates: readonly number[]): number {
    const int32 = this.int32;
    const pct = int32[this.headerInt32('strategy')] === ScheduleStrategy.Pct;
    if (reason === DecisionReason.Point) {
      if (this.#switchesUsedUp()) return current;
      if (!pct) return candidates[nextBelow(int32, this.prng, candidates.length)]!;
      this.#passChangePoints(current);
      if (kind === SchedulingPoint.QuantumEnd) this.#demote(current);
      return this.#highestPriority(candidates);
    }
    if (reason === DecisionReason.Spin) {
      if (pct) {
        this.#demote(current);
        return this.#highestPriority(candidates);
      }
      // Random: a spinner yields to a runnable other one if there is one.
      const others = candidates.length - (candidates.includes(current) ? 1 : 0);
      if (others === 0) return current;
      const pick = nextBelow(int32, this.prng, others);
      let seen = 0;
      for (const candidate of candidates) if (candidate !== current && seen++ === pick) return candidate;
      return current;
    }
    // Start, Wait, Finish: the holder cannot go on (or there is none yet): a forced choice.
    return pct ? this.#highestPriority(candidates) : candidates[nextBelow(int32, this.prng, candidates.length)]!;
  }

  /**
   * PCT: at each change point (points counted over all threads) the holder drops below every other
   * participant. In PCT proper the i-th change point sets priority d - i, below every initial one;
   * here a yield (Spin, QuantumEnd) also lowers a thread, so the change point takes the next priority
   * below all, as a yield does: a fixed d - i would leave it above a thread that yielded before, and
   * the change point would preempt nothing.
   */
  #passChangePoints(current: number): void {
    const int32 = this.int32;
    const float64 = this.float64;
    const depth = int32[this.headerInt32('depth')]!;
    const next = this.headerInt32('nextChangePoint');
    const points = float64[this.headerFloat64('pointsTotal')]!;
    const changePoints = this.headerFloat64('changePoints');
    while (int32[next]! < depth - 1 && float64[changePoints + int32[next]!]! <= points) {
      int32[next]! += 1;
      this.#demote(current);
    }
  }

  /** Lowers `participant` below every other: the next priority down (d - 1, d - 2, ...: every initial one is d or more). */
  #demote(participant: number): void {
    const low = this.headerFloat64('nextLowPriority');
    this.float64[this.priority(participant)] = this.float64[low]!;
    this.float64[low]! -= 1;
  }

  #highestPriority(candidates: readonly number[]): number {
    let best = candidates[0]!;
    for (const candidate of candidates) if (this.float64[this.priority(candidate)]! > this.float64[this.priority(best)]!) best = candidate;
    return best;
  }

  /** The hand-over: `running`, then the next holder's turn word (pairs with awaitTurn's load of `running`). */
  #handTo(current: number, next: number): void {
    Atomics.store(this.int32, this.running, next);
    if (next >= 0 && next !== current) {
      Atomics.add(this.int32, this.turn(next), 1);
      Atomics.notify(this.int32, this.turn(next));
    }
  }

  /** Ends the schedule: every participant waiting for its turn throws ScheduleAborted. Returns that error. */
  abort(reason: string): ScheduleAborted {
    const int32 = this.int32;
    if (Atomics.compareExchange(int32, this.headerInt32('abortClaim'), 0, 1) === 0) {
      const text = reason.replace(/\s+/g, ' ').slice(0, ABORT_REASON_UNITS);
      const at = this.headerInt32('abortReason');
      for (let unit = 0; unit < text.length; unit++) Atomics.store(int32, at + unit, text.charCodeAt(unit));
      Atomics.store(int32, this.headerInt32('abortLength'), text.length);
      Atomics.store(int32, this.state, ScheduleState.Aborted);
      for (let participant = 0; participant < this.participants; participant++) {
        Atomics.add(int32, this.turn(participant), 1);
        Atomics.notify(int32, this.turn(participant));
      }
      Atomics.notify(int32, this.started);
    }
    return this.abortedError();
  }

  aborted(): boolean {
    return Atomics.load(this.int32, this.state) === ScheduleState.Aborted;
  }

  abortedError(): ScheduleAborted {
    const int32 = this.int32;
    const length = Atomics.load(int32, this.headerInt32('abortLength'));
    const at = this.headerInt32('abortReason');
    const reason = String.fromCharCode(...Array.from({ length }, (_, unit) => Atomics.load(int32, at + unit)));
    return new ScheduleAborted(`deterministic schedule aborted: ${reason} (${this.describe()})`);
  }

  /** One line: the seed, the strategy, how far the schedule got, who holds the baton, and each participant's status. */
  describe(): string {
    const int32 = this.int32;
    const float64 = this.float64;
    const statuses = ['not started', 'runnable', 'waiting', 'finished'];
    const strategy = int32[this.headerInt32('strategy')] === ScheduleStrategy.Pct ? `pct d=${int32[this.headerInt32('depth')]}` : 'random';
    const participants = Array.from(
      { length: this.participants },
      (_, participant) => `${participant} ${statuses[Atomics.load(int32, this.status(participant))] ?? '?'}`,
    ).join(', ');
    return (
      `seed ${float64[this.headerFloat64('seed')]}, ${strategy}, decision ${float64[this.headerFloat64('decisions')]}, ` +
      `baton with ${Atomics.load(int32, this.running)}, virtual ${(float64[this.virtualNs]! / 1e6).toFixed(3)} ms; participants: ${participants}`
    );
  }
}
