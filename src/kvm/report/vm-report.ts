// The run report: per-vCPU counters (each written by its own vCPU, summed here), the IPI balance and
// why the run ended. The balance is an identity, checked rather than assumed:
//
//   messages sent = accepted + coalesced + dropped
//   accepted + timer interrupts accepted
//                 = delivered + still pending (an IRR bit, a pending NMI, INIT or start-up)
//                   + discarded by INIT + NMIs merged at the target + lost
//
// Timer interrupts are not IPIs (no message was sent) but they are taken like one, so their accepted
// count joins the left side; INIT and start-up IPIs are accepted by their sender and counted as
// delivered by the target when it takes them (vcpu-boot.ts); an INIT wipes the IRR and a pending NMI,
// and what it wiped is counted as discarded, not lost. NMIs are accepted by their sender and queued;
// the target latches at most two (one while an NMI is in service) and counts the rest as merged.
//
// so `lost` is computed, and anything but zero is a bug the report (and the command's exit status)
// makes visible.

//
// The report sits below the VM (src/kvm layering: control, lapic, svm, report, vcpu, vm): it is built
// from a plain record, VmReportInput, that Vm.wait() fills in, so nothing here imports vm/ or vcpu/.

import type { ScheduleSummary } from '../../host/deterministic/deterministic-schedule.js';
import { describeGuestFault, type FaultSource, type GuestFault } from '../../guest/guest-fault.js';
import { ApicRegister } from '../../hw/apic/apic-register.js';
import { VcpuStatistics, GUEST_REPORT_SLOTS } from '../control/vm-layout.js';
import { VcpuRequest, VCPU_WAIT_REASON_NAMES, runStateName } from '../control/vcpu-run-state.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { mergeLatencyHistograms, summarizeLatency, type LatencySummary } from './latency-histogram.js';
import type { VmLockdepSummary } from '../control/kvm-locks.js';
import { hostCpuUsage, vcpuScheduling, type HostCpuUsage, type VcpuScheduling } from './host-cpu-report.js';

/** Memslot churn, for the report (VmReport.memslots); counted by the VM's memslot writer (VmMemslots). */
export interface MemslotStatistics {
  /** Publications of a new memslot set (user updates and the APIC-access slot). */
  updates: number;
  /** Grace periods waited for (0 before the vCPUs run; a delete or move waits two). */
  gracePeriods: number;
  gracePeriodMsTotal: number;
  gracePeriodMsMax: number;
}

/** What the report reads of one vCPU's run (the vCPU's VcpuExitReport, as its worker returned it). */
export interface VcpuExitSummary {
  readonly reason: string;
  readonly fault?: GuestFault;
  /** This vCPU's latency samples (HDR histogram, compressed). */
  readonly latencyHistogram?: string;
}

/** Everything the report is built from, handed over by the VM once its vCPUs have stopped. */
export interface VmReportInput {
  /** The VM's shared memory: per-vCPU counters and control words, APIC pages, guest report slots. */
  readonly memory: VmControlViews;
  readonly createdVcpus: number;
  readonly config: {
    readonly policy: string;
    readonly ipiVirtualization: boolean;
    readonly maxVcpus: number;
    readonly hostCpus: number;
    readonly quantumUs: number;
    readonly hostIdlePollUs: number;
    /** VmConfig.inject: a bug of the bug zoo or its -fixed twin, 'none' (or absent) when none. */
    readonly inject?: string;
  };
  /** vCPU creation's counts (VcpuCreation.statistics). */
  readonly creation: {
    readonly hotAdds: number;
    readonly hotAddMs: readonly number[];
    readonly apicAccessMemslotResizes: number;
    readonly backingPagesReinitialised: number;
    readonly strandedIrrBits: number;
  };
  readonly memslots: MemslotStatistics;
  readonly lockdep: VmLockdepSummary;
  /** The run injected a buggy lock replay, whose purpose is a validator report: one does not fail the run. */
  readonly lockReportExpected: boolean;
  /** Where the instruction at `address` was written (the loaded image's source map), if known. */
  readonly sourceOf: (address: number) => FaultSource | undefined;
}

export interface VcpuCreationReport {
  readonly created: number;
  readonly maxVcpus: number;
  readonly hotAdds: number;
  /** Hot-add latency (creation call to return), milliseconds; 0 without hot-adds. */
  readonly hotAddMsMedian: number;
  readonly hotAddMsMax: number;
  /** rfc-v2 only (upstream: all 0): APIC-access memslot resizes and the pages re-initialised. */
  readonly apicAccessMemslotResizes: number;
  readonly backingPagesReinitialised: number;
  /** Owners that switched to a re-initialised page (KVM_REQ_APIC_PAGE_RELOAD handled). */
  readonly backingPageReloads: number;
  /** IRR bits left in released pages: stale-pointer writes and interrupts pending at re-initialisation. */
  readonly strandedIrrBits: number;
}

function vcpuCreationReport(input: VmReportInput, perVcpu: readonly VcpuReport[]): VcpuCreationReport {
  const statistics = input.creation;
  const sorted = [...statistics.hotAddMs].sort((a, b) => a - b);
  return {
    created: input.createdVcpus,
    maxVcpus: input.config.maxVcpus,
    hotAdds: statistics.hotAdds,
    hotAddMsMedian: sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)]!,
    hotAddMsMax: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
    apicAccessMemslotResizes: statistics.apicAccessMemslotResizes,
    backingPagesReinitialised: statistics.backingPagesReinitialised,
    backingPageReloads: sum(perVcpu.map((report) => report.counters.backingPageReloads)),
    strandedIrrBits: statistics.strandedIrrBits,
  };
}

export type VmExitReason = 'all-done' | 'all-halted' | 'time-limit' | 'timeout' | 'fault' | 'watchdog';

export interface VmExit {
  readonly reason: VmExitReason;
  readonly detail: string;
  readonly stuckVcpus?: readonly number[];
}

/**
 * How the run ended: a fault wins; else vCPUs that would not stop (torn down), after the watchdog's
 * finding if it fired first. A watchdog exit ends with the wait-for graph of the locks.
 */
export function finalExit(supervised: VmExit, torn: VmExit | undefined, waitForGraph: () => string): VmExit {
  if (supervised.reason === 'fault' || (torn === undefined && supervised.reason !== 'watchdog')) return supervised;
  const exit =
    torn === undefined
      ? supervised
      : supervised.reason === 'watchdog'
        ? { ...torn, detail: `${supervised.detail}; then ${torn.detail}` }
        : torn;
  return { ...exit, detail: `${exit.detail}\n${waitForGraph()}` };
}

type StatisticName = keyof typeof VcpuStatistics.fieldOffsets;
export type VcpuCounters = Record<Exclude<StatisticName, 'incompleteIpiExits'>, number> & { incompleteIpiExits: number[] };

export interface IpiBalance {
  readonly commands: number;
  readonly sent: number;
  readonly accepted: number;
  readonly coalesced: number;
  readonly dropped: { readonly illegalVector: number; readonly invalidTarget: number; readonly unsupported: number };
  readonly delivered: number;
  readonly pending: number;
  /** LVT timer expiries that newly set their vector in IRR (not IPIs; on the accepted side of the balance). */
  readonly timerInterrupts: number;
  /** Accepted interrupts an INIT wiped before they were taken (IRR bits, pending NMIs). */
  readonly discardedByInit: number;
  /** Accepted NMIs that found the target's latch full (two pending, or one while in service) and merged. */
  readonly nmisMerged: number;
  readonly lost: number;
}

export interface VcpuReport {
  readonly vcpu: number;
  readonly runState: string;
  readonly waitReason: string;
  readonly exit: string;
  readonly fault?: string;
  readonly counters: VcpuCounters;
  readonly guest: { readonly reports: number[]; readonly counters: number[]; readonly done: boolean; readonly doneStatus?: number };
  /** IRR bits still set at the end (accepted, never taken). */
  readonly pendingVectors: number[];
  /** This vCPU's guest latency samples (hypercall LatencySample), if any. */
  readonly latencyNs?: LatencySummary;
  /** Where it ran, how long it was loaded, and how long it waited, runnable, for its host CPU. */
  readonly scheduling: VcpuScheduling;
}

export interface VmReport {
  readonly vcpus: number;
  readonly policy: string;
  readonly ipiVirtualization: boolean;
  /** Host CPUs the vCPUs were scheduled onto, the quantum, the idle poll (VmConfig.hostCpus, quantumUs, hostIdlePollUs). */
  readonly hostCpuCount: number;
  readonly quantumUs: number;
  readonly hostIdlePollUs: number;
  /** From start() to the end of the run. */
  readonly durationSeconds: number;
  /** From start() until every vCPU was running (worker start-up); rates exclude it. */
  readonly startupSeconds: number;
  readonly exit: VmExit;
  /** No fault, timeout, watchdog, lost IPI or wake-up, vCPU error, nor a lockdep report the run did not inject. */
  readonly ok: boolean;
  readonly ipis: IpiBalance;
  readonly ipisPerSecond: number;
  /** Every vCPU's latency samples merged (HDR histograms), if the guest recorded any. */
  readonly latencyNs?: LatencySummary;
  readonly exits: {
    readonly incompleteIpi: {
      invalidInterruptType: number;
      targetNotRunning: number;
      invalidTarget: number;
      invalidBackingPage: number;
      invalidIpiVector: number;
    };
    readonly unacceleratedAccess: { trap: number; fault: number };
    /** APIC-page accesses emulated as MMIO while an inhibit kept AVIC inactive (no APIC-access page mapping). */
    readonly apicMmioEmulation: number;
    readonly halt: number;
    readonly pauseLoop: number;
    readonly hypercall: number;
    readonly msr: number;
  };
  readonly doorbells: number;
  /** The bug zoo entry the run injected (VmConfig.inject, docs/bug-zoo.md): a bug or its -fixed twin; null when none. */
  readonly inject: string | null;
  /** The AMD erratum #1235 model's window W in microseconds (VmConfig.erratum1235WindowUs), null when the model is off. */
  readonly erratum1235WindowUs: number | null;
  /** IPI targets whose recent IsRunning clear the erratum #1235 model missed: a doorbell instead of the cause-1 exit. */
  readonly erratumStaleIsRunningReads: number;
  readonly wakeups: number;
  readonly lostWakeups: number;
  /** Wake-ups whose ring came after the sleeper's bounded wait had already found the event. */
  readonly lateWakeups: number;
  readonly instructions: number;
  /** `source`: where the faulting instruction was written, when the program was loaded as an image. */
  readonly faults: readonly { vcpu: number; fault: GuestFault; description: string; source?: FaultSource }[];
  readonly errors: readonly { vcpu: number; message: string }[];
  readonly perVcpu: readonly VcpuReport[];
  /** Per host CPU: utilisation, vCPU switches, preemptions, directed yields, migrations. */
  readonly hostCpus: readonly HostCpuUsage[];
  /** vCPU creation under the backing-page policy: hot-adds, and what rfc-v2 re-initialisation cost. */
  readonly vcpuCreation: VcpuCreationReport;
  /** Memslot churn: updates published and the grace periods they waited for. */
  readonly memslots: MemslotStatistics;
  /** The lock-order validator: whether it ran (VmConfig.lockdep), and its first report, if any. */
  readonly lockdep?: VmLockdepSummary;
  /** A deterministic run's schedule (VmConfig.deterministic): seed, strategy, decisions, hash (docs/deterministic.md). */
  readonly schedule?: ScheduleSummary;
}

function readCounters(memory: VmControlViews, vcpu: number): VcpuCounters {
  const float64 = memory.controlFloat64;
  const counters = {} as Record<string, number | number[]>;
  for (const [name, spec] of Object.entries(VcpuStatistics.fields)) {
    const index = memory.statisticIndex(vcpu, name as StatisticName);
    counters[name] = (spec.count ?? 1) > 1 ? Array.from(float64.subarray(index, index + spec.count!)) : float64[index]!;
  }
  return counters as unknown as VcpuCounters;
}

function pendingVectors(memory: VmControlViews, vcpu: number): number[] {
  const words = memory.apicPageWords;
  const base = memory.apicPageBase(vcpu) + (ApicRegister.InterruptRequest >> 2);
  const vectors: number[] = [];
  for (let register = 0; register < 8; register++) {
    const word = Atomics.load(words, base + register * 4);
    for (let bit = 0; bit < 32; bit++) if ((word >>> bit) & 1) vectors.push(register * 32 + bit);
  }
  return vectors;
}

function guestReport(memory: VmControlViews, vcpu: number): VcpuReport['guest'] {
  const float64 = memory.controlFloat64;
  const reports = memory.guestReportIndex(vcpu, 'reports');
  const counters = memory.guestReportIndex(vcpu, 'counters');
  const done = float64[memory.guestReportIndex(vcpu, 'doneStatus')]!;
  return {
    reports: Array.from(float64.subarray(reports, reports + GUEST_REPORT_SLOTS)),
    counters: Array.from(float64.subarray(counters, counters + GUEST_REPORT_SLOTS)),
    done: done !== 0,
    ...(done !== 0 ? { doneStatus: done - 1 } : {}),
  };
}

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);

/** `results[vcpu]`: the vCPU's exit report, the error its worker failed with, or nothing if it never finished. */
export function buildVmReport(
  input: VmReportInput,
  exit: VmExit,
  results: readonly (VcpuExitSummary | Error | undefined)[],
  { durationSeconds, startupSeconds }: { durationSeconds: number; startupSeconds: number },
): VmReport {
  const memory = input.memory;
  const control = memory.control;
  const perVcpu: VcpuReport[] = [];
  const faults: VmReport['faults'][number][] = [];
  const errors: VmReport['errors'][number][] = [];
  let pendingTotal = 0;
  const histograms: string[] = [];
  for (let vcpu = 0; vcpu < input.createdVcpus; vcpu++) {
    const result = results[vcpu];
    const pending = pendingVectors(memory, vcpu);
    const requests = Atomics.load(control, memory.controlBlockIndex(vcpu, 'requests'));
    // NMIs: latched plus still queued (accepted, not yet taken); INIT and start-up: their request bits.
    const nmisPending =
      Atomics.load(control, memory.controlBlockIndex(vcpu, 'nmiPending')) +
      Atomics.load(control, memory.controlBlockIndex(vcpu, 'nmiQueued'));
    const requestsPending = nmisPending + [VcpuRequest.Init, VcpuRequest.StartUp].filter((request) => (requests & request) !== 0).length;
    pendingTotal += pending.length + requestsPending;
    const fault = result !== undefined && !(result instanceof Error) ? result.fault : undefined;
    const source = fault === undefined ? undefined : input.sourceOf(fault.pc);
    const description = fault === undefined ? undefined : describeGuestFault(fault, source);
    if (result instanceof Error) errors.push({ vcpu, message: result.message });
    else if (fault !== undefined) faults.push({ vcpu, fault, description: description!, ...(source === undefined ? {} : { source }) });
    const histogram = result !== undefined && !(result instanceof Error) ? result.latencyHistogram : undefined;
    if (histogram !== undefined) histograms.push(histogram);
    const latency = histogram === undefined ? undefined : summarizeLatency(mergeLatencyHistograms([histogram]));
    perVcpu.push({
      vcpu,
      runState: runStateName(Atomics.load(control, memory.controlBlockIndex(vcpu, 'runState'))),
      waitReason: VCPU_WAIT_REASON_NAMES[Atomics.load(control, memory.controlBlockIndex(vcpu, 'waitReason'))] ?? 'unknown',
      exit: result === undefined ? 'did not finish' : result instanceof Error ? 'error' : result.reason,
      ...(description === undefined ? {} : { fault: description }),
      counters: readCounters(memory, vcpu),
      guest: guestReport(memory, vcpu),
      pendingVectors: pending,
      ...(latency === undefined ? {} : { latencyNs: latency }),
      scheduling: vcpuScheduling(memory, vcpu),
    });
  }
  const total = (name: Exclude<StatisticName, 'incompleteIpiExits'>): number => sum(perVcpu.map((report) => report.counters[name]));
  const cause = (index: number): number => sum(perVcpu.map((report) => report.counters.incompleteIpiExits[index] ?? 0));
  const accepted = total('ipisAccepted');
  const delivered = total('interruptsDelivered');
  const timerInterrupts = total('timerInterruptsAccepted');
  const discardedByInit = total('interruptsDiscardedByInit');
  const nmisMerged = total('nmisMerged');
  const ipis: IpiBalance = {
    commands: total('ipiCommands'),
    sent: total('ipisSent'),
    accepted,
    coalesced: total('ipisCoalesced'),
    dropped: {
      illegalVector: total('ipisDroppedIllegalVector'),
      invalidTarget: total('ipisDroppedInvalidTarget'),
      unsupported: total('ipisDroppedUnsupported'),
    },
    delivered,
    pending: pendingTotal,
    timerInterrupts,
    discardedByInit,
    nmisMerged,
    lost: accepted + timerInterrupts - delivered - pendingTotal - discardedByInit - nmisMerged,
  };
  const lostWakeups = total('lostWakeups');
  const erratum1235WindowNs = Atomics.load(memory.control, memory.headerIndex('erratum1235WindowNs'));
  const latencyNs = summarizeLatency(mergeLatencyHistograms(histograms));
  const failed = exit.reason === 'fault' || exit.reason === 'timeout' || exit.reason === 'watchdog';
  // A possible deadlock fails the run, unless the run injected a buggy lock replay to produce one.
  const lockdep = input.lockdep;
  const unexpectedLockReport = lockdep.report !== undefined && !input.lockReportExpected;
  return {
    vcpus: input.createdVcpus,
    policy: input.config.policy,
    ipiVirtualization: input.config.ipiVirtualization,
    hostCpuCount: input.config.hostCpus,
    quantumUs: input.config.quantumUs,
    hostIdlePollUs: input.config.hostIdlePollUs,
    durationSeconds,
    startupSeconds,
    exit,
    ok: !failed && ipis.lost === 0 && lostWakeups === 0 && errors.length === 0 && !unexpectedLockReport,
    ipis,
    ipisPerSecond: durationSeconds - startupSeconds > 0 ? delivered / (durationSeconds - startupSeconds) : 0,
    ...(latencyNs === undefined ? {} : { latencyNs }),
    exits: {
      incompleteIpi: {
        invalidInterruptType: cause(0),
        targetNotRunning: cause(1),
        invalidTarget: cause(2),
        invalidBackingPage: cause(3),
        invalidIpiVector: cause(4),
      },
      unacceleratedAccess: { trap: total('unacceleratedAccessTrapExits'), fault: total('unacceleratedAccessFaultExits') },
      apicMmioEmulation: total('apicMmioEmulationExits'),
      halt: total('haltExits'),
      pauseLoop: total('pauseLoopExits'),
      hypercall: total('hypercalls'),
      msr: total('msrAccesses'),
    },
    doorbells: total('doorbellsRung'),
    inject: input.config.inject === undefined || input.config.inject === 'none' ? null : input.config.inject,
    erratum1235WindowUs: erratum1235WindowNs === 0 ? null : erratum1235WindowNs / 1000,
    erratumStaleIsRunningReads: total('erratumStaleIsRunningReads'),
    wakeups: total('wakeups'),
    lostWakeups,
    lateWakeups: total('lateWakeups'),
    instructions: total('instructions'),
    faults,
    errors,
    perVcpu,
    hostCpus: hostCpuUsage(memory, input.config.hostCpus, durationSeconds),
    vcpuCreation: vcpuCreationReport(input, perVcpu),
    memslots: { ...input.memslots },
    lockdep,
  };
}
