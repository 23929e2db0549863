// Memslot writers on the main thread (kvm_set_memory_region and the private APIC-access slot): every
// update runs under kvm->slots_lock, writes the inactive copy under slots_arch_lock, publishes, and
// waits for a grace period before it brings the old copy up to date (kvm_swap_active_memslots). Counts updates and
// grace periods, which the rfc-v2 policy multiplies (one resize per higher vCPU id).
// Concurrent updates (and vCPU creation's APIC-access slot) take slots_lock first come, first served,
// each through the event loop (InstrumentedMutex.lockAsync): an `await` loop of updates neither
// overtakes the other callers nor starves the main thread's timers, supervisor and watchdog.
//
// Its interface to the vCPUs is their control words (O5 in docs/architecture.md#orderings): each
// vCPU's mode, finished flag and observedMemslotGeneration, which it stores and notifies after it
// reloads its RAM windows on VcpuRequest.MemslotsChanged. A test plays that side by writing them.

import { mainHostThread } from '../../host/host-thread.js';
import type { MemslotSet, MemslotError } from '../../memory/memslot.js';
import { KVM_LOCK_TIMEOUT_MS, type KvmLocks } from '../control/kvm-locks.js';
import { VcpuRequest } from '../control/vcpu-run-state.js';
import { VmConfigError } from './vm-config.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { MemslotStatistics } from '../report/vm-report.js';

export type MemslotEdit = (set: MemslotSet) => { ok: true; set: MemslotSet } | { ok: false; error: MemslotError };

export class VmMemslots {
  readonly statistics: MemslotStatistics = { updates: 0, gracePeriods: 0, gracePeriodMsTotal: 0, gracePeriodMsMax: 0 };
  readonly #memory: VmControlViews;
  readonly #locks: KvmLocks;
  readonly #vcpusRunning: () => boolean;
  /** Milliseconds, for the acknowledgement deadline and the grace-period statistics (tests pass a fake). */
  readonly #readClock: () => number;
  #set: MemslotSet;

  constructor(
    memory: VmControlViews,
    locks: KvmLocks,
    initial: MemslotSet,
    vcpusRunning: () => boolean,
    readClock = (): number => mainHostThread().nowMs(),
  ) {
    this.#memory = memory;
    this.#locks = locks;
    this.#set = initial;
    this.#vcpusRunning = vcpusRunning;
    this.#readClock = readClock;
  }

  get set(): MemslotSet {
    return this.#set;
  }

  /** KVM_SET_USER_MEMORY_REGION: its own lockdep context on main, slots_lock, edit, publish. */
  async update(edit: MemslotEdit, removesMemory: boolean): Promise<void> {
    const locks = this.#locks;
    await locks.inContext('KVM_SET_USER_MEMORY_REGION', () =>
      locks.withMutex(locks.slotsLock, 'kvm_vm_ioctl_set_memory_region', async () => {
        await this.publish(this.apply(edit), removesMemory);
      }),
    );
  }

  /** Applies an edit to the current set or throws the memslot layer's message. */
  apply(edit: MemslotEdit): MemslotSet {
    const result = edit(this.#set);
    if (!result.ok) throw new VmConfigError(result.error.message);
    return result.set;
  }

  /**
   * kvm_swap_active_memslots: write the inactive copy, publish, wait for a grace period, then bring the
   * old copy up to date. A delete or move waits twice (KVM first installs an invalid copy; here the
   * second grace period stands for it). The grace period covers SRCU readers (vCPUs handling exits)
   * and vCPUs in guest mode with an old RAM window (the TLB flush KVM does with a kick). slots_arch_lock
   * covers writing and publishing the inactive copy and is dropped before the grace period (O5, O6 in docs/architecture.md#orderings).
   * The caller holds kvm->slots_lock.
   */
  async publish(set: MemslotSet, removesMemory: boolean): Promise<void> {
    this.#locks.assertSlotsLockHeld();
    const snapshot = this.#memory.memslots;
    await this.#locks.slotsArchLock.lockAsync('kvm_set_memslot', KVM_LOCK_TIMEOUT_MS);
    let generation: number;
    try {
      snapshot.writeInactiveCopy(set);
      generation = snapshot.publish();
    } finally {
      this.#locks.slotsArchLock.unlock(); // kvm_swap_active_memslots: before synchronize_srcu
    }
    this.#set = set;
    this.statistics.updates++;
    if (this.#vcpusRunning()) {
      await this.#waitForGracePeriod(generation);
      if (removesMemory) await this.#waitForGracePeriod(generation);
    }
    snapshot.writeInactiveCopy(set);
  }

  async #waitForGracePeriod(generation: number): Promise<void> {
    const started = this.#readClock();
    await this.#locks.srcu.synchronize({ site: 'kvm_swap_active_memslots: synchronize_srcu', timeoutMs: KVM_LOCK_TIMEOUT_MS });
    const memory = this.#memory;
    const control = memory.control;
    const created = memory.createdVcpus();
    const acknowledged = (vcpu: number): boolean =>
      Atomics.load(control, memory.controlBlockIndex(vcpu, 'observedMemslotGeneration')) - generation >= 0 ||
      Atomics.load(control, memory.controlBlockIndex(vcpu, 'mode')) === 0 ||
      Atomics.load(control, memory.controlBlockIndex(vcpu, 'finished')) !== 0;
    // Kick every vCPU still in guest mode with the old windows first (kvm_make_all_cpus_request), then
    // wait for each: the round trips overlap instead of adding up.
    for (let vcpu = 0; vcpu < created; vcpu++) if (!acknowledged(vcpu)) memory.kick(vcpu, VcpuRequest.MemslotsChanged);
    for (let vcpu = 0; vcpu < created; vcpu++) {
      const observed = memory.controlBlockIndex(vcpu, 'observedMemslotGeneration');
      const deadline = this.#readClock() + KVM_LOCK_TIMEOUT_MS;
      for (;;) {
        const seen = Atomics.load(control, observed);
        if (acknowledged(vcpu)) break;
        if (this.#readClock() > deadline)
          throw new VmConfigError(
            `vCPU ${vcpu} did not acknowledge memslot generation ${generation} within ${KVM_LOCK_TIMEOUT_MS / 1000} s`,
          );
        memory.kick(vcpu, VcpuRequest.MemslotsChanged);
        await mainHostThread().waitAsync(control, observed, seen, 5);
      }
    }
    const elapsed = this.#readClock() - started;
    this.statistics.gracePeriods++;
    this.statistics.gracePeriodMsTotal += elapsed;
    this.statistics.gracePeriodMsMax = Math.max(this.statistics.gracePeriodMsMax, elapsed);
  }
}
