// Latency percentiles from HDR histograms (hdr-histogram-js, the JavaScript port of Gil Tene's
// HdrHistogram): each vCPU records its guest's samples (hypercall LatencySample) into its own
// histogram in its worker, no shared hot counter; the histogram travels back compressed with the
// vCPU's exit report and the main thread merges them. Nanoseconds, 3 significant digits.

import hdr from 'hdr-histogram-js';

export type LatencyHistogram = ReturnType<typeof hdr.build>;

export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export function createLatencyHistogram(): LatencyHistogram {
  // Auto-resizing from 1 ns: an IPI round trip ranges from ~100 ns to seconds under oversubscription.
  return hdr.build({ bitBucketSize: 32, autoResize: true, lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3 });
}

export function encodeLatencyHistogram(histogram: LatencyHistogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function mergeLatencyHistograms(encoded: readonly string[]): LatencyHistogram {
  const merged = createLatencyHistogram();
  for (const text of encoded) merged.add(hdr.decodeFromCompressedBase64(text, 32));
  return merged;
}

export function summarizeLatency(histogram: LatencyHistogram): LatencySummary | undefined {
  if (histogram.totalCount === 0) return undefined;
  return {
    count: histogram.totalCount,
    min: histogram.minNonZeroValue,
    mean: histogram.mean,
    p50: histogram.getValueAtPercentile(50),
    p90: histogram.getValueAtPercentile(90),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    max: histogram.maxValue,
  };
}
