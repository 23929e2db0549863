// VmConfig.erratum1235 and its window (src/hw/avic/erratum-1235.ts): off by default, a window of
// 1 us to 1 s, one message per mistake. Validation only: no VM is created, so no worker starts.
import { describe, expect, it } from 'vitest';
import { ERRATUM_1235_DEFAULT_WINDOW_US, VmConfigError, validateConfig } from '../../../src/kvm/vm/vm-config.js';

describe('VmConfig erratum1235', () => {
  it('is off by default, with the default window', () => {
    expect(validateConfig({ vcpus: 2 })).toMatchObject({ erratum1235: false, erratum1235WindowUs: ERRATUM_1235_DEFAULT_WINDOW_US });
    expect(validateConfig({ vcpus: 2, erratum1235: true, erratum1235WindowUs: 250 })).toMatchObject({
      erratum1235: true,
      erratum1235WindowUs: 250,
    });
  });

  it('refuses a window outside 1 us..1 s and a non-boolean switch', () => {
    for (const windowUs of [0, -5, 1_000_001, Number.NaN]) {
      expect(() => validateConfig({ vcpus: 2, erratum1235: true, erratum1235WindowUs: windowUs })).toThrow(
        /erratum1235WindowUs must be a number of microseconds from 1 to 1000000/,
      );
    }
    expect(() => validateConfig({ vcpus: 2, erratum1235: 'yes' as unknown as boolean })).toThrow(VmConfigError);
  });
});
