// vCPU creation on the main thread (kvm_vm_ioctl_create_vcpu + avic_init_backing_page), at VM
// creation and for hot-add while the other vCPUs run, under either backing-page policy (avic_init_backing_page,
// kvm_alloc_apic_access_page; backing-page-policy.ts):
//
//   upstream  kvm->lock (precreate) -> the APIC-access page, once, under slots_lock -> kvm->lock and
//             the new vcpu->mutex (reset the page, write the physical table entry). Nothing else moves.
//   rfc-v2    the same, except that the arch step resizes the APIC-access memslot to (id + 1) pages
//             under slots_lock whenever the id is the highest so far (publish, two grace periods: the
//             old memory goes away), then re-initialises every existing vCPU's backing page in the new
//             memory and re-points its physical table entry while its owner runs (the RFC took no
//             per-vCPU lock). The owner switches to the new page when it sees KVM_REQ_APIC_PAGE_RELOAD;
//             IRR bits that senders set in the released page meanwhile are stranded there: lost.
//
// A vCPU whose ID is beyond what the VM's AVIC addresses (avic_init_backing_page's max_id: 0xFE,
// 0x1FF, or 0xFFF with the x2AVIC 4K extension; x2avic.ts avicReachMaxId) is created all the same,
// as KVM does since it stopped refusing it: it gets its APIC page but no physical table entry, and
// it sets APICV_INHIBIT_REASON_PHYSICAL_ID_TOO_BIG for the VM before it is counted, so its own AVIC
// state starts inactive and every existing vCPU is asked to drop AVIC (KVM_REQ_APICV_UPDATE):
// every interrupt is delivered in software from then on, and none is lost.

import { APIC_DEFAULT_PHYSICAL_BASE, APIC_PAGE_BYTES, APIC_PAGE_WORDS, ApicRegister } from '../../hw/apic/apic-register.js';
import { resetApicPage, updateProcessorPriority } from '../../hw/apic/apic-backing-page.js';
import { apicId, hostPhysicalApicId } from '../../hw/apic/apic-id.js';
import { APIC_ACCESS_PAGE_PRIVATE_MEMSLOT, MemslotKind, type MemslotSet } from '../../memory/memslot.js';
import { guestPhysicalAddress } from '../../memory/guest-physical-address.js';
import type { BackingPagePolicy } from '../control/backing-page-policy.js';
import type { KvmLocks } from '../control/kvm-locks.js';
import type { VmMemslots } from './memslot-updates.js';
import { VcpuRequest, VcpuRunState } from '../control/vcpu-run-state.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import { ApicvInhibitReason, setOrClearApicvInhibitFromMain } from '../control/apic-inhibit.js';

/** What vCPU creation cost, for the report (VmReport.vcpuCreation). */
export interface VcpuCreationStatistics {
  /** vCPUs created while the VM was running (hot-add). */
  hotAdds: number;
  /** Milliseconds each hot-add took, creation call to return (its worker starts after). */
  readonly hotAddMs: number[];
  /** rfc-v2: resizes of the APIC-access memslot (upstream creates it once and never resizes it). */
  apicAccessMemslotResizes: number;
  /** rfc-v2: backing pages released and re-initialised under running vCPUs. */
  backingPagesReinitialised: number;
  /**
   * rfc-v2: IRR bits found in released backing pages: interrupts a sender posted through a stale
   * pointer, or that were pending when the page was re-initialised. Counted when the released memory
   * is reused and once more at the end of the run; each is an IPI nobody will ever take.
   */
  strandedIrrBits: number;
}

const IRR_WORD = ApicRegister.InterruptRequest >> 2;
const ISR_WORD = ApicRegister.InService >> 2;
const TMR_WORD = ApicRegister.TriggerMode >> 2;
/** The 256-bit registers sit one 16-byte slot (4 words) apart: 8 words of payload each. */
const BITMAP_STRIDE_WORDS = 4;

function irrBitsSet(words: Int32Array, base: number): number {
  let bits = 0;
  for (let i = 0; i < 8; i++) {
    let value = Atomics.load(words, base + IRR_WORD + i * BITMAP_STRIDE_WORDS);
    while (value !== 0) {
      value &= value - 1;
      bits++;
    }
  }
  return bits;
}

export class VcpuCreation {
  readonly statistics: VcpuCreationStatistics = {
    hotAdds: 0,
    hotAddMs: [],
    apicAccessMemslotResizes: 0,
    backingPagesReinitialised: 0,
    strandedIrrBits: 0,
  };
  readonly #memory: VmControlViews;
  readonly #locks: KvmLocks;
  readonly #policy: BackingPagePolicy;
  readonly #memslots: VmMemslots;
  #apicAccessMemslotEnabled = false;
  /** rfc-v2: pages in the APIC-access memslot; upstream: 1 once created. */
  #apicAccessPages = 0;
  /** Which region of apicPages holds the current backing pages (rfc-v2 alternates). */
  #region = 0;
  /**
   * rfc-v2 only, for the lock replay `rfc-v2-hot-add` (docs/lock-scenarios.md): called, slots_lock held,
   * before each existing vCPU's page is re-initialised; it takes that vCPU's vcpu->mutex (the
   * obvious way to make the RFC's re-initialisation safe) and returns its release, or undefined to
   * re-initialise without it. Unset, the RFC's behaviour: no per-vCPU lock at all.
   */
  reinitialisationGuard: ((vcpu: number) => Promise<(() => void) | undefined>) | undefined;
  /**
   * avic_init_backing_page's max_id: the highest vCPU ID that gets a physical table entry; a higher
   * one sets PHYSICAL_ID_TOO_BIG. The VM's AVIC reach (avicReachMaxId); tests may lower it to
   * exercise the inhibit with a few vCPUs (the table and the VMCB max indices keep their sizes).
   */
  avicMaxPhysicalId: number;

  constructor(memory: VmControlViews, locks: KvmLocks, policy: BackingPagePolicy, memslots: VmMemslots, avicMaxPhysicalId: number) {
    this.#memory = memory;
    this.#locks = locks;
    this.#policy = policy;
    this.#memslots = memslots;
    this.avicMaxPhysicalId = avicMaxPhysicalId;
  }

  /** Creates vCPU `vcpu` (the next id): afterwards it is a valid target and counted in createdVcpus. */
  async create(vcpu: number): Promise<void> {
    const locks = this.#locks;
    const memory = this.#memory;
    const control = memory.control;
    await locks.inContext(`KVM_CREATE_VCPU ${vcpu}`, async () => {
      // kvm->lock covers precreate and the final publish only; the arch create (the APIC-access page,
      // under slots_lock) runs outside it, as in kvm_vm_ioctl_create_vcpu.
      await locks.withMutex(locks.kvmLock, 'kvm_vm_ioctl_create_vcpu: precreate', async () => {
        Atomics.store(control, memory.controlBlockIndex(vcpu, 'runState'), VcpuRunState.Created);
        Atomics.store(control, memory.controlBlockIndex(vcpu, 'hostThreadSlot'), -1);
      });
      // avic_init_backing_page: an ID beyond AVIC's reach inhibits AVIC for the VM at once and
      // needs neither the APIC-access page nor a table entry.
      const addressable = vcpu <= this.avicMaxPhysicalId;
      if (!addressable) setOrClearApicvInhibitFromMain(memory, ApicvInhibitReason.PhysicalIdTooBig, true);
      else if (this.#policy.growsWithVcpuId) await this.#growApicAccessMemslot(vcpu);
      else await this.#allocateApicAccessPage();
      await locks.withMutex(locks.kvmLock, 'kvm_vm_ioctl_create_vcpu: publish', () =>
        locks.withMutex(locks.vcpuMutexes[vcpu]!, 'kvm_vm_ioctl_create_vcpu: install the vCPU fd', async () => {
          const base = memory.apicPageRegionBase(this.#region, vcpu);
          resetApicPage(memory.apicPageWords, base, apicId(vcpu));
          Atomics.store(control, memory.controlBlockIndex(vcpu, 'apicPageBase'), base);
          // Valid before the vCPU is counted, so a broadcast that sees it can reach it (O7 in docs/architecture.md#orderings).
          if (addressable)
            memory.physicalApicIdTable.storeEntry(apicId(vcpu), {
              hostPhysicalApicId: hostPhysicalApicId(0),
              backingPagePointer: this.#policy.backingPagePointer(vcpu, this.#region),
              isRunning: false,
              isValid: true,
            });
          Atomics.store(control, memory.headerIndex('createdVcpus'), vcpu + 1);
        }),
      );
    });
  }

  /** kvm_alloc_apic_access_page: one 4 KiB private slot at 0xFEE00000, created once, under slots_lock. */
  async #allocateApicAccessPage(): Promise<void> {
    await this.#locks.withMutex(this.#locks.slotsLock, 'kvm_alloc_apic_access_page', async () => {
      if (this.#apicAccessMemslotEnabled) return;
      await this.#memslots.publish(
        this.#memslots.apply((set) => set.createMemslot(this.#apicAccessSlot(1))),
        true,
      );
      this.#apicAccessMemslotEnabled = true;
      this.#apicAccessPages = 1;
    });
  }

  /**
   * The RFC's avic_init_backing_page: under slots_lock, grow the private memslot to (id + 1) pages in
   * new host memory (the other region), wait out the grace periods, then move every existing vCPU's
   * backing page there, re-initialised.
   */
  async #growApicAccessMemslot(vcpu: number): Promise<void> {
    await this.#locks.withMutex(this.#locks.slotsLock, 'avic_init_backing_page (rfc-v2): resize the APIC-access memslot', async () => {
      if (vcpu + 1 <= this.#apicAccessPages) return;
      const created = this.#memory.createdVcpus();
      const next = this.#apicAccessMemslotEnabled ? 1 - this.#region : this.#region;
      const pages = vcpu + 1;
      await this.#memslots.publish(
        this.#memslots.apply((set) => this.#resizeApicAccessSlot(set, pages)),
        this.#apicAccessMemslotEnabled,
      );
      this.#apicAccessMemslotEnabled = true;
      this.#apicAccessPages = pages;
      if (next === this.#region) return;
      this.statistics.apicAccessMemslotResizes++;
      // The memory about to be reused was released one resize ago: what senders left there is lost.
      this.#countStranded(next, created);
      const from = this.#region;
      this.#region = next;
      for (let other = 0; other < created; other++) {
        const release = await this.reinitialisationGuard?.(other);
        try {
          this.#reinitialiseBackingPage(other, from, next);
        } finally {
          release?.();
        }
      }
    });
  }

  #apicAccessSlot(pages: number): Parameters<MemslotSet['createMemslot']>[0] {
    return {
      id: APIC_ACCESS_PAGE_PRIVATE_MEMSLOT,
      guestPhysicalAddress: guestPhysicalAddress(APIC_DEFAULT_PHYSICAL_BASE),
      size: pages * APIC_PAGE_BYTES,
      hostOffset: 0,
      kind: MemslotKind.apicAccess,
    };
  }

  #resizeApicAccessSlot(set: MemslotSet, pages: number): ReturnType<MemslotSet['createMemslot']> {
    if (!this.#apicAccessMemslotEnabled) return set.createMemslot(this.#apicAccessSlot(pages));
    const deleted = set.deleteMemslot(APIC_ACCESS_PAGE_PRIVATE_MEMSLOT);
    return deleted.ok ? deleted.set.createMemslot(this.#apicAccessSlot(pages)) : deleted;
  }

  /**
   * One vCPU's page, released and re-initialised in region `to` from the registers the hypervisor
   * knows (ID, LDR, DFR, TPR, SVR, LVTs ...), without the hardware's transient state (IRR, ISR, TMR),
   * as the RFC's re-initialisation did. New page base first, then the table entry (software senders
   * then never lag the hardware's view), then the reload request to the owner.
   */
  #reinitialiseBackingPage(vcpu: number, from: number, to: number): void {
    const memory = this.#memory;
    const words = memory.apicPageWords;
    const source = memory.apicPageRegionBase(from, vcpu);
    const target = memory.apicPageRegionBase(to, vcpu);
    words.copyWithin(target, source, source + APIC_PAGE_WORDS);
    for (let i = 0; i < 8; i++) {
      words[target + IRR_WORD + i * BITMAP_STRIDE_WORDS] = 0;
      words[target + ISR_WORD + i * BITMAP_STRIDE_WORDS] = 0;
      words[target + TMR_WORD + i * BITMAP_STRIDE_WORDS] = 0;
    }
    updateProcessorPriority(words, target);
    Atomics.store(memory.control, memory.controlBlockIndex(vcpu, 'apicPageBase'), target);
    if (vcpu <= this.avicMaxPhysicalId)
      memory.physicalApicIdTable.replaceBackingPagePointer(apicId(vcpu), this.#policy.backingPagePointer(vcpu, to));
    memory.kick(vcpu, VcpuRequest.ApicPageReload);
    this.statistics.backingPagesReinitialised++;
  }

  /** Counts the IRR bits left in a released region before its memory is reused (or at the end). */
  #countStranded(region: number, created: number): void {
    for (let vcpu = 0; vcpu < created; vcpu++) {
      this.statistics.strandedIrrBits += irrBitsSet(this.#memory.apicPageWords, this.#memory.apicPageRegionBase(region, vcpu));
    }
  }

  /** At the end of the run: the released region's stranded bits (rfc-v2 only; upstream has none). */
  countStrandedAtEnd(): void {
    if (this.#policy.growsWithVcpuId && this.statistics.apicAccessMemslotResizes > 0)
      this.#countStranded(1 - this.#region, this.#memory.createdVcpus());
  }
}
