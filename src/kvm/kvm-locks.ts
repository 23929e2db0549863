// KVM's locks, instrumented (src/lockdep/), as the hypervisor paths take them (docs/lock-order.md,
// spec avic-model.md §3.1-§3.3, §3.5):
//   kvm->lock                  main: around each vCPU creation's publish step (Vm.create)
//   vcpu->mutex                one per vCPU: its worker holds it for the whole run() (KVM_RUN)
//   kvm->slots_lock            main: memslot updates and the APIC-access page, across the grace periods
//   kvm->slots_arch_lock       main: writing the inactive memslot copy; released before synchronize
//   kvm->srcu                  workers: read sections (exit handling, requests); main: synchronize
//   apicv_update_lock, irq_lock  created for the paths that will take them (inhibits, routing)
//
// The Vm always builds the lockdep region, with the validator on only under VmConfig.lockdep: with
// it off the locks still keep holder and waiter words, so the watchdog can print a wait-for graph.
// The IPI hardware path takes none of these (as in KVM).

import {
  InstrumentedMutex,
  InstrumentedRwSemaphore,
  InstrumentedSrcu,
  KVM_DOCUMENTED_ORDERS,
  LockWaitTimeout,
  Lockdep,
  buildWaitForGraph,
  createKvmLockClassRegistry,
  formatWaitForGraph,
  type LockdepShared,
} from '../lockdep/index.js';
import { MAX_THREAD_SLOTS } from '../lockdep/lockdep-layout.js';
import type { VmMemory } from './vm-memory.js';

/** Every lock wait on a hypervisor path is bounded by this (a LockWaitTimeout names the holders). */
export const KVM_LOCK_TIMEOUT_MS = 10_000;

/** Instance ids of the VM's locks in the lockdep region (workers attach by id). */
export interface KvmLockInstances {
  readonly kvmLock: number;
  readonly slotsLock: number;
  readonly slotsArchLock: number;
  readonly srcu: number;
  readonly apicvUpdateLock: number;
  readonly irqLock: number;
  readonly vcpuMutexes: readonly number[];
}

/** Sent to every worker in VcpuStartup (structured-cloneable). */
export interface KvmLocksShared {
  readonly lockdep: LockdepShared;
  readonly enabled: boolean;
  readonly instances: KvmLockInstances;
  /** Debug only: make vCPU 0 replay a historical lock bug (spec §3.4). */
  readonly injectLockBug?: 's1';
}

/** What VmReport carries about the validator: whether it ran, and its first report. */
export interface VmLockdepSummary {
  readonly enabled: boolean;
  readonly report?: { readonly kind: string; readonly cycle: string[]; readonly text: string };
}

/** The lock classes, the region and the VM-wide locks, on the main thread. */
export class KvmLocks {
  readonly lockdep: Lockdep;
  readonly kvmLock: InstrumentedMutex;
  readonly slotsLock: InstrumentedMutex;
  readonly slotsArchLock: InstrumentedMutex;
  readonly srcu: InstrumentedSrcu;
  readonly apicvUpdateLock: InstrumentedRwSemaphore;
  readonly irqLock: InstrumentedMutex;
  readonly vcpuMutexes: readonly InstrumentedMutex[];
  readonly shared: KvmLocksShared;
  readonly #hasMainContexts: boolean;

  constructor(memory: VmMemory, vcpus: number, options: { enabled: boolean; injectLockBug?: 's1' }) {
    const mainContexts = Math.max(0, Math.min(8, MAX_THREAD_SLOTS - 1 - vcpus));
    if (options.enabled && mainContexts === 0) throw new RangeError(`lockdep supports at most ${MAX_THREAD_SLOTS - 2} vCPUs`);
    this.#hasMainContexts = mainContexts > 0;
    const lockdep = Lockdep.create(createKvmLockClassRegistry(), { workerThreads: vcpus, mainContexts, lockInstances: 16 + vcpus }, { enabled: options.enabled });
    for (const order of KVM_DOCUMENTED_ORDERS) lockdep.declareOrder(order);
    this.lockdep = lockdep;
    this.kvmLock = InstrumentedMutex.create(lockdep, 'kvm->lock');
    this.slotsLock = InstrumentedMutex.create(lockdep, 'kvm->slots_lock');
    this.slotsArchLock = InstrumentedMutex.create(lockdep, 'kvm->slots_arch_lock');
    this.srcu = InstrumentedSrcu.create(lockdep, memory.srcu, 'kvm->srcu');
    this.apicvUpdateLock = InstrumentedRwSemaphore.create(lockdep, 'kvm->arch.apicv_update_lock');
    this.irqLock = InstrumentedMutex.create(lockdep, 'kvm->irq_lock');
    this.vcpuMutexes = Array.from({ length: vcpus }, (_, vcpu) => InstrumentedMutex.create(lockdep, 'vcpu->mutex', `vcpu${vcpu}->mutex`));
    this.shared = {
      lockdep: lockdep.shared,
      enabled: options.enabled,
      instances: {
        kvmLock: this.kvmLock.instance,
        slotsLock: this.slotsLock.instance,
        slotsArchLock: this.slotsArchLock.instance,
        srcu: this.srcu.instance,
        apicvUpdateLock: this.apicvUpdateLock.instance,
        irqLock: this.irqLock.instance,
        vcpuMutexes: this.vcpuMutexes.map((mutex) => mutex.instance),
      },
      ...(options.injectLockBug === undefined ? {} : { injectLockBug: options.injectLockBug }),
    };
  }

  /** Runs an async chain that holds locks across awaits in its own lockdep context on main. */
  inContext<T>(name: string, body: () => Promise<T>): Promise<T> {
    return this.#hasMainContexts ? this.lockdep.runInMainContext(name, body) : body();
  }

  /** Takes `mutex` (async, bounded), runs `body`, releases it. */
  async withMutex<T>(mutex: InstrumentedMutex, site: string, body: () => Promise<T>): Promise<T> {
    await mutex.lockAsync(site, KVM_LOCK_TIMEOUT_MS);
    try {
      return await body();
    } finally {
      mutex.unlock();
    }
  }

  /** lockdep_assert_held(&kvm->slots_lock): by the validator when on, by the holder word always. */
  assertSlotsLockHeld(): void {
    this.lockdep.assertHeld(this.slotsLock.lockClass);
    if (this.slotsLock.holder() !== this.lockdep.currentThreadSlot()) throw new Error('kvm->slots_lock must be held');
  }

  summary(): VmLockdepSummary {
    const report = this.lockdep.report();
    return {
      enabled: this.lockdep.enabled,
      ...(report === undefined ? {} : { report: { kind: report.kind, cycle: [...report.cycle], text: report.text } }),
    };
  }

  /** Who holds which lock and who waits for which (the watchdog's dump). */
  waitForGraphText(): string {
    return formatWaitForGraph(buildWaitForGraph(this.lockdep));
  }
}

/** A vCPU worker's view: its own vcpu->mutex, the SRCU read side, and slots_lock (for S1). */
export class VcpuLocks {
  readonly lockdep: Lockdep;
  readonly vcpuMutex: InstrumentedMutex;
  readonly srcu: InstrumentedSrcu;
  readonly shared: KvmLocksShared;
  #slotsLock: InstrumentedMutex | undefined;

  constructor(shared: KvmLocksShared, memory: VmMemory, hostThreadSlot: number, vcpu: number) {
    this.shared = shared;
    this.lockdep = Lockdep.attach(shared.lockdep, { threadSlot: hostThreadSlot + 1, vcpu, enabled: shared.enabled });
    this.vcpuMutex = InstrumentedMutex.attach(this.lockdep, shared.instances.vcpuMutexes[vcpu]!);
    this.srcu = InstrumentedSrcu.attach(this.lockdep, shared.instances.srcu, memory.srcu);
  }

  get slotsLock(): InstrumentedMutex {
    this.#slotsLock ??= InstrumentedMutex.attach(this.lockdep, this.shared.instances.slotsLock);
    return this.#slotsLock;
  }
}

/**
 * Scenario S1 (spec §3.4), the 2020 APICv toggle: from an exit handler (SRCU read held) the vCPU
 * takes kvm->slots_lock and synchronizes kvm->srcu, which waits for its own read section. The
 * validator reports the cycle when slots_lock is taken; the path then backs out (nothing hangs).
 * Without the validator the synchronize hangs until its bound, as the real bug did forever; the
 * main thread's watchdog sees the vCPU stuck and tears the run down.
 */
export function replayS1ApicvToggle(locks: VcpuLocks, hangBoundMs: number): void {
  const slotsLock = locks.slotsLock;
  slotsLock.lock('avic_update_access_page (S1: inside kvm->srcu)', KVM_LOCK_TIMEOUT_MS);
  try {
    if (locks.lockdep.report() !== undefined) return;
    try {
      locks.srcu.synchronizeBlocking('__x86_set_memory_region: synchronize_srcu', hangBoundMs);
    } catch (error) {
      if (!(error instanceof LockWaitTimeout)) throw error;
    }
  } finally {
    slotsLock.unlock();
  }
}
