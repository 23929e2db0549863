// RAM access for one vCPU: the guest's view of the RAM memslots, the analogue of its nested page
// table. The hypervisor layer installs the windows from the published memslot snapshot at guest
// entry (and again after every memslot change, before the change's grace period can end), so the
// interpreter never reads the memslot table itself. Every access is bounds-checked against a window;
// an address in no window is reported as undefined/false and the caller decides (APIC page or fault).

/** One RAM memslot as the interpreter sees it. */
export interface RamWindow {
  readonly guestPhysicalAddress: number;
  readonly size: number;
  /** Byte offset of the slot's memory inside the RAM pool buffer. */
  readonly hostOffset: number;
}

export class GuestMemoryAccess {
  readonly ram8: Uint8Array;
  readonly ram32: Int32Array;
  #windows: RamWindow[] = [];

  // The code and data windows cache one slot each: start, limit (the largest offset at which a whole
  // instruction / a whole 32-bit word still fits) and host byte offset. An empty window has limit -1
  // encoded as an offset no unsigned comparison accepts.
  codeWindowStart = 0;
  codeWindowLimit = -1 >>> 0;
  codeWindowHost = 0;
  dataWindowStart = 0;
  dataWindowLimit = -1 >>> 0;
  dataWindowHost = 0;

  constructor(ramBuffer: SharedArrayBuffer) {
    this.ram8 = new Uint8Array(ramBuffer);
    this.ram32 = new Int32Array(ramBuffer);
    this.#clearCaches();
  }

  get windows(): readonly RamWindow[] {
    return this.#windows;
  }

  setWindows(windows: readonly RamWindow[]): void {
    for (const window of windows) {
      if (window.hostOffset < 0 || window.hostOffset + window.size > this.ram8.length || (window.hostOffset & 3) !== 0) {
        throw new RangeError(`RAM window at 0x${window.guestPhysicalAddress.toString(16)} does not fit the RAM pool`);
      }
    }
    this.#windows = windows.map((window) => ({ ...window }));
    this.#clearCaches();
  }

  #clearCaches(): void {
    // Limit 0 with start 0 would still accept address 0, so use an impossible start instead.
    this.codeWindowStart = 0;
    this.codeWindowLimit = -1;
    this.codeWindowHost = 0;
    this.dataWindowStart = 0;
    this.dataWindowLimit = -1;
    this.dataWindowHost = 0;
  }

  #find(address: number): RamWindow | undefined {
    for (const window of this.#windows) {
      if (address - window.guestPhysicalAddress >= 0 && address - window.guestPhysicalAddress < window.size) return window;
    }
    return undefined;
  }

  /** Points the code window at the slot holding pc; false if pc is in no RAM slot. */
  selectCodeWindow(pc: number): boolean {
    const window = this.#find(pc >>> 0);
    // A whole instruction must fit: a pc in a window's last 4 bytes would otherwise be re-selected forever.
    if (window === undefined || (pc >>> 0) - window.guestPhysicalAddress > window.size - 8) return false;
    this.codeWindowStart = window.guestPhysicalAddress;
    this.codeWindowLimit = window.size - 8;
    this.codeWindowHost = window.hostOffset;
    return true;
  }

  #hostOffsetOf(address: number, width: number): number {
    const window = this.#find(address);
    if (window === undefined) return -1;
    const offset = address - window.guestPhysicalAddress;
    if (offset + width > window.size) return -1;
    if (window.size >= 4) {
      this.dataWindowStart = window.guestPhysicalAddress;
      this.dataWindowLimit = window.size - 4;
      this.dataWindowHost = window.hostOffset;
    }
    return window.hostOffset + offset;
  }

  /** Reads 1, 2 or 4 bytes (little-endian, any alignment) from RAM; undefined if not all in one RAM slot. */
  readRam(address: number, width: 1 | 2 | 4): number | undefined {
    const host = this.#hostOffsetOf(address >>> 0, width);
    if (host < 0) return undefined;
    const bytes = this.ram8;
    if (width === 1) return bytes[host]!;
    if (width === 2) return bytes[host]! | (bytes[host + 1]! << 8);
    if ((host & 3) === 0) return this.ram32[host >> 2]!;
    return bytes[host]! | (bytes[host + 1]! << 8) | (bytes[host + 2]! << 16) | (bytes[host + 3]! << 24);
  }

  /** Writes 1, 2 or 4 bytes to RAM; false if not all in one RAM slot. */
  writeRam(address: number, width: 1 | 2 | 4, value: number): boolean {
    const host = this.#hostOffsetOf(address >>> 0, width);
    if (host < 0) return false;
    if (width === 4 && (host & 3) === 0) {
      this.ram32[host >> 2] = value;
      return true;
    }
    for (let i = 0; i < width; i++) this.ram8[host + i] = (value >>> (8 * i)) & 0xff;
    return true;
  }

  read32(address: number): number | undefined {
    return this.readRam(address >>> 0, 4);
  }

  write32(address: number, value: number): boolean {
    return this.writeRam(address >>> 0, 4, value);
  }

  /** Int32 index for an atomic access, or -1 if the address is not 4-byte aligned RAM. */
  atomicWordIndex(address: number): number {
    if ((address & 3) !== 0) return -1;
    const host = this.#hostOffsetOf(address >>> 0, 4);
    return host < 0 ? -1 : host >> 2;
  }

  /** Copies a program image into RAM at a guest address (loader; before the vCPUs start). */
  load(address: number, bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) {
      if (!this.writeRam(address + i, 1, bytes[i]!)) return false;
    }
    return true;
  }
}
