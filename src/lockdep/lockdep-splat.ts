// Reports in the kernel's format (kernel/locking/lockdep.c: print_circular_bug,
// print_circular_lock_scenario, print_deadlock_bug), so that anyone who has read a lockdep splat
// can read ours. Differences, on purpose:
//   - no stack traces: each link says where it was first seen as (thread, vCPU, step label), and
//     which lock was held there and where that one was taken;
//   - the mode in braces is lockdep-design.rst's notation, not the irq-usage string:
//     {W} write, {r} non-recursive read, {R} recursive read, {sync} synchronize (lock_sync);
//   - the instance (the kernel prints its address) is printed only when it has its own name;
//   - the unsafe scenario prints rlock()/sync() on both CPUs where the kernel does only on CPU0
//     (Boqun Feng's 2023 lock_sync patch; the CPU1 side was on his TODO list).
// A report is data ({kind, cycle, thread, text}): `cycle` feeds the CLI's --json output.

import type { DependencyLink } from './dependency-graph.js';
import type { HeldLock } from './held-lock-stack.js';
import type { LockClassRegistry } from './lock-class.js';
import type { LockInstanceTable } from './lock-instances.js';
import { LockMode, startsExclusive } from './lockdep-layout.js';
import type { SharedLabelTable } from './site-labels.js';

export const LockdepReportKind = {
  /** "WARNING: possible circular locking dependency detected" (an ABBA or longer strong cycle). */
  CircularDependency: 'circular-dependency',
  /** "WARNING: possible recursive locking detected" (AA: a class re-acquired while held). */
  RecursiveLocking: 'recursive-locking',
} as const;
export type LockdepReportKind = (typeof LockdepReportKind)[keyof typeof LockdepReportKind];

export interface LockdepReport {
  readonly kind: LockdepReportKind;
  /**
   * Class names around the cycle, closed (the first name is repeated at the end): the lock being
   * acquired, the existing chain from it to the held lock, then the acquired lock again.
   * AA: [A, A].
   */
  readonly cycle: readonly string[];
  /** The thread that closed the cycle. */
  readonly thread: string;
  readonly text: string;
}

/** One acquisition as printed: "instance (class){mode}, at: site". */
export interface SplatAcquisition {
  readonly className: string;
  /** The instance's own name when it has one that differs from the class name. */
  readonly instanceName?: string | undefined;
  readonly mode: LockMode;
  readonly synchronize: boolean;
  readonly site: string;
}

/** A dependency first seen earlier: `next` taken at nextSite while `prev` was held. */
export interface SplatLink {
  readonly prev: SplatAcquisition;
  readonly next: SplatAcquisition;
  readonly threadName: string;
  readonly vcpu: number;
}

export interface CircularSplatInput {
  readonly threadName: string;
  readonly vcpu: number;
  /** The lock being acquired (the kernel's source, #0). */
  readonly acquiring: SplatAcquisition;
  /** The held lock the new dependency starts from (the kernel's target). */
  readonly holding: SplatAcquisition;
  /** The existing chain, from acquiring's class to holding's class. */
  readonly chain: readonly SplatLink[];
  readonly heldLocks: readonly SplatAcquisition[];
}

export interface RecursiveSplatInput {
  readonly threadName: string;
  readonly acquiring: SplatAcquisition;
  readonly holding: SplatAcquisition;
  readonly heldLocks: readonly SplatAcquisition[];
}

const CPU1_COLUMN = ' '.repeat(31);

export function formatMode(acquisition: Pick<SplatAcquisition, 'mode' | 'synchronize'>): string {
  if (acquisition.synchronize) return '{sync}';
  return acquisition.mode === LockMode.Write ? '{W}' : acquisition.mode === LockMode.Read ? '{r}' : '{R}';
}

/** "kvm->slots_lock" or "vcpu 2 (vcpu->mutex)" ... followed by the mode. */
function lockLine(acquisition: SplatAcquisition): string {
  const instance =
    acquisition.instanceName !== undefined && acquisition.instanceName !== acquisition.className ? `${acquisition.instanceName} ` : '';
  return `${instance}(${acquisition.className})${formatMode(acquisition)}, at: ${acquisition.site}`;
}

/** The verb a scenario line uses: lock(), rlock() for reads, sync() for synchronize. */
function scenarioVerb(acquisition: Pick<SplatAcquisition, 'mode' | 'synchronize'>): string {
  if (acquisition.mode !== LockMode.Write) return 'rlock';
  return acquisition.synchronize ? 'sync' : 'lock';
}

function banner(title: string): string[] {
  return ['='.repeat(title.length), title, '-'.repeat(title.length)];
}

function threadDescription(threadName: string, vcpu: number): string {
  return vcpu >= 0 && !threadName.startsWith(`vCPU ${vcpu}/`) ? `${threadName} (vCPU ${vcpu})` : threadName;
}

export function formatHeldLocks(threadName: string, heldLocks: readonly SplatAcquisition[]): string[] {
  if (heldLocks.length === 0) return [`no locks held by ${threadName}.`];
  const count = heldLocks.length === 1 ? '1 lock' : `${heldLocks.length} locks`;
  return [`${count} held by ${threadName}:`, ...heldLocks.map((held, position) => ` #${position}: ${lockLine(held)}`)];
}

/** "-> #n (class){mode}:" and where that link was first seen. */
function chainEntry(depth: number, acquired: SplatAcquisition, threadName: string, vcpu: number, heldBefore: SplatAcquisition): string[] {
  return [
    `-> #${depth} (${acquired.className})${formatMode(acquired)}:`,
    `       first seen: ${threadDescription(threadName, vcpu)}, step: ${acquired.site}`,
    `       while holding: (${heldBefore.className})${formatMode(heldBefore)}, taken at: ${heldBefore.site}`,
    '',
  ];
}

function circularScenario(input: CircularSplatInput): string[] {
  const last = input.chain[input.chain.length - 1];
  // parent: the lock held just before the target on the other CPU's side of the chain.
  const parent = last?.prev ?? input.acquiring;
  const targetOnCpu1 = last?.next ?? input.holding;
  const lines: string[] = [];
  if (parent.className !== input.acquiring.className) {
    lines.push('Chain exists of:', `  ${input.acquiring.className} --> ${parent.className} --> ${input.holding.className}`, '');
  }
  lines.push(
    ' Possible unsafe locking scenario:',
    '',
    '       CPU0                    CPU1',
    '       ----                    ----',
    `  ${scenarioVerb(input.holding)}(${input.holding.className});`,
    `${CPU1_COLUMN}${scenarioVerb(parent)}(${parent.className});`,
    `${CPU1_COLUMN}${scenarioVerb(targetOnCpu1)}(${input.holding.className});`,
    `  ${scenarioVerb(input.acquiring)}(${input.acquiring.className});`,
    '',
    ' *** DEADLOCK ***',
    '',
  );
  return lines;
}

export function formatCircularSplat(input: CircularSplatInput): string {
  const chain = input.chain
    .map((link, index) => chainEntry(index + 1, link.next, link.threadName, link.vcpu, link.prev))
    .reverse()
    .flat();
  return [
    ...banner('WARNING: possible circular locking dependency detected'),
    `${input.threadName} is trying to acquire lock:`,
    lockLine(input.acquiring),
    '',
    'but task is already holding lock:',
    lockLine(input.holding),
    '',
    'which lock already depends on the new lock.',
    '',
    '',
    'the existing dependency chain (in reverse order) is:',
    '',
    ...chain,
    ...chainEntry(0, input.acquiring, input.threadName, input.vcpu, input.holding),
    'other info that might help us debug this:',
    '',
    ...circularScenario(input),
    ...formatHeldLocks(input.threadName, input.heldLocks),
  ].join('\n');
}

export function formatRecursiveSplat(input: RecursiveSplatInput): string {
  return [
    ...banner('WARNING: possible recursive locking detected'),
    `${input.threadName} is trying to acquire lock:`,
    lockLine(input.acquiring),
    '',
    'but task is already holding lock:',
    lockLine(input.holding),
    '',
    'other info that might help us debug this:',
    ' Possible unsafe locking scenario:',
    '',
    '       CPU0',
    '       ----',
    `  ${scenarioVerb(input.holding)}(${input.holding.className});`,
    `  ${scenarioVerb(input.acquiring)}(${input.acquiring.className});`,
    '',
    ' *** DEADLOCK ***',
    '',
    ' May be due to missing lock nesting notation',
    '',
    ...formatHeldLocks(input.threadName, input.heldLocks),
  ].join('\n');
}

/** Where a splat's names come from: the class registry, the site labels, the named instances. */
export interface SplatNames {
  readonly classes: LockClassRegistry;
  readonly labels: SharedLabelTable;
  readonly instances: LockInstanceTable;
}

/** A held (or wanted) lock as a splat line names it. */
export function describeSplatAcquisition(names: SplatNames, held: HeldLock, synchronize: boolean): SplatAcquisition {
  const instanceName = held.instance >= 0 ? names.instances.describe(held.instance).name : undefined;
  return {
    className: names.classes.byId(held.classId).name,
    instanceName,
    mode: held.mode,
    synchronize,
    site: names.labels.text(held.site),
  };
}

/** One link of a dependency chain, with the sites and thread that recorded it (if recorded). */
export function describeSplatLink(names: SplatNames, link: DependencyLink): SplatLink {
  const record = link.record;
  const prevMode = record?.prevMode ?? (startsExclusive(link.type) ? LockMode.Write : LockMode.Read);
  const nextMode = record?.nextMode ?? LockMode.Write;
  const prevSite = names.labels.text(record?.prevSite ?? 0);
  const nextSite = names.labels.text(record?.nextSite ?? 0);
  return {
    prev: { className: names.classes.byId(link.prev).name, mode: prevMode, synchronize: false, site: prevSite },
    next: { className: names.classes.byId(link.next).name, mode: nextMode, synchronize: record?.synchronize ?? false, site: nextSite },
    threadName: record === undefined ? '?' : names.labels.text(record.threadName),
    vcpu: record?.vcpu ?? -1,
  };
}
