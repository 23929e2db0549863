// GuestMemoryAccess: the vCPU's view of the RAM memslots (src/guest/guest-memory-access.ts). Every
// access lies wholly inside one window or is refused; windows translate guest-physical addresses to
// offsets in the RAM pool; a window that does not fit the pool is host misuse and throws.

import { describe, expect, it } from 'vitest';
import { GuestMemoryAccess, type RamWindow } from '../../src/guest/guest-memory-access.js';

const POOL_BYTES = 0x4000;

/** A pool with two windows whose guest and host placement differ: 0x10000 -> host 0x1000, 0x20000 -> host 0x3000. */
function twoWindowMemory(): GuestMemoryAccess {
  const memory = new GuestMemoryAccess(new SharedArrayBuffer(POOL_BYTES));
  memory.setWindows([
    { guestPhysicalAddress: 0x10000, size: 0x1000, hostOffset: 0x1000 },
    { guestPhysicalAddress: 0x20000, size: 0x1000, hostOffset: 0x3000 },
  ]);
  return memory;
}

describe('GuestMemoryAccess windows', () => {
  it('translates a guest-physical address through its window to the host offset', () => {
    const memory = twoWindowMemory();

    const written = memory.writeRam(0x20010, 4, 0x11223344);

    expect(written).toBe(true);
    expect(Array.from(memory.ram8.subarray(0x3010, 0x3014))).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect(memory.readRam(0x20010, 4)).toBe(0x11223344);
    expect(memory.readRam(0x10010, 4)).toBe(0);
  });

  it('reads and writes 1, 2 and 4 bytes little-endian at any alignment', () => {
    const memory = twoWindowMemory();

    memory.writeRam(0x10001, 4, 0xa1b2c3d4);
    memory.writeRam(0x10007, 2, 0xbeef);
    memory.writeRam(0x10009, 1, 0x1ff);

    expect(Array.from(memory.ram8.subarray(0x1000, 0x100a))).toEqual([0, 0xd4, 0xc3, 0xb2, 0xa1, 0, 0, 0xef, 0xbe, 0xff]);
    expect(memory.readRam(0x10001, 4)! >>> 0).toBe(0xa1b2c3d4);
    expect(memory.readRam(0x10003, 2)).toBe(0xa1b2);
    expect(memory.readRam(0x10008, 1)).toBe(0xbe);
    expect(memory.read32(0x10000)! >>> 0).toBe(0xb2c3d400);
  });

  it('refuses addresses in no window', () => {
    const memory = twoWindowMemory();

    expect(memory.readRam(0x0fffc, 4)).toBeUndefined();
    expect(memory.readRam(0x11000, 1)).toBeUndefined();
    expect(memory.writeRam(0xfee00000, 4, 1)).toBe(false);
    expect(memory.read32(-4)).toBeUndefined();
  });

  it('accepts the last bytes of a window and refuses an access straddling its end, writing nothing', () => {
    const memory = twoWindowMemory();
    memory.ram8.fill(0x5a);

    expect(memory.readRam(0x10fff, 1)).toBe(0x5a);
    expect(memory.readRam(0x10ffe, 2)).toBe(0x5a5a);
    expect(memory.readRam(0x10ffc, 4)).toBe(0x5a5a5a5a);
    expect(memory.readRam(0x10fff, 2)).toBeUndefined();
    expect(memory.readRam(0x10ffe, 4)).toBeUndefined();
    expect(memory.writeRam(0x10ffd, 4, 0)).toBe(false);
    expect(Array.from(memory.ram8.subarray(0x1ffd, 0x2003))).toEqual([0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a]);
  });

  it('refuses an access straddling two windows that are adjacent in guest-physical space', () => {
    const memory = new GuestMemoryAccess(new SharedArrayBuffer(POOL_BYTES));
    memory.setWindows([
      { guestPhysicalAddress: 0x0000, size: 0x1000, hostOffset: 0x2000 },
      { guestPhysicalAddress: 0x1000, size: 0x1000, hostOffset: 0x0000 },
    ]);

    expect(memory.readRam(0x0ffe, 4)).toBeUndefined();
    expect(memory.writeRam(0x0fff, 2, 0xffff)).toBe(false);
    expect(memory.readRam(0x1000, 4)).toBe(0);
  });

  it('keeps its own copy of the windows', () => {
    const memory = new GuestMemoryAccess(new SharedArrayBuffer(POOL_BYTES));
    const windows: RamWindow[] = [{ guestPhysicalAddress: 0, size: 0x1000, hostOffset: 0 }];
    memory.setWindows(windows);

    windows.push({ guestPhysicalAddress: 0x1000, size: 0x1000, hostOffset: 0x1000 });

    expect(memory.windows).toHaveLength(1);
    expect(memory.readRam(0x1000, 1)).toBeUndefined();
  });

  it('replacing the windows drops the old ones', () => {
    const memory = twoWindowMemory();

    memory.setWindows([{ guestPhysicalAddress: 0x20000, size: 0x1000, hostOffset: 0 }]);

    expect(memory.readRam(0x10000, 4)).toBeUndefined();
    memory.writeRam(0x20000, 4, 7);
    expect(memory.ram32[0]).toBe(7);
  });

  it.each([
    ['ending past the pool', { guestPhysicalAddress: 0, size: 0x1000, hostOffset: POOL_BYTES - 0x800 }],
    ['starting past the pool', { guestPhysicalAddress: 0, size: 0x1000, hostOffset: POOL_BYTES }],
    ['at a negative host offset', { guestPhysicalAddress: 0, size: 0x1000, hostOffset: -0x1000 }],
    ['at a host offset that is not 4-byte aligned', { guestPhysicalAddress: 0, size: 0x100, hostOffset: 2 }],
  ])('setWindows rejects a window %s with a RangeError and keeps the previous windows', (_case, window) => {
    const memory = twoWindowMemory();

    expect(() => memory.setWindows([{ guestPhysicalAddress: 0x30000, size: 0x100, hostOffset: 0 }, window])).toThrow(RangeError);

    expect(memory.windows).toHaveLength(2);
    expect(memory.readRam(0x30000, 1)).toBeUndefined();
    expect(memory.readRam(0x10000, 1)).toBe(0);
  });

  it('setWindows accepts a window that ends exactly at the end of the pool', () => {
    const memory = new GuestMemoryAccess(new SharedArrayBuffer(POOL_BYTES));

    memory.setWindows([{ guestPhysicalAddress: 0, size: 0x1000, hostOffset: POOL_BYTES - 0x1000 }]);

    expect(memory.writeRam(0xffc, 4, -1)).toBe(true);
    expect(memory.ram32[POOL_BYTES / 4 - 1]).toBe(-1);
  });
});

describe('GuestMemoryAccess.selectCodeWindow', () => {
  it('points the code window at the slot holding pc', () => {
    const memory = twoWindowMemory();

    expect(memory.selectCodeWindow(0x20ff8)).toBe(true);

    expect(memory.codeWindowStart).toBe(0x20000);
    expect(memory.codeWindowHost).toBe(0x3000);
    expect(memory.codeWindowLimit).toBe(0x1000 - 8);
  });

  it('refuses a pc in no RAM window', () => {
    const memory = twoWindowMemory();

    expect(memory.selectCodeWindow(0x11000)).toBe(false);
    expect(memory.selectCodeWindow(0xfee00000)).toBe(false);
  });

  // A pc whose 8-byte instruction would run past the window end must be refused: the interpreter
  // re-selects the code window whenever the fetch offset exceeds the limit, so accepting such a pc
  // makes GuestCpu.run() spin forever without retiring anything (reachable with a hand-encoded
  // branch to window end - 4).
  it('refuses a pc whose 8-byte instruction would not fit in the window', () => {
    const memory = twoWindowMemory();

    expect(memory.selectCodeWindow(0x10ffc)).toBe(false);
  });
});

describe('GuestMemoryAccess.atomicWordIndex', () => {
  it('gives the Int32 index of an aligned RAM word, through the window', () => {
    const memory = twoWindowMemory();

    expect(memory.atomicWordIndex(0x20000)).toBe(0x3000 / 4);
    expect(memory.atomicWordIndex(0x10ffc)).toBe((0x1000 + 0xffc) / 4);
  });

  it.each([
    ['that is not 4-byte aligned', 0x20002],
    ['in no window', 0x11000],
    ['in the APIC page', 0xfee000b0],
  ])('is -1 for an address %s', (_case, address) => {
    const memory = twoWindowMemory();

    expect(memory.atomicWordIndex(address)).toBe(-1);
  });
});

describe('GuestMemoryAccess.load', () => {
  it('copies an image to a guest-physical address through the windows', () => {
    const memory = twoWindowMemory();

    const loaded = memory.load(0x10ffe, new Uint8Array([1, 2]));

    expect(loaded).toBe(true);
    expect(Array.from(memory.ram8.subarray(0x1ffe, 0x2000))).toEqual([1, 2]);
  });

  it('returns false for an image that runs past its window', () => {
    const memory = twoWindowMemory();

    expect(memory.load(0x10ffe, new Uint8Array([1, 2, 3]))).toBe(false);
  });
});
