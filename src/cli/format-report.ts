// The human form of a run report: a summary, then one row per vCPU.

import type { IpiBalance, VmReport } from '../kvm/report/vm-report.js';
import type { ScheduleSummary } from '../host/deterministic/deterministic-schedule.js';
import { formatCount, formatTable } from './text-table.js';
import { findInjectedBug } from '../kvm/control/injected-bugs.js';

const number = formatCount;
const table = formatTable;

/** The erratum #1235 model's setting and what it did, for the run and stress summaries. */
export function erratum1235Text(windowUs: number, staleReads: number): string {
  return `AMD erratum #1235 modelled (window ${number(windowUs)} µs): ${number(staleReads)} stale IsRunning read${staleReads === 1 ? '' : 's'} (doorbell rung, no exit)`;
}

/** A deterministic run's schedule on one line (docs/deterministic.md): what repeats it, and its fingerprint. */
export function scheduleText(schedule: ScheduleSummary): string {
  const strategy = schedule.strategy === 'pct' ? `pct depth ${schedule.depth}, k ${number(schedule.expectedPoints)}` : 'random';
  const points = Object.values(schedule.pointsSeen).reduce((total, count) => total + count, 0);
  return (
    `deterministic: schedule seed ${schedule.seed}, ${strategy}${schedule.maxSwitches === null ? '' : `, at most ${number(schedule.maxSwitches)} preemptions`}: ` +
    `${number(schedule.decisions)} decisions, ${number(schedule.switches)} switches (${number(schedule.preemptions)} preemptions), ` +
    `${number(points)} scheduling points, ${(schedule.virtualNs / 1e6).toFixed(3)} virtual ms, hash ${schedule.scheduleHash}`
  );
}

/**
 * A run's duration: seconds, or in a deterministic run virtual milliseconds, which the virtual clock
 * counts (docs/deterministic.md): a run's virtual time is usually well under a second.
 */
export function durationText(seconds: number, deterministic: boolean): string {
  return deterministic ? `${(seconds * 1e3).toFixed(3)} virtual ms` : `${seconds.toFixed(2)} s`;
}

/** The rate's unit: per second, or per virtual second (the cost table's estimates, not a measurement). */
export function perSecondText(deterministic: boolean): string {
  return deterministic ? 'per virtual second' : 'per second';
}

/** The injected bug of the bug zoo (docs/bug-zoo.md) in one line: what goes wrong and its fix, or what its twin runs. */
export function injectedBugText(name: string): string {
  const found = findInjectedBug(name);
  if (found === undefined) return name;
  const { bug, fixed } = found;
  if (fixed) return `${name}: the fixed twin of ${bug.name}, ${bug.fixedTwin}`;
  return `${name}: ${bug.summary} (fixed in Linux ${bug.fix.kernel}: ${bug.fix.commit})`;
}

export function formatRunReport(report: VmReport): string {
  const { ipis, exits } = report;
  const lines: string[] = [];
  lines.push(
    `${report.ok ? 'OK' : 'FAILED'}: ${report.exit.reason} (${report.exit.detail}) after ${durationText(report.durationSeconds, report.schedule !== undefined)}`,
  );
  lines.push(
    `vCPUs ${report.vcpus}, policy ${report.policy}, IPI virtualization ${report.ipiVirtualization ? 'on' : 'off (the erratum #1235 work-around)'}${report.erratum1235WindowUs === null ? '' : `, ${erratum1235Text(report.erratum1235WindowUs, report.erratumStaleIsRunningReads)}`}`,
  );
  if ((report.inject ?? null) !== null) lines.push(`injected bug ${injectedBugText(report.inject!)}`);
  lines.push('');
  lines.push(formatIpiBalance(ipis));
  lines.push(`IPIs delivered ${perSecondText(report.schedule !== undefined)}: ${number(report.ipisPerSecond)}`);
  lines.push(
    `doorbells ${number(report.doorbells)}, wake-ups ${number(report.wakeups)}, lost wake-ups ${number(report.lostWakeups)} (late ${number(report.lateWakeups)}), instructions ${number(report.instructions)}`,
  );
  const c = exits.incompleteIpi;
  lines.push(
    `exits: incomplete IPI [0 invalid type ${number(c.invalidInterruptType)}, 1 not running ${number(c.targetNotRunning)}, 2 invalid target ${number(c.invalidTarget)}, 3 invalid backing page ${number(c.invalidBackingPage)}, 4 vector < 16 ${number(c.invalidIpiVector)}]`,
  );
  lines.push(
    `       unaccelerated access [trap ${number(exits.unacceleratedAccess.trap)}, fault ${number(exits.unacceleratedAccess.fault)}], APIC MMIO emulated (AVIC inhibited) ${number(exits.apicMmioEmulation)}, HLT ${number(exits.halt)}, pause loop ${number(exits.pauseLoop)}, hypercall ${number(exits.hypercall)}, MSR ${number(exits.msr)}`,
  );
  if (report.schedule !== undefined) lines.push(scheduleText(report.schedule));
  for (const fault of report.faults) lines.push(`guest fault on vCPU ${fault.vcpu}: ${fault.description}`);
  for (const error of report.errors) lines.push(`emulator error on vCPU ${error.vcpu}: ${error.message}`);
  lines.push('');
  lines.push(
    table(
      ['vCPU', 'state', 'exit', 'IPIs sent', 'received', 'doorbells', 'exits c1', 'HLT', 'wake-ups', 'guest reports'],
      report.perVcpu.map((vcpu) => [
        String(vcpu.vcpu),
        vcpu.runState,
        vcpu.exit,
        number(vcpu.counters.ipisSent),
        number(vcpu.counters.interruptsDelivered),
        number(vcpu.counters.doorbellsRung),
        number(vcpu.counters.incompleteIpiExits[1] ?? 0),
        number(vcpu.counters.haltExits),
        number(vcpu.counters.wakeups),
        lastNonZero(vcpu.guest.reports),
      ]),
    ),
  );
  return lines.join('\n');
}

/**
 * The IPI balance on one line, as `run` prints it (and `lockdep` for its replays' VMs): sent,
 * delivered and lost first, then the terms that balance them (sent = accepted + coalesced + dropped;
 * accepted = delivered + pending + lost).
 */
export function formatIpiBalance(ipis: IpiBalance): string {
  return (
    `IPIs: sent ${number(ipis.sent)}, delivered ${number(ipis.delivered)}, lost ${number(ipis.lost)}` +
    ` (accepted ${number(ipis.accepted)}, coalesced ${number(ipis.coalesced)}, pending ${number(ipis.pending)},` +
    ` dropped: illegal vector ${number(ipis.dropped.illegalVector)}, invalid target ${number(ipis.dropped.invalidTarget)}, unsupported ${number(ipis.dropped.unsupported)})`
  );
}

function lastNonZero(values: readonly number[]): string {
  let end = values.length;
  while (end > 0 && values[end - 1] === 0) end--;
  return end === 0 ? '-' : values.slice(0, end).map(number).join(' ');
}
