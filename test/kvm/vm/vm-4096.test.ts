// A VM of 4096 vCPUs, created but not started (no worker threads): x2AVIC with the 4K extension
// addresses every vCPU (no inhibit), the physical APIC ID table spans 8 contiguous, page-aligned
// pages, and all of the VM's shared memory (guest RAM, APIC pages, control buffer) and the lock
// validator's region stay well inside this machine's memory.
import { describe, expect, it } from 'vitest';
import { Vm } from '../../../src/kvm/vm/vm.js';
import { apicvInhibitReasons } from '../../../src/kvm/control/apic-inhibit.js';
import { vmSharedBytes } from '../../../src/kvm/control/vm-control-views.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';

const MiB = 1 << 20;

describe('a 4096-vCPU VM (x2AVIC 4K extension)', () => {
  it('creates every vCPU with a valid entry in a 32 KiB table and no AVIC inhibit, in under 256 MiB of shared memory', async () => {
    const vm = await Vm.create({ vcpus: 4096 });
    const memory = vm.memory;
    expect(vm.createdVcpus).toBe(4096);
    expect(apicvInhibitReasons(memory)).toBe(0);

    const table = memory.physicalApicIdTable;
    expect(table.entryCount).toBe(4096);
    expect(memory.layout.regionBytes.physicalApicIdTable).toBe(32 << 10);
    expect(memory.layout.regionOffsets.physicalApicIdTable % 4096).toBe(0);
    let valid = 0;
    for (let index = 0; index < 4096; index++) if (table.isValid(apicId(index))) valid++;
    expect(valid).toBe(4096);

    // Upstream policy: one region of APIC pages (16 MiB); 1 KiB stacks in the default 16 MiB RAM.
    expect(memory.buffers.apicPages.byteLength).toBe(4096 * 4096);
    expect(vm.config.stackBytesPerVcpu).toBe(1024);
    expect(vmSharedBytes(memory.buffers)).toBeLessThan(256 * MiB);
    expect(vmSharedBytes(memory.buffers) + vm.locks.lockdep.shared.buffer.byteLength).toBeLessThan(256 * MiB);
  });
});
