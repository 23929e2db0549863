// The main thread's side of the lock-order replays (lock-replays.ts runs them; the vCPU parts are
// in lock-replays-vcpu.ts): MainReplay, the handshake and lock helpers, and the parts. Each
// ioctl-like chain runs in its own lockdep context on main, takes the VM's instrumented locks
// asynchronously, and backs out once the validator has reported.

import { mainHostThread } from '../../host/host-thread.js';
import { LockWaitAborted, setWord, waitForWordAsync, type InstrumentedMutex, type Lockdep } from '../../lockdep/index.js';
import { LockMode } from '../../lockdep/lockdep-layout.js';
import { KVM_LOCK_TIMEOUT_MS, type KvmLocks } from '../../kvm/control/kvm-locks.js';
import type { Vm } from '../../kvm/vm/vm.js';
import { HANDSHAKE_TIMEOUT_MS, HANG_BOUND_MS, handshakeIndex, type ReplayHandshakeWord } from './lock-replays-handshake.js';

/** The main thread's side of a replay in progress: the VM, its locks, the handshake words. */
export class MainReplay {
  readonly vm: Vm;
  #ended = false;
  readonly #words: Int32Array | undefined;

  /** `handshake`: the injected replay's words (VmConfig.injectLockBug), if it has a vCPU side. */
  constructor(vm: Vm, handshake: SharedArrayBuffer | undefined) {
    this.vm = vm;
    this.#words = handshake === undefined ? undefined : new Int32Array(handshake);
  }

  get locks(): KvmLocks {
    return this.vm.locks;
  }

  get lockdep(): Lockdep {
    return this.vm.locks.lockdep;
  }

  get reported(): boolean {
    return this.lockdep.report() !== undefined;
  }

  /** The run ended (or is being torn down): loops stop, handshake waits give up. */
  get ended(): boolean {
    return this.#ended || this.lockdep.waitsAborted;
  }

  end(): void {
    this.#ended = true;
  }

  signal(word: ReplayHandshakeWord): void {
    if (this.#words !== undefined) setWord(this.#words, handshakeIndex(word));
  }

  isSet(word: ReplayHandshakeWord): boolean {
    return this.#words !== undefined && Atomics.load(this.#words, handshakeIndex(word)) !== 0;
  }

  async waitFor(word: ReplayHandshakeWord): Promise<void> {
    const words = this.#words;
    if (words === undefined) throw new Error(`this replay has no vCPU side to wait for ("${word}")`);
    if (!(await waitForWordAsync(words, handshakeIndex(word), mainHostThread().nowMs() + HANDSHAKE_TIMEOUT_MS, () => this.ended))) {
      if (this.lockdep.waitsAborted) throw new LockWaitAborted(`handshake ${word}`, 'the', 'main');
      throw new Error(`the main side waited ${this.#ended ? 'past the end of the run' : `${HANDSHAKE_TIMEOUT_MS} ms`} for "${word}"`);
    }
  }

  /** Runs `body` in its own lockdep context on main (it holds locks across awaits). */
  context<T>(name: string, body: () => Promise<T>): Promise<T> {
    return this.locks.inContext(name, body);
  }

  /** mutex_lock, validated first; backs out (false, no wait) once a report exists. */
  async lockUnlessReported(mutex: InstrumentedMutex, site: string): Promise<boolean> {
    const lockdep = this.lockdep;
    if (lockdep.enabled) lockdep.checkAcquire(mutex.lockClass, LockMode.Write, site, mutex.instance);
    if (this.reported) return false;
    await mutex.lockAsync(site, HANG_BOUND_MS);
    return true;
  }

  /** synchronize_srcu(&kvm->srcu), validated first, skipped once reported. */
  async synchronizeUnlessReported(site: string): Promise<boolean> {
    const { srcu } = this.locks;
    if (this.lockdep.enabled) this.lockdep.synchronize(srcu.lockClass, site, srcu.instance);
    if (this.reported) return false;
    await srcu.synchronize({ site, timeoutMs: HANG_BOUND_MS });
    return true;
  }
}

/** A guest-physical range no program uses (the RAM slot covers guest memory from 0). */
const CHURN_SLOT = { id: 2, guestPhysicalAddress: 0x4000_0000, size: 64 << 10, hostOffset: 8 << 20 } as const;

/**
 * KVM_SET_USER_MEMORY_REGION in a loop (create, then delete: one and two grace periods under
 * slots_lock) until the replaying vCPUs are done: the contention S3 meets in a real VM. The first
 * update has taken slots_lock when this returns to its caller (which then lets the vCPU start).
 */
export async function memslotChurn(main: MainReplay): Promise<void> {
  const vm = main.vm;
  try {
    do {
      await vm.setMemoryRegion(CHURN_SLOT);
      await vm.deleteMemoryRegion(CHURN_SLOT.id);
    } while (!main.isSet('vcpuDone') && !main.ended);
  } catch (error) {
    if (!(error instanceof LockWaitAborted) && !main.ended) throw error;
  }
}

/**
 * S4's main side, kvm_vm_ioctl_set_msr_filter as of Jan 2023: kvm->lock, then synchronize_srcu
 * while the vCPU (inside its SRCU read section) goes for kvm->lock (s4) or a leaf lock (s4-fixed).
 */
export async function s4Main(main: MainReplay): Promise<void> {
  const kvmLock = main.locks.kvmLock;
  await main.context('KVM_SET_MSR_FILTER', async () => {
    if (!(await main.lockUnlessReported(kvmLock, 'kvm_vm_ioctl_set_msr_filter: kvm->lock'))) return;
    try {
      main.signal('mainHolds');
      await main.waitFor('vcpuAttempting');
      await main.synchronizeUnlessReported('kvm_vm_ioctl_set_msr_filter: synchronize_srcu');
    } finally {
      kvmLock.unlock();
    }
  });
}

/** A promise with its resolver: the main contexts of S5 meet at these. */
function gate<T = void>(): { readonly opened: Promise<T>; readonly open: (value: T) => void } {
  let open: (value: T) => void = () => undefined;
  const opened = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * S5's three main-thread parties (Paolo Bonzini, Jan 2025). Each takes its outer lock; once all
 * hold and the vCPU (T4) is inside SRCU, T1 synchronizes, T2 goes for slots_lock, T3 for kvm_lock;
 * then the vCPU goes for cpu_hotplug_lock. Fixed: T2 drops kvm_lock before slots_lock.
 *   T1 KVM_SET_USER_MEMORY_REGION      slots_lock -> synchronize_srcu
 *   T2 set_nx_huge_pages               kvm_lock -> slots_lock
 *   T3 CPU hotplug, kvmclock notifier  cpu_hotplug_lock (write) -> kvm_lock
 */
export async function s5Main(main: MainReplay, fixed: boolean): Promise<void> {
  const { cpuHotplugLock, kvmGlobalLock, slotsLock } = main.locks;
  const holding = [gate(), gate(), gate()];
  const innerStarted = [gate(), gate(), gate()];
  /** true: go for the inner locks; false: the replay broke down, release and end. */
  const inner = gate<boolean>();
  const party = (index: number, name: string, take: () => Promise<void>, release: () => void, next: () => Promise<void>): Promise<void> =>
    main.context(name, async () => {
      try {
        await take();
      } finally {
        holding[index]!.open();
      }
      try {
        if (await inner.opened) await next();
      } finally {
        innerStarted[index]!.open(); // also when `next` backed out or failed before it could say so
        release();
      }
    });
  const t1 = party(
    0,
    'KVM_SET_USER_MEMORY_REGION',
    () => slotsLock.lockAsync('kvm_vm_ioctl_set_memory_region', KVM_LOCK_TIMEOUT_MS),
    () => slotsLock.unlock(),
    async () => {
      const synchronizing = main.synchronizeUnlessReported('kvm_swap_active_memslots: synchronize_srcu');
      innerStarted[0]!.open();
      await synchronizing;
    },
  );
  const t2 = party(
    1,
    'set_nx_huge_pages',
    () => kvmGlobalLock.lockAsync('set_nx_huge_pages: kvm_lock', KVM_LOCK_TIMEOUT_MS),
    () => {
      if (kvmGlobalLock.holder() === main.lockdep.currentThreadSlot()) kvmGlobalLock.unlock();
    },
    async () => {
      if (fixed) kvmGlobalLock.unlock(); // kvm_get_kvm(kvm); mutex_unlock(&kvm_lock): the fix
      const locking = main.lockUnlessReported(slotsLock, 'set_nx_huge_pages: kvm_mmu_zap_all_fast: slots_lock');
      innerStarted[1]!.open();
      if (await locking) slotsLock.unlock();
    },
  );
  const t3 = party(
    2,
    'kvmclock_cpufreq_notifier',
    () => cpuHotplugLock.writeLockAsync('cpus_write_lock: CPU hotplug', KVM_LOCK_TIMEOUT_MS),
    () => cpuHotplugLock.writeUnlock(),
    async () => {
      const locking = main.lockUnlessReported(kvmGlobalLock, '__kvmclock_cpufreq_notifier: kvm_lock');
      innerStarted[2]!.open();
      if (await locking) kvmGlobalLock.unlock();
    },
  );
  const parties = Promise.all([t1, t2, t3]);
  parties.catch(() => undefined); // awaited below; a party failing early must not be an unhandled rejection meanwhile
  let go = false;
  try {
    await Promise.all(holding.map((each) => each.opened));
    main.signal('mainHolds');
    await main.waitFor('vcpuReading');
    go = true;
  } finally {
    inner.open(go);
  }
  await Promise.all(innerStarted.map((each) => each.opened));
  main.signal('mainWaiting');
  await parties;
}

/**
 * rfc-v2 hot-add, the main side: KVM_CREATE_VCPU for a higher id under the RFC's design resizes the
 * APIC-access memslot under slots_lock and re-initialises every existing vCPU's backing page. Made
 * safe the obvious way, each re-initialisation takes that vCPU's vcpu->mutex, still under slots_lock:
 * slots_lock -> vcpu->mutex, the inverse of the vCPU's vcpu->mutex -> slots_lock (S3's path). The
 * fixed variant is upstream's design: nothing to re-initialise, so the hot-add takes no such lock.
 * With the validator on, main starts after the vCPU's part ended and backs out once reported.
 */
export async function rfcV2HotAddMain(main: MainReplay): Promise<void> {
  const { vm, lockdep } = main;
  // Validator on: after the vCPU's part (the orders seen at different times). Off: while vCPU 0 is in
  // its exit handler (it then waits for mainWaiting with SRCU dropped), so the paths overlap.
  await main.waitFor(lockdep.enabled ? 'vcpuDone' : 'vcpuReading');
  vm.creation.reinitialisationGuard = async (vcpu) => {
    const mutex = main.locks.vcpuMutexes[vcpu]!;
    const site = "avic_init_backing_page (rfc-v2): re-initialise a running vCPU's page under its vcpu->mutex";
    if (lockdep.enabled) lockdep.checkAcquire(mutex.lockClass, LockMode.Write, site, mutex.instance);
    main.signal('mainWaiting');
    if (main.reported) return undefined;
    await mutex.lockAsync(site, HANG_BOUND_MS);
    return () => mutex.unlock();
  };
  try {
    await vm.hotAddVcpu();
  } catch (error) {
    if (!(error instanceof LockWaitAborted) && !main.ended) throw error;
  } finally {
    main.signal('mainWaiting'); // the fixed variant never waits: let the vCPU side go on
  }
}
