// Guest physical addresses (GPAs): the addresses the guest puts on its bus, before the memslot
// table (our stand-in for the nested page table) turns them into offsets in the host RAM pool.
// The guest is 32-bit, so a GPA is an integer in 0..2^32-1. It is a branded number, like
// vm-memory's GuestAddress newtype, so that a host offset or a page count is never passed where a
// GPA is meant.

declare const guestPhysicalAddressBrand: unique symbol;

/** An integer in 0..2^32-1, in the guest's physical address space. */
export type GuestPhysicalAddress = number & { readonly [guestPhysicalAddressBrand]: true };

/** Bytes in a guest page; memslots are made of whole pages. */
export const PAGE_SIZE = 4096;

/** One past the highest guest physical address (the guest has a 32-bit physical bus). */
export const GUEST_PHYSICAL_ADDRESS_LIMIT = 2 ** 32;

/** Host misuse: a number that is not a 32-bit unsigned integer was offered as a GPA. */
export class InvalidGuestPhysicalAddressError extends RangeError {
  readonly value: number;

  constructor(value: number) {
    super(`not a guest physical address (an integer in 0..0xffffffff): ${value}`);
    this.name = 'InvalidGuestPhysicalAddressError';
    this.value = value;
  }
}

export function isGuestPhysicalAddress(value: number): value is GuestPhysicalAddress {
  return Number.isInteger(value) && value >= 0 && value < GUEST_PHYSICAL_ADDRESS_LIMIT;
}

/** Checked constructor; throws InvalidGuestPhysicalAddressError on anything outside 0..2^32-1. */
export function guestPhysicalAddress(value: number): GuestPhysicalAddress {
  if (!isGuestPhysicalAddress(value)) throw new InvalidGuestPhysicalAddressError(value);
  return value;
}

/** `0x%08x`, the way KVM traces print a GPA. */
export function formatGuestPhysicalAddress(address: GuestPhysicalAddress): string {
  return `0x${address.toString(16).padStart(8, '0')}`;
}

export function isPageAligned(value: number): boolean {
  return value % PAGE_SIZE === 0;
}
