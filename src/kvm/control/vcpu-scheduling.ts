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
import { TaskState, type RunQueues } from '../../host/run-queue.js';

/** The words the protocol reads beside the tasks: where each vCPU is loaded, and the placement. */
export interface VcpuSchedulingWords {
  readonly control: Int32Array;
  /** Int32 index of the vCPU's hostThreadSlot word (the host CPU of its last load, kept while put). */
  hostSlotIndex(vcpu: number): number;
  /** Int32 index of the header's hostCpus word. */
  readonly hostCpuCountIndex: number;
}

export class VcpuScheduling {
  readonly hostCpus: HostCpus;
  readonly runQueues: RunQueues;
  readonly #words: VcpuSchedulingWords;

  constructor(hostCpus: HostCpus, runQueues: RunQueues, words: VcpuSchedulingWords) {
    this.hostCpus = hostCpus;
    this.runQueues = runQueues;
    this.#words = words;
  }

  /** Host CPUs the VM runs on (the header word main stores at creation). */
  get hostCpuCount(): number {
    return Math.max(1, Atomics.load(this.#words.control, this.#words.hostCpuCountIndex));
  }

  /** Placement: vCPU i runs on host CPU i mod P, pinned (migration is a later step). */
  homeHostCpu(vcpu: number): number {
    return vcpu % this.hostCpuCount;
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
        if (queues.transition(vcpu, TaskState.Blocking, TaskState.Woken)) return true;
      } else if (state === TaskState.Blocked) {
        if (queues.transition(vcpu, TaskState.Blocked, TaskState.Queued)) {
          this.#enqueue(vcpu);
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
    if (host >= 0) this.hostCpus.ring(host);
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

  #enqueue(vcpu: number): void {
    const host = this.homeHostCpu(vcpu);
    this.runQueues.enqueue(host, vcpu);
    this.hostCpus.wake(host);
  }
}
