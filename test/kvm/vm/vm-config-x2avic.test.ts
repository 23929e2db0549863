// VmConfig.x2avic and the vCPU limit it sets (issue 5 item 4; svm.h X2AVIC_MAX_PHYSICAL_ID, PHYSICAL_ID_TOO_BIG in avic_init_backing_page): up to 512 vCPUs
// with x2AVIC (physical IDs 0..0x1FF), up to 255 without (xAVIC IDs 0..0xFE), with an error that
// says why. Validation only: no VM is created, so no worker starts.
import { describe, expect, it } from 'vitest';
import { VmConfigError, maxVcpusFor, validateConfig } from '../../../src/kvm/vm/vm-config.js';

describe('VmConfig x2avic', () => {
  it('defaults to true (KVM uses x2AVIC when the CPU has it)', () => {
    expect(validateConfig({ vcpus: 2 }).x2avic).toBe(true);
    expect(validateConfig({ vcpus: 2, x2avic: false }).x2avic).toBe(false);
  });

  it('accepts 512 vCPUs, and maxVcpus 512, with x2AVIC', () => {
    expect(validateConfig({ vcpus: 512, stackBytesPerVcpu: 4096 }).vcpus).toBe(512);
    expect(validateConfig({ vcpus: 300, maxVcpus: 512, x2avic: true, stackBytesPerVcpu: 4096 }).maxVcpus).toBe(512);
    expect(maxVcpusFor(true)).toBe(512);
  });

  it('refuses 513 even with x2AVIC', () => {
    expect(() => validateConfig({ vcpus: 513, stackBytesPerVcpu: 4096 })).toThrow(/vcpus must be an integer from 1 to 512 .*0x1ff.*got 513/);
  });

  it('refuses more than 255 without x2AVIC, naming x2avic and PHYSICAL_ID_TOO_BIG', () => {
    expect(validateConfig({ vcpus: 255, x2avic: false }).vcpus).toBe(255);
    expect(() => validateConfig({ vcpus: 512, x2avic: false, stackBytesPerVcpu: 4096 })).toThrow(VmConfigError);
    expect(() => validateConfig({ vcpus: 256, x2avic: false })).toThrow(/from 1 to 255 .*need x2avic: true.*PHYSICAL_ID_TOO_BIG.*got 256/);
    expect(() => validateConfig({ vcpus: 4, maxVcpus: 256, x2avic: false })).toThrow(/maxVcpus must be an integer from vcpus \(4\) to 255 .*x2avic/);
  });

  it('refuses a non-boolean x2avic', () => {
    expect(() => validateConfig({ vcpus: 2, x2avic: 1 as unknown as boolean })).toThrow(/x2avic must be true or false/);
  });

  it('lets the lock-order validator run with 512 vCPUs', () => {
    expect(validateConfig({ vcpus: 512, lockdep: true, stackBytesPerVcpu: 4096 }).lockdep).toBe(true);
  });
});
