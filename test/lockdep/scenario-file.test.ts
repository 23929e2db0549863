// User-defined lock scenario files (issue 4 item 6): every mistake is reported before anything runs,
// with the file, line, column and the step's path, and nothing runs. (scenario-file-run.test.ts runs
// the shipped examples on real workers.)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockScenarioFileError, loadLockScenarioFile, MAX_SLEEP_MS, parseLockScenario } from '../../src/lockdep/scenario-file.js';
import { scenarioWaitBoundMs } from '../../src/lockdep/scenario-file-steps.js';

function problemsOf(text: string, file = 'bad.yaml'): readonly string[] {
  try {
    parseLockScenario(text, file);
  } catch (error) {
    if (error instanceof LockScenarioFileError) return error.problems;
    throw error;
  }
  throw new Error('the file was accepted');
}

const TWO_MUTEXES = 'locks:\n  - name: A\n    kind: mutex\n  - name: B\n    kind: mutex\n';

describe('scenario files: the errors name the file, the line and the step', () => {
  it('an unknown lock in a step', () => {
    expect(
      problemsOf(`${TWO_MUTEXES}threads:\n  - thread: vcpu 0\n    steps:\n      - acquire: A\n      - acquire: C\n      - release: A\n`),
    ).toEqual(['bad.yaml:10:18: threads[0].steps[1].acquire: unknown lock "C"; the declared locks are: A, B']);
  });

  it('a release of a lock that thread does not hold (another thread does)', () => {
    const text = `${TWO_MUTEXES}threads:\n  - thread: main\n    steps:\n      - acquire: A\n        label: main-holds-A\n      - release: A\n  - thread: vcpu 1\n    steps:\n      - wait-for: main-holds-A\n      - release: A\n`;
    expect(problemsOf(text)).toEqual(['bad.yaml:15:18: threads[1].steps[1].release: vcpu 1 releases "A", which it does not hold']);
  });

  it('malformed YAML and malformed JSON', () => {
    const yaml = problemsOf('locks: [A\nthreads: {');
    expect(yaml.length).toBeGreaterThan(0);
    for (const problem of yaml) expect(problem).toMatch(/^bad\.yaml:\d+:\d+: malformed file: /);
    const json = problemsOf(
      '{ "locks": [ {"name": "A", "kind": "mutex"} ],\n  "threads": [ { "thread": "main", "steps": [ ] }',
      'bad.json',
    );
    expect(json.length).toBeGreaterThan(0);
    for (const problem of json) expect(problem).toMatch(/^bad\.json:\d+:\d+: malformed file: /);
    expect(problemsOf('- just\n- a list\n')).toEqual([
      'bad.yaml:1:1: (top level): malformed file: expected a mapping with "locks" and "threads"',
    ]);
  });

  it('an unknown thread, a wait for a label nobody has, an unknown class, a step with two actions, a thread ending with a lock held', () => {
    const text = [
      'locks:',
      '  - name: A',
      '    kind: mutex',
      '  - name: Q',
      'threads:',
      '  - thread: gpu 3',
      '    steps: []',
      '  - thread: vcpu 0',
      '    steps:',
      '      - wait-for: nowhere',
      '      - acquire: A',
      '        release: A',
      '      - acquire: A',
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      'bad.yaml:4:5: locks[1]: unknown lock class "Q": give a kind (mutex, rwsem or srcu), or use a KVM class (cpu_hotplug_lock, kvm_lock, kvm->lock, vcpu->mutex, kvm->slots_lock, kvm->slots_arch_lock, kvm->srcu, kvm->arch.apicv_update_lock, kvm->irq_lock, kvm->arch.xen.xen_lock)',
      'bad.yaml:6:13: threads[0].thread: unknown thread "gpu 3"; a thread is "main", "main NAME" or "vcpu N" (N from 0 to 63)',
      'bad.yaml:11:9: threads[1].steps[1]: a step has one action, not acquire and release',
      'bad.yaml:10:19: threads[1].steps[0].wait-for: waits for label "nowhere", which no step has; the labels are: none',
      'bad.yaml:10:7: threads[1].steps: vcpu 0 ends holding A: release it (a thread may not end holding a lock)',
    ]);
  });

  it('kind mismatches: synchronize on a mutex, acquire of an srcu, a read of a mutex, an unknown key', () => {
    const text = `locks:\n  - name: M\n    kind: mutex\n  - name: kvm->srcu\nthreads:\n  - thread: main\n    steps:\n      - synchronize: M\n      - acquire: kvm->srcu\n      - acquire: M\n        mode: read\n      - release: M\n      - relase: M\n`;
    expect(problemsOf(text)).toEqual([
      'bad.yaml:13:17: threads[0].steps[4].relase: unknown key "relase"; expected one of: acquire, release, srcu-read-lock, srcu-read-unlock, synchronize, wait-for, sleep, label, mode',
      'bad.yaml:13:9: threads[0].steps[4]: a step needs one action: acquire, release, srcu-read-lock, srcu-read-unlock, synchronize, wait-for, sleep',
      'bad.yaml:8:22: threads[0].steps[0].synchronize: synchronize needs an srcu lock; "M" is a mutex',
      'bad.yaml:9:18: threads[0].steps[1].acquire: "kvm->srcu" is an srcu: use srcu-read-lock, srcu-read-unlock or synchronize',
      'bad.yaml:11:15: threads[0].steps[2].mode: "M" is a mutex: it has no read mode',
    ]);
  });

  it('a file that cannot be read', () => {
    expect(() => loadLockScenarioFile('/nonexistent/scenario.yaml')).toThrow('/nonexistent/scenario.yaml: cannot read it (ENOENT)');
  });

  it('the shipped examples are valid: locks, threads and steps as written', () => {
    const abba = loadLockScenarioFile('examples/locks/abba.yaml');
    expect(abba.locks.map((lock) => `${lock.name}:${lock.kind}`)).toEqual(['A:mutex', 'B:mutex']);
    expect(abba.threads.map((thread) => [thread.name, thread.steps.map((step) => `${step.op} ${step.target}`)])).toEqual([
      ['vcpu 0', ['acquire A', 'wait-for vcpu1-holds-B', 'acquire B', 'release B', 'release A']],
      ['vcpu 1', ['acquire B', 'wait-for vcpu0-holds-A', 'acquire A', 'release A', 'release B']],
    ]);
    const clean = loadLockScenarioFile('examples/locks/clean.json');
    expect(clean.documentedOrders).toBe(true);
    expect(clean.locks.find((lock) => lock.name === 'kvm->srcu')?.kind).toBe('srcu');
    expect(loadLockScenarioFile('examples/locks/srcu-vs-synchronize.yaml').threads.map((thread) => thread.name)).toEqual([
      'vcpu 0',
      'main',
    ]);
  });
});

/** "Billion laughs": nine levels of nine aliases each, 9^9 copies of "lol" once expanded. */
const ALIAS_BOMB = [
  'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
  ...Array.from({ length: 8 }, (_, level) => {
    const [previous, name] = [String.fromCharCode(97 + level), String.fromCharCode(98 + level)];
    return `${name}: &${name} [${Array.from({ length: 9 }, () => `*${previous}`).join(', ')}]`;
  }),
].join('\n');

describe('scenario files: hostile YAML is one positioned error, never an exception or a hang', () => {
  it('an alias bomb is stopped at the first alias, before it is expanded', () => {
    expect(problemsOf(ALIAS_BOMB)).toEqual([
      'bad.yaml:2:8: malformed file: aliases expand to more than 100 copies of their anchors (an anchor may be reused, not multiplied)',
    ]);
  });

  it('an anchor reused a few times is fine', () => {
    const text = `locks:\n  - name: A\n    kind: mutex\nthreads:\n  - thread: vcpu 0\n    steps: &steps\n      - acquire: A\n      - release: A\n  - thread: vcpu 1\n    steps: *steps\n`;
    expect(parseLockScenario(text, 'reuse.yaml').threads.map((thread) => thread.steps.length)).toEqual([2, 2]);
  });

  it('an alias with no anchor before it, and an alias inside its own anchor', () => {
    expect(problemsOf('locks: *early\nthreads: &early []')).toEqual([
      'bad.yaml:1:8: malformed file: alias *early has no anchor &early before it',
    ]);
    expect(problemsOf('locks: &loop [*loop]\nthreads: []')).toEqual([
      'bad.yaml:1:15: malformed file: alias *loop is inside its own anchor &loop (a cycle)',
    ]);
  });

  it('deep nesting: stopped at a bound, not by exhausting the stack', () => {
    const deep = `locks: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
    expect(problemsOf(deep)).toEqual(['bad.yaml:1:71: malformed file: collections nested more than 64 deep']);
    const block = Array.from({ length: 100 }, (_, depth) => `${'  '.repeat(depth)}k${depth}:`).join('\n');
    expect(problemsOf(block)).toEqual(['bad.yaml:65:129: malformed file: collections nested more than 64 deep']);
  });

  it('tags: custom, JavaScript and YAML 1.1 ones are refused, not resolved', () => {
    expect(problemsOf('name: !!js/function "x"\nlocks: !custom []\nthreads: !!set {a}\n')).toEqual([
      'bad.yaml:1:7: malformed file: Unresolved tag: tag:yaml.org,2002:js/function (a scenario file takes plain values, without tags)',
      'bad.yaml:2:8: malformed file: Unresolved tag: !custom (a scenario file takes plain values, without tags)',
      'bad.yaml:3:10: malformed file: Unresolved tag: tag:yaml.org,2002:set (a scenario file takes plain values, without tags)',
    ]);
  });

  it('more than one document', () => {
    expect(problemsOf(`${TWO_MUTEXES}threads: []\n---\nname: second\n`)).toEqual([
      'bad.yaml:7:1: malformed file: a second YAML document; a scenario file holds one',
    ]);
  });

  it('a huge file is refused before it is read whole or parsed', () => {
    const directory = mkdtempSync(join(tmpdir(), 'scenario-file-'));
    try {
      const file = join(directory, 'huge.yaml');
      writeFileSync(file, `name: "${'x'.repeat(2 * 1024 * 1024)}"\n`);
      expect(() => loadLockScenarioFile(file)).toThrow(`${file}: too large: a scenario file may be at most 1 MiB`);
      expect(problemsOf(`name: "${'x'.repeat(2 * 1024 * 1024)}"\n`)).toEqual(['bad.yaml: too large: a scenario file may be at most 1 MiB']);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('scenario files: a sleep at the documented maximum does not race the lock-wait bound', () => {
  const holderSleeps = (ms: number, times = 1): string =>
    [
      'locks:',
      '  - name: A',
      '    kind: mutex',
      'threads:',
      '  - thread: vcpu 0',
      '    steps:',
      '      - acquire: A',
      '        label: holds-A',
      ...Array.from({ length: times }, () => `      - sleep: ${ms}`),
      '      - release: A',
      '  - thread: main',
      '    steps:',
      '      - wait-for: holds-A',
      '      - acquire: A',
      '      - release: A',
    ].join('\n');

  it('the maximum the checker allows is the one documented', () => {
    expect(readFileSync('docs/lock-scenarios.md', 'utf8')).toContain(`# milliseconds (0..${MAX_SLEEP_MS}`);
    expect(parseLockScenario(holderSleeps(MAX_SLEEP_MS), 'max.yaml').threads[0]!.steps[1]).toMatchObject({ op: 'sleep', ms: MAX_SLEEP_MS });
    expect(problemsOf(holderSleeps(MAX_SLEEP_MS + 1))).toEqual([
      `bad.yaml:9:16: threads[0].steps[1].sleep: sleep takes milliseconds, 0 to ${MAX_SLEEP_MS}`,
    ]);
  });

  it('a waiter behind a holder sleeping the maximum, once or twice, waits within its bound whatever the watchdog', () => {
    // main waits for A while vCPU 0 sleeps holding it: a legitimate wait as long as the sleeps, which
    // the watchdog does not count as a deadlock. A real deadlock is the watchdog's to end (it aborts
    // every wait), so the bound must also outlast the watchdog; it only catches what nothing else does.
    for (const times of [1, 2]) {
      const scenario = parseLockScenario(holderSleeps(MAX_SLEEP_MS, times), 'max.yaml');
      for (const watchdogMs of [1000, 2000, 600_000]) {
        expect(scenarioWaitBoundMs(scenario, watchdogMs), `${times} sleeps, watchdog ${watchdogMs} ms`).toBeGreaterThan(
          times * MAX_SLEEP_MS + watchdogMs,
        );
      }
    }
  });
});
