// A vCPU's side of the main thread's handshakes, played by a test through the vCPU's control words
// exactly as Vcpu writes them: its mode, its finished flag, and the memslot generation it
// acknowledges (stored, then notified) after reloading its RAM windows on VcpuRequest.MemslotsChanged
// (O5 in docs/architecture.md#orderings). No worker thread runs.

import { expect } from 'vitest';
import { VcpuMode, VcpuRequest } from '../../src/kvm/control/vcpu-run-state.js';
import type { VmControlViews } from '../../src/kvm/control/vm-control-views.js';
import type { MemslotTranslation } from '../../src/memory/memslot-snapshot.js';

export class FakeVcpu {
  readonly #memory: VmControlViews;
  readonly #vcpu: number;

  constructor(memory: VmControlViews, vcpu: number) {
    this.#memory = memory;
    this.#vcpu = vcpu;
  }

  #index(field: 'mode' | 'finished' | 'observedMemslotGeneration' | 'requests'): number {
    return this.#memory.controlBlockIndex(this.#vcpu, field);
  }

  enterGuestMode(): void {
    Atomics.store(this.#memory.control, this.#index('mode'), VcpuMode.InGuestMode);
  }

  finish(): void {
    Atomics.store(this.#memory.control, this.#index('finished'), 1);
  }

  /** Whether request bit `request` (default MemslotsChanged) is set. */
  kicked(request: number = VcpuRequest.MemslotsChanged): boolean {
    return (Atomics.load(this.#memory.control, this.#index('requests')) & request) !== 0;
  }

  /** Vcpu's #reloadRamWindows: clear the request, read the active copy, acknowledge its generation, notify. */
  reloadRamWindows(): MemslotTranslation[] {
    Atomics.and(this.#memory.control, this.#index('requests'), ~VcpuRequest.MemslotsChanged);
    const windows: MemslotTranslation[] = [];
    this.acknowledge(this.#memory.memslots.readActive(windows));
    return windows;
  }

  acknowledge(generation: number): void {
    Atomics.store(this.#memory.control, this.#index('observedMemslotGeneration'), generation);
    Atomics.notify(this.#memory.control, this.#index('observedMemslotGeneration'));
  }
}

/**
 * Turns the event loop until `condition` holds, at most `turns` times: the handshake a test waits on
 * (a kick, a lock taken), never a sleep. Main-thread lock hand-offs pass through setImmediate.
 */
export async function eventually(condition: () => boolean, turns = 1000): Promise<void> {
  for (let turn = 0; turn < turns && !condition(); turn++) await new Promise((resolve) => setImmediate(resolve));
  expect(condition()).toBe(true);
}
