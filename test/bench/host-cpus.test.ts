// The issue-11 benches' arithmetic and readings (bench/lib/host-cpus.ts): no timing is asserted.

import { describe, expect, it } from 'vitest';
import {
  coalescedShare,
  parseVmHwmKiB,
  peakRss,
  quantumBoundUs,
  refusesVcpuCount,
  sizesFromEnvironment,
} from '../../bench/lib/host-cpus.js';
import { VmConfigError } from '../../src/kvm/vm/vm-config.js';
import { validateConfig } from '../../src/kvm/vm/vm-config.js';

describe('quantumBoundUs', () => {
  it('is 2 quanta x runnable vCPUs per host CPU', () => {
    expect(quantumBoundUs(1500, 8, 2)).toBe(12_000);
    expect(quantumBoundUs(1500, 32, 2)).toBe(48_000);
    expect(quantumBoundUs(1500, 255, 2)).toBe(382_500);
  });

  it('is never below 2 quanta, even with a host CPU per vCPU', () => {
    expect(quantumBoundUs(1500, 2, 2)).toBe(3000);
    expect(quantumBoundUs(1500, 1, 4)).toBe(3000);
  });

  it('refuses a quantum, vCPU or host-CPU count that means nothing', () => {
    expect(() => quantumBoundUs(0, 8, 2)).toThrow(RangeError);
    expect(() => quantumBoundUs(1500, 0, 2)).toThrow(RangeError);
    expect(() => quantumBoundUs(1500, 8, 0)).toThrow(RangeError);
    expect(() => quantumBoundUs(Number.NaN, 8, 2)).toThrow(RangeError);
  });
});

describe('coalescedShare', () => {
  it('is coalesced over sent, and 0 when nothing was sent', () => {
    expect(coalescedShare({ sent: 200, coalesced: 50 })).toBe(0.25);
    expect(coalescedShare({ sent: 0, coalesced: 0 })).toBe(0);
  });
});

describe('peak resident set', () => {
  const status = 'Name:\tnode\nVmPeak:\t 1234567 kB\nVmSize:\t 1200000 kB\nVmHWM:\t  614400 kB\nVmRSS:\t  500000 kB\nThreads:\t11\n';

  it('reads VmHWM, not VmRSS or VmPeak, from a status text', () => {
    expect(parseVmHwmKiB(status)).toBe(614_400);
    expect(parseVmHwmKiB('Name:\tnode\nVmRSS:\t 1 kB\n')).toBeUndefined();
  });

  it('says it used VmHWM when the status has it', () => {
    expect(peakRss(() => status)).toEqual({ mib: 600, source: 'VmHWM' });
  });

  it('falls back to maxRSS when there is no /proc status or no VmHWM line', () => {
    const unreadable = peakRss(() => {
      throw new Error('ENOENT');
    });
    expect(unreadable.source).toBe('maxRSS');
    expect(unreadable.mib).toBeGreaterThan(0);
    expect(peakRss(() => 'Name:\tnode\n').source).toBe('maxRSS');
  });
});

describe('refusesVcpuCount', () => {
  it('recognises the VM refusing its vCPU count', () => {
    let refusal: unknown;
    try {
      validateConfig({ vcpus: 100_000 });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(VmConfigError);
    expect(refusesVcpuCount(refusal)).toBe(true);
  });

  it('does not take any other failure for a refusal', () => {
    expect(refusesVcpuCount(new VmConfigError('memoryBytes must be a multiple of 4096 from 64 KiB to 1 GiB, got 3'))).toBe(false);
    expect(refusesVcpuCount(new Error('vcpus must be an integer'))).toBe(false);
    expect(refusesVcpuCount('vcpus must be')).toBe(false);
  });
});

describe('sizesFromEnvironment', () => {
  const allowed = [8, 32, 255] as const;

  it('defaults to every size, and keeps the allowed order', () => {
    expect(sizesFromEnvironment('X', undefined, allowed)).toEqual([8, 32, 255]);
    expect(sizesFromEnvironment('X', ' ', allowed)).toEqual([8, 32, 255]);
    expect(sizesFromEnvironment('X', '255, 8', allowed)).toEqual([8, 255]);
    expect(sizesFromEnvironment('X', 'none', allowed)).toEqual([]);
  });

  it('refuses a size the bench does not run', () => {
    expect(() => sizesFromEnvironment('BENCH_STORM_BEFORE', '8,64', allowed)).toThrow(
      "BENCH_STORM_BEFORE must be 'none' or a comma-separated subset of 8,32,255, got '8,64'",
    );
  });
});
