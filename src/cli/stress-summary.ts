// The result of `avic-smp stress`: one object, printed as JSON by --json and as a summary plus a
// per-vCPU table otherwise. Names follow VmReport (exit causes, IPI balance) so the two read alike.

import type { LatencySummary } from '../kvm/report/latency-histogram.js';
import type { IpiBalance, VmExit, VmReport } from '../kvm/report/vm-report.js';
import type { ScenarioCheck, ScenarioResult } from '../scenarios/scenario.js';
import { formatCount, formatMicroseconds, formatTable } from './text-table.js';
import { durationText, erratum1235Text, injectedBugText, scheduleText } from './format-report.js';

type Exits = VmReport['exits'];

export interface VcpuStressSummary {
  readonly vcpu: number;
  /** IPI messages this vCPU sent (one per destination). */
  readonly sent: number;
  /** Interrupts it took (handler entries). */
  readonly received: number;
  /** AVIC doorbells its ICR writes rang. */
  readonly doorbells: number;
  readonly exits: Exits;
  readonly halts: number;
  readonly wakeups: number;
  readonly latencyNs: LatencySummary | null;
  /** Its host CPU, time loaded there, and time runnable but waiting for it (as run's report). */
  readonly scheduling: VmReport['perVcpu'][number]['scheduling'];
}

export interface StressSummary {
  readonly pattern: string;
  readonly vcpus: number;
  readonly seed: number;
  /** The run's budget: an IPI count (--ipis, or the pattern's default) or --seconds; the other is null. */
  readonly requested: { readonly ipis: number | null; readonly seconds: number | null };
  readonly ipiVirtualization: boolean;
  readonly haltPolling: boolean;
  /** The AMD erratum #1235 model's window in microseconds (--erratum-1235); null when off. */
  readonly erratum1235WindowUs: number | null;
  /** The bug zoo entry the run injected (--inject, docs/bug-zoo.md); null when none. */
  readonly inject: string | null;
  /** Backing-page policy (upstream or rfc-v2) and what vCPU creation cost under it. */
  readonly policy: string;
  readonly vcpuCreation: VmReport['vcpuCreation'];
  readonly memslots: VmReport['memslots'];
  /** The lock-order validator: null when it did not run; its first report, if any. */
  readonly lockdep: { readonly report: string | null; readonly cycle: readonly string[] } | null;
  /** Per host CPU: utilisation, switches, preemptions, directed yields, migrations, wake-ups its idle poll caught. */
  readonly hostCpus: VmReport['hostCpus'];
  readonly durationSeconds: number;
  readonly exit: VmExit;
  readonly ipis: IpiBalance;
  /** IPIs delivered per second of run time. */
  readonly ipisPerSecond: number;
  /** Guest-measured latency, every vCPU's HDR histogram merged; null when the pattern records none. */
  readonly latencyNs: LatencySummary | null;
  /** What one latency sample measures, as the pattern defines it. */
  readonly latencyMeasures: string | null;
  readonly exits: Exits;
  readonly doorbells: number;
  /** IPI targets whose recent IsRunning clear the erratum #1235 model missed (doorbell, no exit). */
  readonly erratumStaleIsRunningReads: number;
  readonly wakeups: number;
  readonly lostWakeups: number;
  readonly lateWakeups: number;
  readonly checks: readonly ScenarioCheck[];
  readonly faults: readonly string[];
  readonly errors: readonly string[];
  /** Nothing lost, the VM report is ok and every check passed. */
  readonly ok: boolean;
  readonly perVcpu: readonly VcpuStressSummary[];
  /** The --trace file, when one was written. */
  readonly trace?: string;
  /** A deterministic run's schedule (--deterministic): seed, strategy, decisions, hash. */
  readonly schedule?: VmReport['schedule'];
}

export interface StressRunSettings {
  /** The VM's effective setting (the pattern's choice unless --no-halt-poll). */
  readonly haltPolling: boolean;
  readonly latencyMeasures?: string;
}

function vcpuExits(counters: VmReport['perVcpu'][number]['counters']): Exits {
  const cause = (index: number): number => counters.incompleteIpiExits[index] ?? 0;
  return {
    incompleteIpi: {
      invalidInterruptType: cause(0),
      targetNotRunning: cause(1),
      invalidTarget: cause(2),
      invalidBackingPage: cause(3),
      invalidIpiVector: cause(4),
    },
    unacceleratedAccess: { trap: counters.unacceleratedAccessTrapExits, fault: counters.unacceleratedAccessFaultExits },
    apicMmioEmulation: counters.apicMmioEmulationExits,
    halt: counters.haltExits,
    pauseLoop: counters.pauseLoopExits,
    hypercall: counters.hypercalls,
    msr: counters.msrAccesses,
  };
}

/** Every AVIC_INCOMPLETE_IPI exit, whatever the cause. */
export function incompleteIpiExits(exits: Exits): number {
  return Object.values(exits.incompleteIpi).reduce((total, count) => total + count, 0);
}

export function summarizeStress(result: ScenarioResult, settings: StressRunSettings): StressSummary {
  const report = result.report;
  return {
    pattern: result.scenario,
    vcpus: report.vcpus,
    seed: result.parameters.seed,
    requested: {
      ipis: result.parameters.seconds === undefined ? (result.parameters.ipis ?? null) : null,
      seconds: result.parameters.seconds ?? null,
    },
    ipiVirtualization: report.ipiVirtualization,
    haltPolling: settings.haltPolling,
    erratum1235WindowUs: report.erratum1235WindowUs,
    inject: report.inject ?? null,
    policy: report.policy,
    vcpuCreation: report.vcpuCreation,
    memslots: report.memslots,
    lockdep:
      report.lockdep?.enabled === true ? { report: report.lockdep.report?.text ?? null, cycle: report.lockdep.report?.cycle ?? [] } : null,
    hostCpus: report.hostCpus,
    durationSeconds: report.durationSeconds,
    exit: report.exit,
    ipis: report.ipis,
    ipisPerSecond: report.ipisPerSecond,
    latencyNs: report.latencyNs ?? null,
    latencyMeasures: settings.latencyMeasures ?? null,
    exits: report.exits,
    doorbells: report.doorbells,
    erratumStaleIsRunningReads: report.erratumStaleIsRunningReads,
    wakeups: report.wakeups,
    lostWakeups: report.lostWakeups,
    lateWakeups: report.lateWakeups,
    checks: result.checks,
    faults: report.faults.map(({ vcpu, description }) => `vCPU ${vcpu}: ${description}`),
    errors: report.errors.map(({ vcpu, message }) => `vCPU ${vcpu}: ${message}`),
    ok: result.ok && report.ok && report.ipis.lost === 0 && result.checks.every((check) => check.ok),
    perVcpu: report.perVcpu.map((vcpu) => ({
      vcpu: vcpu.vcpu,
      sent: vcpu.counters.ipisSent,
      received: vcpu.counters.interruptsDelivered,
      doorbells: vcpu.counters.doorbellsRung,
      exits: vcpuExits(vcpu.counters),
      halts: vcpu.counters.haltExits,
      wakeups: vcpu.counters.wakeups,
      latencyNs: vcpu.latencyNs ?? null,
      scheduling: vcpu.scheduling,
    })),
    ...(report.schedule === undefined ? {} : { schedule: report.schedule }),
  };
}

function requestedText(summary: StressSummary): string {
  if (summary.requested.seconds !== null) return `${summary.requested.seconds} s`;
  if (summary.requested.ipis !== null) return `${formatCount(summary.requested.ipis)} IPIs`;
  return 'no budget';
}

function latencyLines(latency: LatencySummary | null, measures: string | null, virtual: boolean): string[] {
  if (latency === null) return ['latency     no samples (this pattern does not time its IPIs)'];
  return [
    `latency     ${virtual ? 'in virtual time: ' : ''}p50 ${formatMicroseconds(latency.p50)} µs   p99 ${formatMicroseconds(latency.p99)} µs   max ${formatMicroseconds(latency.max)} µs` +
      `   (${formatCount(latency.count)} samples; min ${formatMicroseconds(latency.min)}, p90 ${formatMicroseconds(latency.p90)}, p99.9 ${formatMicroseconds(latency.p999)} µs)`,
    ...(measures === null ? [] : [`            one sample = ${measures}`]),
  ];
}

function exitLines(exits: Exits): string[] {
  const c = exits.incompleteIpi;
  return [
    `exits       incomplete IPI: 0 invalid type ${formatCount(c.invalidInterruptType)}, 1 target not running ${formatCount(c.targetNotRunning)}, 2 invalid target ${formatCount(c.invalidTarget)},` +
      ` 3 invalid backing page ${formatCount(c.invalidBackingPage)}, 4 vector < 16 ${formatCount(c.invalidIpiVector)}`,
    `            NOACCEL: trap ${formatCount(exits.unacceleratedAccess.trap)}, fault ${formatCount(exits.unacceleratedAccess.fault)}   APIC MMIO emulated (AVIC inhibited) ${formatCount(exits.apicMmioEmulation)}   HLT ${formatCount(exits.halt)}` +
      `   (pause loop ${formatCount(exits.pauseLoop)}, hypercall ${formatCount(exits.hypercall)}, MSR ${formatCount(exits.msr)})`,
  ];
}

function vcpuTable(perVcpu: readonly VcpuStressSummary[]): string {
  return formatTable(
    ['vCPU', 'sent', 'received', 'doorbells', 'IPI exits', 'HLT', 'wake-ups', 'p50 µs', 'p99 µs', 'max µs', 'host CPU', 'runnable wait ms'],
    perVcpu.map((vcpu) => [
      String(vcpu.vcpu),
      formatCount(vcpu.sent),
      formatCount(vcpu.received),
      formatCount(vcpu.doorbells),
      formatCount(incompleteIpiExits(vcpu.exits)),
      formatCount(vcpu.halts),
      formatCount(vcpu.wakeups),
      formatMicroseconds(vcpu.latencyNs?.p50),
      formatMicroseconds(vcpu.latencyNs?.p99),
      formatMicroseconds(vcpu.latencyNs?.max),
      String(vcpu.scheduling.hostCpu),
      vcpu.scheduling.runnableWaitMs.toFixed(1),
    ]),
  );
}

function creationLines(summary: StressSummary): string[] {
  const creation = summary.vcpuCreation;
  const memslots = summary.memslots;
  if (summary.policy === 'upstream' && creation.hotAdds === 0) return [];
  return [
    `vCPUs       policy ${summary.policy}: ${creation.created} created of ${creation.maxVcpus}, ${creation.hotAdds} hot-added (median ${creation.hotAddMsMedian.toFixed(1)} ms, max ${creation.hotAddMsMax.toFixed(1)} ms)`,
    `            APIC-access memslot resizes ${formatCount(creation.apicAccessMemslotResizes)}, backing pages re-initialised ${formatCount(creation.backingPagesReinitialised)},` +
      ` reloads ${formatCount(creation.backingPageReloads)}, IRR bits stranded in released pages ${formatCount(creation.strandedIrrBits)}`,
    `memslots    ${formatCount(memslots.updates)} updates, ${formatCount(memslots.gracePeriods)} grace periods (${memslots.gracePeriodMsTotal.toFixed(1)} ms in all, max ${memslots.gracePeriodMsMax.toFixed(1)} ms)`,
  ];
}

function hostCpuLines(summary: StressSummary): string[] {
  return summary.hostCpus.map(
    (host, index) =>
      `${index === 0 ? 'host CPUs  ' : '           '} ${host.hostCpu}: busy ${(host.utilisation * 100).toFixed(0)}%, vCPU switches ${formatCount(host.vcpuSwitches)}, preemptions ${formatCount(host.preemptions)}, directed yields ${formatCount(host.directedYields)}, migrations ${formatCount(host.migrations)}, wake-ups caught idle-polling ${formatCount(host.idlePollWakeups)}`,
  );
}

function lockdepLines(summary: StressSummary): string[] {
  if (summary.lockdep === null) return [];
  if (summary.lockdep.report === null) return ['lockdep     on: no possible deadlock reported'];
  return [`lockdep     possible deadlock: ${summary.lockdep.cycle.join(' -> ')}`, '', summary.lockdep.report];
}

export function formatStressSummary(summary: StressSummary): string {
  const { ipis } = summary;
  const dropped = ipis.dropped.illegalVector + ipis.dropped.invalidTarget + ipis.dropped.unsupported;
  const lines = [
    `${summary.ok ? 'OK' : 'FAILED'}: ${summary.pattern} on ${summary.vcpus} vCPUs, seed ${summary.seed}, ${requestedText(summary)}; ran ${durationText(summary.durationSeconds, summary.schedule !== undefined)}, ended by ${summary.exit.reason} (${summary.exit.detail})`,
    `IPI virtualization ${summary.ipiVirtualization ? 'on' : 'off (the erratum #1235 work-around)'}, halt-polling ${summary.haltPolling ? 'on' : 'off'}`,
    ...((summary.inject ?? null) === null ? [] : [`injected bug ${injectedBugText(summary.inject!)}`]),
    '',
    `IPIs        sent ${formatCount(ipis.sent)}   delivered ${formatCount(ipis.delivered)}   lost ${formatCount(ipis.lost)}`,
    `            accepted ${formatCount(ipis.accepted)}, coalesced into a pending IRR bit ${formatCount(ipis.coalesced)}, still pending ${formatCount(ipis.pending)},` +
      ` dropped ${formatCount(dropped)} (illegal vector ${formatCount(ipis.dropped.illegalVector)}, invalid target ${formatCount(ipis.dropped.invalidTarget)}, unsupported ${formatCount(ipis.dropped.unsupported)})`,
    summary.schedule === undefined
      ? `rate        ${formatCount(summary.ipisPerSecond)} IPIs/s delivered`
      : `rate        ${formatCount(summary.ipisPerSecond)} IPIs delivered per virtual second`,
    ...latencyLines(summary.latencyNs, summary.latencyMeasures, summary.schedule !== undefined),
    ...exitLines(summary.exits),
    `doorbells   ${formatCount(summary.doorbells)}   wake-ups ${formatCount(summary.wakeups)}   lost wake-ups ${formatCount(summary.lostWakeups)} (late ${formatCount(summary.lateWakeups)})`,
    ...hostCpuLines(summary),
    ...(summary.erratum1235WindowUs === null
      ? []
      : [`erratum     ${erratum1235Text(summary.erratum1235WindowUs, summary.erratumStaleIsRunningReads)}`]),
    ...creationLines(summary),
    ...lockdepLines(summary),
    ...(summary.schedule === undefined ? [] : [scheduleText(summary.schedule)]),
    '',
    'checks',
    ...(summary.checks.length === 0
      ? ['  (none)']
      : summary.checks.map((check) => `  ${check.ok ? '✓' : '✗'} ${check.name}: ${check.detail}`)),
    ...summary.faults.map((fault) => `guest fault on ${fault}`),
    ...summary.errors.map((error) => `emulator error on ${error}`),
    '',
    vcpuTable(summary.perVcpu),
  ];
  return lines.join('\n');
}
