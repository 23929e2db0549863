// The self-test matrix, named after the kernel's lib/locking-selftest.c: each scenario either must
// be reported (a possible deadlock: no false negatives) or must not be (no false positives). Every
// scenario runs single-threaded against the validator; "threads" are thread slots played in turn,
// which is how lockdep models two contexts. Permutations of the W/R cases run in all 6 orders, as
// the kernel's DO_TESTCASE_6x1RR does.

import { describe, expect, it } from 'vitest';
import { LockdepMisuseError } from '../../src/lockdep/lockdep-errors.js';
import { LockdepReportKind } from '../../src/lockdep/lockdep-splat.js';
import type { Lockdep } from '../../src/lockdep/lockdep.js';
import { asThread, kvmLockdep, lockUnlock2, R, r, runEvent, selftestLockdep, W, type SelftestEvent } from './lockdep-test-support.js';

const SUCCESS = 'no report';
const FAILURE = 'report';
type Expected = typeof SUCCESS | typeof FAILURE;

const verdict = (lockdep: Lockdep): Expected => (lockdep.report() === undefined ? SUCCESS : FAILURE);

/** Runs pairs (LOCK_UNLOCK_2) in rotating threads; all but the last must stay silent. */
function pairs(sequence: readonly [string, string][]): Lockdep {
  const lockdep = selftestLockdep();
  sequence.forEach(([first, second], index) => {
    if (index === sequence.length - 1) expect(lockdep.report()).toBeUndefined();
    lockUnlock2(lockdep, 1 + (index % 4), first, second);
  });
  return lockdep;
}

describe('locking-selftest: basic deadlocks (mutex)', () => {
  it('AA: re-acquiring a held mutex is possible recursive locking', () => {
    const lockdep = selftestLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('A', W, 'first lock');
    lockdep.acquire('A', W, 'second lock');

    expect(lockdep.report()).toMatchObject({ kind: LockdepReportKind.RecursiveLocking, cycle: ['A', 'A'], thread: 'vCPU 0/worker 1' });
  });

  it.each([
    [
      'ABBA',
      [
        ['A', 'B'],
        ['B', 'A'],
      ],
      ['A', 'B', 'A'],
    ],
    [
      'ABBCCA',
      [
        ['A', 'B'],
        ['B', 'C'],
        ['C', 'A'],
      ],
      ['A', 'B', 'C', 'A'],
    ],
    [
      'ABCABC',
      [
        ['A', 'B'],
        ['C', 'A'],
        ['B', 'C'],
      ],
      ['C', 'A', 'B', 'C'],
    ],
    [
      'ABBCCDDA',
      [
        ['A', 'B'],
        ['B', 'C'],
        ['C', 'D'],
        ['D', 'A'],
      ],
      ['A', 'B', 'C', 'D', 'A'],
    ],
    [
      'ABCDBDDA',
      [
        ['A', 'B'],
        ['C', 'D'],
        ['B', 'D'],
        ['D', 'A'],
      ],
      ['A', 'B', 'D', 'A'],
    ],
    [
      'ABCDBCDA',
      [
        ['A', 'B'],
        ['C', 'D'],
        ['B', 'C'],
        ['D', 'A'],
      ],
      ['A', 'B', 'C', 'D', 'A'],
    ],
  ] as const)('%s is a possible circular locking dependency, reported at the closing acquisition', (_name, sequence, cycle) => {
    const lockdep = pairs(sequence.map(([first, second]) => [first, second]));

    expect(lockdep.report()).toMatchObject({ kind: LockdepReportKind.CircularDependency, cycle });
  });

  it('the same order twice (AB, AB) is no deadlock', () => {
    expect(
      verdict(
        pairs([
          ['A', 'B'],
          ['A', 'B'],
        ]),
      ),
    ).toBe(SUCCESS);
  });

  it('double unlock: releasing a lock not held is a typed error naming the lock and thread', () => {
    const lockdep = selftestLockdep();
    asThread(lockdep, 2);
    lockdep.acquire('A', W, 'lock');
    lockdep.release('A');

    expect(() => lockdep.release('A')).toThrow(LockdepMisuseError);
    expect(() => lockdep.release('A')).toThrow(/bad unlock balance.*vCPU 1\/worker 2 is trying to release lock \(A\)/);
  });
});

describe('locking-selftest: recursive reads (lockdep-design.rst "Recursive read locks")', () => {
  it.each([
    ['rlock AA1: recursive read inside a read', R, R, SUCCESS],
    ['rsem AA1: non-recursive read inside a read', r, r, FAILURE],
    ['rlock AA1B: recursive read inside a non-recursive read', r, R, SUCCESS],
    ['AA2: write inside a read', R, W, FAILURE],
    ['AA3: recursive read inside a write', W, R, FAILURE],
  ] as const)('%s: %s', (_name, heldMode, nextMode, expected) => {
    const lockdep = selftestLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('X1', heldMode, 'outer');
    lockdep.acquire('X1', nextMode, 'inner');

    expect(verdict(lockdep)).toBe(expected);
  });

  it.each([
    // mixed read-lock/lock-write ABBA: read_lock(A); lock(B) | lock(B); write_lock(A)
    [
      'ABBA1 rwlock (recursive read)',
      [
        [
          ['X1', R],
          ['A', W],
        ],
        [
          ['A', W],
          ['X1', W],
        ],
      ],
      FAILURE,
    ],
    [
      'ABBA1 rwsem (non-recursive read)',
      [
        [
          ['X1', r],
          ['A', W],
        ],
        [
          ['A', W],
          ['X1', W],
        ],
      ],
      FAILURE,
    ],
    // mixed read-lock/lock-read ABBA: read_lock(A); lock(B) | lock(B); read_lock(A)
    [
      'ABBA2 rwlock (recursive read)',
      [
        [
          ['X1', R],
          ['A', W],
        ],
        [
          ['A', W],
          ['X1', R],
        ],
      ],
      SUCCESS,
    ],
    [
      'ABBA2 rwsem (non-recursive read)',
      [
        [
          ['X1', r],
          ['A', W],
        ],
        [
          ['A', W],
          ['X1', r],
        ],
      ],
      FAILURE,
    ],
    // mixed write-lock/lock-write ABBA: write_lock(A); lock(B) | lock(B); write_lock(A)
    [
      'ABBA3',
      [
        [
          ['X1', W],
          ['A', W],
        ],
        [
          ['A', W],
          ['X1', W],
        ],
      ],
      FAILURE,
    ],
    // read-read ABBA: both sides read both locks
    [
      'read-read ABBA, recursive reads',
      [
        [
          ['X1', R],
          ['Y1', R],
        ],
        [
          ['Y1', R],
          ['X1', R],
        ],
      ],
      SUCCESS,
    ],
    [
      'read-read ABBA, non-recursive reads (writers may queue on both)',
      [
        [
          ['X1', r],
          ['Y1', r],
        ],
        [
          ['Y1', r],
          ['X1', r],
        ],
      ],
      FAILURE,
    ],
    // lockdep-design.rst: TASK A read_lock(X); write_lock(Y) | TASK B read_lock(Y); write_lock(X)
    [
      'design doc: read X, write Y | read Y, write X',
      [
        [
          ['X1', R],
          ['Y1', W],
        ],
        [
          ['Y1', R],
          ['X1', W],
        ],
      ],
      FAILURE,
    ],
  ] as const)('%s: %s', (_name, events, expected) => {
    const lockdep = selftestLockdep();
    events.forEach(([first, second], index) => {
      runEvent(lockdep, index + 1, { first: [...first], second: [...second] });
    });

    expect(verdict(lockdep)).toBe(expected);
  });

  // The 3-lock cases of Boqun Feng's recursive-read self-tests, in all six orders of the events.
  const threeEvents = (events: [SelftestEvent, SelftestEvent, SelftestEvent]) =>
    ['123', '132', '213', '231', '312', '321'].map((order) => [order, [...order].map((digit) => events[Number(digit) - 1]!)] as const);
  const event = (first: string, firstMode: 0 | 1 | 2, second: string, secondMode: 0 | 1 | 2): SelftestEvent => ({
    first: [first, firstMode],
    second: [second, secondMode],
  });

  it.each([
    ['W1R2/W2R3/W3R1', [event('X1', W, 'Y1', R), event('Y1', W, 'Z1', R), event('Z1', W, 'X1', R)], FAILURE],
    ['W1W2/R2R3/W3R1', [event('X1', W, 'Y1', W), event('Y1', R, 'Z1', R), event('Z1', W, 'X1', R)], FAILURE],
    ['W1W2/R2R3/R3W1', [event('X1', W, 'Y1', W), event('Y1', R, 'Z1', R), event('Z1', R, 'X1', W)], SUCCESS],
    ['W1R2/R2R3/W3W1', [event('X1', W, 'Y1', R), event('Y1', R, 'Z1', R), event('Z1', W, 'X1', W)], SUCCESS],
  ] as const)('rlock %s: %s in every order', (_name, events, expected) => {
    for (const [order, ordered] of threeEvents([...events] as [SelftestEvent, SelftestEvent, SelftestEvent])) {
      const lockdep = selftestLockdep();
      ordered.forEach((next, index) => {
        runEvent(lockdep, index + 1, next);
      });

      expect(`${order}: ${verdict(lockdep)}`).toBe(`${order}: ${expected}`);
    }
  });

  it('design doc: read_lock(X); lock(Y) | lock(Y); read_lock(X) is no deadlock for a recursive reader', () => {
    const lockdep = selftestLockdep();
    runEvent(lockdep, 1, event('X1', R, 'A', W));
    runEvent(lockdep, 2, event('A', W, 'X1', R));

    expect(lockdep.report()).toBeUndefined();
  });

  it('design doc: the same with write_lock(X) in task B is a deadlock', () => {
    const lockdep = selftestLockdep();
    runEvent(lockdep, 1, event('X1', R, 'A', W));
    runEvent(lockdep, 2, event('A', W, 'X1', W));

    expect(lockdep.report()).toMatchObject({ kind: LockdepReportKind.CircularDependency, cycle: ['X1', 'A', 'X1'] });
  });
});

describe('locking-selftest: SRCU (read = recursive read, synchronize = write acquisition)', () => {
  it('srcu read inside srcu read is fine', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('kvm->srcu', R, 'vcpu_run');
    lockdep.acquire('kvm->srcu', R, 'kvm_zap_gfn_range: nested srcu_read_lock');
    lockdep.release('kvm->srcu');
    lockdep.release('kvm->srcu');

    expect(lockdep.report()).toBeUndefined();
  });

  it('"srcu read, then slots_lock" plus "slots_lock, then synchronize_srcu" is reported', () => {
    const lockdep = kvmLockdep();
    lockUnlock2(lockdep, 1, 'kvm->srcu', 'kvm->slots_lock', [R, W]);
    asThread(lockdep, 0);
    lockdep.acquire('kvm->slots_lock', W, 'kvm_vm_ioctl_set_memory_region');
    lockdep.synchronize('kvm->srcu', 'kvm_swap_active_memslots: synchronize_srcu');

    expect(lockdep.report()).toMatchObject({
      kind: LockdepReportKind.CircularDependency,
      cycle: ['kvm->srcu', 'kvm->slots_lock', 'kvm->srcu'],
      thread: 'main',
    });
  });

  it('the same two orders seen the other way round are reported too', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 0);
    lockdep.acquire('kvm->slots_lock', W, 'kvm_vm_ioctl_set_memory_region');
    lockdep.synchronize('kvm->srcu', 'synchronize_srcu');
    lockdep.release('kvm->slots_lock');
    lockUnlock2(lockdep, 1, 'kvm->srcu', 'kvm->slots_lock', [R, W]);

    expect(lockdep.report()).toMatchObject({ cycle: ['kvm->slots_lock', 'kvm->srcu', 'kvm->slots_lock'], thread: 'vCPU 0/worker 1' });
  });

  it('slots_arch_lock inside SRCU is fine: it is released before synchronize_srcu', () => {
    const lockdep = kvmLockdep();
    lockUnlock2(lockdep, 1, 'kvm->srcu', 'kvm->slots_arch_lock', [R, W]);
    asThread(lockdep, 0);
    lockdep.acquire('kvm->slots_lock', W, 'set memory region');
    lockdep.acquire('kvm->slots_arch_lock', W, 'kvm_set_memslot');
    lockdep.release('kvm->slots_arch_lock');
    lockdep.synchronize('kvm->srcu', 'synchronize_srcu');
    lockdep.release('kvm->slots_lock');

    expect(lockdep.report()).toBeUndefined();
  });

  it('synchronize_srcu inside its own read section (S1) is possible recursive locking', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('kvm->srcu', R, 'vcpu_run');
    lockdep.acquire('kvm->slots_lock', W, 'avic_update_access_page');
    lockdep.synchronize('kvm->srcu', '__x86_set_memory_region: synchronize_srcu');

    expect(lockdep.report()).toMatchObject({ kind: LockdepReportKind.RecursiveLocking, cycle: ['kvm->srcu', 'kvm->srcu'] });
  });

  it('a synchronize holds nothing: locks taken after it get no dependency on the srcu', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 0);
    lockdep.synchronize('kvm->srcu', 'synchronize_srcu');
    lockdep.acquire('kvm->slots_lock', W, 'after the grace period');

    expect(lockdep.heldLocks().map((held) => held.className)).toEqual(['kvm->slots_lock']);
    expect(lockdep.graph.allLinks()).toEqual([]);
  });
});

describe('locking-selftest: the checker itself', () => {
  it('the first report wins and turns the checker off: a later cycle is not reported', () => {
    const lockdep = pairs([
      ['A', 'B'],
      ['B', 'A'],
    ]);
    const first = lockdep.report();
    lockUnlock2(lockdep, 3, 'C', 'D');
    lockUnlock2(lockdep, 4, 'D', 'C');

    expect(lockdep.debugLocks).toBe(false);
    expect(lockdep.report()).toEqual(first);
    expect(first?.cycle).toEqual(['A', 'B', 'A']);
  });

  it('held-lock stacks are still kept after the report, so assertions keep working', () => {
    const lockdep = pairs([
      ['A', 'B'],
      ['B', 'A'],
    ]);
    asThread(lockdep, 3);
    lockdep.acquire('C', W, 'after the report');

    expect(() => lockdep.assertHeld('C')).not.toThrow();
  });

  it('a disabled validator records nothing and reports nothing', () => {
    const lockdep = selftestLockdep({ enabled: false });
    lockUnlock2(lockdep, 1, 'A', 'B');
    lockUnlock2(lockdep, 2, 'B', 'A');

    expect(lockdep.report()).toBeUndefined();
    expect(lockdep.graph.allLinks()).toEqual([]);
  });
});
