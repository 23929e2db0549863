// The main thread's checks on running vCPUs: is the VM idle (nothing left that could wake anyone),
// and has a vCPU stopped making progress (its run loop's heartbeat is still although it could have
// moved: see VcpuWatchdog).

import { VCPU_WAIT_REASON_NAMES, VcpuFinish, VcpuRunState, runStateName } from '../control/vcpu-run-state.js';
import { TaskState } from '../../host/run-queue.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { vcpuLockdepSlot } from '../control/kvm-locks.js';
import type { VcpuRunTimeSource } from './vcpu-run-time.js';

/** The watchdog looks at most this often (a storm's heartbeats move far faster). */
const CHECK_INTERVAL_MS = 100;

/**
 * Every vCPU finished, or blocked (put, off every run queue) with no timer of its own that will raise
 * an interrupt and no event lost on it (idle: nothing can wake it). Halted vCPUs and application
 * processors in wait-for-SIPI (run state Blocked, wait reason WaitForStartUp) both count as blocked.
 * At least one must be blocked: a VM whose vCPUs all finished is done, not idle.
 */
export function allVcpusIdle(memory: VmControlViews): boolean {
  const control = memory.control;
  let blocked = 0;
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    if (Atomics.load(control, memory.controlBlockIndex(vcpu, 'finished')) !== VcpuFinish.Running) continue;
    blocked++;
    if (Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState')) !== VcpuRunState.Blocked) return false;
    if (memory.runQueues.state(vcpu) !== TaskState.Blocked) return false;
    if (Atomics.load(control, memory.controlBlockIndex(vcpu, 'apicTimerArmed')) !== 0) return false;
    if (Atomics.load(control, memory.controlBlockIndex(vcpu, 'lostWakeupVector')) !== 0) return false;
  }
  // None blocked: every vCPU finished since the caller counted them, which is all-done, not idle.
  return blocked > 0;
}

/**
 * A blocked vCPU its host CPU found with an event pending and no wake-up coming (host-cpu-loop.ts),
 * described for the watchdog, or undefined.
 */
export function lostWakeup(memory: VmControlViews): string | undefined {
  for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
    const mark = Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'lostWakeupVector'));
    if (mark === 0) continue;
    const what =
      mark - 1 < 256
        ? `vector ${mark - 1} (0x${(mark - 1).toString(16)}) deliverable in its IRR`
        : 'an event pending (NMI, INIT, start-up or a request)';
    return `vCPU ${vcpu} is blocked with ${what} and no wake-up coming (a lost wake-up)`;
  }
  return undefined;
}

/** The locks a thread holds and the one it waits for, from the locks' own words (validator on or off). */
export type HeldLocksOf = (lockdepThreadSlot: number) => { readonly held: readonly string[]; readonly waitingFor?: string };

/** Per vCPU: the heartbeat last seen, when it moved, and what the vCPU had run when first seen still. */
interface Stillness {
  readonly beat: number;
  /** The check that saw the heartbeat move (or the vCPU leave Running). */
  readonly movedAt: number;
  /** ranMs at the first check that saw the heartbeat still; undefined until then (or while unknown). */
  ranAtStill: number | undefined;
  /** No need to read the run time before this: it cannot have reached the bound yet. */
  readAfter: number;
}

export interface VcpuWatchdogOptions {
  /** A vCPU is stuck once it stood still this long (run time, or wall time for a cycle of waits). */
  readonly boundMs: number;
  /**
   * How much each vCPU could have run (vcpu-run-time.ts). Without it only cycles of waits are judged
   * (a vCPU spinning while loaded is then HostCpuWatchdog's to judge: vm-watchdogs.ts).
   */
  readonly runTime?: VcpuRunTimeSource;
  /** Whether the vCPU's thread waits for a lock on, or behind, a cycle of waits (the wait-for graph). */
  readonly waitsOnCycle?: (vcpu: number) => boolean;
  readonly heldLocks?: HeldLocksOf;
}

/**
 * Is a running vCPU stuck? Its run loop's heartbeat must move; one that stands still is stuck only
 * if it could have moved (a thread the host did not schedule is slow, not stuck):
 *   spinning  its thread ran for the whole bound (VcpuRunTimeSource) and the heartbeat stayed still:
 *             a loop with no way out;
 *   waiting   it stood still for the bound in wall time while it waits for a lock on, or behind, a
 *             cycle of waits: a deadlock (its thread sleeps, so run time cannot show it).
 * A vCPU in a bounded wait outside a cycle is left to that wait's own timeout (LockWaitTimeout).
 * Checks at most every CHECK_INTERVAL_MS; reads a vCPU's run time only once it could have reached
 * the bound (a thread runs at most as long as the wall clock), so a busy VM costs few reads.
 */
export class VcpuWatchdog {
  readonly #memory: VmControlViews;
  readonly #options: VcpuWatchdogOptions;
  readonly #interval: number;
  readonly #vcpus: (Stillness | undefined)[] = [];
  #lastCheck = -Infinity;

  constructor(memory: VmControlViews, options: VcpuWatchdogOptions) {
    this.#memory = memory;
    this.#options = options;
    this.#interval = Math.min(CHECK_INTERVAL_MS, options.boundMs / 10);
  }

  /** The stuck vCPU's description, or undefined. `now` is the main host's clock, nowMs (tests pass a fake clock). */
  check(now: number): string | undefined {
    if (now - this.#lastCheck < this.#interval) return undefined;
    this.#lastCheck = now;
    const { boundMs, runTime, waitsOnCycle } = this.#options;
    runTime?.refresh();
    const memory = this.#memory;
    const control = memory.control;
    const seconds = (boundMs / 1000).toFixed(1);
    for (let vcpu = 0; vcpu < memory.createdVcpus(); vcpu++) {
      const state = Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState'));
      const beat = Atomics.load(control, memory.controlBlockIndex(vcpu, 'heartbeat'));
      const previous = this.#vcpus[vcpu];
      if (previous === undefined || beat !== previous.beat || state !== VcpuRunState.Running) {
        this.#vcpus[vcpu] = { beat, movedAt: now, ranAtStill: undefined, readAfter: now };
        continue;
      }
      if (now - previous.movedAt >= boundMs && waitsOnCycle?.(vcpu) === true) {
        return `vCPU ${vcpu} made no progress for ${seconds} s (${describeVcpu(memory, vcpu, this.#options.heldLocks)})`;
      }
      if (runTime === undefined) continue;
      if (previous.ranAtStill === undefined) {
        // The baseline is taken a little after the heartbeat's last move: run time is undercounted
        // by at most one check interval, never overcounted.
        previous.ranAtStill = runTime.ranMs(vcpu);
        previous.readAfter = now + boundMs;
        continue;
      }
      if (now < previous.readAfter) continue;
      const ran = runTime.ranMs(vcpu);
      if (ran === undefined) continue;
      const ranStill = ran - previous.ranAtStill;
      if (ranStill >= boundMs) {
        return `vCPU ${vcpu} made no progress for ${seconds} s of its host thread's run time (${describeVcpu(memory, vcpu, this.#options.heldLocks)}; it ran ${(ranStill / 1000).toFixed(1)} s in ${((now - previous.movedAt) / 1000).toFixed(1)} s)`;
      }
      previous.readAfter = now + (boundMs - ranStill);
    }
    return undefined;
  }
}

/** What a vCPU is doing and which locks it holds, for watchdog reports. */
export function describeVcpu(memory: VmControlViews, vcpu: number, heldLocks?: HeldLocksOf): string {
  const control = memory.control;
  const state = runStateName(Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState')));
  const reason = Atomics.load(control, memory.controlBlockIndex(vcpu, 'waitReason'));
  // The vCPU's own lockdep slot (VcpuLocks): its locks stay its own whichever host CPU runs it.
  const locks = heldLocks !== undefined ? heldLocks(vcpuLockdepSlot(vcpu)) : { held: [] };
  const held = [...locks.held];
  const waiting = reason === 0 && locks.waitingFor !== undefined ? locks.waitingFor : (VCPU_WAIT_REASON_NAMES[reason] ?? 'unknown');
  const srcuSlot = vcpu + 1;
  const readsSrcu = memory.srcu.readerSlotsInside(0).includes(srcuSlot) || memory.srcu.readerSlotsInside(1).includes(srcuSlot);
  if (readsSrcu && !held.some((name) => name.startsWith('kvm->srcu'))) held.push('kvm->srcu (read)');
  return `vCPU ${vcpu} is ${state}, waiting for: ${waiting}; holds: ${held.length === 0 ? 'no lock' : held.join(', ')}`;
}
