// The vCPU's exit dispatch (svm_handle_exit: one switch on the #VMEXIT code, as svm_exit_handlers),
// and the exits taken inside a guest instruction (an APIC access, an APIC MSR write), which leave
// guest mode, handle the exit as an SRCU reader and return to guest mode within the instruction.
// The run loop (vcpu.ts) owns what an exit decides for it: a HLT marks the vCPU halted, a PAUSE
// loop asks for a directed yield; both reach it through VcpuExitsHost.
//
// Orderings (docs/architecture.md#orderings, O2, O6): leaving guest mode stores the mode before the
// SRCU read lock; returning stores the mode, then checks the memslot generation, then drops SRCU
// (as vcpu_enter_guest).

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { hostThread } from '../../host/host-thread.js';
import { VirtualTimeCost } from '../../host/virtual-time-costs.js';
import type { AvicVmcb } from '../../hw/avic/avic-apic-access.js';
import { NPF_ERROR_CODE_WRITE, SvmExitCode } from '../../hw/avic/avic-exit.js';
import type { VcpuLocks } from '../control/kvm-locks.js';
import { readInjectedBugs } from '../control/injected-bugs.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { VcpuCounters } from '../control/vcpu-counters.js';
import { VcpuMode } from '../control/vcpu-run-state.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { LocalApicEmulation } from '../lapic/local-apic-emulation.js';
import { TraceEventKind, type TraceRecorder } from '../report/trace-recorder.js';
import type { AvicVcpu } from '../svm/avic.js';
import { avicIncompleteIpiInterception, type IncompleteIpiHost } from '../svm/avic-incomplete-ipi.js';
import { avicUnacceleratedAccessInterception, type UnacceleratedAccessHost } from '../svm/avic-unaccelerated-access.js';
import { writeModelSpecificRegister, type MsrHost } from './model-specific-registers.js';
import type { VcpuMemslots } from './vcpu-memslots.js';
import type { VcpuSrcu } from './vcpu-srcu.js';
import type { VcpuFirstExitHook } from './vcpu-startup.js';

/** What the vCPU lends its exit handling. */
export interface VcpuExitsHost {
  readonly index: number;
  readonly control: Int32Array;
  /** Int32 index of the vCPU's mode word. */
  readonly modeIndex: number;
  readonly cpu: GuestCpu;
  readonly vmcb: AvicVmcb;
  readonly avic: AvicVcpu;
  readonly lapic: LocalApicEmulation;
  readonly locks: VcpuLocks;
  readonly srcu: VcpuSrcu;
  readonly memslots: VcpuMemslots;
  readonly counters: VcpuCounters;
  readonly trace: TraceRecorder | undefined;
  /** What the AVIC exit handlers are given (narrow hosts; no handler sees the vCPU), over the VM's views. */
  readonly exitHost: IncompleteIpiHost & UnacceleratedAccessHost & { readonly views: VmControlViews };
  readonly msrHost: MsrHost;
  /** The current slice's quantum deadline (the host clock, nowMs): exits past it end the guest slice. */
  quantumDeadlineMs(): number;
  /** SVM_EXIT_HLT: the vCPU halts (kvm_emulate_halt). */
  halt(): void;
  /** SVM_EXIT_PAUSE: a pause loop (kvm_vcpu_on_spin). */
  pauseLoop(): void;
}

export class VcpuExits {
  readonly #host: VcpuExitsHost;
  /** host.exitHost with the bug zoo's flags (VmHeader.injectedBugs), read once here. */
  readonly #exitHost: IncompleteIpiHost & UnacceleratedAccessHost;
  /** Debug only: the worker's first-exit hook (VcpuFirstExitHook), run at the vCPU's first exit. */
  readonly #onFirstExit: VcpuFirstExitHook | undefined;
  #firstExitDone = false;

  constructor(host: VcpuExitsHost, onFirstExit: VcpuFirstExitHook | undefined) {
    this.#host = host;
    this.#onFirstExit = onFirstExit;
    this.#exitHost = { ...host.exitHost, injectedBugs: readInjectedBugs(host.exitHost.views) };
  }

  /** The vCPU has taken its first exit (its hook, if any, ran: in this worker or, before a migration, another). */
  get firstExitDone(): boolean {
    return this.#firstExitDone;
  }

  set firstExitDone(done: boolean) {
    this.#firstExitDone = done;
  }

  /**
   * The handler of the #VMEXIT in the VMCB's exit fields (svm_exit_handlers), outside guest mode and
   * an SRCU reader. `operand`, `value`, `high` are what the exiting instruction named (the APIC
   * offset or MSR index and the value written), as KVM's handlers read them from the guest's
   * registers or its instruction emulator. Returns the value an emulated read produces.
   */
  handle(operand: number, value: number, high: number): number {
    const host = this.#host;
    const exit = host.vmcb.exit;
    hostThread().advance(VirtualTimeCost.vmexitRoundTripNs);
    host.trace?.record(
      TraceEventKind.VmExit,
      exit.exitCode,
      host.cpu.pc,
      exit.exitInfo1Low,
      exit.exitInfo1High,
      exit.exitInfo2Low,
      exit.exitInfo2High,
    );
    switch (exit.exitCode) {
      case SvmExitCode.AvicIncompleteIpi:
        avicIncompleteIpiInterception(exit, this.#exitHost);
        return 0;
      case SvmExitCode.AvicUnacceleratedAccess:
        return avicUnacceleratedAccessInterception(exit, operand, value, this.#exitHost);
      case SvmExitCode.NestedPageFault:
        // The APIC-access page is not mapped while AVIC is inhibited: KVM emulates the access as MMIO.
        return host.lapic.emulateMmioAccess(operand, (exit.exitInfo1Low & NPF_ERROR_CODE_WRITE) !== 0, value);
      case SvmExitCode.Msr:
        writeModelSpecificRegister(host.msrHost, host.cpu, operand, value, high);
        return 0;
      case SvmExitCode.Interrupt:
        // A kick for KVM_REQ_APICV_UPDATE, seen at an APIC access: re-derive AVIC before it is used.
        host.avic.updateApicv(host.locks.apicvUpdateLock);
        return 0;
      case SvmExitCode.Halt:
        host.counters.count(VcpuStatistic.haltExits);
        host.halt();
        return 0;
      case SvmExitCode.Pause:
        host.counters.count(VcpuStatistic.pauseLoopExits);
        host.pauseLoop();
        return 0;
      default:
        throw new Error(`no handler for #VMEXIT 0x${exit.exitCode.toString(16)}`);
    }
  }

  /**
   * An exit inside a guest instruction (an APIC access, an APIC MSR write): leave guest mode and
   * become an SRCU reader (vcpu_run), handle it, then return to guest mode: mode first, then the
   * memslot generation check, then drop SRCU (as vcpu_enter_guest).
   */
  fromGuestInstruction(operand: number, value: number, high: number): number {
    const host = this.#host;
    Atomics.store(host.control, host.modeIndex, VcpuMode.OutsideGuestMode);
    host.srcu.readLock('vcpu_run: exit handling: srcu_read_lock');
    if (!this.#firstExitDone) {
      this.#firstExitDone = true;
      const srcu = host.srcu;
      this.#onFirstExit?.({
        locks: host.locks,
        vcpu: host.index,
        dropSrcu: () => srcu.readUnlock(),
        retakeSrcu: (site) => srcu.readLock(site),
      });
    }
    const result = this.handle(operand, value, high);
    // An exit may have taken long (a wait for the APIC map rebuild, a lock): past the quantum, end
    // the slice after this instruction so that the host CPU can preempt (the quantum's overshoot is
    // bounded by one exit, not by the slice's instruction budget).
    if (hostThread().nowMs() >= host.quantumDeadlineMs()) host.cpu.requestExit();
    host.trace?.record(TraceEventKind.GuestEntry, host.cpu.pc);
    Atomics.store(host.control, host.modeIndex, VcpuMode.InGuestMode);
    if (host.memslots.stale()) host.memslots.reload();
    host.srcu.readUnlock();
    return result;
  }

  /**
   * Whether AVIC handles this vCPU's next APIC access. An APICv update not yet handled was a kick out
   * of guest mode before this instruction (SVM_EXIT_INTR): handle it first (svm/avic.ts).
   */
  apicvActive(): boolean {
    const host = this.#host;
    if (host.avic.apicvStale()) {
      host.vmcb.exit.set(SvmExitCode.Interrupt, 0, 0);
      this.fromGuestInstruction(0, 0, 0);
    }
    return host.avic.apicvActive;
  }
}
