// `avic-smp scale` rows: one scenario run per vCPU count, reduced to what the table and the chart
// show. Efficiency compares per-vCPU throughput with the smallest count's:
//
//   efficiency(n) = (IPIs/s(n) / n) / (IPIs/s(n0) / n0),   n0 = the first (smallest) count run
//
// 1.00 means each vCPU keeps the throughput it had at n0; 0.50 means it halved.

import type { LatencySummary } from '../kvm/report/latency-histogram.js';
import type { VmReport } from '../kvm/report/vm-report.js';
import type { ScenarioResult } from '../scenarios/scenario.js';
import { incompleteIpiExits } from './stress-summary.js';
import { formatCount, formatMicroseconds, formatRatio, formatTable } from './text-table.js';
import { injectedBugText, scheduleText } from './format-report.js';

export const EFFICIENCY_DEFINITION =
  'efficiency = (IPIs/s ÷ vCPUs) ÷ (IPIs/s ÷ vCPUs of the first row); 1.00 = per-vCPU throughput kept, 0.50 = halved';
export const EXITS_PER_IPI_DEFINITION = 'exits/IPI = AVIC incomplete-IPI exits (all causes) ÷ IPIs delivered';

export interface ScaleRow {
  readonly vcpus: number;
  readonly ipisPerSecond: number;
  readonly sent: number;
  readonly delivered: number;
  readonly lost: number;
  readonly latencyNs: LatencySummary | null;
  /** Incomplete-IPI exits (every cause) per IPI delivered; null when none was delivered. */
  readonly exitsPerIpi: number | null;
  /** See EFFICIENCY_DEFINITION; null when the first row delivered nothing. */
  readonly efficiency: number | null;
  readonly durationSeconds: number;
  readonly exit: string;
  readonly failedChecks: readonly string[];
  readonly ok: boolean;
  /** The row's deterministic schedule (--deterministic): each count is its own run, on its own schedule from the one seed. */
  readonly schedule?: VmReport['schedule'];
}

export interface SkippedCount {
  readonly vcpus: number;
  readonly reason: string;
}

export interface ScaleResult {
  readonly pattern: string;
  readonly seed: number;
  readonly requested: { readonly ipis: number | null; readonly seconds: number | null };
  readonly skipped: readonly SkippedCount[];
  /** The bug zoo entry every row injected (--inject, docs/bug-zoo.md); null (or absent) when none. */
  readonly inject?: string | null;
  readonly rows: readonly ScaleRow[];
  readonly ok: boolean;
  /** The --svg file, when one was written. */
  readonly svg?: string;
}

export function scaleRow(result: ScenarioResult, first: ScaleRow | undefined): ScaleRow {
  const report = result.report;
  const perVcpu = report.ipisPerSecond / report.vcpus;
  const firstPerVcpu = first === undefined ? perVcpu : first.ipisPerSecond / first.vcpus;
  const failedChecks = result.checks.filter((check) => !check.ok).map((check) => `${check.name}: ${check.detail}`);
  return {
    vcpus: report.vcpus,
    ipisPerSecond: report.ipisPerSecond,
    sent: report.ipis.sent,
    delivered: report.ipis.delivered,
    lost: report.ipis.lost,
    latencyNs: report.latencyNs ?? null,
    exitsPerIpi: report.ipis.delivered > 0 ? incompleteIpiExits(report.exits) / report.ipis.delivered : null,
    efficiency: firstPerVcpu > 0 ? perVcpu / firstPerVcpu : null,
    durationSeconds: report.durationSeconds,
    exit: report.exit.reason,
    failedChecks,
    ok: result.ok && report.ok && report.ipis.lost === 0 && failedChecks.length === 0,
    ...(report.schedule === undefined ? {} : { schedule: report.schedule }),
  };
}

function okCell(row: ScaleRow): string {
  if (row.ok) return '✓';
  if (row.lost !== 0) return `✗ ${formatCount(row.lost)} lost`;
  if (row.failedChecks.length > 0) return `✗ ${row.failedChecks[0]!.split(':')[0]}`;
  return `✗ ${row.exit}`;
}

export function formatScaleTable(result: ScaleResult): string {
  const first = result.rows[0];
  const table = formatTable(
    ['vCPUs', 'IPIs/s', 'p50 µs', 'p99 µs', 'exits/IPI', 'efficiency', 'ok'],
    result.rows.map((row) => [
      String(row.vcpus),
      formatCount(row.ipisPerSecond),
      formatMicroseconds(row.latencyNs?.p50),
      formatMicroseconds(row.latencyNs?.p99),
      row.exitsPerIpi === null ? '-' : row.exitsPerIpi.toFixed(3),
      formatRatio(row.efficiency),
      okCell(row),
    ]),
  );
  const length =
    result.requested.seconds !== null
      ? `${result.requested.seconds} s per row`
      : result.requested.ipis !== null
        ? `${formatCount(result.requested.ipis)} IPIs per row`
        : "the pattern's default IPI count per row";
  const footer = [
    '',
    `${result.pattern}, seed ${result.seed}, ${length}; latency is guest-measured (µs)`,
    `${EFFICIENCY_DEFINITION.replace('the first row', `the ${first?.vcpus ?? '?'}-vCPU row`)}`,
    EXITS_PER_IPI_DEFINITION,
    ...(result.inject === undefined || result.inject === null ? [] : [`injected bug ${injectedBugText(result.inject)}`]),
    ...result.skipped.map((skip) => `skipped ${skip.vcpus} vCPU${skip.vcpus === 1 ? '' : 's'}: ${skip.reason}`),
    ...result.rows.flatMap((row) => (row.schedule === undefined ? [] : [`${row.vcpus} vCPUs: ${scheduleText(row.schedule)}`])),
    ...result.rows
      .filter((row) => !row.ok)
      .flatMap((row) => [
        `failed at ${row.vcpus} vCPUs: ended by ${row.exit}, lost ${formatCount(row.lost)}`,
        ...row.failedChecks.map((check) => `  ✗ ${check}`),
      ]),
  ];
  return [table, ...footer].join('\n');
}
