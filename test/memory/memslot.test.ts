import { describe, expect, it } from 'vitest';
import {
  InvalidGuestPhysicalAddressError,
  PAGE_SIZE,
  formatGuestPhysicalAddress,
  guestPhysicalAddress,
} from '../../src/memory/guest-physical-address.js';
import {
  APIC_ACCESS_PAGE_PRIVATE_MEMSLOT,
  InvalidMemslotIdError,
  InvalidRamPoolSizeError,
  MEMSLOT_ID_LIMIT,
  MemslotKind,
  MemslotRefusedError,
  MemslotSet,
  expectMemslotSet,
  memslotId,
  type MemslotError,
  type MemslotRequest,
  type MemslotResult,
} from '../../src/memory/memslot.js';

const POOL_BYTES = 64 * PAGE_SIZE;
const gpa = guestPhysicalAddress;

const ram = (id: number, address: number, pages: number, hostPage: number): MemslotRequest => ({
  id: memslotId(id),
  guestPhysicalAddress: gpa(address),
  size: pages * PAGE_SIZE,
  hostOffset: hostPage * PAGE_SIZE,
});

function refusal(result: MemslotResult): MemslotError {
  if (result.ok) throw new Error('expected the operation to be refused');
  return result.error;
}

/** Slot 0: 16 pages at 0; slot 1: 4 pages at 0x100000; slot 2: 1 page at 0x8000_0000. */
function threeSlots(): MemslotSet {
  let set = MemslotSet.empty(POOL_BYTES);
  set = expectMemslotSet(set.createMemslot(ram(1, 0x10_0000, 4, 16)));
  set = expectMemslotSet(set.createMemslot(ram(2, 0x8000_0000, 1, 20)));
  set = expectMemslotSet(set.createMemslot(ram(0, 0, 16, 0)));
  return set;
}

describe('GuestPhysicalAddress', () => {
  it('accepts 0..2^32-1 and formats as 0x%08x', () => {
    expect(formatGuestPhysicalAddress(gpa(0))).toBe('0x00000000');
    expect(formatGuestPhysicalAddress(gpa(0xfee0_0000))).toBe('0xfee00000');
    expect(formatGuestPhysicalAddress(gpa(0xffff_ffff))).toBe('0xffffffff');
  });

  it('rejects anything else with a typed error', () => {
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) {
      expect(() => gpa(bad)).toThrow(InvalidGuestPhysicalAddressError);
    }
  });
});

describe('memslot ids', () => {
  it('are 0..31, with 31 reserved for the APIC-access page', () => {
    expect(APIC_ACCESS_PAGE_PRIVATE_MEMSLOT).toBe(31);
    expect(MEMSLOT_ID_LIMIT).toBe(32);
    expect(() => memslotId(32)).toThrow(InvalidMemslotIdError);
    expect(() => memslotId(-1)).toThrow(InvalidMemslotIdError);
  });
});

describe('MemslotSet', () => {
  it('keeps slots sorted by guest physical address and immutable', () => {
    const set = threeSlots();
    expect(set.slots.map((slot) => slot.id)).toEqual([0, 1, 2]);
    expect(Object.isFrozen(set.slots)).toBe(true);
    expect(Object.isFrozen(set.slots[0])).toBe(true);
    const bigger = expectMemslotSet(set.createMemslot(ram(3, 0x4_0000, 1, 30)));
    expect(set.count).toBe(3);
    expect(bigger.slots.map((slot) => slot.id)).toEqual([0, 3, 1, 2]);
  });

  it('finds the slot holding an address, and nothing in the holes', () => {
    const set = threeSlots();
    expect(set.find(gpa(0))?.id).toBe(0);
    expect(set.find(gpa(16 * PAGE_SIZE - 1))?.id).toBe(0);
    expect(set.find(gpa(16 * PAGE_SIZE))).toBeUndefined();
    expect(set.find(gpa(0x10_0000 + 4 * PAGE_SIZE - 1))?.id).toBe(1);
    expect(set.find(gpa(0x10_0000 + 4 * PAGE_SIZE))).toBeUndefined();
    expect(set.find(gpa(0x8000_0fff))?.id).toBe(2);
    expect(set.find(gpa(0xffff_ffff))).toBeUndefined();
    expect(MemslotSet.empty(POOL_BYTES).find(gpa(0))).toBeUndefined();
  });

  it('accepts a slot that ends exactly at 4 GiB', () => {
    const set = expectMemslotSet(MemslotSet.empty(POOL_BYTES).createMemslot(ram(5, 0xffff_f000, 1, 0)));
    expect(set.find(gpa(0xffff_ffff))?.id).toBe(5);
  });

  it('refuses a duplicate id', () => {
    const error = refusal(threeSlots().createMemslot(ram(1, 0x20_0000, 1, 40)));
    expect(error).toMatchObject({ kind: 'duplicateId', id: 1, message: 'memslot 1 already exists' });
  });

  it('refuses overlapping guest ranges (EEXIST), touching is fine', () => {
    const set = threeSlots();
    const error = refusal(set.createMemslot(ram(4, 0x10_0000 + 3 * PAGE_SIZE, 2, 40)));
    expect(error).toMatchObject({ kind: 'overlap', id: 4, existingId: 1 });
    expect(error.message).toContain('0x00100000');
    expect(refusal(set.createMemslot(ram(4, 0xf_f000, 8, 40)))).toMatchObject({ kind: 'overlap', existingId: 1 });
    expect(set.createMemslot(ram(4, 0x10_0000 + 4 * PAGE_SIZE, 2, 40)).ok).toBe(true);
    expect(set.createMemslot(ram(4, 0x10_0000 - PAGE_SIZE, 1, 40)).ok).toBe(true);
  });

  it('allows two slots to alias the same host pages (KVM does not check)', () => {
    expect(threeSlots().createMemslot(ram(4, 0x20_0000, 1, 0)).ok).toBe(true);
  });

  it('refuses misaligned address, size and host offset', () => {
    const empty = MemslotSet.empty(POOL_BYTES);
    expect(refusal(empty.createMemslot(ram(0, 0x800, 1, 0)))).toMatchObject({
      kind: 'misaligned',
      field: 'guestPhysicalAddress',
      value: 0x800,
    });
    expect(refusal(empty.createMemslot({ ...ram(0, 0, 1, 0), size: 100 }))).toMatchObject({ kind: 'misaligned', field: 'size' });
    expect(refusal(empty.createMemslot({ ...ram(0, 0, 1, 0), hostOffset: 8 }))).toMatchObject({ kind: 'misaligned', field: 'hostOffset' });
    expect(refusal(empty.createMemslot({ ...ram(0, 0, 1, 0), hostOffset: -PAGE_SIZE }))).toMatchObject({
      kind: 'misaligned',
      field: 'hostOffset',
    });
  });

  it('refuses an empty slot', () => {
    expect(refusal(MemslotSet.empty(POOL_BYTES).createMemslot(ram(0, 0, 0, 0)))).toMatchObject({ kind: 'emptySlot', size: 0 });
  });

  it('refuses a guest range that runs past 4 GiB', () => {
    const error = refusal(MemslotSet.empty(POOL_BYTES).createMemslot(ram(0, 0xffff_f000, 2, 0)));
    expect(error).toMatchObject({ kind: 'beyondAddressSpace', guestPhysicalAddress: 0xffff_f000, size: 2 * PAGE_SIZE });
  });

  it('refuses a host range outside the pool', () => {
    const error = refusal(MemslotSet.empty(POOL_BYTES).createMemslot(ram(0, 0, 2, 63)));
    expect(error).toMatchObject({ kind: 'outsidePool', hostOffset: 63 * PAGE_SIZE, size: 2 * PAGE_SIZE, poolBytes: POOL_BYTES });
    expect(MemslotSet.empty(POOL_BYTES).createMemslot(ram(0, 0, 1, 63)).ok).toBe(true);
  });

  it('refuses a 33rd slot', () => {
    let set = MemslotSet.empty(POOL_BYTES);
    for (let id = 0; id < 31; id++) set = expectMemslotSet(set.createMemslot(ram(id, id * PAGE_SIZE, 1, id)));
    set = expectMemslotSet(set.createMemslot({ ...ram(31, 0xfee0_0000, 1, 40), kind: MemslotKind.apicAccess }));
    expect(set.count).toBe(MEMSLOT_ID_LIMIT);
    const error = refusal(set.createMemslot(ram(3, 0x100_0000, 1, 50)));
    expect(error).toMatchObject({ kind: 'tooManySlots', limit: 32, message: 'a memslot set holds at most 32 slots' });
  });

  it('keeps the APIC-access slot id for the one-page APIC-access kind only', () => {
    const empty = MemslotSet.empty(POOL_BYTES);
    const apicAccess = { ...ram(31, 0xfee0_0000, 1, 63), kind: MemslotKind.apicAccess };
    const installed = expectMemslotSet(empty.createMemslot(apicAccess));
    expect(installed.find(gpa(0xfee0_0abc))).toMatchObject({ id: 31, kind: 'apicAccess' });
    expect(refusal(empty.createMemslot(ram(31, 0, 1, 0)))).toMatchObject({ kind: 'privateSlotMisuse', id: 31, slotKind: 'ram' });
    expect(refusal(empty.createMemslot({ ...apicAccess, id: memslotId(3) }))).toMatchObject({ kind: 'privateSlotMisuse', id: 3 });
    // One page upstream, up to one per x2AVIC id under the 2016 RFC's design; never more.
    expect(refusal(empty.createMemslot({ ...apicAccess, size: 513 * PAGE_SIZE }))).toMatchObject({ kind: 'privateSlotMisuse' });
    expect(empty.createMemslot({ ...apicAccess, size: 2 * PAGE_SIZE }).ok).toBe(true);
  });

  it('deletes a slot and refuses to delete a missing one', () => {
    const set = expectMemslotSet(threeSlots().deleteMemslot(memslotId(1)));
    expect(set.slots.map((slot) => slot.id)).toEqual([0, 2]);
    expect(set.find(gpa(0x10_0000))).toBeUndefined();
    expect(refusal(set.deleteMemslot(memslotId(1)))).toMatchObject({ kind: 'noSuchSlot', id: 1, message: 'memslot 1 does not exist' });
  });

  it('moves a slot to a new address with the same backing, re-sorting', () => {
    const set = expectMemslotSet(threeSlots().moveMemslot(memslotId(0), gpa(0x9000_0000)));
    expect(set.slots.map((slot) => slot.id)).toEqual([1, 2, 0]);
    expect(set.find(gpa(0x9000_0000 + 5))).toMatchObject({ id: 0, size: 16 * PAGE_SIZE, hostOffset: 0 });
    expect(set.find(gpa(0))).toBeUndefined();
  });

  it('lets a slot move onto part of its own old range', () => {
    expect(threeSlots().moveMemslot(memslotId(0), gpa(PAGE_SIZE)).ok).toBe(true);
  });

  it('refuses to move onto another slot, off the page grid, past 4 GiB, or a missing slot', () => {
    const set = threeSlots();
    expect(refusal(set.moveMemslot(memslotId(2), gpa(0x10_0000 + PAGE_SIZE)))).toMatchObject({ kind: 'overlap', id: 2, existingId: 1 });
    expect(refusal(set.moveMemslot(memslotId(2), gpa(0x1234)))).toMatchObject({ kind: 'misaligned', field: 'guestPhysicalAddress' });
    expect(refusal(set.moveMemslot(memslotId(0), gpa(0xffff_f000)))).toMatchObject({ kind: 'beyondAddressSpace' });
    expect(refusal(set.moveMemslot(memslotId(9), gpa(0)))).toMatchObject({ kind: 'noSuchSlot', id: 9 });
  });

  it('rejects an unusable pool size with a typed error', () => {
    expect(() => MemslotSet.empty(100)).toThrow(InvalidRamPoolSizeError);
    expect(() => MemslotSet.empty(2 ** 32 + PAGE_SIZE)).toThrow(InvalidRamPoolSizeError);
  });

  it('turns a refusal into a typed error that carries it', () => {
    const result = threeSlots().deleteMemslot(memslotId(7));
    expect(() => expectMemslotSet(result)).toThrow(MemslotRefusedError);
    try {
      expectMemslotSet(result);
    } catch (error) {
      expect(error).toBeInstanceOf(MemslotRefusedError);
      expect((error as MemslotRefusedError).error.kind).toBe('noSuchSlot');
      expect((error as MemslotRefusedError).message).toBe('memslot 7 does not exist');
    }
  });
});
