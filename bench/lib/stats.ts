// Small statistics helpers for the benches: percentiles of raw samples (the baselines sort their
// own sample arrays; the emulator's figures come from the guest's HDR histograms) and the
// median-and-range summary of the repetitions.

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly values: readonly number[];
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, values };
  const sorted = [...finite].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, values };
}

/** Nearest-rank percentile of an already sorted array. */
export function percentileOfSorted(sorted: ArrayLike<number>, percentile: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((percentile / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface LatencyPercentiles {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
}

export function latencyPercentiles(samples: Float64Array): LatencyPercentiles {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p99: percentileOfSorted(sorted, 99),
    mean: sum / Math.max(1, sorted.length),
  };
}

/** "0.62" for 620 ns when the unit is µs, with a sensible number of digits. */
export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === 'µs') return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
  if (unit === 'M/s') return value.toFixed(2);
  if (unit === 'k/s') return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
  if (unit === 'MIPS') return value.toFixed(0);
  if (unit === 'ms') return value.toFixed(0);
  if (unit === 'MiB') return value.toFixed(0);
  if (unit === '×') return value.toFixed(2);
  return String(Math.round(value * 100) / 100);
}

export function formatSpread(value: Spread, unit: string): string {
  return `${formatValue(value.median, unit)} ${unit} (${formatValue(value.min, unit)}–${formatValue(value.max, unit)})`;
}
