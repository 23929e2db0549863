// The vCPU's view of the memslots (its "nested page table"): the RAM windows the guest CPU runs on
// and whether the APIC-access page is mapped at the default base, reloaded when the main thread
// publishes a new memslot generation (VcpuRequest.MemslotsChanged, or seen at guest entry; O5 in
// docs/architecture.md#orderings: the vCPU stores mode = InGuestMode, then compares generations).

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { APIC_DEFAULT_PHYSICAL_BASE } from '../../hw/apic/apic-register.js';
import { MemslotKind } from '../../memory/memslot.js';
import type { MemslotTranslation } from '../../memory/memslot-snapshot.js';
import { VcpuRequest } from '../control/vcpu-run-state.js';
import type { VmControlViews } from '../control/vm-control-views.js';

export class VcpuMemslots {
  readonly #views: Pick<VmControlViews, 'control' | 'memslots' | 'controlBlockIndex'>;
  readonly #cpu: Pick<GuestCpu, 'setRamWindows'>;
  readonly #requests: number;
  readonly #observedGeneration: number;
  #windows: MemslotTranslation[] = [];
  #apicAccessSlotPresent = false;

  constructor(
    views: Pick<VmControlViews, 'control' | 'memslots' | 'controlBlockIndex'>,
    vcpu: number,
    cpu: Pick<GuestCpu, 'setRamWindows'>,
  ) {
    this.#views = views;
    this.#cpu = cpu;
    this.#requests = views.controlBlockIndex(vcpu, 'requests');
    this.#observedGeneration = views.controlBlockIndex(vcpu, 'observedMemslotGeneration');
  }

  /** The APIC-access memslot maps the default APIC base: guest accesses there reach the APIC. */
  get apicAccessSlotPresent(): boolean {
    return this.#apicAccessSlotPresent;
  }

  /** The published generation is not the one this vCPU decoded. */
  stale(): boolean {
    return this.#views.memslots.generation() !== Atomics.load(this.#views.control, this.#observedGeneration);
  }

  /** Decode the active memslot copy, then acknowledge its generation (the writer may wait for it). */
  reload(): void {
    const control = this.#views.control;
    Atomics.and(control, this.#requests, ~VcpuRequest.MemslotsChanged);
    const generation = this.#views.memslots.readActive(this.#windows);
    this.#cpu.setRamWindows(this.#windows.filter((slot) => slot.kind === MemslotKind.ram));
    this.#apicAccessSlotPresent = this.#windows.some(
      (slot) => slot.kind === MemslotKind.apicAccess && slot.guestPhysicalAddress === APIC_DEFAULT_PHYSICAL_BASE,
    );
    Atomics.store(control, this.#observedGeneration, generation);
    // The memslot writer may be waiting for this acknowledgement (its grace period).
    Atomics.notify(control, this.#observedGeneration);
  }
}
