// The watchdogs main's service loop (Vm.#supervise) consults at each turn, built in one place: a
// lost wake-up a host CPU published, then a stuck vCPU (VcpuWatchdog, the more precise report),
// then a stuck host CPU (HostCpuWatchdog: its queued vCPUs accrue no run time, so the vCPU watchdog
// never judges them).

import { type KvmLocks, vcpuLockdepSlot } from '../control/kvm-locks.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { HostCpuWatchdog } from './host-cpu-watchdog.js';
import { LoadedRunTime } from './vcpu-run-time.js';
import { VcpuWatchdog, lostWakeup } from './vm-watchdog.js';

export class VmWatchdogs {
  readonly #memory: VmControlViews;
  readonly #vcpus: VcpuWatchdog;
  readonly #hostCpus: HostCpuWatchdog;

  /** `boundMs`: RunOptions.watchdogSeconds in ms. */
  constructor(memory: VmControlViews, locks: KvmLocks, boundMs: number) {
    this.#memory = memory;
    this.#vcpus = new VcpuWatchdog(memory, {
      boundMs,
      runTime: new LoadedRunTime(memory),
      waitsOnCycle: (vcpu) => locks.waitsOnCycle(vcpuLockdepSlot(vcpu)),
      heldLocks: (slot) => locks.locksHeldBy(slot),
    });
    this.#hostCpus = new HostCpuWatchdog(memory, { boundMs });
  }

  /** What the watchdogs found, or undefined. `now` is the main host's clock (nowMs). */
  check(now: number): string | undefined {
    return lostWakeup(this.#memory) ?? this.#vcpus.check(now) ?? this.#hostCpus.check(now);
  }
}
