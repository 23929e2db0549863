// VmConfig.deterministic (docs/deterministic.md): off by default, each bad value one VmConfigError
// naming the field. Validation only: no VM is created, so no worker starts.
import { describe, expect, it } from 'vitest';
import { VmConfigError, validateConfig, type VmConfig } from '../../../src/kvm/vm/vm-config.js';

describe('VmConfig deterministic', () => {
  it('is off by default and kept as given when valid', () => {
    expect(validateConfig({ vcpus: 2 }).deterministic).toBeUndefined();
    const deterministic = { seed: 12, strategy: 'random', depth: 2, maxSwitches: 0, expectedPoints: 500 } as const;
    expect(validateConfig({ vcpus: 2, deterministic }).deterministic).toEqual(deterministic);
  });

  it.each([
    [{ seed: 1.5, strategy: 'pct' }, 'deterministic: seed must be a whole number from 0 to 2^53-1, got 1.5'],
    [{ seed: 1, strategy: 'chess' }, 'deterministic: strategy must be random or pct, got chess'],
    [{ seed: 1, strategy: 'pct', depth: 17 }, 'deterministic: depth must be a whole number from 1 to 16, got 17'],
    [{ seed: 1, strategy: 'pct', maxSwitches: -1 }, 'deterministic: maxSwitches must be a whole number from 0, got -1'],
    [{ seed: 1, strategy: 'pct', expectedPoints: Number.NaN }, 'deterministic: expectedPoints must be a whole number from 1, got NaN'],
    ['yes', 'deterministic: it must be an object'],
  ])('refuses %j', (deterministic, message) => {
    const config = { vcpus: 2, deterministic } as unknown as VmConfig;
    expect(() => validateConfig(config)).toThrow(VmConfigError);
    expect(() => validateConfig(config)).toThrow(message);
  });
});
