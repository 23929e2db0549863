// Lock classes: lockdep's unit of validation (Documentation/locking/lockdep-design.rst, "Lock-class").
//
// A class is the set of all locks that obey the same locking rules ("vcpu->mutex" covers the mutex
// of every vCPU); an instance is one lock word in shared memory. The validator records
// dependencies between classes, never between instances, which is what lets it report an ABBA
// after seeing each order once, on any instances, long before the two orders race.
//
// Classes are declared up front, as data, in one registry; their ids are their positions in the
// declaration and never change (lockdep's static lock_classes[] table). Every thread builds the
// same registry from the same specs, so a class id stored in shared memory means the same class in
// every thread; a fingerprint of the declaration, stored in the shared header, checks that.

export const LockKind = {
  /** A sleeping mutual-exclusion lock: write acquisitions only. */
  Mutex: 'mutex',
  /** A reader/writer semaphore: write, or read (recursive or not, see instrumented-rw-semaphore.ts). */
  RwSemaphore: 'rwSemaphore',
  /** Sleepable RCU: read sections are recursive reads, synchronize is a write acquire + release. */
  Srcu: 'srcu',
} as const;
export type LockKind = (typeof LockKind)[keyof typeof LockKind];

/** Largest registry: the dependency matrix is classes x classes. */
export const MAX_LOCK_CLASSES = 64;

export interface LockClassSpec {
  /** The kernel's name for the lock, e.g. "kvm->slots_lock". Unique within a registry. */
  readonly name: string;
  readonly kind: LockKind;
  /** What the lock protects (locking.rst's ":Protects:" field). */
  readonly protects: string;
  /** Anything else a reader of the lock order needs (locking.rst's ":Comment:"). */
  readonly comment?: string;
}

export interface LockClass extends LockClassSpec {
  /** Position in the registry; the index used in every shared word. */
  readonly id: number;
}

const LOCK_KINDS: ReadonlySet<string> = new Set(Object.values(LockKind));

/** A lock name that no class in the registry has (a typo in a scenario file, for example). */
export class UnknownLockClassError extends Error {
  readonly lockName: string;
  readonly knownNames: readonly string[];

  constructor(lockName: string, knownNames: readonly string[]) {
    super(`unknown lock class "${lockName}"; the declared classes are: ${knownNames.join(', ')}`);
    this.name = 'UnknownLockClassError';
    this.lockName = lockName;
    this.knownNames = knownNames;
  }
}

/** A registry declaration that cannot work (duplicate names, bad kind, too many classes). */
export class LockClassDeclarationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockClassDeclarationError';
  }
}

export class LockClassRegistry {
  readonly classes: readonly LockClass[];
  /** The specs this registry was declared from: structured-cloneable, sent to workers. */
  readonly specs: readonly LockClassSpec[];
  /** A hash of names and kinds in order; equal in every thread that declared the same classes. */
  readonly fingerprint: number;
  readonly #byName: ReadonlyMap<string, LockClass>;

  constructor(specs: readonly LockClassSpec[]) {
    checkSpecs(specs);
    this.specs = specs.map((spec) => ({ ...spec }));
    this.classes = specs.map((spec, id) => Object.freeze({ ...spec, id }));
    this.#byName = new Map(this.classes.map((lockClass) => [lockClass.name, lockClass]));
    this.fingerprint = fingerprintOf(specs);
  }

  get size(): number {
    return this.classes.length;
  }

  byName(name: string): LockClass {
    const found = this.#byName.get(name);
    if (found === undefined)
      throw new UnknownLockClassError(
        name,
        this.classes.map((lockClass) => lockClass.name),
      );
    return found;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  byId(id: number): LockClass {
    const found = this.classes[id];
    if (found === undefined) throw new RangeError(`no lock class with id ${id} (registry of ${this.size})`);
    return found;
  }

  /** A class given either as a class of this registry or by name. */
  resolve(lockClass: LockClass | string): LockClass {
    if (typeof lockClass === 'string') return this.byName(lockClass);
    if (this.classes[lockClass.id] !== lockClass && this.classes[lockClass.id]?.name !== lockClass.name) {
      throw new UnknownLockClassError(
        lockClass.name,
        this.classes.map((known) => known.name),
      );
    }
    return this.byId(lockClass.id);
  }
}

function checkSpecs(specs: readonly LockClassSpec[]): void {
  if (specs.length === 0 || specs.length > MAX_LOCK_CLASSES) {
    throw new LockClassDeclarationError(`a registry declares 1..${MAX_LOCK_CLASSES} lock classes, not ${specs.length}`);
  }
  const seen = new Set<string>();
  for (const spec of specs) {
    if (spec.name.length === 0) throw new LockClassDeclarationError('a lock class needs a name');
    if (seen.has(spec.name)) throw new LockClassDeclarationError(`lock class "${spec.name}" is declared twice`);
    if (!LOCK_KINDS.has(spec.kind)) throw new LockClassDeclarationError(`lock class "${spec.name}" has unknown kind "${spec.kind}"`);
    seen.add(spec.name);
  }
}

/** FNV-1a over "name:kind;" for every class, as a signed 32-bit value (fits an Int32 word). */
function fingerprintOf(specs: readonly LockClassSpec[]): number {
  let hash = 0x811c9dc5;
  for (const character of specs.map((spec) => `${spec.name}:${spec.kind};`).join('')) {
    hash = Math.imul(hash ^ character.charCodeAt(0), 0x01000193);
  }
  return hash | 0;
}
