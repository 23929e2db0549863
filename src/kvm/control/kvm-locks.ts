// KVM's locks, instrumented (src/lockdep/), as the hypervisor paths take them (docs/lock-order.md,
// Documentation/virt/kvm/locking.rst):
//   kvm->lock                  main: around each vCPU creation's publish step (Vm.create)
//   vcpu->mutex                one per vCPU: the vCPU holds it from its first load to its end (KVM_RUN)
//   kvm->slots_lock            main: memslot updates and the APIC-access page, across the grace periods
//   kvm->slots_arch_lock       main: writing the inactive memslot copy; released before synchronize
//   kvm->srcu                  workers: read sections (exit handling, requests); main: synchronize
//   apicv_update_lock          workers, for read: KVM_REQ_APICV_UPDATE (AvicVcpu.updateApicv, svm/avic.ts)
//   irq_lock                   created for the paths that will take it (routing)
//   kvm_lock, cpu_hotplug_lock   host-global stand-ins (the VM list, CPU hotplug) for replay S5
//   kvm->arch.xen.xen_lock       the leaf a vCPU exit handler may take inside SRCU (S4 fixed)
// The lock-order replays of docs/lock-scenarios.md (src/scenarios/lock-scenarios/) take them all.
//
// The Vm always builds the lockdep region, with the validator on only under VmConfig.lockdep: with
// it off the locks still keep holder and waiter words, so the watchdog can print a wait-for graph.
// The IPI hardware path takes none of these (as in KVM).

import {
  InstrumentedMutex,
  InstrumentedRwSemaphore,
  InstrumentedSrcu,
  KVM_DOCUMENTED_ORDERS,
  Lockdep,
  buildWaitForGraph,
  createKvmLockClassRegistry,
  cycleReachableFrom,
  formatWaitForGraph,
  type LockdepShared,
} from '../../lockdep/index.js';
import { MAX_THREAD_SLOTS } from '../../lockdep/lockdep-layout.js';
import type { VmControlViews } from './vm-control-views.js';

/** vCPU i's lockdep thread slot (slot 0 is main's; the main thread's async contexts follow the vCPUs'). */
export function vcpuLockdepSlot(vcpu: number): number {
  return vcpu + 1;
}

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
  readonly xenLock: number;
  readonly kvmGlobalLock: number;
  readonly cpuHotplugLock: number;
  readonly vcpuMutexes: readonly number[];
}

/** A lock replay's vCPU side as the core carries it to the workers (KvmLocksShared), uninterpreted. */
export interface InjectedLockBug {
  /** The replay's name: each vCPU worker looks up its part by it. */
  readonly name: string;
  /** Words shared by the replay's threads (main and every worker), passed to each worker untouched. */
  readonly handshake?: SharedArrayBuffer;
  /** A validator report is what the replay is for (VmReport.ok stays true with one). Default true; the fixed variants say false. */
  readonly expectsReport?: boolean;
}

/** Sent to every worker in VcpuStartup (structured-cloneable). */
export interface KvmLocksShared {
  readonly lockdep: LockdepShared;
  readonly enabled: boolean;
  readonly instances: KvmLockInstances;
  /** Debug only: VmConfig.injectLockBug, passed through for the workers' first-exit hook (docs/lock-scenarios.md). */
  readonly injectLockBug?: InjectedLockBug;
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
  readonly xenLock: InstrumentedMutex;
  /** The host-global kvm_lock (vm_list): one per emulator process in the kernel, one per VM here. */
  readonly kvmGlobalLock: InstrumentedMutex;
  /** cpu_hotplug_lock stand-in: a writer-fair percpu rw-semaphore in the kernel, so writer-preferring. */
  readonly cpuHotplugLock: InstrumentedRwSemaphore;
  readonly vcpuMutexes: readonly InstrumentedMutex[];
  readonly shared: KvmLocksShared;
  readonly #hasMainContexts: boolean;

  constructor(memory: VmControlViews, vcpus: number, options: { enabled: boolean; injectLockBug?: InjectedLockBug }) {
    const mainContexts = Math.max(0, Math.min(8, MAX_THREAD_SLOTS - 1 - vcpus));
    if (options.enabled && mainContexts === 0) throw new RangeError(`lockdep supports at most ${MAX_THREAD_SLOTS - 2} vCPUs`);
    this.#hasMainContexts = mainContexts > 0;
    const lockdep = Lockdep.create(
      createKvmLockClassRegistry(),
      { workerThreads: vcpus, mainContexts, lockInstances: 16 + vcpus },
      { enabled: options.enabled },
    );
    for (const order of KVM_DOCUMENTED_ORDERS) lockdep.declareOrder(order);
    this.lockdep = lockdep;
    this.kvmLock = InstrumentedMutex.create(lockdep, 'kvm->lock');
    this.slotsLock = InstrumentedMutex.create(lockdep, 'kvm->slots_lock');
    this.slotsArchLock = InstrumentedMutex.create(lockdep, 'kvm->slots_arch_lock');
    this.srcu = InstrumentedSrcu.create(lockdep, memory.srcu, 'kvm->srcu');
    this.apicvUpdateLock = InstrumentedRwSemaphore.create(lockdep, 'kvm->arch.apicv_update_lock');
    this.irqLock = InstrumentedMutex.create(lockdep, 'kvm->irq_lock');
    this.xenLock = InstrumentedMutex.create(lockdep, 'kvm->arch.xen.xen_lock');
    this.kvmGlobalLock = InstrumentedMutex.create(lockdep, 'kvm_lock');
    this.cpuHotplugLock = InstrumentedRwSemaphore.create(lockdep, 'cpu_hotplug_lock', { writerPreferring: true });
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
        xenLock: this.xenLock.instance,
        kvmGlobalLock: this.kvmGlobalLock.instance,
        cpuHotplugLock: this.cpuHotplugLock.instance,
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

  /** Tearing the run down: every lock and grace-period wait, in every thread, gives up within a slice. */
  abortWaits(): void {
    this.lockdep.abortWaits();
  }

  /**
   * The locks lockdep thread `slot` holds, from each lock's own holder and reader words (kept with
   * the validator off too), e.g. ["vcpu0->mutex (vcpu->mutex)", "kvm->srcu (read)"].
   */
  locksHeldBy(slot: number): { held: string[]; waitingFor?: string } {
    const graph = buildWaitForGraph(this.lockdep);
    const held = graph.holdings.flatMap((holding) =>
      holding.writers.includes(slot) ? [holding.lockName] : holding.readers.includes(slot) ? [`${holding.lockName} (read)`] : [],
    );
    const wait = graph.waits.find((edge) => edge.slot === slot);
    return wait === undefined
      ? { held }
      : { held, waitingFor: `${wait.waitKind} ${graph.lockNames.get(wait.instance) ?? `lock ${wait.instance}`}` };
  }

  /** Whether lockdep thread `slot` waits for a lock on, or behind, a cycle of waits (the watchdog's deadlock test). */
  waitsOnCycle(slot: number): boolean {
    if (this.lockdep.threads.waiting(slot) === undefined) return false;
    return cycleReachableFrom(buildWaitForGraph(this.lockdep), slot) !== undefined;
  }

  /** Who holds which lock and who waits for which (the watchdog's dump). */
  waitForGraphText(): string {
    return formatWaitForGraph(buildWaitForGraph(this.lockdep));
  }
}

/**
 * One vCPU's view, in the worker of the host CPU it runs on: its own vcpu->mutex and the SRCU read
 * side; the VM-wide locks attached on first use. Its lockdep context is the vCPU's own slot (vCPU
 * index + 1), not the thread's: vcpu->mutex is held by the vCPU across KVM_RUN, and several vCPUs
 * take turns on one host CPU.
 */
export class VcpuLocks {
  readonly lockdep: Lockdep;
  readonly vcpuMutex: InstrumentedMutex;
  readonly srcu: InstrumentedSrcu;
  readonly shared: KvmLocksShared;
  readonly #attached = new Map<string, InstrumentedMutex | InstrumentedRwSemaphore>();

  constructor(shared: KvmLocksShared, memory: VmControlViews, vcpu: number) {
    this.shared = shared;
    this.lockdep = Lockdep.attach(shared.lockdep, { threadSlot: vcpuLockdepSlot(vcpu), vcpu, enabled: shared.enabled });
    this.vcpuMutex = InstrumentedMutex.attach(this.lockdep, shared.instances.vcpuMutexes[vcpu]!);
    this.srcu = InstrumentedSrcu.attach(this.lockdep, shared.instances.srcu, memory.srcu);
  }

  get slotsLock(): InstrumentedMutex {
    return this.#mutex('slotsLock');
  }

  get slotsArchLock(): InstrumentedMutex {
    return this.#mutex('slotsArchLock');
  }

  get kvmLock(): InstrumentedMutex {
    return this.#mutex('kvmLock');
  }

  get irqLock(): InstrumentedMutex {
    return this.#mutex('irqLock');
  }

  get xenLock(): InstrumentedMutex {
    return this.#mutex('xenLock');
  }

  get apicvUpdateLock(): InstrumentedRwSemaphore {
    return this.#rwSemaphore('apicvUpdateLock');
  }

  get cpuHotplugLock(): InstrumentedRwSemaphore {
    return this.#rwSemaphore('cpuHotplugLock');
  }

  #mutex(name: 'slotsLock' | 'slotsArchLock' | 'kvmLock' | 'irqLock' | 'xenLock'): InstrumentedMutex {
    let lock = this.#attached.get(name);
    if (lock === undefined) {
      lock = InstrumentedMutex.attach(this.lockdep, this.shared.instances[name]);
      this.#attached.set(name, lock);
    }
    return lock as InstrumentedMutex;
  }

  #rwSemaphore(name: 'apicvUpdateLock' | 'cpuHotplugLock'): InstrumentedRwSemaphore {
    let lock = this.#attached.get(name);
    if (lock === undefined) {
      lock = InstrumentedRwSemaphore.attach(this.lockdep, this.shared.instances[name]);
      this.#attached.set(name, lock);
    }
    return lock as InstrumentedRwSemaphore;
  }
}
