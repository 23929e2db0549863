// The host CPUs a VM's vCPUs are scheduled onto, as shared words. Mechanism only: this file knows no
// APIC and no vCPU state beyond an index. Each host CPU is one worker thread for the VM's life
// (src/kvm/vcpu/host-cpu-loop.ts runs its loop); its index is the host physical APIC ID the AVIC
// physical APIC ID table shows for a vCPU loaded there.
//
// Two words a host CPU is reached through, kept apart on purpose (AMD APM vol. 2, 15.29: the
// doorbell is a signal to a physical CPU, not a wake-up):
//   ring  the AVIC doorbell (avic_ring_doorbell): any thread Atomics.add's it; only the vCPU in guest
//         mode there notices, by polling it once per basic block. Never notified, never waited on.
//   wake  KVM's wake-up reaching the host scheduler (try_to_wake_up -> the CPU's run queue): whoever
//         enqueues work for this host CPU adds to it and, if the host CPU is idle and nobody has
//         notified it yet in this idle period, notifies it (one reschedule IPI per idle exit). An
//         idle host CPU that is still polling its wake word needs no notify (Linux's idle poll loop
//         and set_nr_if_polling: the CPU is watching, so the waker sends no IPI).
//
// One ordering lives here (docs/architecture.md#orderings, O9): the waker's "enqueue, add to wake,
// then compare-exchange idle 1 -> 2 and notify" (HostCpus.wake) pairs with the idle host CPU's
// "idle = 3 (polling) or 1, re-check its run queue, poll wake; then idle = 1 and Atomics.wait(wake,
// seen)" (HostCpu.idlePoll and idleWait's caller). Every wait and every poll is bounded.

import { hostThread } from './host-thread.js';
import { defineStruct } from './shared-layout.js';

/** Per host CPU: how it is reached, what it runs, and its scheduler's progress. */
export const HostCpuState = defineStruct('HostCpuState', {
  ring: { type: 'i32', writer: 'any thread: Atomics.add(1) to ring the AVIC doorbell; never notified' },
  wake: { type: 'i32', writer: 'any thread: Atomics.add(1) after it enqueued work here, then Atomics.notify if idle' },
  idle: {
    type: 'i32',
    writer:
      'owning host CPU: 3 while it polls wake and 1 just before it waits on wake (its run queue empty), 0 after; a waker: compare-exchange 1 -> 2 when it is the one that notifies (IdleState)',
  },
  current: {
    type: 'i32',
    writer:
      'owning host CPU: vCPU index + 1 of the vCPU loaded (0 = none); stored before avic_vcpu_load sets IsRunning, cleared after avic_vcpu_put clears it',
  },
  switchSequence: {
    type: 'i32',
    writer: 'owning host CPU: +1 as a put or load begins and +1 as it ends (odd while switching: a seqlock for observers)',
  },
  heartbeat: { type: 'i32', writer: 'owning host CPU: +1 per scheduler loop iteration (watchdog)' },
  threadId: { type: 'i32', writer: 'owning host CPU: its OS thread id (Linux /proc/thread-self; 0 = unknown), once at start' },
  stallDescheduledMs: {
    type: 'i32',
    writer:
      "owning host CPU, only in a debug stall 'descheduled' (VmConfig.stallHostCpu, host-cpu-stall.ts): ms since that stall began, which the watchdog's thread-time reader counts as run-queue wait; 0 otherwise",
  },
});

export type HostCpuStateField = keyof typeof HostCpuState.fieldOffsets;

/** The idle word's values. */
export const IdleState = {
  /** Running a vCPU, or looking for one. */
  Busy: 0,
  /** Waiting (or about to wait) on its wake word, not yet notified. */
  Idle: 1,
  /**
   * Still idle, but a waker has notified it already in this idle period: later wakers only add to
   * the wake word (Linux's resched_curr returns early when need_resched is already set, and a CPU's
   * wake list sends its IPI only when it goes from empty to non-empty: one IPI per idle exit).
   */
  Notified: 2,
  /**
   * Idle and polling its wake word (HostCpu.idlePoll): a waker's add is seen without a notify, so
   * wakers send none (Linux's set_nr_if_polling against a CPU in its idle poll loop). The host CPU
   * stores Idle before it waits, and the wait itself re-checks the word.
   */
  Polling: 3,
} as const;

/** Per host CPU counters (owner only, plain stores; read by main for the report). */
export const HostCpuStatistics = defineStruct('HostCpuStatistics', {
  busyNs: { type: 'f64', writer: 'owning host CPU: time with a vCPU loaded' },
  idleNs: { type: 'f64', writer: 'owning host CPU: time waiting on its wake word with nothing to run' },
  vcpuSwitches: { type: 'f64', writer: 'owning host CPU: loads of a vCPU other than the one it ran last' },
  preemptions: { type: 'f64', writer: 'owning host CPU: vCPUs put at the end of their quantum while still runnable' },
  directedYields: { type: 'f64', writer: 'owning host CPU: pause-loop exits that yielded to another runnable vCPU (kvm_vcpu_on_spin)' },
  migrations: { type: 'f64', writer: "owning host CPU: vCPUs it took from another host CPU's run queue while idle (load balancing)" },
  haltPollNs: { type: 'f64', writer: 'owning host CPU: time its vCPUs spent halt-polling' },
  idlePollNs: { type: 'f64', writer: 'owning host CPU: time it polled its wake word with nothing to run (part of idleNs)' },
  idlePollWakeups: { type: 'f64', writer: 'owning host CPU: idle periods its poll ended (a wake-up seen without a notify)' },
});

export type HostCpuStatisticName = keyof typeof HostCpuStatistics.fieldOffsets;

/** Every host CPU's words: the state structs at `stateOffset`, the statistics at `statisticsOffset` (bytes). */
export class HostCpus {
  readonly words: Int32Array;
  readonly float64: Float64Array;
  readonly count: number;
  readonly #stateOffset: number;
  readonly #statisticsOffset: number;
  // Hot indices, computed once: the IPI path rings millions of times a second.
  readonly #ring: Int32Array;

  constructor(words: Int32Array, stateOffset: number, statisticsOffset: number, count: number) {
    this.words = words;
    this.float64 = new Float64Array(words.buffer);
    this.count = count;
    this.#stateOffset = stateOffset;
    this.#statisticsOffset = statisticsOffset;
    this.#ring = Int32Array.from({ length: count }, (_, host) => this.index(host, 'ring'));
  }

  /** Int32 index of `field` of host CPU `host`. */
  index(host: number, field: HostCpuStateField): number {
    return (this.#stateOffset + host * HostCpuState.byteSize + HostCpuState.fieldOffsets[field]) >> 2;
  }

  /** Float64 index of counter `name` of host CPU `host`. */
  statisticIndex(host: number, name: HostCpuStatisticName): number {
    return (this.#statisticsOffset + host * HostCpuStatistics.byteSize + HostCpuStatistics.fieldOffsets[name]) >> 3;
  }

  /** The AVIC doorbell: only the vCPU in guest mode on `host` notices it. Wakes nothing. */
  ring(host: number): void {
    Atomics.add(this.words, this.#ring[host]!, 1);
  }

  /**
   * Tells `host` it has work (a vCPU enqueued on it): add to its wake word, then notify it if idle
   * and not notified yet in this idle period. Pairs with the idle host CPU's "idle = 1, re-check the
   * run queue, wait(wake, seen)" (O9): either it sees the enqueue or the moved wake word, or we see
   * idle = 1 and notify, or idle = 2: a waker before us notifies, after its own add, and the host
   * CPU takes our enqueue with its. A notify is a futex wake that costs the waker tens of
   * microseconds; one per wake-up made a broadcast's sender so slow between its targets that the
   * woken host CPU went idle again after each one.
   */
  wake(host: number): void {
    this.announce(host);
    this.notifyIdle(host);
  }

  /** wake()'s first half: add to the wake word (after the enqueue). notifyIdle must follow, on the same thread. */
  announce(host: number): void {
    Atomics.add(this.words, this.index(host, 'wake'), 1);
  }

  /** wake()'s second half: notify `host` if it is idle and nobody notified it in this idle period. */
  notifyIdle(host: number): void {
    const idle = this.index(host, 'idle');
    if (Atomics.compareExchange(this.words, idle, IdleState.Idle, IdleState.Notified) === IdleState.Idle)
      Atomics.notify(this.words, this.index(host, 'wake'), 1);
  }

  /** `host` waits on its wake word with nothing loaded (a hint: it may be waking already). */
  isIdle(host: number): boolean {
    return Atomics.load(this.words, this.index(host, 'idle')) !== IdleState.Busy;
  }

  /** The vCPU loaded on `host`, or -1. */
  currentVcpu(host: number): number {
    return Atomics.load(this.words, this.index(host, 'current')) - 1;
  }

  statistic(host: number, name: HostCpuStatisticName): number {
    return this.float64[this.statisticIndex(host, name)]!;
  }

  /** The host CPU `host`, owned by the calling thread from now on. */
  own(host: number): HostCpu {
    if (!Number.isInteger(host) || host < 0 || host >= this.count) throw new RangeError(`no host CPU ${host} (0..${this.count - 1})`);
    return new HostCpu(this, host);
  }
}

/**
 * One host CPU, as its owning thread sees it: the doorbell word the guest polls while a vCPU runs
 * here, its wake word and idle flag, what it has loaded, and its counters.
 */
export class HostCpu {
  readonly index: number;
  readonly cpus: HostCpus;
  /** The words and index the guest polls (GuestCpu) while it runs on this host CPU. */
  readonly words: Int32Array;
  readonly ringIndex: number;
  readonly wakeIndex: number;
  readonly #idle: number;
  readonly #current: number;
  readonly #sequence: number;
  readonly #heartbeat: number;

  constructor(cpus: HostCpus, index: number) {
    this.cpus = cpus;
    this.index = index;
    this.words = cpus.words;
    this.ringIndex = cpus.index(index, 'ring');
    this.wakeIndex = cpus.index(index, 'wake');
    this.#idle = cpus.index(index, 'idle');
    this.#current = cpus.index(index, 'current');
    this.#sequence = cpus.index(index, 'switchSequence');
    this.#heartbeat = cpus.index(index, 'heartbeat');
  }

  /** The ring count now; a later value that differs means someone rang the doorbell. */
  ringValue(): number {
    return Atomics.load(this.words, this.ringIndex);
  }

  /** The wake count now; a later value that differs means someone enqueued work here. */
  wakeValue(): number {
    return Atomics.load(this.words, this.wakeIndex);
  }

  /**
   * Idle: announced (idle = Polling if the caller polls first, else Idle, so wakers notify; O9).
   * The caller loaded `seen` before, and re-checks its run queue after: a waker that enqueued after
   * that re-check moved the word, which the poll or the wait sees.
   */
  beginIdle(polling = false): void {
    Atomics.store(this.words, this.#idle, polling ? IdleState.Polling : IdleState.Idle);
  }

  /**
   * Polls the wake word until it moves from `seen` (true) or the host clock passes `untilMs`
   * (false), as Linux's idle poll loop watches need_resched before the CPU halts: a wake-up inside
   * the window costs no notify and no OS wake-up. Then idle = Idle, before the caller's idleWait,
   * whose own check of the word catches an add made while wakers still saw Polling.
   */
  idlePoll(seen: number, untilMs: number): boolean {
    const words = this.words;
    const wake = this.wakeIndex;
    const thread = hostThread();
    const started = thread.nowMs();
    let moved = false;
    for (let spins = 1; ; spins++) {
      if (Atomics.load(words, wake) !== seen) {
        moved = true;
        break;
      }
      if ((spins & 15) === 0 && thread.nowMs() >= untilMs) break;
    }
    if (moved) this.count('idlePollWakeups');
    else Atomics.store(words, this.#idle, IdleState.Idle);
    this.count('idlePollNs', (thread.nowMs() - started) * 1e6);
    return moved;
  }

  idleWait(seen: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
    return hostThread().wait(this.words, this.wakeIndex, seen, timeoutMs);
  }

  endIdle(): void {
    Atomics.store(this.words, this.#idle, IdleState.Busy);
  }

  /** Publishes the vCPU loaded here (-1: none); see the field's writer for its place in load and put. */
  setCurrent(vcpu: number): void {
    Atomics.store(this.words, this.#current, vcpu + 1);
  }

  /** A put or load begins or ends (the switch seqlock: odd while switching). */
  stepSwitchSequence(): void {
    Atomics.add(this.words, this.#sequence, 1);
  }

  beat(): void {
    Atomics.add(this.words, this.#heartbeat, 1);
  }

  count(name: HostCpuStatisticName, amount = 1): void {
    this.cpus.float64[this.cpus.statisticIndex(this.index, name)]! += amount;
  }

  setThreadId(tid: number): void {
    Atomics.store(this.words, this.cpus.index(this.index, 'threadId'), tid);
  }

  /** Debug only: the time a 'descheduled' stall has lasted so far (src/kvm/vcpu/host-cpu-stall.ts). */
  setStallDescheduledMs(ms: number): void {
    Atomics.store(this.words, this.cpus.index(this.index, 'stallDescheduledMs'), ms);
  }
}
