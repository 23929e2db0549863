// A vCPU that moved between host CPUs is reported by each worker it ran in; the main thread merges
// the reports (mergeVcpuExitReports): latency samples added up, trace events in time order, the end
// from the report that has one, whatever order the host CPUs report in.
import { describe, expect, it } from 'vitest';
import { createLatencyHistogram, encodeLatencyHistogram, mergeLatencyHistograms } from '../../../src/kvm/report/latency-histogram.js';
import { TRACE_EVENT_FIELDS } from '../../../src/kvm/report/trace-recorder.js';
import { mergeVcpuExitReports, type VcpuExitReport } from '../../../src/kvm/vcpu/vcpu-startup.js';

function report(reason: VcpuExitReport['reason'], samples: number[], times: number[], latencyEpoch = 0): VcpuExitReport {
  const latency = createLatencyHistogram();
  for (const sample of samples) latency.recordValue(sample);
  const events = new Float64Array(times.length * TRACE_EVENT_FIELDS);
  times.forEach((time, event) => {
    events[event * TRACE_EVENT_FIELDS] = time;
    events[event * TRACE_EVENT_FIELDS + 1] = time + 0.5;
  });
  return { vcpu: 3, reason, latencyHistogram: encodeLatencyHistogram(latency), latencyEpoch, trace: { events, dropped: samples.length } };
}

describe('mergeVcpuExitReports', () => {
  for (const order of ['moved first', 'done first'] as const) {
    it(`merges a moved vCPU's reports (${order})`, () => {
      const moved = report('moved', [100, 200], [1, 5]);
      const done = report('done', [300], [3, 7]);
      const merged =
        order === 'moved first'
          ? mergeVcpuExitReports(mergeVcpuExitReports(undefined, moved), done)
          : mergeVcpuExitReports(mergeVcpuExitReports(undefined, done), moved);
      if (merged instanceof Error) throw merged;
      expect(merged.reason).toBe('done');
      expect(mergeLatencyHistograms([merged.latencyHistogram]).totalCount).toBe(3);
      const times = Array.from(
        { length: merged.trace!.events.length / TRACE_EVENT_FIELDS },
        (_, event) => merged.trace!.events[event * TRACE_EVENT_FIELDS],
      );
      expect(times).toEqual([1, 3, 5, 7]);
      expect(merged.trace!.events[1 * TRACE_EVENT_FIELDS + 1]).toBe(3.5);
      expect(merged.trace!.dropped).toBe(3);
    });
  }

  for (const order of ['moved first', 'done first'] as const) {
    it(`keeps only the samples after the guest's last latency reset, wherever they were recorded (${order})`, () => {
      // Recorded on a host CPU the vCPU left before its guest reset its samples (epoch 0), then
      // after the reset on the next one (epoch 1).
      const moved = report('moved', [100, 200], [1], 0);
      const done = report('done', [300], [3], 1);
      const merged =
        order === 'moved first'
          ? mergeVcpuExitReports(mergeVcpuExitReports(undefined, moved), done)
          : mergeVcpuExitReports(mergeVcpuExitReports(undefined, done), moved);
      if (merged instanceof Error) throw merged;
      expect(merged.latencyEpoch).toBe(1);
      const latency = mergeLatencyHistograms([merged.latencyHistogram]);
      expect(latency.totalCount).toBe(1);
      expect(latency.maxValue).toBeGreaterThanOrEqual(300);
    });
  }

  it('keeps an error', () => {
    const error = new Error('vCPU 3: emulator bug');
    expect(mergeVcpuExitReports(error, report('moved', [], []))).toBe(error);
  });
});
