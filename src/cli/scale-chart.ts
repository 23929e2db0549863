// The `scale --svg` chart: throughput and latency against the vCPU count, two panels side by side on
// a log2 x axis, drawn by Vega-Lite (compiled to Vega, rendered to SVG headless: no DOM, no canvas,
// no native code). vega is loaded only when a chart is asked for; it takes a few hundred ms.

import os from 'node:os';
import type { TopLevelSpec } from 'vega-lite';
import type { ScaleResult, ScaleRow } from './scale-sweep.js';

export const CHART_AXIS_TITLES = {
  vcpus: 'vCPUs (log₂ scale)',
  throughput: 'throughput (IPIs delivered/s)',
  latency: 'latency (µs)',
} as const;

export function chartTitle(pattern: string): string {
  return `${pattern}: IPI throughput and p99 latency against vCPU count`;
}

interface Point {
  readonly vcpus: number;
  readonly series: string;
  readonly value: number;
}

function points(rows: readonly ScaleRow[]): { throughput: Point[]; latency: Point[]; series: string[] } {
  const first = rows[0];
  const linear = first === undefined ? 'linear scaling' : `linear scaling from ${first.vcpus} vCPU${first.vcpus === 1 ? '' : 's'}`;
  const perVcpu = first === undefined ? 0 : first.ipisPerSecond / first.vcpus;
  const withLinear = rows.length > 1 && perVcpu > 0;
  const throughput = rows.flatMap((row) => [
    { vcpus: row.vcpus, series: 'throughput (measured)', value: row.ipisPerSecond },
    ...(withLinear ? [{ vcpus: row.vcpus, series: linear, value: perVcpu * row.vcpus }] : []),
  ]);
  const latency = rows.flatMap((row) =>
    row.latencyNs === null
      ? []
      : [
          { vcpus: row.vcpus, series: 'p99 latency', value: row.latencyNs.p99 / 1000 },
          { vcpus: row.vcpus, series: 'p50 latency', value: row.latencyNs.p50 / 1000 },
        ],
  );
  return { throughput, latency, series: ['throughput (measured)', ...(withLinear ? [linear] : []), 'p99 latency', 'p50 latency'] };
}

function subtitle(result: ScaleResult): string[] {
  const length =
    result.requested.seconds !== null
      ? `${result.requested.seconds} s per point`
      : result.requested.ipis !== null
        ? `${result.requested.ipis.toLocaleString('en-US')} IPIs per point`
        : 'default IPI count per point';
  const failed = result.rows.filter((row) => !row.ok).map((row) => row.vcpus);
  return [
    `avic-smp scale, seed ${result.seed}, ${length}; ${os.availableParallelism()} host cores (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}`,
    ...(failed.length > 0 ? [`FAILED at ${failed.join(', ')} vCPUs (IPIs lost or a check failed)`] : []),
  ];
}

function powersOfTen(low: number, high: number): number[] {
  const values: number[] = [];
  for (let exponent = Math.floor(Math.log10(low)); exponent <= Math.ceil(Math.log10(high)); exponent++) values.push(10 ** exponent);
  return values;
}

export function scaleChartSpec(result: ScaleResult): TopLevelSpec {
  const { throughput, latency, series } = points(result.rows);
  const counts = result.rows.map((row) => row.vcpus);
  const low = Math.min(...counts);
  const high = Math.max(...counts);
  const x = {
    field: 'vcpus',
    type: 'quantitative' as const,
    title: CHART_AXIS_TITLES.vcpus,
    scale: { type: 'log' as const, base: 2, domain: [low / 2 ** 0.35, high * 2 ** 0.35], nice: false },
    axis: { values: counts, format: 'd', grid: true },
  };
  const legend = {
    title: null,
    orient: 'bottom' as const,
    direction: 'horizontal' as const,
    symbolType: 'stroke',
    symbolStrokeWidth: 2.5,
    symbolSize: 300,
    labelFontSize: 12,
    labelLimit: 0,
    columnPadding: 24,
  };
  const style = (name: string): { color: string; dash: number[] } =>
    name === 'throughput (measured)'
      ? { color: '#1f77b4', dash: [1, 0] }
      : name === 'p99 latency'
        ? { color: '#d62728', dash: [1, 0] }
        : name === 'p50 latency'
          ? { color: '#fc9272', dash: [6, 4] }
          : { color: '#9ecae1', dash: [6, 4] };
  const color = {
    field: 'series',
    type: 'nominal' as const,
    scale: { domain: series, range: series.map((name) => style(name).color) },
    legend,
  };
  const strokeDash = {
    field: 'series',
    type: 'nominal' as const,
    scale: { domain: series, range: series.map((name) => style(name).dash) },
    legend,
  };
  const latencies = latency.map((point) => point.value).filter((value) => value > 0);
  const logLatency = latencies.length > 0 && Math.max(...latencies) / Math.min(...latencies) > 50;
  // A log axis labels and grids the powers of ten only; vega's default adds every 2..9 multiple.
  const decades = logLatency ? powersOfTen(Math.min(...latencies), Math.max(...latencies)) : undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: chartTitle(result.pattern),
      subtitle: subtitle(result),
      anchor: 'start',
      fontSize: 16,
      subtitleFontSize: 11,
      subtitleColor: '#555',
      offset: 12,
    },
    background: 'white',
    padding: 16,
    config: {
      font: 'Helvetica, Arial, sans-serif',
      axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#eee' },
      view: { stroke: '#ccc' },
    },
    spacing: 48,
    hconcat: [
      {
        title: { text: 'Throughput', fontSize: 13 },
        width: 340,
        height: 240,
        data: { values: throughput },
        mark: { type: 'line', point: { filled: true, size: 50 }, strokeWidth: 2.5 },
        encoding: {
          x,
          y: {
            field: 'value',
            type: 'quantitative',
            title: CHART_AXIS_TITLES.throughput,
            axis: { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '~s')" },
            scale: { zero: true },
          },
          color,
          strokeDash,
        },
      },
      {
        title: { text: latency.length === 0 ? 'Latency: this pattern records no samples' : 'Latency (guest-measured)', fontSize: 13 },
        width: 340,
        height: 240,
        data: { values: latency },
        mark: { type: 'line', point: { filled: true, size: 50 }, strokeWidth: 2.5 },
        encoding: {
          x,
          y: {
            field: 'value',
            type: 'quantitative',
            title: logLatency ? `${CHART_AXIS_TITLES.latency}, log scale` : CHART_AXIS_TITLES.latency,
            axis: decades === undefined ? { format: ',~r' } : { format: ',~r', values: decades },
            scale: logLatency ? { type: 'log', domain: [decades![0]!, decades!.at(-1)!] } : { zero: true },
          },
          color,
          strokeDash,
        },
      },
    ],
    resolve: { scale: { color: 'shared', strokeDash: 'shared' }, legend: { color: 'shared', strokeDash: 'shared' } },
  };
}

/** The chart as an SVG document. */
export async function renderScaleChart(result: ScaleResult): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(scaleChartSpec(result)).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  } finally {
    view.finalize();
  }
}
