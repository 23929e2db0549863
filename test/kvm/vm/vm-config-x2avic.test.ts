// VmConfig.x2avic, x2avicExtended and the vCPU limits (svm.h X2AVIC_MAX_PHYSICAL_ID and
// X2AVIC_4K_MAX_PHYSICAL_ID, PHYSICAL_ID_TOO_BIG in avic_init_backing_page): any VM of up to 4096
// vCPUs is accepted; AVIC addresses IDs up to 0xFFF with the 4K extension, 0x1FF with x2AVIC alone
// and 0xFE without x2AVIC, and a vCPU beyond that inhibits AVIC at creation
// (vcpu-creation-physical-id.test.ts) instead of being refused. Validation only: no VM is created,
// so no worker starts.
import { describe, expect, it } from 'vitest';
import { MAX_VCPUS, maxVcpusFor, validateConfig } from '../../../src/kvm/vm/vm-config.js';

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

  it('accepts up to 4096 vCPUs in every AVIC mode and refuses 4097, naming the limit', () => {
    expect(MAX_VCPUS).toBe(4096);
    expect(validateConfig({ vcpus: 4096 }).vcpus).toBe(4096);
    expect(validateConfig({ vcpus: 600, x2avicExtended: false }).vcpus).toBe(600);
    expect(validateConfig({ vcpus: 256, x2avic: false }).vcpus).toBe(256);
    expect(() => validateConfig({ vcpus: 4097 })).toThrow(/vcpus must be an integer from 1 to 4096, got 4097/);
    expect(() => validateConfig({ vcpus: 4, maxVcpus: 4097, x2avic: false })).toThrow(
      /maxVcpus must be an integer from vcpus \(4\) to 4096/,
    );
  });

  it('AVIC reaches 4096 vCPUs with the 4K extension, 512 with x2AVIC alone, 255 without x2AVIC', () => {
    expect(maxVcpusFor(true, true)).toBe(4096);
    expect(maxVcpusFor(true, false)).toBe(512);
    expect(maxVcpusFor(false, true)).toBe(255);
    expect(maxVcpusFor(false)).toBe(255);
  });

  it('x2avicExtended defaults to x2avic, and asking for it without x2AVIC is refused', () => {
    expect(validateConfig({ vcpus: 2 }).x2avicExtended).toBe(true);
    expect(validateConfig({ vcpus: 2, x2avic: false }).x2avicExtended).toBe(false);
    expect(validateConfig({ vcpus: 2, x2avicExtended: false }).x2avicExtended).toBe(false);
    expect(() => validateConfig({ vcpus: 2, x2avic: false, x2avicExtended: true })).toThrow(/x2avicExtended needs x2avic/);
    expect(() => validateConfig({ vcpus: 2, x2avicExtended: 'yes' as unknown as boolean })).toThrow(/x2avicExtended must be true or false/);
  });

  it('keeps 16 KiB stacks while they fit, else shrinks the default to a quarter of RAM, never below 256 bytes', () => {
    expect(validateConfig({ vcpus: 255 }).stackBytesPerVcpu).toBe(16 << 10);
    expect(validateConfig({ vcpus: 511 }).stackBytesPerVcpu).toBe(16 << 10);
    expect(validateConfig({ vcpus: 512 }).stackBytesPerVcpu).toBe(8 << 10);
    expect(validateConfig({ vcpus: 4096 }).stackBytesPerVcpu).toBe(1 << 10);
    expect(validateConfig({ vcpus: 4096, memoryBytes: 64 << 20 }).stackBytesPerVcpu).toBe(4 << 10);
    expect(validateConfig({ vcpus: 4096, stackBytesPerVcpu: 512 }).stackBytesPerVcpu).toBe(512);
    expect(() => validateConfig({ vcpus: 4096, memoryBytes: 1 << 20 })).toThrow(/4096 stacks of 256 bytes/);
  });

  it('refuses a non-boolean x2avic', () => {
    expect(() => validateConfig({ vcpus: 2, x2avic: 1 as unknown as boolean })).toThrow(/x2avic must be true or false/);
  });

  it('lets the lock-order validator run with 512 vCPUs, and with 4096', () => {
    expect(validateConfig({ vcpus: 512, lockdep: true, stackBytesPerVcpu: 4096 }).lockdep).toBe(true);
    expect(validateConfig({ vcpus: 4096, lockdep: true }).lockdep).toBe(true);
  });
});
