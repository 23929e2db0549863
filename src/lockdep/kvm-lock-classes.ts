// KVM's lock classes and their documented order, as data (Documentation/virt/kvm/locking.rst, §1
// "Acquisition Orders" and §3 "Reference"; docs/lock-order.md's rules). docs/lock-order.md
// is the prose version of this file; keep the two together.
//
// The names are the kernel's, so a report reads like the kernel's splat. cpu_hotplug_lock is a
// stand-in: the emulator has no CPU hotplug, but scenario S5 needs a global lock that a vCPU's
// APIC-enable path takes inside SRCU (static_branch_inc -> cpus_read_lock) and that a notifier
// holds outside kvm_lock.

import { LockClassRegistry, LockKind, type LockClassSpec } from './lock-class.js';

export const KVM_LOCK_CLASS_SPECS = [
  {
    name: 'cpu_hotplug_lock',
    kind: LockKind.RwSemaphore,
    protects: 'the set of online host CPUs (stand-in: taken for read by static_branch_inc on the APIC-enable path)',
    comment: 'percpu rw-semaphore in the kernel, writer-fair: instantiate it writer-preferring, so reads are non-recursive (S5)',
  },
  {
    name: 'kvm_lock',
    kind: LockKind.Mutex,
    protects: 'vm_list, the global list of VMs',
    comment: 'proposed rule (Jan 2025, S5): a leaf; drop it before taking any per-VM mutex',
  },
  {
    name: 'kvm->lock',
    kind: LockKind.Mutex,
    protects: 'vCPU creation and online count, avic_vm_id assignment (precreate), misc VM-wide state',
    comment: 'outside vcpu->mutex, kvm->slots_lock and kvm->irq_lock; never taken inside a kvm->srcu read section',
  },
  {
    name: 'vcpu->mutex',
    kind: LockKind.Mutex,
    protects: "the vCPU for the whole of a vCPU ioctl (KVM_RUN: the worker's run call)",
    comment: 'synchronize_srcu is called inside it (S3), so it is never taken inside a kvm->srcu read section',
  },
  {
    name: 'kvm->slots_lock',
    kind: LockKind.Mutex,
    protects: 'memslot writers (set memory region, the APIC-access private memslot), apic_access_memslot_enabled/inhibited',
    comment: 'held across the SRCU grace period of a memslot update: never taken inside a kvm->srcu read section',
  },
  {
    name: 'kvm->slots_arch_lock',
    kind: LockKind.Mutex,
    protects: 'arch fields of memslots that SRCU readers change',
    comment: 'released before synchronize_srcu (kvm_swap_active_memslots), so it may be taken inside kvm->srcu',
  },
  {
    name: 'kvm->srcu',
    kind: LockKind.Srcu,
    protects: 'readers of kvm->memslots and kvm->buses; a vCPU reads while running host code for the vCPU',
    comment: 'a vCPU is not a reader while in guest mode or blocked (rule 6 of docs/lock-order.md)',
  },
  {
    name: 'kvm->arch.apicv_update_lock',
    kind: LockKind.RwSemaphore,
    protects: 'apicv_inhibit_reasons. Write: inhibit set/clear. Read: the per-vCPU APICv refresh',
    comment: 'the write side never waits for an SRCU grace period (S2)',
  },
  {
    name: 'kvm->irq_lock',
    kind: LockKind.Mutex,
    protects: 'interrupt routing updates',
    comment: 'inside kvm->lock and kvm->slots_lock (rarely taken together)',
  },
  {
    name: 'kvm->arch.xen.xen_lock',
    kind: LockKind.Mutex,
    protects: 'Xen event-channel and shared-info state (stand-in for per-VM state a vCPU exit handler updates)',
    comment: 'a leaf inside vcpu->mutex, so it may be taken inside kvm->srcu (310bc39546a4, the fix of S4)',
  },
] as const satisfies readonly LockClassSpec[];

export type KvmLockClassName = (typeof KVM_LOCK_CLASS_SPECS)[number]['name'];

export function createKvmLockClassRegistry(): LockClassRegistry {
  return new LockClassRegistry(KVM_LOCK_CLASS_SPECS);
}

/** How the inner lock of a documented order is taken. */
export const OrderedAcquisition = {
  /** mutex_lock / down_write. */
  Lock: 'lock',
  /** down_read, srcu_read_lock. */
  Read: 'read',
  /** synchronize_srcu: waits for the readers, so it orders like a write acquisition. */
  Synchronize: 'synchronize',
} as const;
export type OrderedAcquisition = (typeof OrderedAcquisition)[keyof typeof OrderedAcquisition];

/** "outer is taken outside inner": outer held (as outerHeldAs), then inner taken (as innerTakenAs). */
export interface DocumentedLockOrder {
  readonly outer: KvmLockClassName;
  readonly outerHeldAs: OrderedAcquisition;
  readonly inner: KvmLockClassName;
  readonly innerTakenAs: OrderedAcquisition;
  /** Where the rule is written down. */
  readonly source: string;
}

const order = (
  outer: KvmLockClassName,
  inner: KvmLockClassName,
  source: string,
  how: { outerHeld?: OrderedAcquisition; inner?: OrderedAcquisition } = {},
): DocumentedLockOrder => ({
  outer,
  outerHeldAs: how.outerHeld ?? OrderedAcquisition.Lock,
  inner,
  innerTakenAs: how.inner ?? OrderedAcquisition.Lock,
  source,
});

/**
 * The acquisition orders of locking.rst (the 2023 text and the older one) and docs/lock-order.md's rules, as edges
 * the validator can be primed with (Lockdep.declareOrder), the way KVM primes lockdep at VM
 * creation (42a90008f890; "mutex_lock(&kvm->lock); synchronize_srcu(&kvm->srcu)" under
 * CONFIG_LOCKDEP): one wrong-order acquisition then reports at once.
 */
export const KVM_DOCUMENTED_ORDERS: readonly DocumentedLockOrder[] = [
  order('cpu_hotplug_lock', 'kvm_lock', 'locking.rst: cpus_read_lock() is taken outside kvm_lock', { outerHeld: 'read' }),
  order('kvm->lock', 'vcpu->mutex', 'locking.rst: kvm->lock is taken outside vcpu->mutex'),
  order('kvm->lock', 'kvm->slots_lock', 'locking.rst: kvm->lock is taken outside kvm->slots_lock and kvm->irq_lock'),
  order('kvm->lock', 'kvm->irq_lock', 'locking.rst: kvm->lock is taken outside kvm->slots_lock and kvm->irq_lock'),
  order('kvm->slots_lock', 'kvm->irq_lock', 'locking.rst: kvm->slots_lock is taken outside kvm->irq_lock'),
  order('kvm->slots_lock', 'kvm->slots_arch_lock', 'kvm_main.c: kvm_set_memslot takes slots_arch_lock under slots_lock'),
  order('kvm->slots_lock', 'kvm->srcu', 'locking.rst: synchronize_srcu(&kvm->srcu) is called inside kvm->slots_lock', {
    inner: 'synchronize',
  }),
  order('vcpu->mutex', 'kvm->srcu', 'locking.rst (2023-01): synchronize_srcu is called inside vcpu->mutex', { inner: 'synchronize' }),
  order('kvm->lock', 'kvm->srcu', 'locking.rst (2023-01): synchronize_srcu is called inside kvm->lock', { inner: 'synchronize' }),
  order('vcpu->mutex', 'kvm->arch.xen.xen_lock', 'locking.rst (newer): vcpu->mutex is taken outside kvm->arch.xen.xen_lock'),
  order('kvm->srcu', 'kvm->slots_arch_lock', 'locking.rst: slots_arch_lock may be taken inside kvm->srcu (vmexit handling)', {
    outerHeld: 'read',
  }),
  order('kvm->srcu', 'kvm->arch.apicv_update_lock', 'x86.c: __kvm_vcpu_update_apicv takes apicv_update_lock for read inside SRCU', {
    outerHeld: 'read',
    inner: 'read',
  }),
];
