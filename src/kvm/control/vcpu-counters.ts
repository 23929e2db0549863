// One vCPU's counters (VcpuStatistics in vm-layout.ts): plain stores by the owning vCPU's worker,
// summed by the main thread at the end. Every piece that counts takes the narrow VcpuCounting.

import { VcpuStatistic } from './vm-layout.js';

/** What a counting piece needs: add to one of this vCPU's counters (`statistic` is a VcpuStatistic member). */
export interface VcpuCounting {
  count(statistic: number, amount?: number): void;
}

/** The Float64 views a VcpuCounters writes through (VmControlViews provides them). */
export interface VcpuStatisticsWords {
  readonly controlFloat64: Float64Array;
  statisticIndex(
    vcpu: number,
    field: 'ipiCommands' | 'latencySamples' | 'latencySumNs' | 'latencyMinNs' | 'latencyMaxNs' | 'latencyEpoch',
  ): number;
}

export class VcpuCounters implements VcpuCounting {
  readonly #statistics: Float64Array;
  /** Float64 index of this vCPU's VcpuStatistics struct (counters are bumped on every IPI). */
  readonly #base: number;
  readonly #latencySamples: number;
  readonly #latencySum: number;
  readonly #latencyMin: number;
  readonly #latencyMax: number;
  readonly #latencyEpoch: number;

  constructor(words: VcpuStatisticsWords, vcpu: number) {
    this.#statistics = words.controlFloat64;
    this.#base = words.statisticIndex(vcpu, 'ipiCommands') - VcpuStatistic.ipiCommands;
    this.#latencySamples = words.statisticIndex(vcpu, 'latencySamples');
    this.#latencySum = words.statisticIndex(vcpu, 'latencySumNs');
    this.#latencyMin = words.statisticIndex(vcpu, 'latencyMinNs');
    this.#latencyMax = words.statisticIndex(vcpu, 'latencyMaxNs');
    this.#latencyEpoch = words.statisticIndex(vcpu, 'latencyEpoch');
  }

  count(statistic: number, amount = 1): void {
    this.#statistics[this.#base + statistic]! += amount;
  }

  /** One guest latency sample (hypercall LatencySample): count, sum, min and max. */
  recordLatencySample(nanoseconds: number): void {
    const statistics = this.#statistics;
    const first = statistics[this.#latencySamples] === 0;
    statistics[this.#latencySamples]! += 1;
    statistics[this.#latencySum]! += nanoseconds;
    if (first || nanoseconds < statistics[this.#latencyMin]!) statistics[this.#latencyMin] = nanoseconds;
    if (nanoseconds > statistics[this.#latencyMax]!) statistics[this.#latencyMax] = nanoseconds;
  }

  /** How many times the guest discarded its latency samples (hypercall LatencyReset) so far. */
  latencyEpoch(): number {
    return this.#statistics[this.#latencyEpoch]!;
  }

  /** Hypercall LatencyReset: the samples' count, sum, min and max start again; returns the new epoch. */
  resetLatencySamples(): number {
    const statistics = this.#statistics;
    statistics[this.#latencySamples] = 0;
    statistics[this.#latencySum] = 0;
    statistics[this.#latencyMin] = 0;
    statistics[this.#latencyMax] = 0;
    statistics[this.#latencyEpoch]! += 1;
    return statistics[this.#latencyEpoch]!;
  }
}
