// vcpu->srcu_idx: one vCPU's read side of kvm->srcu, through the lock validator. The vCPU is a reader
// only while it runs host code for itself (exit handling, requests), never in guest mode or asleep
// (rule 6 of docs/lock-order.md; O6 in docs/architecture.md#orderings). The lock identity belongs to
// the host CPU's thread, so the locks are attached at load (Vcpu.run).

import type { SrcuIndex } from '../../host/srcu.js';
import type { VcpuLocks } from '../control/kvm-locks.js';

export class VcpuSrcu {
  /** SRCU reader slot: slot 0 is the main thread, slot i + 1 is vCPU i (srcu.ts). */
  readonly #readerSlot: number;
  #locks: VcpuLocks | undefined;
  #index: SrcuIndex | -1 = -1;

  constructor(vcpu: number) {
    this.#readerSlot = vcpu + 1;
  }

  /** The locks of the host CPU's thread the vCPU is loaded on. */
  attach(locks: VcpuLocks): void {
    this.#locks = locks;
  }

  /** Whether the vCPU is a reader now. */
  get held(): boolean {
    return this.#index !== -1;
  }

  /** srcu_read_lock(&kvm->srcu) into vcpu->srcu_idx, through the validator. */
  readLock(site: string): void {
    this.#index = this.#locks!.srcu.readLock(this.#readerSlot, site);
  }

  /** srcu_read_unlock (rule 6 of docs/lock-order.md: no reader in guest mode or asleep). */
  readUnlock(): void {
    this.#locks!.srcu.readUnlock(this.#readerSlot, this.#index as SrcuIndex);
    this.#index = -1;
  }

  /** The validator's check that this thread holds no kvm->srcu read section (guest mode, sleeping). */
  assertNotReader(): void {
    const locks = this.#locks!;
    locks.lockdep.assertNotHeld(locks.srcu.lockClass);
  }
}
