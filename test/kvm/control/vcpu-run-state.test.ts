// The vCPU run-state machine (src/kvm/control/vcpu-run-state.ts): the exact table of legal moves, and the
// assertion that names the vCPU when the emulator tries any other.

import { describe, expect, it } from 'vitest';
import {
  isLegalTransition,
  runStateName,
  transitionRunState,
  VCPU_RUN_STATE_NAMES,
  VcpuRunState,
} from '../../../src/kvm/control/vcpu-run-state.js';

const { Created, Running, Blocked, Paused, Finished } = VcpuRunState;
const ALL_STATES: readonly VcpuRunState[] = [Created, Running, Blocked, Paused, Finished];

/** The whole relation, written out: [from, to] pairs that are legal. Every other pair is illegal. */
const LEGAL: ReadonlyArray<readonly [VcpuRunState, VcpuRunState]> = [
  [Created, Running],
  [Created, Finished],
  [Running, Blocked],
  [Running, Paused],
  [Running, Finished],
  [Blocked, Running],
  [Paused, Running],
  [Paused, Finished],
];

const isListedLegal = (from: VcpuRunState, to: VcpuRunState): boolean => LEGAL.some(([f, t]) => f === from && t === to);

const ALL_PAIRS = ALL_STATES.flatMap((from) =>
  ALL_STATES.map((to) => [runStateName(from), runStateName(to), from, to, isListedLegal(from, to)] as const),
);

function runStateWords(vcpuCount: number, initial: VcpuRunState): Int32Array {
  const words = new Int32Array(new SharedArrayBuffer(4 * vcpuCount));
  words.fill(initial);
  return words;
}

describe('vCPU run-state transitions', () => {
  it('the table covers all 25 ordered pairs of the 5 states', () => {
    expect(ALL_PAIRS).toHaveLength(25);
    expect(Object.values(VcpuRunState).sort()).toEqual([...ALL_STATES].sort());
  });

  it.each(ALL_PAIRS)('%s -> %s is legal: %s', (_fromName, _toName, from, to, legal) => {
    expect(isLegalTransition(from, to)).toBe(legal);
  });

  it('no state may move to itself, and finished is final', () => {
    for (const state of ALL_STATES) expect(isLegalTransition(state, state), runStateName(state)).toBe(false);
    for (const to of ALL_STATES) expect(isLegalTransition(Finished, to)).toBe(false);
  });

  it('names every state, and names an out-of-range word as invalid', () => {
    expect(ALL_STATES.map(runStateName)).toEqual(['created', 'running', 'blocked', 'paused', 'finished']);
    expect(Object.keys(VCPU_RUN_STATE_NAMES)).toHaveLength(5);
    expect(runStateName(9)).toBe('invalid(9)');
  });
});

describe('transitionRunState', () => {
  it.each(LEGAL.map(([from, to]) => [runStateName(from), runStateName(to), from, to] as const))(
    'moves the word %s -> %s',
    (_fromName, _toName, from, to) => {
      const words = runStateWords(3, from);

      transitionRunState(words, 1, to, 1);

      expect(Array.from(words)).toEqual([from, to, from]);
    },
  );

  it.each(ALL_PAIRS.filter(([, , , , legal]) => !legal))(
    'throws naming the vCPU and both states on %s -> %s, and leaves the word unchanged',
    (fromName, toName, from, to) => {
      const words = runStateWords(4, from);

      expect(() => transitionRunState(words, 2, to, 7)).toThrow(`vCPU 7: illegal run-state transition ${fromName} -> ${toName}`);

      expect(words[2]).toBe(from);
    },
  );

  it('refuses to move a word that holds no state at all, leaving it unchanged', () => {
    const words = runStateWords(1, Created);
    words[0] = 42;

    expect(() => transitionRunState(words, 0, Running, 0)).toThrow();

    expect(words[0]).toBe(42);
  });

  it('walks a whole life: created, running, blocked, running, paused, running, finished', () => {
    const words = runStateWords(1, Created);

    for (const to of [Running, Blocked, Running, Paused, Running, Finished]) transitionRunState(words, 0, to, 0);

    expect(words[0]).toBe(Finished);
    expect(() => transitionRunState(words, 0, Running, 0)).toThrow(/vCPU 0/);
  });
});
