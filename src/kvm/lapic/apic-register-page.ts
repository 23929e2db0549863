// A vCPU's APIC register page (KVM's apic->regs): a 4 KiB window on the VM's apicPages buffer. The
// base moves only under the rfc-v2 backing-page policy, by the owning vCPU when it handles
// KVM_REQ_APIC_PAGE_RELOAD, so every piece of the vCPU reads `base` at each access.

export class ApicRegisterPage {
  /** The buffer of every vCPU's pages. */
  readonly words: Int32Array;
  /** Word index of this page in `words`. */
  base: number;

  constructor(words: Int32Array, base: number) {
    this.words = words;
    this.base = base;
  }

  /** The 32-bit register at byte `offset`. */
  read(offset: number): number {
    return this.words[this.base + (offset >> 2)]!;
  }

  write(offset: number, value: number): void {
    this.words[this.base + (offset >> 2)] = value;
  }
}
