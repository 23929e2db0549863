// The handshake words of a lock replay (lock-replays-main.ts on main, lock-replays-vcpu.ts in the
// workers): one small SharedArrayBuffer per VM that injects a replay, carried to the workers inside
// VmConfig.injectLockBug (injectedLockBug()). Each word goes from 0 to non-zero once (setWord); its
// writer is named beside it.

import { defineStruct } from '../../host/shared-layout.js';
import { KVM_LOCK_TIMEOUT_MS } from '../../kvm/control/kvm-locks.js';

/** How long one side waits for the other's handshake before calling the replay broken. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Bound of the lock waits that deadlock without the validator (the watchdog fires long before). */
export const HANG_BOUND_MS = 2 * KVM_LOCK_TIMEOUT_MS;

export const ReplayHandshake = defineStruct('LockReplayHandshake', {
  mainReady: { type: 'i32', writer: 'main: its side is running (vCPU parts start after it)' },
  mainHolds: { type: 'i32', writer: 'main: it holds its outer locks (S4, S5)' },
  mainWaiting: { type: 'i32', writer: 'main: its inner acquisitions have started (S5)' },
  vcpuReading: { type: 'i32', writer: 'the replaying vCPU: inside its exit handler, kvm->srcu read held' },
  vcpuAttempting: { type: 'i32', writer: 'the replaying vCPU: about to take its inner lock' },
  firstHolds: { type: 'i32', writer: 'vCPU 0 (abba): holds its first lock' },
  secondHolds: { type: 'i32', writer: 'vCPU 1 (abba): holds its first lock' },
  firstAttempting: { type: 'i32', writer: 'vCPU 0 (abba): about to take its second lock' },
  vcpuDone: { type: 'i32', writer: 'each replaying vCPU: Atomics.add 1 when its part ended' },
});
export type ReplayHandshakeWord = keyof typeof ReplayHandshake.fields;

export function createReplayHandshake(): SharedArrayBuffer {
  return new SharedArrayBuffer(ReplayHandshake.byteSize);
}

export function handshakeIndex(word: ReplayHandshakeWord): number {
  return ReplayHandshake.fieldOffsets[word] >> 2;
}
