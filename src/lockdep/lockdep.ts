// The lock-order validator (kernel/locking/lockdep.c, reduced to what the emulator needs): lock
// classes, per-thread held-lock stacks, one dependency graph shared by all threads, cycle search
// when an edge is new, the first report wins and turns the checker off.
//
// What happens on an acquisition of class C in mode M by thread T (checkAcquire):
//   1. AA: if T already holds C, report "possible recursive locking" unless M is a recursive read
//      and the held one is a read (srcu_read_lock inside srcu_read_lock is fine; synchronize_srcu
//      inside srcu_read_lock is the S1 self-deadlock).
//   2. For each lock H that T holds, most recent first, add the edge H -> C typed by (H's mode, M). Every held lock,
//      not only the top one: with recursive readers the relation is not transitive (X -(ER)-> Y
//      -(SN)-> Z is not a strong X ->* Z), so the kernel's "top lock only" shortcut could miss one.
//   3. When an edge is new, search for a strong path C ->* H (dependency-graph.ts). Found: report
//      "possible circular locking dependency". The report is written before the caller blocks on
//      the lock, so a possible deadlock is reported the first time both orders have been seen,
//      whether or not the threads ever race.
// noteAcquired pushes the held lock after the lock is actually taken; release pops it.
// synchronize (lock_sync) validates a write acquisition and pushes nothing.
//
// enabled === false: the instrumented locks skip every call here (one boolean check); holder and
// waiter words are still kept by the locks themselves, for the watchdog.

import { LockClassRegistry, LockKind, type LockClass, type LockClassSpec } from './lock-class.js';
import { LockInstanceTable } from './lock-instances.js';
import { DependencyGraph, type DependencyLink } from './dependency-graph.js';
import { HeldLockStacks, type HeldLock } from './held-lock-stack.js';
import { LockAssertionError, LockdepMisuseError } from './lockdep-errors.js';
import {
  DEFAULT_DIMENSIONS,
  LockdepIndices,
  LockMode,
  MAX_THREAD_SLOTS,
  dependencyTypeOf,
  lockdepLayout,
  threadSlotCount,
  type LockdepDimensions,
} from './lockdep-layout.js';
import {
  LockdepReportKind,
  formatCircularSplat,
  formatRecursiveSplat,
  describeSplatAcquisition,
  describeSplatLink,
  type LockdepReport,
  type SplatAcquisition,
} from './lockdep-splat.js';
import { LockdepThreads, MAIN_THREAD_SLOT } from './lockdep-threads.js';
import { ReportSlot } from './report-slot.js';
import { SharedLabelTable } from './site-labels.js';

/** Everything a worker needs to attach: structured-cloneable. */
export interface LockdepShared {
  readonly buffer: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly dimensions: LockdepDimensions;
  readonly classSpecs: readonly LockClassSpec[];
}

export interface LockdepOptions {
  /** false: the locks skip the validator entirely (default true). */
  readonly enabled?: boolean;
  /** Called in the reporting thread with the first report (print it, post it to main, ...). */
  readonly onReport?: (report: LockdepReport) => void;
}

export interface LockdepCreateOptions extends LockdepOptions {
  /** Place the region inside an existing zero-filled buffer (64-byte aligned) instead of a new one. */
  readonly placement?: { readonly buffer: SharedArrayBuffer; readonly byteOffset: number };
}

export interface LockdepAttachOptions extends LockdepOptions {
  readonly threadSlot: number;
  readonly vcpu?: number;
}

export type LockClassReference = LockClass | string;

/** An order declared as data (kvm-lock-classes.ts KVM_DOCUMENTED_ORDERS has this shape). */
export interface DeclaredLockOrder {
  readonly outer: string;
  readonly outerHeldAs: 'lock' | 'read' | 'synchronize';
  readonly inner: string;
  readonly innerTakenAs: 'lock' | 'read' | 'synchronize';
  readonly source: string;
}

/** Who is validating: a thread slot, or a declared order (no thread). */
interface ValidationContext {
  readonly slot: number;
  /** Label id of the thread's name, stored in the edge records it creates. */
  readonly threadNameLabel: number;
  readonly vcpu: number;
}

type FullDimensions = Pick<LockdepDimensions, 'workerThreads'> & Partial<LockdepDimensions>;

export class Lockdep {
  /** Chains validated in this thread (the chain cache); only ever grows, as the dependency graph does. */
  readonly #validatedChains = new Set<number | string>();
  readonly enabled: boolean;
  readonly classes: LockClassRegistry;
  readonly shared: LockdepShared;
  readonly threads: LockdepThreads;
  readonly stacks: HeldLockStacks;
  readonly graph: DependencyGraph;
  readonly labels: SharedLabelTable;
  readonly instances: LockInstanceTable;
  readonly #reports: ReportSlot;
  readonly #onReport: ((report: LockdepReport) => void) | undefined;
  readonly #indices: LockdepIndices;
  readonly #int32: Int32Array;

  static regionBytes(classCount: number, dimensions: FullDimensions): number {
    return lockdepLayout(classCount, { ...DEFAULT_DIMENSIONS, ...dimensions }).byteSize;
  }

  /** Main, at VM creation: allocates (or places) and initialises the region. */
  static create(classes: LockClassRegistry, dimensions: FullDimensions, options: LockdepCreateOptions = {}): Lockdep {
    const full: LockdepDimensions = { ...DEFAULT_DIMENSIONS, ...dimensions };
    if (threadSlotCount(full) > MAX_THREAD_SLOTS) throw new RangeError(`at most ${MAX_THREAD_SLOTS} thread slots`);
    const bytes = lockdepLayout(classes.size, full).byteSize;
    const buffer = options.placement?.buffer ?? new SharedArrayBuffer(bytes);
    const byteOffset = options.placement?.byteOffset ?? 0;
    if (byteOffset % 64 !== 0 || byteOffset + bytes > buffer.byteLength)
      throw new RangeError('the lockdep region must be 64-byte aligned and fit');
    const lockdep = new Lockdep({ buffer, byteOffset, dimensions: full, classSpecs: classes.specs }, classes, options);
    lockdep.#initialize();
    return lockdep;
  }

  /** A worker (or a test playing one): maps the region created by main and takes its thread slot. */
  static attach(shared: LockdepShared, options: LockdepAttachOptions): Lockdep {
    const lockdep = new Lockdep(shared, new LockClassRegistry(shared.classSpecs), options);
    lockdep.#checkRegistry();
    lockdep.threads.setCurrent(options.threadSlot, options.vcpu ?? -1);
    return lockdep;
  }

  private constructor(shared: LockdepShared, classes: LockClassRegistry, options: LockdepOptions) {
    const int32 = new Int32Array(shared.buffer);
    const indices = new LockdepIndices(lockdepLayout(classes.size, shared.dimensions), classes.size, shared.byteOffset);
    this.enabled = options.enabled ?? true;
    this.classes = classes;
    this.shared = shared;
    this.labels = new SharedLabelTable(int32, indices, shared.dimensions.labels);
    this.threads = new LockdepThreads(int32, indices, this.labels, {
      threadSlots: threadSlotCount(shared.dimensions),
      workerThreads: shared.dimensions.workerThreads,
    });
    this.stacks = new HeldLockStacks(int32, indices, threadSlotCount(shared.dimensions));
    this.graph = new DependencyGraph(int32, indices);
    this.instances = new LockInstanceTable(int32, indices, this.labels, shared.dimensions.lockInstances);
    this.#reports = new ReportSlot(int32, indices, classes, this.labels);
    this.#onReport = options.onReport;
    this.#indices = indices;
    this.#int32 = int32;
  }

  /** lockdep's debug_locks: true until the first report. */
  get debugLocks(): boolean {
    return this.#reports.debugLocks;
  }

  /** True once abortWaits() was called, in any thread: every lock wait then gives up within a slice. */
  get waitsAborted(): boolean {
    return Atomics.load(this.#int32, this.#indices.header('waitsAborted')) !== 0;
  }

  /**
   * Tearing a run down (a watchdog fired, a scenario ended): every thread's lock and grace-period
   * waits on this region throw LockWaitAborted within one wait slice instead of running to their
   * bound. Not undone: the region is finished with.
   */
  abortWaits(): void {
    Atomics.store(this.#int32, this.#indices.header('waitsAborted'), 1);
  }

  currentThreadSlot(): number {
    return this.threads.current();
  }

  /** This thread's slot from now on (tests use it to play several threads in turn). */
  setCurrentThread(slot: number, vcpu = -1): void {
    this.threads.setCurrent(slot, vcpu);
  }

  threadName(slot = this.threads.current()): string {
    return this.threads.name(slot);
  }

  runInMainContext<T>(name: string, body: () => Promise<T>): Promise<T> {
    return this.threads.runInMainContext(name, body, (slot) => this.stacks.depth(slot));
  }

  resolve(lockClass: LockClassReference): LockClass {
    return this.classes.resolve(lockClass);
  }

  // ---- the hooks the instrumented locks call ----

  /** Validates an acquisition before it may block; reports at most once per region. */
  checkAcquire(lockClass: LockClassReference, mode: LockMode, site: string, instance = -1, synchronize = false): void {
    if (!this.enabled || !this.#reports.debugLocks) return;
    const classId = this.resolve(lockClass).id;
    const slot = this.threads.current();
    // lockdep's chain cache (lookup_chain_cache): an acquisition whose held chain and mode were
    // validated before adds no new dependency (every edge exists, and an existing edge is never
    // checked again), so the result cannot differ: skip it. Keeps exits cheap with the validator on.
    const chainKey = this.#chainKey(slot, classId, mode, synchronize);
    if (this.#validatedChains.has(chainKey)) return;
    const next: HeldLock = { classId, mode, site: this.labels.intern(site), instance };
    const context = this.#currentContext();
    const held = this.stacks.entries(context.slot);
    const conflicting = held.find(
      (entry) => entry.classId === next.classId && !(mode === LockMode.RecursiveRead && entry.mode !== LockMode.Write),
    );
    if (conflicting !== undefined) {
      this.#reportRecursive(context, conflicting, next, synchronize, held);
      return;
    }
    // Most recent first, as check_prevs_add walks the held locks: the cycle through the innermost
    // held lock is the one reported (a vCPU taking kvm->lock inside SRCU inside vcpu->mutex gets the
    // SRCU cycle, the deadlock it is in, not the vcpu->mutex one).
    for (let position = held.length - 1; position >= 0; position--) {
      const entry = held[position]!;
      if (entry.classId !== next.classId && this.#addDependency(context, entry, next, synchronize, held)) return;
    }
    this.#validatedChains.add(chainKey);
  }

  /**
   * The held locks' classes and modes, bottom to top, then the new acquisition: the chain's identity.
   * A number while it fits exactly (up to 4 held locks, fewer than 128 classes: base 1024 per entry,
   * under 2^53), a string beyond; the two never collide (different types in the Set).
   */
  #chainKey(slot: number, classId: number, mode: LockMode, synchronize: boolean): number | string {
    const depth = this.stacks.depth(slot);
    const head = (classId * 8 + mode) * 2 + (synchronize ? 1 : 0);
    if (depth <= 4 && this.classes.size < 128) {
      let key = head;
      for (let position = 0; position < depth; position++) key = key * 1024 + this.stacks.classAndMode(slot, position) + 1;
      return key;
    }
    let key = String(head);
    for (let position = 0; position < depth; position++) key += `|${this.stacks.classAndMode(slot, position)}`;
    return key;
  }

  /** Records the lock as held by the current thread, once it is actually taken. */
  noteAcquired(lockClass: LockClassReference, mode: LockMode, site: string, instance = -1): void {
    if (!this.enabled) return;
    const slot = this.threads.current();
    const held: HeldLock = { classId: this.resolve(lockClass).id, mode, site: this.labels.intern(site), instance };
    this.stacks.push(slot, held, () => `${this.threads.name(slot)} acquiring ${this.resolve(lockClass).name}`);
  }

  /** checkAcquire + noteAcquired, for acquisitions that do not wait (tests, scenario models). */
  acquire(lockClass: LockClassReference, mode: LockMode, site: string, instance = -1): void {
    this.checkAcquire(lockClass, mode, site, instance);
    this.noteAcquired(lockClass, mode, site, instance);
  }

  /** lock_sync: synchronize_srcu orders like a write acquisition and release, and holds nothing. */
  synchronize(lockClass: LockClassReference, site: string, instance = -1): void {
    this.checkAcquire(lockClass, LockMode.Write, site, instance, true);
  }

  /** Pops the topmost held entry of the class (and instance, when given). */
  release(lockClass: LockClassReference, instance = -1): void {
    if (!this.enabled) return;
    const resolved = this.resolve(lockClass);
    const slot = this.threads.current();
    const position = this.stacks.findTopmost(slot, (held) => held.classId === resolved.id && (instance < 0 || held.instance === instance));
    if (position < 0) {
      const detail = `${this.threads.name(slot)} is trying to release lock (${resolved.name}) but there are no more locks to release!`;
      throw new LockdepMisuseError('releaseNotHeld', detail);
    }
    this.stacks.removeAt(slot, position);
  }

  // ---- assertions and queries ----

  isHeld(lockClass: LockClassReference, slot = this.threads.current()): boolean {
    const classId = this.resolve(lockClass).id;
    return this.stacks.findTopmost(slot, (held) => held.classId === classId) >= 0;
  }

  /** lockdep_assert_held (and _held_write / _held_read with `mode`). No-op when disabled. */
  assertHeld(lockClass: LockClassReference, mode?: 'write' | 'read'): void {
    if (!this.enabled) return;
    const resolved = this.resolve(lockClass);
    const slot = this.threads.current();
    const matchesMode = (held: HeldLock): boolean => mode === undefined || (mode === 'write') === (held.mode === LockMode.Write);
    if (this.stacks.findTopmost(slot, (held) => held.classId === resolved.id && matchesMode(held)) < 0) {
      throw new LockAssertionError(
        'held',
        mode === undefined ? resolved.name : `${resolved.name} for ${mode}`,
        this.threads.name(slot),
        this.#heldNames(slot),
      );
    }
  }

  /** lockdep_assert_not_held. No-op when disabled. */
  assertNotHeld(lockClass: LockClassReference): void {
    if (!this.enabled) return;
    const resolved = this.resolve(lockClass);
    const slot = this.threads.current();
    if (this.isHeld(resolved, slot)) throw new LockAssertionError('notHeld', resolved.name, this.threads.name(slot), this.#heldNames(slot));
  }

  heldLocks(slot = this.threads.current()): SplatAcquisition[] {
    return this.stacks.entries(slot).map((held) => describeSplatAcquisition(this, held, false));
  }

  /** The first (and only) report, from any thread; undefined while none. */
  report(): LockdepReport | undefined {
    return this.#reports.read();
  }

  /** Adds a documented order as a dependency (kvm-lock-classes.ts), reporting if it closes a cycle. */
  declareOrder(order: DeclaredLockOrder): void {
    if (!this.enabled || !this.#reports.debugLocks) return;
    const site = this.labels.intern(order.source);
    const outer = this.resolve(order.outer);
    const inner = this.resolve(order.inner);
    const prev: HeldLock = { classId: outer.id, mode: this.#declaredMode(outer, order.outerHeldAs), site, instance: -1 };
    const next: HeldLock = { classId: inner.id, mode: this.#declaredMode(inner, order.innerTakenAs), site, instance: -1 };
    const context = { slot: MAIN_THREAD_SLOT, threadNameLabel: this.labels.intern('documented order'), vcpu: -1 };
    this.#addDependency(context, prev, next, order.innerTakenAs === 'synchronize', [prev]);
  }

  // ---- internals ----

  #initialize(): void {
    const store = (field: Parameters<LockdepIndices['header']>[0], value: number): void => {
      Atomics.store(this.#int32, this.#indices.header(field), value);
    };
    store('classCount', this.classes.size);
    store('classFingerprint', this.classes.fingerprint);
    store('threadSlots', this.threads.threadSlots);
    this.labels.initialize();
    this.threads.setCurrent(MAIN_THREAD_SLOT);
    store('debugLocks', 1); // last: validation starts once the region is whole
  }

  #checkRegistry(): void {
    const load = (field: Parameters<LockdepIndices['header']>[0]): number => Atomics.load(this.#int32, this.#indices.header(field));
    if (load('classCount') !== this.classes.size || load('classFingerprint') !== this.classes.fingerprint) {
      throw new LockdepMisuseError('registryMismatch', `${this.classes.size} classes, fingerprint ${this.classes.fingerprint}`);
    }
  }

  #currentContext(): ValidationContext {
    const slot = this.threads.current();
    return { slot, threadNameLabel: this.threads.nameLabel(slot), vcpu: this.threads.vcpu(slot) };
  }

  #declaredMode(lockClass: LockClass, how: DeclaredLockOrder['outerHeldAs']): LockMode {
    if (how !== 'read') return LockMode.Write;
    // SRCU readers are recursive; an rwsem declared "read" is taken as the kernel's down_read (r).
    return lockClass.kind === LockKind.Srcu ? LockMode.RecursiveRead : LockMode.Read;
  }

  /** Adds prev -> next; true when that closed a strong cycle (and a report was attempted). */
  #addDependency(context: ValidationContext, prev: HeldLock, next: HeldLock, synchronize: boolean, held: readonly HeldLock[]): boolean {
    const record = {
      threadSlot: context.slot,
      threadName: context.threadNameLabel,
      vcpu: context.vcpu,
      prevSite: prev.site,
      nextSite: next.site,
      prevMode: prev.mode,
      nextMode: next.mode,
      synchronize,
    };
    if (!this.graph.add(prev.classId, next.classId, dependencyTypeOf(prev.mode, next.mode), record)) return false;
    const target = { classId: prev.classId, heldExclusive: prev.mode === LockMode.Write };
    const chain = this.graph.findStrongPath(next.classId, next.mode === LockMode.RecursiveRead, target);
    if (chain === undefined) return false;
    this.#reportCircular(context, prev, next, synchronize, chain, held);
    return true;
  }

  #reportCircular(
    context: ValidationContext,
    prev: HeldLock,
    next: HeldLock,
    synchronize: boolean,
    chain: DependencyLink[],
    held: readonly HeldLock[],
  ): void {
    if (!this.#reports.turnOff()) return;
    const text = formatCircularSplat({
      threadName: this.labels.text(context.threadNameLabel),
      vcpu: context.vcpu,
      acquiring: describeSplatAcquisition(this, next, synchronize),
      holding: describeSplatAcquisition(this, prev, false),
      chain: chain.map((link) => describeSplatLink(this, link)),
      heldLocks: held.map((entry) => describeSplatAcquisition(this, entry, false)),
    });
    const cycle = [next.classId, ...chain.map((link) => link.next), next.classId];
    this.#publish(LockdepReportKind.CircularDependency, cycle, context, text);
  }

  #reportRecursive(
    context: ValidationContext,
    conflicting: HeldLock,
    next: HeldLock,
    synchronize: boolean,
    held: readonly HeldLock[],
  ): void {
    if (!this.#reports.turnOff()) return;
    const text = formatRecursiveSplat({
      threadName: this.labels.text(context.threadNameLabel),
      acquiring: describeSplatAcquisition(this, next, synchronize),
      holding: describeSplatAcquisition(this, conflicting, false),
      heldLocks: held.map((entry) => describeSplatAcquisition(this, entry, false)),
    });
    this.#publish(LockdepReportKind.RecursiveLocking, [next.classId, next.classId], context, text);
  }

  #publish(kind: LockdepReportKind, cycle: readonly number[], context: ValidationContext, text: string): void {
    this.#reports.write(kind, cycle, context.threadNameLabel, text);
    const report = this.#reports.read();
    if (report !== undefined) this.#onReport?.(report);
  }

  #heldNames(slot: number): string[] {
    return this.stacks.entries(slot).map((held) => this.classes.byId(held.classId).name);
  }
}
