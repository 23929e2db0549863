import { describe, it, expect } from 'vitest';
import {
  AvicExitCode,
  AvicExitInfo,
  AvicIncompleteIpiCause,
  exitInfoToBigInt,
  incompleteIpiCause,
  incompleteIpiIndex,
  unacceleratedAccessIsWrite,
  unacceleratedAccessOffset,
} from '../../../src/hw/avic/avic-exit.js';

describe('AVIC exit codes and exit info (svm.h SVM_EXIT_AVIC_*, avic_incomplete_ipi_interception)', () => {
  it('uses SVM exit codes 0x401 and 0x402 and causes 0..4', () => {
    expect(AvicExitCode.IncompleteIpi).toBe(0x401);
    expect(AvicExitCode.UnacceleratedAccess).toBe(0x402);
    expect(Object.values(AvicIncompleteIpiCause)).toEqual([0, 1, 2, 3, 4]);
  });

  it('incomplete IPI: EXITINFO1 is the ICR, EXITINFO2 is cause << 32 | index', () => {
    const info = new AvicExitInfo();
    info.setIncompleteIpi(0x000040f3 | 0x80000000, 0x0500_0000, AvicIncompleteIpiCause.TargetNotRunning, 5);
    expect(info.exitCode).toBe(0x401);
    expect(exitInfoToBigInt(info.exitInfo1Low, info.exitInfo1High)).toBe(0x0500_0000_8000_40f3n);
    expect(exitInfoToBigInt(info.exitInfo2Low, info.exitInfo2High)).toBe((1n << 32n) | 5n);
    expect(incompleteIpiCause(info.exitInfo2High)).toBe(AvicIncompleteIpiCause.TargetNotRunning);
    expect(incompleteIpiIndex(info.exitInfo2Low)).toBe(5);
  });

  it('unaccelerated access: offset in EXITINFO1[11:4], write flag in bit 32', () => {
    const info = new AvicExitInfo();
    info.setUnacceleratedAccess(0x3e0, true, 0x31);
    expect(info.exitCode).toBe(0x402);
    expect(exitInfoToBigInt(info.exitInfo1Low, info.exitInfo1High)).toBe((1n << 32n) | 0x3e0n);
    expect(unacceleratedAccessOffset(info.exitInfo1Low)).toBe(0x3e0);
    expect(unacceleratedAccessIsWrite(info.exitInfo1High)).toBe(true);
    expect(info.exitInfo2Low).toBe(0x31);
    info.setUnacceleratedAccess(0x390, false, 0);
    expect(unacceleratedAccessIsWrite(info.exitInfo1High)).toBe(false);
    expect(unacceleratedAccessOffset(info.exitInfo1Low)).toBe(0x390);
  });
});
