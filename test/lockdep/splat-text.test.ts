// The text of the reports, against inline snapshots: the kernel's splat layout (banner, the lock
// being acquired and where, the lock held, the existing chain in reverse order with where each link
// was first seen, the unsafe scenario, the held locks), with our thread names and step labels.

import { describe, expect, it } from 'vitest';
import { asThread, kvmLockdep, R, selftestLockdep, W } from './lockdep-test-support.js';

describe('lockdep splat text', () => {
  it('ABBA between two vCPU threads', () => {
    const lockdep = selftestLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('A', W, 'step 1: lock A');
    lockdep.acquire('B', W, 'step 2: lock B under A');
    lockdep.release('B');
    lockdep.release('A');
    asThread(lockdep, 2);
    lockdep.acquire('B', W, 'step 3: lock B');
    lockdep.acquire('A', W, 'step 4: lock A under B');

    expect(lockdep.report()?.text).toMatchInlineSnapshot(`
      "======================================================
      WARNING: possible circular locking dependency detected
      ------------------------------------------------------
      vCPU 1/worker 2 is trying to acquire lock:
      (A){W}, at: step 4: lock A under B

      but task is already holding lock:
      (B){W}, at: step 3: lock B

      which lock already depends on the new lock.


      the existing dependency chain (in reverse order) is:

      -> #1 (B){W}:
             first seen: vCPU 0/worker 1, step: step 2: lock B under A
             while holding: (A){W}, taken at: step 1: lock A

      -> #0 (A){W}:
             first seen: vCPU 1/worker 2, step: step 4: lock A under B
             while holding: (B){W}, taken at: step 3: lock B

      other info that might help us debug this:

       Possible unsafe locking scenario:

             CPU0                    CPU1
             ----                    ----
        lock(B);
                                     lock(A);
                                     lock(B);
        lock(A);

       *** DEADLOCK ***

      1 lock held by vCPU 1/worker 2:
       #0: (B){W}, at: step 3: lock B"
    `);
  });

  it('SRCU: a vCPU takes slots_lock inside its read section, main synchronizes under slots_lock', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 3);
    lockdep.acquire('kvm->srcu', R, 'vcpu_run: srcu_read_lock');
    lockdep.acquire('kvm->slots_lock', W, 'kvm_inhibit_apic_access_page (SRCU not dropped)');
    lockdep.release('kvm->slots_lock');
    lockdep.release('kvm->srcu');
    asThread(lockdep, 0);
    lockdep.acquire('kvm->slots_lock', W, 'kvm_vm_ioctl_set_memory_region');
    lockdep.synchronize('kvm->srcu', 'kvm_swap_active_memslots: synchronize_srcu');

    expect(lockdep.report()?.text).toMatchInlineSnapshot(`
      "======================================================
      WARNING: possible circular locking dependency detected
      ------------------------------------------------------
      main is trying to acquire lock:
      (kvm->srcu){sync}, at: kvm_swap_active_memslots: synchronize_srcu

      but task is already holding lock:
      (kvm->slots_lock){W}, at: kvm_vm_ioctl_set_memory_region

      which lock already depends on the new lock.


      the existing dependency chain (in reverse order) is:

      -> #1 (kvm->slots_lock){W}:
             first seen: vCPU 2/worker 3, step: kvm_inhibit_apic_access_page (SRCU not dropped)
             while holding: (kvm->srcu){R}, taken at: vcpu_run: srcu_read_lock

      -> #0 (kvm->srcu){sync}:
             first seen: main, step: kvm_swap_active_memslots: synchronize_srcu
             while holding: (kvm->slots_lock){W}, taken at: kvm_vm_ioctl_set_memory_region

      other info that might help us debug this:

       Possible unsafe locking scenario:

             CPU0                    CPU1
             ----                    ----
        lock(kvm->slots_lock);
                                     rlock(kvm->srcu);
                                     lock(kvm->slots_lock);
        sync(kvm->srcu);

       *** DEADLOCK ***

      1 lock held by main:
       #0: (kvm->slots_lock){W}, at: kvm_vm_ioctl_set_memory_region"
    `);
  });

  it('a three-lock chain prints "Chain exists of"', () => {
    const lockdep = selftestLockdep();
    for (const [slot, first, second] of [
      [1, 'A', 'B'],
      [2, 'B', 'C'],
    ] as const) {
      asThread(lockdep, slot);
      lockdep.acquire(first, W, `lock ${first}`);
      lockdep.acquire(second, W, `lock ${second} under ${first}`);
      lockdep.release(second);
      lockdep.release(first);
    }
    asThread(lockdep, 3);
    lockdep.acquire('C', W, 'lock C');
    lockdep.acquire('A', W, 'lock A under C');

    expect(lockdep.report()?.text).toMatchInlineSnapshot(`
      "======================================================
      WARNING: possible circular locking dependency detected
      ------------------------------------------------------
      vCPU 2/worker 3 is trying to acquire lock:
      (A){W}, at: lock A under C

      but task is already holding lock:
      (C){W}, at: lock C

      which lock already depends on the new lock.


      the existing dependency chain (in reverse order) is:

      -> #2 (C){W}:
             first seen: vCPU 1/worker 2, step: lock C under B
             while holding: (B){W}, taken at: lock B

      -> #1 (B){W}:
             first seen: vCPU 0/worker 1, step: lock B under A
             while holding: (A){W}, taken at: lock A

      -> #0 (A){W}:
             first seen: vCPU 2/worker 3, step: lock A under C
             while holding: (C){W}, taken at: lock C

      other info that might help us debug this:

      Chain exists of:
        A --> B --> C

       Possible unsafe locking scenario:

             CPU0                    CPU1
             ----                    ----
        lock(C);
                                     lock(B);
                                     lock(C);
        lock(A);

       *** DEADLOCK ***

      1 lock held by vCPU 2/worker 3:
       #0: (C){W}, at: lock C"
    `);
  });

  it('AA: synchronize_srcu inside a read section (S1)', () => {
    const lockdep = kvmLockdep();
    asThread(lockdep, 1);
    lockdep.acquire('kvm->srcu', R, 'vcpu_run: srcu_read_lock');
    lockdep.acquire('kvm->slots_lock', W, 'avic_update_access_page');
    lockdep.synchronize('kvm->srcu', '__x86_set_memory_region: synchronize_srcu');

    expect(lockdep.report()?.text).toMatchInlineSnapshot(`
      "============================================
      WARNING: possible recursive locking detected
      --------------------------------------------
      vCPU 0/worker 1 is trying to acquire lock:
      (kvm->srcu){sync}, at: __x86_set_memory_region: synchronize_srcu

      but task is already holding lock:
      (kvm->srcu){R}, at: vcpu_run: srcu_read_lock

      other info that might help us debug this:
       Possible unsafe locking scenario:

             CPU0
             ----
        rlock(kvm->srcu);
        sync(kvm->srcu);

       *** DEADLOCK ***

       May be due to missing lock nesting notation

      2 locks held by vCPU 0/worker 1:
       #0: (kvm->srcu){R}, at: vcpu_run: srcu_read_lock
       #1: (kvm->slots_lock){W}, at: avic_update_access_page"
    `);
  });
});
