// The watchdogs main's service loop (Vm.#supervise) consults at each turn, built in one place: a
// lost wake-up a host CPU published, then a stuck vCPU (VcpuWatchdog), then a stuck host CPU
// (HostCpuWatchdog: its queued vCPUs accrue no run time, so the vCPU watchdog never judges them).
//
// A vCPU that stands still while loaded is its host CPU standing still. Where thread CPU times can
// be read (Linux /proc), HostCpuWatchdog judges it by the CPU time its host CPU's thread used, and
// VcpuWatchdog judges only cycles of waits: the time a vCPU was loaded (LoadedRunTime) is wall time
// and grows while the OS leaves the host CPU's thread off a core, which on a busy host is slowness,
// not a hang. Elsewhere the loaded time is the only measure there is, and VcpuWatchdog uses it.

import { type KvmLocks, vcpuLockdepSlot } from '../control/kvm-locks.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { HostCpuWatchdog } from './host-cpu-watchdog.js';
import { LoadedRunTime, hostThreadTimes, hostThreadTimesAvailable } from './vcpu-run-time.js';
import { descheduledStallTimes, type HostCpuStall } from '../vcpu/host-cpu-stall.js';
import { VcpuWatchdog, lostWakeup } from './vm-watchdog.js';

export class VmWatchdogs {
  readonly #memory: VmControlViews;
  readonly #vcpus: VcpuWatchdog;
  readonly #hostCpus: HostCpuWatchdog;

  /** `boundMs`: RunOptions.watchdogSeconds in ms; `stall`: the VM's debug stall (VmConfig.stallHostCpu). */
  constructor(memory: VmControlViews, locks: KvmLocks, boundMs: number, stall?: HostCpuStall) {
    this.#memory = memory;
    const heldLocks = (slot: number) => locks.locksHeldBy(slot);
    this.#vcpus = new VcpuWatchdog(memory, {
      boundMs,
      ...(hostThreadTimesAvailable() ? {} : { runTime: new LoadedRunTime(memory) }),
      waitsOnCycle: (vcpu) => locks.waitsOnCycle(vcpuLockdepSlot(vcpu)),
      heldLocks,
    });
    // A 'descheduled' stall shows in its thread's times as the OS would show it (host-cpu-stall.ts).
    const threadTimes =
      stall?.how === 'descheduled' ? descheduledStallTimes(memory.hostCpus, stall.hostCpu, hostThreadTimes) : hostThreadTimes;
    this.#hostCpus = new HostCpuWatchdog(memory, { boundMs, heldLocks, threadTimes });
  }

  /** What the watchdogs found, or undefined. `now` is the main host's clock (nowMs). */
  check(now: number): string | undefined {
    return lostWakeup(this.#memory) ?? this.#vcpus.check(now) ?? this.#hostCpus.check(now);
  }
}
