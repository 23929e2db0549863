// KVM's block / wake protocol over the host scheduler's tasks (src/host/run-queue.ts): the one place
// that moves a vCPU task between Blocking, Blocked, Woken and Queued. kvm_vcpu_wake_up is the only
// thing that makes a Blocked vCPU runnable; kvm_vcpu_kick is a wake-up plus, for a vCPU that is
// loaded, a ring of the doorbell of the host CPU it is loaded on (a reschedule IPI's effect: the
// guest leaves guest mode and looks at its requests). A doorbell alone never wakes anyone.
//
// The blocker (its host CPU, in kvm_vcpu_block; src/kvm/vcpu/vcpu-sleep.ts):
//   1. state = Blocking                                 (prepare_to_rcuwait / set_current_state)
//   2. avic_vcpu_blocking: IsRunning = 0, host id kept (src/kvm/svm/avic.ts)
//   3. re-check for events: IRR, NMI, INIT/SIPI, requests, the timer   (kvm_vcpu_check_block)
//   4. an event: state = Running, IsRunning = 1 again (avic_vcpu_unblocking); it goes on
//   5. none: compare-exchange Blocking -> Blocked; failed (a waker made it Woken): as 4
//   6. Blocked: its host CPU puts it and runs another
// The waker (any thread, after it set the IRR bit or the request; kvm_vcpu_wake_up):
//   compare-exchange Blocking -> Woken (the blocker's step 5 fails), or Blocked -> Queued, then
//   enqueue on the vCPU's host CPU and wake that host CPU (O9).
// Pairs (docs/architecture.md#orderings, O1 and O10): the waker's "event, then load the state" with
// the blocker's "Blocking, then re-check": either the waker sees Blocking or Blocked and wakes, or
// the re-check sees the event. The AVIC sender's "IRR, then IsRunning" pairs with steps 2-3 (O1).

import type { HostCpus } from '../../host/host-cpu.js';
import { hostThread, SchedulingPoint } from '../../host/host-thread.js';
import { VirtualTimeCost } from '../../host/virtual-time-costs.js';
import { TaskState, type RunQueues } from '../../host/run-queue.js';

/** The words the protocol reads beside the tasks: where each vCPU is loaded, and the placement. */
export interface VcpuSchedulingWords {
  readonly control: Int32Array;
  /** Int32 index of the vCPU's hostThreadSlot word (the host CPU of its last load, kept while put). */
  hostSlotIndex(vcpu: number): number;
  /** Int32 index of the header's hostCpus word. */
  readonly hostCpuCountIndex: number;
  /** The vCPU's APIC has a deliverable interrupt in its IRR (read from its backing page by any thread). */
  interruptPending(vcpu: number): boolean;
}

/**
 * How many directed yields may pass a waiting vCPU over before it is owed its turn. KVM's
 * kvm_vcpu_on_spin leaves fairness to the host scheduler (yield_to makes the target CFS's next
 * buddy, and vruntime catches up the rest); a FIFO run queue needs the bound said outright, or the
 * preferred vCPUs keep jumping the ones that never ran (every vCPU spinning on a lock they hold).
 */
export const DIRECTED_YIELD_MAX_SKIPS = 2;

/** What makes a queued vCPU a directed yield's candidate, best first (0: not one). */
export const YieldRank = {
  None: 0,
  /** vcpu->preempted: put while runnable, possibly holding the lock the spinner waits for. */
  Preempted: 1,
  /** An interrupt waits in its IRR (kvm_arch_dy_has_pending_interrupt): the target of an IPI the spinner may be waiting on. */
  InterruptPending: 2,
} as const;

export class VcpuScheduling {
  readonly hostCpus: HostCpus;
  readonly runQueues: RunQueues;
  readonly #words: VcpuSchedulingWords;
  /** Wake-up batches open on this thread (beginWakeUps); while above 0, notifies wait for the end. */
  #batchDepth = 0;
  /** Host CPUs the open batch queued vCPUs on, each once (#batchMarked), notified at its end. */
  readonly #batchHosts: number[] = [];
  readonly #batchMarked: Uint8Array;

  constructor(hostCpus: HostCpus, runQueues: RunQueues, words: VcpuSchedulingWords) {
    this.hostCpus = hostCpus;
    this.runQueues = runQueues;
    this.#words = words;
    this.#batchMarked = new Uint8Array(hostCpus.count);
  }

  /** Host CPUs the VM runs on (the header word main stores at creation). */
  get hostCpuCount(): number {
    return Math.max(1, Atomics.load(this.#words.control, this.#words.hostCpuCountIndex));
  }

  /**
   * Placement: the host CPU that loaded the vCPU last (its state is freshest there: no restore), or,
   * before any host CPU loaded it, host CPU i mod P.
   */
  homeHostCpu(vcpu: number): number {
    const resident = Atomics.load(this.runQueues.words, this.runQueues.taskIndex(vcpu, 'residentHost'));
    return resident > 0 ? resident - 1 : vcpu % this.hostCpuCount;
  }

  /**
   * An idle host CPU `thief` takes the longest-waiting runnable vCPU from the busiest other host CPU
   * (load balancing as the host scheduler's idle balance does), or -1. Busiest: the most vCPUs loaded
   * and queued, and at least two (find_busiest_queue leaves a CPU with one task alone: a host CPU
   * about to load its only queued vCPU is not robbed of it). Not one whose state is still
   * being saved by the host CPU that put it (onCpu, as can_migrate_task skips a task on_cpu): a
   * waker may queue a vCPU that committed Blocked before its host CPU saved it. The thief's load of
   * onCpu = 0 pairs with the saver's "save, then clear onCpu": it then sees the whole save.
   */
  steal(thief: number): number {
    const queues = this.runQueues;
    let victim = -1;
    let busiest = 1;
    for (let host = 0; host < this.hostCpuCount; host++) {
      const queued = host === thief ? 0 : queues.length(host);
      const load = queued === 0 ? 0 : queued + (this.hostCpus.currentVcpu(host) >= 0 ? 1 : 0);
      if (load > busiest) {
        victim = host;
        busiest = load;
      }
    }
    if (victim < 0) return -1;
    return queues.steal(victim, (task) => Atomics.load(queues.words, queues.taskIndex(task, 'onCpu')) === 0);
  }

  /** Main, at start or hot-add: the new vCPU task becomes runnable on its host CPU. */
  start(vcpu: number): void {
    if (!this.runQueues.transition(vcpu, TaskState.Off, TaskState.Queued)) throw new Error(`vCPU ${vcpu} was started twice`);
    this.#enqueue(vcpu);
  }

  /**
   * kvm_vcpu_wake_up: true if it made a blocking or blocked vCPU runnable. The caller stored the
   * event first (an IRR bit, a request): pairs with the blocker's "Blocking, then re-check" (O10).
   */
  wakeUp(vcpu: number): boolean {
    const queues = this.runQueues;
    for (;;) {
      const state = queues.state(vcpu);
      if (state === TaskState.Blocking) {
        if (queues.transition(vcpu, TaskState.Blocking, TaskState.Woken)) {
          // The blocker's commit now fails and it runs on, while the waker goes on too.
          hostThread().point(SchedulingPoint.WakeUp);
          return true;
        }
      } else if (state === TaskState.Blocked) {
        if (queues.transition(vcpu, TaskState.Blocked, TaskState.Queued)) {
          this.#enqueue(vcpu);
          hostThread().advance(VirtualTimeCost.wakeUpNs);
          // Its host CPU may load it (and look at its IRR) before the waker goes on.
          hostThread().point(SchedulingPoint.WakeUp);
          return true;
        }
      } else {
        return false;
      }
    }
  }

  /**
   * kvm_vcpu_kick: wake it, or, if it is loaded, ring the doorbell of the host CPU it is loaded on so
   * that it leaves guest mode and looks (a queued vCPU looks at its requests and IRR at its load).
   */
  kick(vcpu: number): void {
    if (this.wakeUp(vcpu)) return;
    const state = this.runQueues.state(vcpu);
    if (state !== TaskState.Running && state !== TaskState.Blocking && state !== TaskState.Woken) return;
    const host = Atomics.load(this.#words.control, this.#words.hostSlotIndex(vcpu));
    if (host >= 0) {
      this.hostCpus.ring(host);
      hostThread().advance(VirtualTimeCost.kickNs);
    }
    // The kicked vCPU may leave guest mode and look at its requests before the kicker goes on.
    hostThread().point(SchedulingPoint.WakeUp);
  }

  /**
   * The host CPU put `vcpu` while it was still runnable (its quantum ended, or it yielded): KVM's
   * vcpu->preempted, back on the tail of `host`'s queue.
   */
  preempt(host: number, vcpu: number): void {
    const queues = this.runQueues;
    Atomics.store(queues.words, queues.taskIndex(vcpu, 'preempted'), 1);
    queues.setState(vcpu, TaskState.Queued);
    queues.enqueue(host, vcpu);
  }

  /** A pause-loop exit yielded the host CPU: the spinner goes to the tail, its directed yield's target to the front. */
  yieldOnSpin(host: number, spinner: number): number {
    this.preempt(host, spinner);
    return this.directedYield(host, spinner);
  }

  /**
   * kvm_vcpu_on_spin, on the spinner's host CPU after it put the spinner back on the queue's tail:
   * moves the best candidate queued on `host` to the front (one with an interrupt pending, else a
   * preempted one; never the spinner itself) within the fairness bound, and returns it (-1: none, the
   * head runs next). The IPI path does no work for this: the candidates' IRR and preempted words are
   * read here, by the yielder.
   */
  directedYield(host: number, spinner: number): number {
    const queues = this.runQueues;
    const words = this.#words;
    return queues.promote(
      host,
      (task) => {
        if (task === spinner) return YieldRank.None;
        if (words.interruptPending(task)) return YieldRank.InterruptPending;
        return Atomics.load(queues.words, queues.taskIndex(task, 'preempted')) !== 0 ? YieldRank.Preempted : YieldRank.None;
      },
      DIRECTED_YIELD_MAX_SKIPS,
    );
  }

  // ---- the blocker's side (its host CPU) ----

  /** Step 1: the vCPU is about to block (stored before IsRunning is cleared and events re-checked). */
  beginBlocking(vcpu: number): void {
    this.runQueues.setState(vcpu, TaskState.Blocking);
  }

  /** Step 5: true if it blocked; false if a waker got there first (it must go on running). */
  commitBlocking(vcpu: number): boolean {
    return this.runQueues.transition(vcpu, TaskState.Blocking, TaskState.Blocked);
  }

  /** Step 4 (or 5 failed): running again; a Woken state left by a waker is consumed here. */
  cancelBlocking(vcpu: number): void {
    this.runQueues.setState(vcpu, TaskState.Running);
  }

  /**
   * Opens a batch of wake-ups on this thread (a loop of kicks: avic_kick_target_vcpus, a multicast
   * IPI's deliveries): each vCPU it makes runnable is queued and its host CPU's wake word moved at
   * once, but the host CPUs are notified once each, at endWakeUps. Linux's remote wake-up queues the
   * task on the target CPU's wake list and sends the IPI only when the list was empty
   * (ttwu_queue_wakelist); the IPI is asynchronous and the waker never waits for the target CPU,
   * which takes the whole list at once (sched_ttwu_pending); wake_q_add / wake_up_q batch the same
   * way. Atomics.notify is not asynchronous: a futex wake costing the waker tens of microseconds
   * (79 us p50 per kick under load), long enough for the woken host CPU to run the first target
   * and sleep again before the second was queued, so a broadcast to seven halted vCPUs paid seven
   * thread wake-ups in a row. Deferring the notify keeps the waker's cost Linux's: the targets are
   * all on the queue when the host CPU looks. Nothing is lost: the wake word moved at each enqueue
   * (O9), and endWakeUps always follows (callers use try / finally).
   */
  beginWakeUps(): void {
    this.#batchDepth++;
  }

  /** Closes the batch: notifies each host CPU it queued a vCPU on (if idle and not notified yet). */
  endWakeUps(): void {
    if (--this.#batchDepth > 0) return;
    const hosts = this.#batchHosts;
    for (const host of hosts) {
      this.#batchMarked[host] = 0;
      this.hostCpus.notifyIdle(host);
    }
    hosts.length = 0;
  }

  #enqueue(vcpu: number): void {
    const host = this.#placement(vcpu);
    this.runQueues.enqueue(host, vcpu);
    if (this.#batchDepth === 0) {
      this.hostCpus.wake(host);
      return;
    }
    this.hostCpus.announce(host);
    if (this.#batchMarked[host] === 0) {
      this.#batchMarked[host] = 1;
      this.#batchHosts.push(host);
    }
  }

  /**
   * Where a vCPU made runnable goes (select_task_rq at a wake-up): the host CPU it last ran on, unless
   * that one is busy and another sits idle (select_idle_sibling). Not while its last host CPU is still
   * saving its state (onCpu): only that host CPU may load it until the save is done. A wake-up whose
   * last host CPU is free costs two loads more.
   */
  #placement(vcpu: number): number {
    const home = this.homeHostCpu(vcpu);
    const queues = this.runQueues;
    const cpus = this.hostCpus;
    if (cpus.currentVcpu(home) < 0 && queues.length(home) === 0) return home;
    if (Atomics.load(queues.words, queues.taskIndex(vcpu, 'onCpu')) !== 0) return home;
    const hosts = this.hostCpuCount;
    for (let step = 1; step < hosts; step++) {
      const host = (home + step) % hosts;
      if (cpus.isIdle(host) && queues.length(host) === 0) return host;
    }
    return home;
  }
}
