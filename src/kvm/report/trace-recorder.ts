// Per-vCPU event recording for --trace, in the vCPU's own worker: fixed-size records in a growable
// buffer (no objects on the IPI path), handed back with the exit report. The main thread turns them
// into Chrome trace-event JSON (chrome-trace.ts) or ftrace text (ftrace-text.ts). Bounded: past the
// cap, events are counted as dropped rather than growing memory without limit.
//
// One record is five doubles (40 bytes): the time (ns on the VM clock) in the first, then eight
// unsigned 32-bit words in the other four: the kind, the host CPU the vCPU was loaded on when it
// happened (stamped from `cpu`, set at vcpuLoad), and up to six payload words (a..f). Every payload
// value is a 32-bit quantity (ICR halves, EXITINFO halves, offsets, ids), so none is rounded.
//
// One of KVM's paths chooses its tracepoints from the target's state (interruptDelivery): the
// recorder reads those control words itself, so each recording site stays one `trace?.` call and
// costs nothing when tracing is off.

import { GuestExit } from '../../guest/guest-cpu.js';
import { SvmExitCode } from '../../hw/avic/avic-exit.js';
import { VcpuMode, VcpuRunState } from '../control/vcpu-run-state.js';
import type { VmControlViews } from '../control/vm-control-views.js';

export const TraceEventKind = {
  /** An ICR write that sent an IPI. a = ICR low; b = destination | ((exit cause + 1) << 8), 0 = no exit. */
  IpiSent: 1,
  /** An interrupt taken (handler entry). a = vector. */
  InterruptDelivered: 2,
  /**
   * An AVIC_NOACCEL exit, or an APIC access emulated as MMIO. a = register offset; b = 1 trap,
   * 0 fault, 2 emulated MMIO (AVIC inhibited); c = 1 for a write; d = EXITINFO2's vector field.
   */
  UnacceleratedAccessExit: 3,
  /** HLT: the vCPU stops executing guest code (kvm_vcpu_halt begins). */
  HaltBegin: 4,
  /** HLT ends. a = 1 if the vCPU really slept (blocked), 0 if halt-polling caught the event. */
  HaltEnd: 5,
  /** A sleep ended by a doorbell ring (a wake-up). */
  WakeUp: 6,
  /** VMRUN (trace_kvm_entry). a = guest rip. */
  GuestEntry: 7,
  /** A #VMEXIT (trace_kvm_exit). a = exit code; b = guest rip; c, d = EXITINFO1 low, high; e, f = EXITINFO2 low, high. */
  VmExit: 8,
  /** avic_incomplete_ipi_interception (trace_kvm_avic_incomplete_ipi). a = ICR high; b = ICR low; c = cause (id); d = table index. */
  AvicIncompleteIpi: 9,
  /** avic_ring_doorbell (trace_kvm_avic_doorbell): KVM rang a running target's doorbell. a = target vCPU id; b = the host physical APIC id rung. */
  AvicDoorbell: 10,
  /** avic_kick_target_vcpus left its fast path (trace_kvm_avic_kick_vcpu_slowpath). a = ICR high; b = ICR low; c = table index. */
  AvicKickSlowPath: 11,
  /** The vCPU's task was scheduled in on host CPU `cpu` (vcpu_load, kvm_sched_in). */
  VcpuLoad: 12,
  /** The vCPU's task was scheduled out (vcpu_put, kvm_sched_out). a = TaskSwitchState. */
  VcpuPut: 13,
  /** kvm_vcpu_wake_up of a blocked vCPU (try_to_wake_up: sched_waking). a = target vCPU; b = the host CPU it is loaded on. */
  VcpuWaking: 14,
} as const;
export type TraceEventKind = (typeof TraceEventKind)[keyof typeof TraceEventKind];

/** How a put task left its CPU: sched_switch's prev_state ("R", "R+" preempted, "S" asleep). */
export const TaskSwitchState = {
  /** Still runnable, gave the CPU up itself (a directed yield): "R". */
  Runnable: 0,
  /** Still runnable, preempted (the quantum ran out): "R+". */
  Preempted: 1,
  /** Blocked (kvm_vcpu_block's TASK_INTERRUPTIBLE), or parked out of KVM_RUN: "S". */
  Sleeping: 2,
} as const;
export type TaskSwitchState = (typeof TaskSwitchState)[keyof typeof TaskSwitchState];

/** Doubles per record: the time, then four doubles' worth of 32-bit words. */
export const TRACE_EVENT_FIELDS = 5;
const WORDS_PER_EVENT = TRACE_EVENT_FIELDS * 2;
/** Word offsets inside a record (the time takes words 0 and 1). */
const KIND_WORD = 2;
const CPU_WORD = 3;
const PAYLOAD_WORD = 4;
/** At most this many events per vCPU (20 MiB). */
export const TRACE_EVENTS_PER_VCPU_LIMIT = 1 << 19;

/** The control words the delivery paths' tracepoints are chosen from (the VM's control views). */
export type TraceTargetViews = Pick<VmControlViews, 'control' | 'controlBlockIndex' | 'headerIndex'>;

export class TraceRecorder {
  #events = new Float64Array(4096 * TRACE_EVENT_FIELDS);
  #words = new Uint32Array(this.#events.buffer);
  #length = 0;
  dropped = 0;
  /** The host CPU the vCPU is loaded on (its host thread slot), stamped on every event; set by vcpuLoad. */
  cpu = 0;
  #loaded = false;
  readonly #clock: () => number;
  readonly #views: TraceTargetViews | undefined;

  constructor(clock: () => number, views?: TraceTargetViews) {
    this.#clock = clock;
    this.#views = views;
  }

  record(kind: TraceEventKind, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0): void {
    if (this.#length + TRACE_EVENT_FIELDS > this.#events.length) {
      if (this.#events.length >= TRACE_EVENTS_PER_VCPU_LIMIT * TRACE_EVENT_FIELDS) {
        this.dropped++;
        return;
      }
      const grown = new Float64Array(this.#events.length * 2);
      grown.set(this.#events);
      this.#events = grown;
      this.#words = new Uint32Array(grown.buffer);
    }
    const at = this.#length;
    this.#events[at] = this.#clock();
    const words = this.#words;
    const word = at * 2;
    words[word + KIND_WORD] = kind;
    words[word + CPU_WORD] = this.cpu;
    words[word + PAYLOAD_WORD] = a;
    words[word + PAYLOAD_WORD + 1] = b;
    words[word + PAYLOAD_WORD + 2] = c;
    words[word + PAYLOAD_WORD + 3] = d;
    words[word + PAYLOAD_WORD + 4] = e;
    words[word + PAYLOAD_WORD + 5] = f;
    this.#length = at + TRACE_EVENT_FIELDS;
  }

  /**
   * The vCPU's task runs on host CPU `cpu` from now on (sched_switch in). Idempotent, as KVM's
   * vcpu_load pairs with vcpu_put: a load while loaded on the same CPU records nothing.
   */
  vcpuLoad(cpu: number): void {
    if (this.#loaded && this.cpu === cpu) return;
    if (this.#loaded) this.record(TraceEventKind.VcpuPut, TaskSwitchState.Runnable);
    this.cpu = cpu;
    this.#loaded = true;
    this.record(TraceEventKind.VcpuLoad);
  }

  /** The vCPU's task leaves its host CPU in `state` (sched_switch out). A put while put records nothing. */
  vcpuPut(state: TaskSwitchState): void {
    if (!this.#loaded) return;
    this.#loaded = false;
    this.record(TraceEventKind.VcpuPut, state);
  }

  /**
   * svm_complete_interrupt_delivery's tracepoints, for an interrupt just made pending for `target`
   * (its IRR bit is set): with AVIC active, a target in guest mode on another host CPU has its
   * doorbell rung (avic_ring_doorbell: kvm_avic_doorbell with that CPU's host physical APIC id); a
   * blocked target is woken (kvm_vcpu_wake_up -> try_to_wake_up: sched_waking). The target's mode is
   * read as KVM reads vcpu->mode, so a race with its entry or exit is traced as KVM would see it.
   */
  interruptDelivery(target: number): void {
    const views = this.#views;
    if (views === undefined) return;
    const control = views.control;
    const slot = Atomics.load(control, views.controlBlockIndex(target, 'hostThreadSlot'));
    if (Atomics.load(control, views.controlBlockIndex(target, 'mode')) === VcpuMode.InGuestMode) {
      const apicvActive = Atomics.load(control, views.headerIndex('apicvInhibitReasons')) === 0;
      if (apicvActive && slot !== this.cpu) this.record(TraceEventKind.AvicDoorbell, target, slot);
      return;
    }
    if (Atomics.load(control, views.controlBlockIndex(target, 'runState')) === VcpuRunState.Blocked)
      this.record(TraceEventKind.VcpuWaking, target, slot);
  }

  /** The recorded events (a copy of exactly the used part). */
  take(): Float64Array {
    return this.#events.slice(0, this.#length);
  }
}

/**
 * trace_kvm_exit for a slice of guest execution that ended without an exit handler: HLT and PAUSE go
 * through svm_handle_exit, which records them with their exit info; a slice that ran out, or stopped
 * for a request or the timer, is a host interrupt (SVM_EXIT_INTR: the host's tick, or a kick's IPI);
 * a guest fault ends the run, as a shutdown (triple fault) ends a real guest's.
 */
export function traceSliceExit(trace: TraceRecorder, exit: GuestExit, rip: number): void {
  if (exit === GuestExit.Halt || exit === GuestExit.PauseLoop) return;
  trace.record(TraceEventKind.VmExit, exit === GuestExit.Fault ? SvmExitCode.Shutdown : SvmExitCode.Interrupt, rip);
}

/** Read access to what TraceRecorder.take() returned (on the main thread, after the run). */
export class TraceEvents {
  readonly count: number;
  readonly #events: Float64Array;
  readonly #words: Uint32Array;

  constructor(events: Float64Array) {
    this.#events = events;
    this.#words = new Uint32Array(events.buffer, events.byteOffset, events.length * 2);
    this.count = Math.floor(events.length / TRACE_EVENT_FIELDS);
  }

  /** Nanoseconds on the VM clock. */
  time(index: number): number {
    return this.#events[index * TRACE_EVENT_FIELDS]!;
  }

  kind(index: number): number {
    return this.#words[index * WORDS_PER_EVENT + KIND_WORD]!;
  }

  cpu(index: number): number {
    return this.#words[index * WORDS_PER_EVENT + CPU_WORD]!;
  }

  /** Payload word `field`: 0 = a ... 5 = f. */
  field(index: number, field: number): number {
    return this.#words[index * WORDS_PER_EVENT + PAYLOAD_WORD + field]!;
  }
}
