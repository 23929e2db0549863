// User-defined lock scenarios (`avic-smp lockdep --file F`, docs/lock-scenarios.md): a JSON or YAML
// file naming locks and threads (main, or vCPU n) with ordered steps. This file reads and checks it;
// src/scenarios/lock-scenarios/scenario-file-runner.ts runs it. Every mistake is found before anything runs and reported as
// "file:line:column: path: message" (JSON is read by the YAML parser too, so both get positions).
//
// Checks: the shape (unknown keys, wrong types, a step with no or two actions), locks (unknown
// class, kind mismatches), threads (unknown thread names, duplicates), and each thread's steps
// simulated in order: a release of a lock the thread does not hold, an SRCU unlock outside a read
// section, a thread ending with locks held, a wait for a label that does not exist or is its own.

import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import type { Document, LineCounter } from 'yaml';
import { KVM_LOCK_CLASS_SPECS } from './kvm-lock-classes.js';
import { LockKind, MAX_LOCK_CLASSES, type LockClassSpec } from './lock-class.js';
import { MAX_SCENARIO_FILE_BYTES, readScenarioDocument, tooLarge } from './scenario-file-yaml.js';

export type LockStepOp = 'acquire' | 'release' | 'srcu-read-lock' | 'srcu-read-unlock' | 'synchronize' | 'wait-for' | 'sleep';
const STEP_OPS: readonly LockStepOp[] = ['acquire', 'release', 'srcu-read-lock', 'srcu-read-unlock', 'synchronize', 'wait-for', 'sleep'];

export interface LockScenarioStep {
  readonly op: LockStepOp;
  /** The lock (acquire, release, srcu-*, synchronize), the label (wait-for), or '' (sleep). */
  readonly target: string;
  /** acquire of an rw-semaphore: read or write (mutexes: write). */
  readonly mode: 'read' | 'write';
  readonly ms: number;
  readonly label?: string;
  /** "threads[1].steps[2] (abba.yaml:14)": where the step is, for site labels and messages. */
  readonly where: string;
}

export interface LockScenarioLock {
  readonly name: string;
  readonly className: string;
  readonly kind: LockKind;
  readonly writerPreferring: boolean;
}

export interface LockScenarioThread {
  /** "main", "main NAME" or "vcpu N". */
  readonly name: string;
  /** -1 for main threads. */
  readonly vcpu: number;
  readonly steps: readonly LockScenarioStep[];
}

export interface LockScenario {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  /** User-declared classes (the KVM classes are always there too). */
  readonly classes: readonly LockClassSpec[];
  readonly locks: readonly LockScenarioLock[];
  readonly threads: readonly LockScenarioThread[];
  /** Prime the validator with KVM's documented lock order (KVM_DOCUMENTED_ORDERS). */
  readonly documentedOrders: boolean;
}

/** A scenario file that cannot run: every problem, one per line, each with file, line and path. */
export class LockScenarioFileError extends Error {
  override readonly name = 'LockScenarioFileError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

const KIND_NAMES: Readonly<Record<string, LockKind>> = { mutex: LockKind.Mutex, rwsem: LockKind.RwSemaphore, srcu: LockKind.Srcu };
const KVM_KINDS: ReadonlyMap<string, LockKind> = new Map(KVM_LOCK_CLASS_SPECS.map((spec) => [spec.name, spec.kind]));
const MAX_VCPU = 63;
/** The longest one `sleep` step may be (docs/lock-scenarios.md). */
export const MAX_SLEEP_MS = 60_000;
type Path = readonly (string | number)[];

export function loadLockScenarioFile(file: string): LockScenario {
  let bytes: Buffer;
  try {
    bytes = readAtMost(file, MAX_SCENARIO_FILE_BYTES + 1);
  } catch (error) {
    throw new LockScenarioFileError([`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`]);
  }
  if (bytes.length > MAX_SCENARIO_FILE_BYTES) throw new LockScenarioFileError([tooLarge(file)]);
  return parseLockScenario(bytes.toString('utf8'), file);
}

/** The first `limit` bytes of the file (all of it if shorter): a huge file is never read whole. */
function readAtMost(file: string, limit: number): Buffer {
  const descriptor = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(limit);
    let length = 0;
    for (let read = -1; read !== 0 && length < limit; length += read) read = readSync(descriptor, buffer, length, limit - length, null);
    return buffer.subarray(0, length);
  } finally {
    closeSync(descriptor);
  }
}

/**
 * Parses and checks a scenario; throws LockScenarioFileError listing every problem found. Hostile
 * YAML (too big, too deep, alias bombs, tags, several documents) is refused first, by
 * scenario-file-yaml.ts.
 */
export function parseLockScenario(text: string, file: string): LockScenario {
  const read = readScenarioDocument(text, file);
  if (!read.ok) throw new LockScenarioFileError(read.problems);
  const checker = new ScenarioChecker(read.document, read.lines, file);
  const scenario = checker.check(read.root);
  if (checker.problems.length > 0) throw new LockScenarioFileError(checker.problems);
  return scenario;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const pathText = (path: Path): string =>
  path.map((part, index) => (typeof part === 'number' ? `[${part}]` : index === 0 ? part : `.${part}`)).join('') || '(top level)';

class ScenarioChecker {
  readonly problems: string[] = [];
  readonly #document: Document;
  readonly #lines: LineCounter;
  readonly #file: string;

  constructor(document: Document, lines: LineCounter, file: string) {
    this.#document = document;
    this.#lines = lines;
    this.#file = file;
  }

  #line(path: Path): { line: number; col: number } | undefined {
    for (let length = path.length; length >= 0; length--) {
      const node = length === 0 ? this.#document.contents : this.#document.getIn(path.slice(0, length), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range !== undefined) return this.#lines.linePos(range[0]);
    }
    return undefined;
  }

  where(path: Path): string {
    const position = this.#line(path);
    return `${pathText(path)} (${basename(this.#file)}${position === undefined ? '' : `:${position.line}`})`;
  }

  problem(path: Path, message: string): void {
    const position = this.#line(path);
    this.problems.push(`${this.#file}${position === undefined ? '' : `:${position.line}:${position.col}`}: ${pathText(path)}: ${message}`);
  }

  #keys(value: Record<string, unknown>, path: Path, allowed: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.problem([...path, key], `unknown key "${key}"; expected one of: ${allowed.join(', ')}`);
    }
  }

  check(root: unknown): LockScenario {
    const empty: LockScenario = {
      name: basename(this.#file),
      file: this.#file,
      description: '',
      classes: [],
      locks: [],
      threads: [],
      documentedOrders: false,
    };
    if (!isRecord(root)) {
      this.problem([], 'malformed file: expected a mapping with "locks" and "threads"');
      return empty;
    }
    this.#keys(root, [], ['name', 'description', 'documented-orders', 'locks', 'threads']);
    const name = typeof root.name === 'string' ? root.name : basename(this.#file);
    if (root.name !== undefined && typeof root.name !== 'string') this.problem(['name'], 'must be a string');
    if (root.description !== undefined && typeof root.description !== 'string') this.problem(['description'], 'must be a string');
    if (root['documented-orders'] !== undefined && typeof root['documented-orders'] !== 'boolean')
      this.problem(['documented-orders'], 'must be true or false');
    const { locks, classes } = this.#locks(root.locks);
    const threads = this.#threads(root.threads, new Map(locks.map((lock) => [lock.name, lock])));
    return {
      ...empty,
      name,
      description: typeof root.description === 'string' ? root.description : '',
      classes,
      locks,
      threads,
      documentedOrders: root['documented-orders'] === true,
    };
  }

  #locks(value: unknown): { locks: LockScenarioLock[]; classes: LockClassSpec[] } {
    const locks: LockScenarioLock[] = [];
    const classes = new Map<string, LockClassSpec>();
    if (!Array.isArray(value) || value.length === 0) {
      this.problem(['locks'], 'malformed file: "locks" must be a non-empty list of {name, kind?, class?}');
      return { locks, classes: [] };
    }
    value.forEach((entry: unknown, index) => {
      const path = ['locks', index];
      if (!isRecord(entry) || typeof entry.name !== 'string' || entry.name.length === 0) {
        this.problem(path, 'each lock needs a "name" (a string)');
        return;
      }
      this.#keys(entry, path, ['name', 'kind', 'class', 'writer-preferring']);
      if (locks.some((lock) => lock.name === entry.name)) this.problem([...path, 'name'], `lock "${entry.name}" is declared twice`);
      const className = typeof entry.class === 'string' ? entry.class : entry.name;
      const kindName = entry.kind;
      if (kindName !== undefined && (typeof kindName !== 'string' || KIND_NAMES[kindName] === undefined)) {
        this.problem([...path, 'kind'], `unknown kind "${String(kindName)}"; expected mutex, rwsem or srcu`);
        return;
      }
      const declared = kindName === undefined ? undefined : KIND_NAMES[kindName];
      const known = KVM_KINDS.get(className) ?? classes.get(className)?.kind;
      const kind = known ?? declared;
      if (kind === undefined) {
        this.problem(
          path,
          `unknown lock class "${className}": give a kind (mutex, rwsem or srcu), or use a KVM class (${[...KVM_KINDS.keys()].join(', ')})`,
        );
        return;
      }
      if (known !== undefined && declared !== undefined && known !== declared)
        this.problem([...path, 'kind'], `class "${className}" is a ${known}, not a ${kindName as string}`);
      if (!KVM_KINDS.has(className) && !classes.has(className))
        classes.set(className, { name: className, kind, protects: `declared in ${basename(this.#file)}` });
      const writerPreferring = entry['writer-preferring'] === true;
      if (entry['writer-preferring'] !== undefined && (typeof entry['writer-preferring'] !== 'boolean' || kind !== LockKind.RwSemaphore)) {
        this.problem([...path, 'writer-preferring'], 'is true or false, and only for an rwsem');
      }
      locks.push({ name: entry.name, className, kind, writerPreferring });
    });
    if (KVM_KINDS.size + classes.size > MAX_LOCK_CLASSES)
      this.problem(['locks'], `at most ${MAX_LOCK_CLASSES - KVM_KINDS.size} classes of your own`);
    return { locks, classes: [...classes.values()] };
  }

  #threads(value: unknown, locks: ReadonlyMap<string, LockScenarioLock>): LockScenarioThread[] {
    if (!Array.isArray(value) || value.length === 0) {
      this.problem(['threads'], 'malformed file: "threads" must be a non-empty list of {thread, steps}');
      return [];
    }
    const threads: LockScenarioThread[] = [];
    /** Each kept thread's index in the file (threads that cannot be read are left out). */
    const positions: number[] = [];
    value.forEach((entry: unknown, index) => {
      const path = ['threads', index];
      if (!isRecord(entry)) {
        this.problem(path, 'each thread is a mapping {thread: "main" | "vcpu N", steps: [...]}');
        return;
      }
      this.#keys(entry, path, ['thread', 'steps']);
      const name = typeof entry.thread === 'string' ? entry.thread.trim() : '';
      const vcpuMatch = /^vcpu\s+(\d+)$/i.exec(name);
      const vcpu = vcpuMatch === null ? -1 : Number(vcpuMatch[1]);
      if (vcpuMatch === null && !/^main(\s+\S.*)?$/.test(name)) {
        this.problem(
          [...path, 'thread'],
          `unknown thread "${String(entry.thread ?? '')}"; a thread is "main", "main NAME" or "vcpu N" (N from 0 to ${MAX_VCPU})`,
        );
        return;
      }
      if (vcpu > MAX_VCPU) this.problem([...path, 'thread'], `vcpu ${vcpu}: N is from 0 to ${MAX_VCPU}`);
      const canonical = vcpu >= 0 ? `vcpu ${vcpu}` : name;
      if (threads.some((thread) => thread.name === canonical)) this.problem([...path, 'thread'], `thread "${canonical}" appears twice`);
      if (!Array.isArray(entry.steps)) {
        this.problem([...path, 'steps'], 'malformed file: "steps" must be a list');
        return;
      }
      threads.push({
        name: canonical,
        vcpu,
        steps: entry.steps.map((step: unknown, stepIndex) => this.#step(step, [...path, 'steps', stepIndex])),
      });
      positions.push(index);
    });
    this.#checkLabels(threads, positions);
    threads.forEach((thread, index) => {
      this.#simulate(thread, positions[index]!, locks);
    });
    return threads;
  }

  #step(value: unknown, path: Path): LockScenarioStep {
    const bad: LockScenarioStep = { op: 'sleep', target: '', mode: 'write', ms: 0, where: this.where(path) };
    if (!isRecord(value)) {
      this.problem(path, `malformed step: expected a mapping with one of: ${STEP_OPS.join(', ')}`);
      return bad;
    }
    this.#keys(value, path, [...STEP_OPS, 'label', 'mode']);
    const ops = STEP_OPS.filter((op) => value[op] !== undefined);
    if (ops.length !== 1) {
      this.problem(
        path,
        ops.length === 0 ? `a step needs one action: ${STEP_OPS.join(', ')}` : `a step has one action, not ${ops.join(' and ')}`,
      );
      return bad;
    }
    const op = ops[0]!;
    const argument = value[op];
    const label = value.label;
    if (label !== undefined && (typeof label !== 'string' || label.length === 0))
      this.problem([...path, 'label'], 'a label is a non-empty string');
    const mode = value.mode ?? 'write';
    if (mode !== 'read' && mode !== 'write') this.problem([...path, 'mode'], 'mode is read or write');
    if (value.mode !== undefined && op !== 'acquire') this.problem([...path, 'mode'], 'only an acquire has a mode');
    const step = {
      op,
      mode: mode === 'read' ? 'read' : 'write',
      where: this.where(path),
      ...(typeof label === 'string' ? { label } : {}),
    } as const;
    if (op === 'sleep') {
      if (typeof argument !== 'number' || !Number.isFinite(argument) || argument < 0 || argument > MAX_SLEEP_MS)
        this.problem([...path, op], `sleep takes milliseconds, 0 to ${MAX_SLEEP_MS}`);
      return { ...step, target: '', ms: typeof argument === 'number' ? argument : 0 };
    }
    if (typeof argument !== 'string' || argument.length === 0)
      this.problem([...path, op], `${op} takes a ${op === 'wait-for' ? 'step label' : 'lock name'}`);
    return { ...step, target: typeof argument === 'string' ? argument : '', ms: 0 };
  }

  #checkLabels(threads: readonly LockScenarioThread[], positions: readonly number[]): void {
    const owners = new Map<string, string>();
    threads.forEach((thread, threadIndex) => {
      thread.steps.forEach((step, stepIndex) => {
        if (step.label === undefined) return;
        if (owners.has(step.label))
          this.problem(['threads', positions[threadIndex]!, 'steps', stepIndex, 'label'], `label "${step.label}" is used twice`);
        else owners.set(step.label, thread.name);
      });
    });
    threads.forEach((thread, threadIndex) => {
      thread.steps.forEach((step, stepIndex) => {
        if (step.op !== 'wait-for' || step.target === '') return;
        const owner = owners.get(step.target);
        const path = ['threads', positions[threadIndex]!, 'steps', stepIndex, 'wait-for'];
        if (owner === undefined)
          this.problem(
            path,
            `waits for label "${step.target}", which no step has; the labels are: ${[...owners.keys()].join(', ') || 'none'}`,
          );
        else if (owner === thread.name) this.problem(path, `waits for label "${step.target}" of its own thread (it would wait forever)`);
      });
    });
  }

  /** Runs the thread's steps over its held set: releases must match what it holds. */
  #simulate(thread: LockScenarioThread, position: number, locks: ReadonlyMap<string, LockScenarioLock>): void {
    const held = new Map<string, number>();
    const threadPath = ['threads', position];
    thread.steps.forEach((step, stepIndex) => {
      const path = [...threadPath, 'steps', stepIndex, step.op];
      if (step.op === 'sleep' || step.op === 'wait-for' || step.target === '') return;
      const lock = locks.get(step.target);
      if (lock === undefined) {
        this.problem(path, `unknown lock "${step.target}"; the declared locks are: ${[...locks.keys()].join(', ')}`);
        return;
      }
      const srcuOp = step.op === 'srcu-read-lock' || step.op === 'srcu-read-unlock' || step.op === 'synchronize';
      if (srcuOp !== (lock.kind === LockKind.Srcu)) {
        this.problem(
          path,
          srcuOp
            ? `${step.op} needs an srcu lock; "${lock.name}" is a ${lock.kind}`
            : `"${lock.name}" is an srcu: use srcu-read-lock, srcu-read-unlock or synchronize`,
        );
        return;
      }
      if (step.op === 'acquire' && lock.kind === LockKind.Mutex && step.mode === 'read')
        this.problem([...threadPath, 'steps', stepIndex, 'mode'], `"${lock.name}" is a mutex: it has no read mode`);
      const count = held.get(lock.name) ?? 0;
      if (step.op === 'acquire' || step.op === 'srcu-read-lock') held.set(lock.name, count + 1);
      if (step.op === 'release' || step.op === 'srcu-read-unlock') {
        if (count === 0)
          this.problem(
            path,
            `${thread.name} ${step.op === 'release' ? 'releases' : 'leaves a read section of'} "${lock.name}", which it does not hold`,
          );
        else held.set(lock.name, count - 1);
      }
    });
    const stillHeld = [...held].filter(([, count]) => count > 0).map(([name]) => name);
    if (stillHeld.length > 0)
      this.problem(
        [...threadPath, 'steps'],
        `${thread.name} ends holding ${stillHeld.join(', ')}: release ${stillHeld.length === 1 ? 'it' : 'them'} (a thread may not end holding a lock)`,
      );
  }
}
