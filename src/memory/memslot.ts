// Memslots: which ranges of guest physical memory exist and where their bytes live in the host RAM
// pool (one SharedArrayBuffer). This mirrors KVM's `struct kvm_memory_slot` and the checks of
// `__kvm_set_memory_region` (virt/kvm/kvm_main.c): page alignment, no overlap between slots
// (EEXIST), the address space bound, and a fixed number of slot ids. KVM: kvm_alloc_apic_access_page
// (the private APIC-access slot), kvm_set_memslot (update protocol; docs/architecture.md#orderings, O5, O6).
//
// A MemslotSet is immutable, like the `struct kvm_memslots` a writer builds before publishing it:
// every operation returns a new set (or a typed error) and never edits one a reader may hold.
// Publishing to vCPU workers is memslot-snapshot.ts's job; the locking (slotsLock, SRCU grace
// periods) is the hypervisor layer's.

import {
  GUEST_PHYSICAL_ADDRESS_LIMIT,
  PAGE_SIZE,
  formatGuestPhysicalAddress,
  isPageAligned,
  type GuestPhysicalAddress,
} from './guest-physical-address.js';

declare const memslotIdBrand: unique symbol;

/** A memslot's id: 0..MEMSLOT_ID_LIMIT-1. User slots and private slots share the space. */
export type MemslotId = number & { readonly [memslotIdBrand]: true };

/** Number of slot ids, and so the most slots a set may hold (KVM: KVM_MEM_SLOTS_NUM). */
export const MEMSLOT_ID_LIMIT = 32;

/** Host misuse: a number outside 0..31 was offered as a memslot id. */
export class InvalidMemslotIdError extends RangeError {
  readonly value: number;

  constructor(value: number) {
    super(`not a memslot id (an integer in 0..${MEMSLOT_ID_LIMIT - 1}): ${value}`);
    this.name = 'InvalidMemslotIdError';
    this.value = value;
  }
}

export function memslotId(value: number): MemslotId {
  if (!Number.isInteger(value) || value < 0 || value >= MEMSLOT_ID_LIMIT) throw new InvalidMemslotIdError(value);
  return value as MemslotId;
}

/**
 * KVM's name for the private slot that maps the APIC-access page (kvm_alloc_apic_access_page). Only a slot of kind
 * 'apicAccess' may use it, and that kind may use no other id.
 */
export const APIC_ACCESS_PAGE_PRIVATE_MEMSLOT = memslotId(31);
/**
 * Slot ids userspace may name (KVM_USER_MEM_SLOTS): those below the private slots. KVM keeps its
 * private slots above the user ones; here the APIC-access slot is the only one, so 0..30.
 */
export const KVM_USER_MEM_SLOTS = APIC_ACCESS_PAGE_PRIVATE_MEMSLOT;

/**
 * Host misuse: KVM_SET_USER_MEMORY_REGION named a private slot. kvm_vm_ioctl_set_memory_region
 * refuses `slot >= KVM_USER_MEM_SLOTS` with EINVAL before taking slots_lock: only KVM itself
 * (kvm_alloc_apic_access_page, __x86_set_memory_region) creates, resizes or deletes its private slots.
 */
export class PrivateMemslotIdError extends RangeError {
  readonly id: MemslotId;

  constructor(id: MemslotId) {
    super(
      `memslot ${id} is KVM's private APIC-access slot: KVM_SET_USER_MEMORY_REGION takes user slots 0..${KVM_USER_MEM_SLOTS - 1} only (EINVAL)`,
    );
    this.name = 'PrivateMemslotIdError';
    this.id = id;
  }
}

/** A slot id as KVM_SET_USER_MEMORY_REGION accepts it: InvalidMemslotIdError, or PrivateMemslotIdError. */
export function userMemslotId(value: number): MemslotId {
  const id = memslotId(value);
  if (id >= KVM_USER_MEM_SLOTS) throw new PrivateMemslotIdError(id);
  return id;
}

/** Largest APIC-access slot: one page per x2AVIC physical ID (the rfc-v2 policy's growth bound). */
export const APIC_ACCESS_SLOT_MAX_PAGES = 512;

export const MemslotKind = {
  /** Ordinary guest RAM: accesses go to the RAM pool at hostOffset. */
  ram: 'ram',
  /**
   * The APIC-access page: accesses go to the accessing vCPU's APIC backing page (AVIC), not to the
   * pool. KVM still backs it with one anonymous page (vm_mmap); here hostOffset names that page.
   */
  apicAccess: 'apicAccess',
} as const;
export type MemslotKind = (typeof MemslotKind)[keyof typeof MemslotKind];

export interface Memslot {
  readonly id: MemslotId;
  readonly guestPhysicalAddress: GuestPhysicalAddress;
  /** Bytes; a whole number of pages, more than zero. */
  readonly size: number;
  /** Byte offset of the slot's first byte in the RAM pool; page aligned. Slots may alias it. */
  readonly hostOffset: number;
  readonly kind: MemslotKind;
}

/** Why a memslot operation was refused. Each message is written once, in `memslotError` below. */
export type MemslotError =
  | { readonly kind: 'duplicateId'; readonly id: MemslotId; readonly message: string }
  | { readonly kind: 'noSuchSlot'; readonly id: MemslotId; readonly message: string }
  | { readonly kind: 'overlap'; readonly id: MemslotId; readonly existingId: MemslotId; readonly message: string }
  | {
      readonly kind: 'misaligned';
      readonly field: 'guestPhysicalAddress' | 'size' | 'hostOffset';
      readonly value: number;
      readonly message: string;
    }
  | { readonly kind: 'emptySlot'; readonly id: MemslotId; readonly size: number; readonly message: string }
  | {
      readonly kind: 'beyondAddressSpace';
      readonly guestPhysicalAddress: GuestPhysicalAddress;
      readonly size: number;
      readonly message: string;
    }
  | {
      readonly kind: 'outsidePool';
      readonly hostOffset: number;
      readonly size: number;
      readonly poolBytes: number;
      readonly message: string;
    }
  | { readonly kind: 'tooManySlots'; readonly limit: number; readonly message: string }
  | { readonly kind: 'privateSlotMisuse'; readonly id: MemslotId; readonly slotKind: MemslotKind; readonly message: string };

const hex = (value: number): string => `0x${value.toString(16)}`;

/** The one place each MemslotError's message is written. */
export const memslotError = {
  duplicateId: (id: MemslotId) => ({ kind: 'duplicateId', id, message: `memslot ${id} already exists` }) as const,
  noSuchSlot: (id: MemslotId) => ({ kind: 'noSuchSlot', id, message: `memslot ${id} does not exist` }) as const,
  overlap: (id: MemslotId, existing: Memslot) =>
    ({
      kind: 'overlap',
      id,
      existingId: existing.id,
      message: `memslot ${id} overlaps memslot ${existing.id} at ${formatGuestPhysicalAddress(existing.guestPhysicalAddress)} (EEXIST)`,
    }) as const,
  misaligned: (field: 'guestPhysicalAddress' | 'size' | 'hostOffset', value: number) =>
    ({ kind: 'misaligned', field, value, message: `memslot ${field} ${hex(value)} is not a multiple of ${PAGE_SIZE}` }) as const,
  emptySlot: (id: MemslotId, size: number) =>
    ({ kind: 'emptySlot', id, size, message: `memslot ${id} must have a positive size, not ${size}` }) as const,
  beyondAddressSpace: (guestPhysicalAddress: GuestPhysicalAddress, size: number) =>
    ({
      kind: 'beyondAddressSpace',
      guestPhysicalAddress,
      size,
      message: `memslot at ${formatGuestPhysicalAddress(guestPhysicalAddress)} of ${hex(size)} bytes ends beyond the 32-bit physical address space`,
    }) as const,
  outsidePool: (hostOffset: number, size: number, poolBytes: number) =>
    ({
      kind: 'outsidePool',
      hostOffset,
      size,
      poolBytes,
      message: `memslot host range ${hex(hostOffset)}+${hex(size)} is outside the ${hex(poolBytes)}-byte RAM pool`,
    }) as const,
  tooManySlots: () =>
    ({ kind: 'tooManySlots', limit: MEMSLOT_ID_LIMIT, message: `a memslot set holds at most ${MEMSLOT_ID_LIMIT} slots` }) as const,
  privateSlotMisuse: (id: MemslotId, slotKind: MemslotKind) =>
    ({
      kind: 'privateSlotMisuse',
      id,
      slotKind,
      message: `memslot ${id} of kind ${slotKind}: the APIC-access page is exactly slot ${APIC_ACCESS_PAGE_PRIVATE_MEMSLOT}, 1 to ${APIC_ACCESS_SLOT_MAX_PAGES} pages, and that slot is nothing else`,
    }) as const,
} as const;

export type MemslotResult = { readonly ok: true; readonly set: MemslotSet } | { readonly ok: false; readonly error: MemslotError };

/** For callers that treat a refused operation as host misuse (the private-slot installer). */
export class MemslotRefusedError extends Error {
  readonly error: MemslotError;

  constructor(error: MemslotError) {
    super(error.message);
    this.name = 'MemslotRefusedError';
    this.error = error;
  }
}

/** The set from a result, or a MemslotRefusedError carrying the refusal. */
export function expectMemslotSet(result: MemslotResult): MemslotSet {
  if (!result.ok) throw new MemslotRefusedError(result.error);
  return result.set;
}

export interface MemslotRequest {
  readonly id: MemslotId;
  readonly guestPhysicalAddress: GuestPhysicalAddress;
  readonly size: number;
  readonly hostOffset: number;
  readonly kind?: MemslotKind;
}

/** Host misuse: the RAM pool size itself is unusable. */
export class InvalidRamPoolSizeError extends RangeError {
  readonly poolBytes: number;

  constructor(poolBytes: number) {
    super(`RAM pool size must be a whole number of pages, at most 4 GiB: ${poolBytes}`);
    this.name = 'InvalidRamPoolSizeError';
    this.poolBytes = poolBytes;
  }
}

const refuse = (error: MemslotError): MemslotResult => ({ ok: false, error });

/**
 * An immutable set of memslots, sorted by guest physical address, every one valid against the
 * RAM pool size it was created with.
 */
export class MemslotSet {
  readonly poolBytes: number;
  /** Sorted by guestPhysicalAddress; ranges never overlap. Frozen. */
  readonly slots: readonly Memslot[];

  private constructor(poolBytes: number, slots: readonly Memslot[]) {
    this.poolBytes = poolBytes;
    this.slots = Object.freeze(slots);
    Object.freeze(this);
  }

  /** The empty set over a RAM pool of `poolBytes` bytes (host offsets must stay inside it). */
  static empty(poolBytes: number): MemslotSet {
    // Host offsets are stored as 32-bit words in the published snapshot, hence the 4 GiB bound.
    if (!Number.isInteger(poolBytes) || poolBytes < 0 || poolBytes > 2 ** 32 || !isPageAligned(poolBytes)) {
      throw new InvalidRamPoolSizeError(poolBytes);
    }
    return new MemslotSet(poolBytes, []);
  }

  get count(): number {
    return this.slots.length;
  }

  byId(id: MemslotId): Memslot | undefined {
    return this.slots.find((slot) => slot.id === id);
  }

  /** The slot whose range holds `address`, by binary search over the sorted slots. */
  find(address: GuestPhysicalAddress): Memslot | undefined {
    let low = 0;
    let high = this.slots.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const slot = this.slots[middle]!;
      if (address < slot.guestPhysicalAddress) high = middle - 1;
      else if (address - slot.guestPhysicalAddress >= slot.size) low = middle + 1;
      else return slot;
    }
    return undefined;
  }

  /** KVM_MR_CREATE. */
  createMemslot(request: MemslotRequest): MemslotResult {
    const slot: Memslot = Object.freeze({
      id: request.id,
      guestPhysicalAddress: request.guestPhysicalAddress,
      size: request.size,
      hostOffset: request.hostOffset,
      kind: request.kind ?? MemslotKind.ram,
    });
    // A full set is reported as full, whatever id was asked for (every id is taken by then).
    if (this.slots.length >= MEMSLOT_ID_LIMIT) return refuse(memslotError.tooManySlots());
    if (this.byId(slot.id) !== undefined) return refuse(memslotError.duplicateId(slot.id));
    const invalid = this.#checkShape(slot) ?? this.#checkPlacement(slot);
    if (invalid !== undefined) return refuse(invalid);
    return { ok: true, set: this.#with(this.slots.concat(slot)) };
  }

  /** KVM_MR_DELETE. */
  deleteMemslot(id: MemslotId): MemslotResult {
    if (this.byId(id) === undefined) return refuse(memslotError.noSuchSlot(id));
    return { ok: true, set: this.#with(this.slots.filter((slot) => slot.id !== id)) };
  }

  /** KVM_MR_MOVE: the same backing (size, hostOffset, kind) at a new guest physical address. */
  moveMemslot(id: MemslotId, to: GuestPhysicalAddress): MemslotResult {
    const old = this.byId(id);
    if (old === undefined) return refuse(memslotError.noSuchSlot(id));
    const moved: Memslot = Object.freeze({ ...old, guestPhysicalAddress: to });
    const invalid = this.#checkPlacement(moved);
    if (invalid !== undefined) return refuse(invalid);
    return { ok: true, set: this.#with(this.slots.map((slot) => (slot.id === id ? moved : slot))) };
  }

  #with(slots: Memslot[]): MemslotSet {
    return new MemslotSet(
      this.poolBytes,
      slots.sort((left, right) => left.guestPhysicalAddress - right.guestPhysicalAddress),
    );
  }

  /** Checks that do not depend on where the slot is placed. */
  #checkShape(slot: Memslot): MemslotError | undefined {
    const isPrivateId = slot.id === APIC_ACCESS_PAGE_PRIVATE_MEMSLOT;
    // Upstream KVM's private slot is one page; the 2016 RFC grew it to one page per vCPU id
    // (backing-page-policy.ts), so up to the x2AVIC table's 512 pages are allowed.
    if (
      isPrivateId !== (slot.kind === MemslotKind.apicAccess) ||
      (isPrivateId && !(slot.size >= PAGE_SIZE && slot.size <= APIC_ACCESS_SLOT_MAX_PAGES * PAGE_SIZE))
    ) {
      return memslotError.privateSlotMisuse(slot.id, slot.kind);
    }
    if (!Number.isInteger(slot.size) || slot.size <= 0) return memslotError.emptySlot(slot.id, slot.size);
    if (!isPageAligned(slot.size)) return memslotError.misaligned('size', slot.size);
    if (!Number.isInteger(slot.hostOffset) || slot.hostOffset < 0 || !isPageAligned(slot.hostOffset)) {
      return memslotError.misaligned('hostOffset', slot.hostOffset);
    }
    // The APIC-access slot's accesses go to backing pages, not the RAM pool (only its first page is named).
    if (slot.hostOffset + (slot.kind === MemslotKind.apicAccess ? PAGE_SIZE : slot.size) > this.poolBytes) {
      return memslotError.outsidePool(slot.hostOffset, slot.size, this.poolBytes);
    }
    return undefined;
  }

  /** Checks on the guest physical range, against every other slot (the slot itself excluded). */
  #checkPlacement(slot: Memslot): MemslotError | undefined {
    if (!isPageAligned(slot.guestPhysicalAddress)) {
      return memslotError.misaligned('guestPhysicalAddress', slot.guestPhysicalAddress);
    }
    if (slot.guestPhysicalAddress + slot.size > GUEST_PHYSICAL_ADDRESS_LIMIT) {
      return memslotError.beyondAddressSpace(slot.guestPhysicalAddress, slot.size);
    }
    const end = slot.guestPhysicalAddress + slot.size;
    const existing = this.slots.find(
      (other) =>
        other.id !== slot.id && other.guestPhysicalAddress < end && slot.guestPhysicalAddress < other.guestPhysicalAddress + other.size,
    );
    return existing === undefined ? undefined : memslotError.overlap(slot.id, existing);
  }
}
