// The watchdogs main's service loop (Vm.#supervise) consults at each turn, built in one place: a
// lost wake-up a host CPU published, then a stuck vCPU (VcpuWatchdog), then a stuck host CPU
// (HostCpuWatchdog: its queued vCPUs accrue no run time, so the vCPU watchdog never judges them).
//
// A vCPU that stands still while loaded is its host CPU standing still. Where thread CPU times can
// be read (Linux /proc), HostCpuWatchdog judges it by what its host CPU's thread did (ran, or, with
// Linux's schedstat, slept rather than waited for a core), and VcpuWatchdog judges only cycles of
// waits: the time a vCPU was loaded (LoadedRunTime) is wall time and grows while the OS leaves the
// host CPU's thread off a core, which on a busy host is slowness, not a hang. Elsewhere the loaded
// time is the only measure there is, and VcpuWatchdog uses it.

import { type KvmLocks, vcpuLockdepSlot } from '../control/kvm-locks.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { HostCpuWatchdog } from './host-cpu-watchdog.js';
import { LoadedRunTime, hostThreadTimes, hostThreadTimesAvailable } from './vcpu-run-time.js';
import { descheduledStallTimes } from '../vcpu/host-cpu-stall.js';
import type { ValidVmConfig } from './vm-config.js';
import { VcpuWatchdog, lostWakeup } from './vm-watchdog.js';

export class VmWatchdogs {
  readonly #memory: VmControlViews;
  readonly #vcpus: VcpuWatchdog;
  readonly #hostCpus: HostCpuWatchdog;

  /** `boundMs`: RunOptions.watchdogSeconds in ms; `config`: whether the run is deterministic, and its debug stall. */
  constructor(memory: VmControlViews, locks: KvmLocks, boundMs: number, config: Pick<ValidVmConfig, 'deterministic' | 'stallHostCpu'>) {
    this.#memory = memory;
    const heldLocks = (slot: number) => locks.locksHeldBy(slot);
    this.#vcpus = new VcpuWatchdog(memory, {
      boundMs,
      ...(hostThreadTimesAvailable() ? {} : { runTime: new LoadedRunTime(memory) }),
      waitsOnCycle: (vcpu) => locks.waitsOnCycle(vcpuLockdepSlot(vcpu)),
      heldLocks,
    });
    // A 'descheduled' stall shows in its thread's times as the OS would show it (host-cpu-stall.ts).
    const stall = config.stallHostCpu;
    const threadTimes =
      stall?.how === 'descheduled' ? descheduledStallTimes(memory.hostCpus, stall.hostCpu, hostThreadTimes) : hostThreadTimes;
    this.#hostCpus = new HostCpuWatchdog(memory, {
      boundMs,
      heldLocks,
      threadTimes,
      waitsForLock: (slot) => locks.lockdep.threads.waiting(slot) !== undefined,
      // A deterministic run's threads sleep while they wait for their turn (host-cpu-watchdog.ts).
      judgeSleep: config.deterministic === undefined,
    });
  }

  /** What the watchdogs found, or undefined. `now` is the main host's clock (nowMs). */
  check(now: number): string | undefined {
    return lostWakeup(this.#memory) ?? this.#vcpus.check(now) ?? this.#hostCpus.check(now);
  }
}
