import { describe, expect, it } from 'vitest';
import { defineBufferLayout, defineStruct, describeLayout, regionInt32Index } from '../../src/host/shared-layout.js';
import { PAGE_SIZE, guestPhysicalAddress } from '../../src/memory/guest-physical-address.js';
import {
  MEMSLOT_SNAPSHOT_LAYOUT,
  MemslotSnapshot,
  MemslotSnapshotMisuseError,
  findTranslation,
  memslotSnapshotRegionBytes,
  type MemslotTranslation,
} from '../../src/memory/memslot-snapshot.js';
import { MemslotKind, MemslotSet, expectMemslotSet, memslotId } from '../../src/memory/memslot.js';

const POOL_BYTES = 2 ** 32; // the largest pool: host offsets use the full unsigned 32-bit range
const gpa = guestPhysicalAddress;

/** A VM-like control buffer that embeds the snapshot after an unrelated region. */
function embeddedSnapshot(): { snapshot: MemslotSnapshot; int32: Int32Array } {
  const Other = defineStruct('Other', { word: { type: 'i32', writer: 'main' } });
  const layout = defineBufferLayout('TestVm', {
    other: { struct: Other, writer: 'main' },
    memslots: { bytes: memslotSnapshotRegionBytes(), writer: 'main' },
  });
  const int32 = new Int32Array(new SharedArrayBuffer(layout.byteSize));
  return { snapshot: new MemslotSnapshot(int32, regionInt32Index(layout, 'memslots')), int32 };
}

function sampleSet(): MemslotSet {
  let set = MemslotSet.empty(POOL_BYTES);
  set = expectMemslotSet(set.createMemslot({ id: memslotId(0), guestPhysicalAddress: gpa(0), size: 0x10_0000, hostOffset: 0xf000_0000 }));
  set = expectMemslotSet(
    set.createMemslot({
      id: memslotId(31),
      guestPhysicalAddress: gpa(0xfee0_0000),
      size: PAGE_SIZE,
      hostOffset: 0x1000,
      kind: MemslotKind.apicAccess,
    }),
  );
  return expectMemslotSet(
    set.createMemslot({ id: memslotId(4), guestPhysicalAddress: gpa(0x8000_0000), size: 0x20_0000, hostOffset: 0x2000 }),
  );
}

const decoded = (snapshot: MemslotSnapshot): MemslotTranslation[] => {
  const into: MemslotTranslation[] = [];
  snapshot.readActive(into);
  return into;
};

describe('MemslotSnapshot layout', () => {
  it('is a header line and two copies of 32 entries, declared through shared-layout', () => {
    expect(memslotSnapshotRegionBytes()).toBe(MEMSLOT_SNAPSHOT_LAYOUT.byteSize);
    expect(memslotSnapshotRegionBytes() % 64).toBe(0);
    expect(MEMSLOT_SNAPSHOT_LAYOUT.regionOffsets.header).toBe(0);
    expect(MEMSLOT_SNAPSHOT_LAYOUT.regionOffsets.copies).toBe(64);
    const description = describeLayout(MEMSLOT_SNAPSHOT_LAYOUT);
    expect(description).toContain('guestPhysicalAddress: i32[32]');
    expect(description).toContain('writer: main thread, slotsLock held');
  });

  it('refuses a misplaced region with a typed error', () => {
    const words = memslotSnapshotRegionBytes() / 4;
    const shared = new Int32Array(new SharedArrayBuffer(memslotSnapshotRegionBytes() + 64));
    expect(() => new MemslotSnapshot(shared, 1)).toThrow(MemslotSnapshotMisuseError);
    expect(() => new MemslotSnapshot(shared, 32)).toThrow(MemslotSnapshotMisuseError);
    expect(() => new MemslotSnapshot(new Int32Array(words), 0)).toThrow(/SharedArrayBuffer/);
    expect(() => new MemslotSnapshot(shared, 16)).not.toThrow();
  });
});

describe('MemslotSnapshot publish and read', () => {
  it('starts empty at generation 0', () => {
    const { snapshot } = embeddedSnapshot();
    expect(snapshot.generation()).toBe(0);
    expect(snapshot.activeCopyIndex()).toBe(0);
    expect(decoded(snapshot)).toEqual([]);
  });

  it('round-trips a set: addresses above 2^31 and host offsets above 2^31 come back unsigned', () => {
    const { snapshot } = embeddedSnapshot();
    const set = sampleSet();
    snapshot.writeInactiveCopy(set);
    const into: MemslotTranslation[] = [];
    const generation = snapshot.publish();
    expect(snapshot.readActive(into)).toBe(generation);
    expect(into).toEqual(set.slots.map((slot) => ({ ...slot })));
    expect(into.map((entry) => entry.guestPhysicalAddress)).toEqual([0, 0x8000_0000, 0xfee0_0000]);
    expect(into[0]?.hostOffset).toBe(0xf000_0000);
    expect(findTranslation(into, gpa(0xfee0_0010))?.kind).toBe('apicAccess');
    expect(findTranslation(into, gpa(0x801f_ffff))?.id).toBe(4);
    expect(findTranslation(into, gpa(0x8020_0000))).toBeUndefined();
  });

  it('encodes a slot covering the whole 4 GiB space', () => {
    const { snapshot } = embeddedSnapshot();
    const whole = expectMemslotSet(
      MemslotSet.empty(POOL_BYTES).createMemslot({ id: memslotId(1), guestPhysicalAddress: gpa(0), size: 2 ** 32, hostOffset: 0 }),
    );
    snapshot.writeInactiveCopy(whole);
    snapshot.publish();
    expect(decoded(snapshot)).toEqual([{ id: 1, guestPhysicalAddress: 0, size: 2 ** 32, hostOffset: 0, kind: 'ram' }]);
  });

  it('reuses the caller array and its objects, and shrinks it', () => {
    const { snapshot } = embeddedSnapshot();
    const set = sampleSet();
    snapshot.writeInactiveCopy(set);
    snapshot.publish();
    const into: MemslotTranslation[] = [];
    snapshot.readActive(into);
    const objects = [...into];
    snapshot.readActive(into);
    expect(into.every((entry, index) => entry === objects[index])).toBe(true);

    const smaller = expectMemslotSet(set.deleteMemslot(memslotId(4)));
    snapshot.writeInactiveCopy(smaller);
    snapshot.publish();
    snapshot.readActive(into);
    expect(into).toHaveLength(2);
    expect(into[0]).toBe(objects[0]);
    expect(into.map((entry) => entry.id)).toEqual([0, 31]);
  });

  it('bumps the generation by one per publish', () => {
    const { snapshot } = embeddedSnapshot();
    const generations: number[] = [];
    for (let round = 0; round < 5; round++) {
      snapshot.writeInactiveCopy(sampleSet());
      generations.push(snapshot.publish());
      expect(snapshot.generation()).toBe(generations.at(-1));
    }
    expect(generations).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses to publish the stale copy twice in a row', () => {
    const { snapshot } = embeddedSnapshot();
    snapshot.writeInactiveCopy(sampleSet());
    snapshot.publish();
    expect(() => snapshot.publish()).toThrow(MemslotSnapshotMisuseError);
    expect(snapshot.generation()).toBe(1);
  });

  it('keeps two copies: after publish the inactive copy still holds the old set until brought up to date', () => {
    const { snapshot } = embeddedSnapshot();
    const first = sampleSet();
    const second = expectMemslotSet(first.moveMemslot(memslotId(4), gpa(0x4000_0000)));

    // Step 1-4 for the first set (the grace period is the caller's; nobody reads here).
    snapshot.writeInactiveCopy(first);
    snapshot.publish();
    snapshot.writeInactiveCopy(first);

    // Step 1 and 2 for the second set.
    const before = snapshot.activeCopyIndex();
    snapshot.writeInactiveCopy(second);
    expect(decoded(snapshot)).toEqual(first.slots.map((slot) => ({ ...slot }))); // readers unaffected until publish
    snapshot.publish();
    const after = snapshot.activeCopyIndex();
    expect(after).not.toBe(before);

    // Readers of the active copy see the new set; the inactive copy is the old one.
    expect(decoded(snapshot)).toEqual(second.slots.map((slot) => ({ ...slot })));
    const inactive: MemslotTranslation[] = [];
    snapshot.readCopy(before, inactive);
    expect(inactive).toEqual(first.slots.map((slot) => ({ ...slot })));

    // Step 4, after the grace period: the old copy gets the same edit.
    snapshot.writeInactiveCopy(second);
    snapshot.readCopy(before, inactive);
    expect(inactive).toEqual(second.slots.map((slot) => ({ ...slot })));
    expect(snapshot.activeCopyIndex()).toBe(after);
  });

  it('is readable through a second instance over the same memory (as a worker would)', () => {
    const { snapshot, int32 } = embeddedSnapshot();
    const reader = new MemslotSnapshot(new Int32Array(int32.buffer), 16);
    snapshot.writeInactiveCopy(sampleSet());
    const generation = snapshot.publish();
    const into: MemslotTranslation[] = [];
    expect(reader.readActive(into)).toBe(generation);
    expect(into).toHaveLength(3);
  });
});
