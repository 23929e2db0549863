// The VM's locks for 4096 vCPUs with the validator off: every vCPU worker needs a lock thread slot
// (mutex holder words) and an SRCU reader slot even then, so both tables must cover the largest VM
// (x2AVIC with the 4K extension addresses vCPU IDs 0..0xFFF).
import { describe, expect, it } from 'vitest';
import { KvmLocks } from '../../../src/kvm/control/kvm-locks.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';

describe('KvmLocks for 4096 vCPUs', () => {
  it('has a thread slot per vCPU worker and an SRCU reader slot per vCPU plus main', () => {
    const memory = new VmControlViews(allocateVmBuffers(4096, 1 << 16));
    const locks = new KvmLocks(memory, 4096, { enabled: false });
    expect(locks.vcpuMutexes.length).toBe(4096);
    expect(memory.srcu.readerSlots).toBe(4097);
  });
});
