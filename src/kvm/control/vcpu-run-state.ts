// The vCPU thread as a state machine (Firecracker's vstate/vcpu.rs shape): the owning vCPU moves its
// own run state, and only along the transitions listed here; anything else is an emulator bug and
// asserts with the vCPU named.

export const VcpuRunState = {
  /** Created by the main thread; its worker has not started running it. */
  Created: 0,
  /** Runnable: loaded on its host CPU (guest code, an exit, halt-polling) or preempted on its run queue. */
  Running: 1,
  /** Halted and blocked (kvm_vcpu_block: IsRunning clear, off the run queue) until kvm_vcpu_wake_up and its next load. */
  Blocked: 2,
  /** Parked at the main thread's request (vcpu put; IsRunning clear). */
  Paused: 3,
  /** Returned from its task: done, stopped or faulted. */
  Finished: 4,
} as const;
export type VcpuRunState = (typeof VcpuRunState)[keyof typeof VcpuRunState];

const LEGAL_TRANSITIONS: Readonly<Record<VcpuRunState, readonly VcpuRunState[]>> = {
  [VcpuRunState.Created]: [VcpuRunState.Running, VcpuRunState.Finished],
  [VcpuRunState.Running]: [VcpuRunState.Blocked, VcpuRunState.Paused, VcpuRunState.Finished],
  [VcpuRunState.Blocked]: [VcpuRunState.Running],
  [VcpuRunState.Paused]: [VcpuRunState.Running, VcpuRunState.Finished],
  [VcpuRunState.Finished]: [],
};

export const VCPU_RUN_STATE_NAMES: Readonly<Record<VcpuRunState, string>> = {
  [VcpuRunState.Created]: 'created',
  [VcpuRunState.Running]: 'running',
  [VcpuRunState.Blocked]: 'blocked',
  [VcpuRunState.Paused]: 'paused',
  [VcpuRunState.Finished]: 'finished',
};

export function isLegalTransition(from: VcpuRunState, to: VcpuRunState): boolean {
  return (LEGAL_TRANSITIONS[from] ?? []).includes(to);
}

export function runStateName(state: number): string {
  return VCPU_RUN_STATE_NAMES[state as VcpuRunState] ?? `invalid(${state})`;
}

/** Moves a vCPU's run-state word, asserting the transition is legal. */
export function transitionRunState(words: Int32Array, index: number, to: VcpuRunState, vcpu: number): void {
  const from = Atomics.load(words, index) as VcpuRunState;
  if (!isLegalTransition(from, to)) {
    throw new Error(`vCPU ${vcpu}: illegal run-state transition ${runStateName(from)} -> ${runStateName(to)}`);
  }
  Atomics.store(words, index, to);
}

/** KVM's vcpu->mode: whether the vCPU is executing guest code (its RAM windows may be cached). */
export const VcpuMode = { OutsideGuestMode: 0, InGuestMode: 1 } as const;

/**
 * The control block's apicMode word: the vCPU's APIC mode, written by the owning vCPU after the ID
 * and LDR it implies (x2apic-msr.ts, local-apic-emulation.ts), read by software-path senders and the
 * main thread's map rebuild. 0 is the reset state, so a fresh (zeroed) block reads xAPIC.
 */
export const VcpuApicMode = { Xapic: 0, X2apic: 1 } as const;
export type VcpuApicMode = (typeof VcpuApicMode)[keyof typeof VcpuApicMode];

/** Request bits (KVM_REQ_*): set by any thread with Atomics.or, consumed by the owning vCPU. */
export const VcpuRequest = {
  /** Leave the run loop and finish. */
  Stop: 1 << 0,
  /** Park until the bit is cleared. */
  Pause: 1 << 1,
  /** The memslot set changed: reload the RAM windows before entering the guest again. */
  MemslotsChanged: 1 << 2,
  /** Just leave guest mode and look again (kvm_vcpu_kick). */
  Kick: 1 << 3,
  /** A non-maskable interrupt is pending. */
  Nmi: 1 << 4,
  /** rfc-v2: the backing page was re-initialised elsewhere; switch to it (KVM_REQ_APIC_PAGE_RELOAD). */
  ApicPageReload: 1 << 5,
  /** An INIT IPI was accepted (KVM_APIC_INIT in apic->pending_events): reset, then wait for a start-up. */
  Init: 1 << 6,
  /**
   * A start-up IPI was accepted (KVM_APIC_SIPI): the sender stores the vector in the control block's
   * startUpVector (Atomics.store) before it sets this bit, which pairs with the target's load after
   * it sees the bit. Ignored unless the target waits for a start-up (SDM: wait-for-SIPI state).
   */
  StartUp: 1 << 7,
  /**
   * Set together with Pause by the main thread's pause(); the vCPU clears it (then notifies the
   * requests word) once it is parked for that pause: put, out of SRCU, Paused published. pause() waits
   * for it rather than for the Paused state, which a vCPU still shows from before a resume() it has
   * seen but not yet acted on.
   */
  PauseAcknowledge: 1 << 8,
  /**
   * KVM_REQ_APICV_UPDATE: the VM's inhibit bitmap went from zero to non-zero or back; re-derive
   * this vCPU's AVIC state (kvm_vcpu_update_apicv). Like KVM's (KVM_REQUEST_NO_WAKEUP), it wakes
   * nobody: a sleeping vCPU picks it up when it runs again.
   */
  ApicvUpdate: 1 << 9,
} as const;

/** What a vCPU is waiting for, for the watchdog's report. */
export const VcpuWaitReason = {
  None: 0,
  Halted: 1,
  Paused: 2,
  PauseLoopYield: 3,
  ApicMapRebuild: 4,
  /**
   * An application processor in wait-for-SIPI (SDM vol. 3 §9.4; KVM's mp_state UNINITIALIZED or
   * INIT_RECEIVED): blocked with IsRunning clear, woken only by INIT and start-up.
   */
  WaitForStartUp: 5,
} as const;
export const VCPU_WAIT_REASON_NAMES = [
  'none',
  'halted (HLT, blocked until kvm_vcpu_wake_up)',
  'paused by the main thread',
  'yielding after a pause loop',
  'waiting for the main thread to rebuild the APIC map',
  'wait-for-SIPI (an application processor waiting for INIT and a start-up IPI)',
] as const;

/** The control block's finished word: why a vCPU's run ended (0 while it runs). */
export const VcpuFinish = {
  Running: 0,
  Done: 1,
  Stopped: 2,
  Fault: 3,
  /** An emulator bug thrown while it ran (its host CPU carries the error to main). */
  Error: 4,
} as const;
export type VcpuFinish = (typeof VcpuFinish)[keyof typeof VcpuFinish];
