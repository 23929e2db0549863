// The lock-order validator's public surface (docs/lock-order.md describes it).

export { LockClassRegistry, LockKind, MAX_LOCK_CLASSES, UnknownLockClassError, LockClassDeclarationError } from './lock-class.js';
export type { LockClass, LockClassSpec } from './lock-class.js';
export { KVM_LOCK_CLASS_SPECS, KVM_DOCUMENTED_ORDERS, OrderedAcquisition, createKvmLockClassRegistry } from './kvm-lock-classes.js';
export type { KvmLockClassName, DocumentedLockOrder } from './kvm-lock-classes.js';
export { Lockdep } from './lockdep.js';
export type {
  LockdepShared,
  LockdepOptions,
  LockdepCreateOptions,
  LockdepAttachOptions,
  LockClassReference,
  DeclaredLockOrder,
} from './lockdep.js';
export { LockMode, DependencyType, DEPENDENCY_TYPE_NAMES, MAX_HELD_LOCKS, lockdepLayout, DEFAULT_DIMENSIONS } from './lockdep-layout.js';
export type { LockdepDimensions } from './lockdep-layout.js';
export { LockdepReportKind, formatCircularSplat, formatRecursiveSplat } from './lockdep-splat.js';
export type { LockdepReport, SplatAcquisition, SplatLink } from './lockdep-splat.js';
export { LockAssertionError, LockWaitAborted, LockWaitTimeout, LockdepMisuseError } from './lockdep-errors.js';
export type { LockdepMisuseReason } from './lockdep-errors.js';
export { MAIN_THREAD_SLOT } from './lockdep-threads.js';
export { InstrumentedMutex } from './instrumented-lock.js';
export { InstrumentedRwSemaphore } from './instrumented-rw-semaphore.js';
export type { RwSemaphoreOptions } from './instrumented-rw-semaphore.js';
export { InstrumentedSrcu } from './instrumented-srcu.js';
export type { SrcuSynchronizeRequest } from './instrumented-srcu.js';
export { buildWaitForGraph, cycleReachableFrom, formatWaitForGraph, waitCycleClasses } from './wait-for-graph.js';
export type { WaitForGraph, LockHolding, ThreadWaitEdge } from './wait-for-graph.js';
export { setWord, sleepBlocking, waitForWordAsync, waitForWordBlocking } from './lock-wait.js';
