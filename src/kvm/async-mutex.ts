// A mutex for the main thread, where blocking is not allowed: acquisition is a promise. Used for
// kvm->slots_lock on the memslot-update path (the lock-order validator later instruments it).

export class AsyncMutex {
  readonly name: string;
  #tail: Promise<void> = Promise.resolve();
  #held = false;

  constructor(name: string) {
    this.name = name;
  }

  get isHeld(): boolean {
    return this.#held;
  }

  async withLock<T>(body: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => { release = resolve; });
    await previous;
    this.#held = true;
    try {
      return await body();
    } finally {
      this.#held = false;
      release();
    }
  }

  /** lockdep_assert_held, relaxed while the VM is still being built (no other thread exists yet). */
  assertHeldOrUnstarted(unstarted: boolean): void {
    if (!this.#held && !unstarted) throw new Error(`${this.name} must be held`);
  }
}
