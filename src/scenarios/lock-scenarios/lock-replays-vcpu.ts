// The vCPU side of the lock-order replays (docs/lock-scenarios.md; the main-thread side is in
// lock-replays-main.ts, the registry in lock-replays.ts). VmConfig.injectLockBug names a replay
// (injectedLockBug() builds and checks it; the core passes it through); every vCPU it involves runs
// its part once, as the first-exit hook its worker plugs in (workers/vcpu-worker.ts), i.e. inside
// its KVM_RUN (vcpu->mutex held) and an exit handler (kvm->srcu read held), where KVM runs these
// paths.
//
// Each part takes the VM's own instrumented locks. A buggy part, once the validator has reported,
// backs out before it would block (the kernel's lockdep reports and then hangs; a replay must not),
// so a run with the validator on ends normally with the report. With the validator off nothing
// backs out: the threads really deadlock until the main thread's watchdog tears the run down.
// Every wait is bounded: handshakes by HANDSHAKE_TIMEOUT_MS, lock waits that are meant to hang by
// HANG_BOUND_MS (longer than any watchdog bound, so the watchdog sees the hang first).
//
// Threads are put in order with handshake words (never sleeps): the word names say which side sets
// them. A vCPU part starts only after main set `mainReady`, if the replay has a main side.

import { hostThread } from '../../host/host-thread.js';
import { LockMode, LockWaitAborted, LockWaitTimeout, setWord, waitForWordBlocking, type InstrumentedMutex } from '../../lockdep/index.js';
import { KVM_LOCK_TIMEOUT_MS, type VcpuLocks } from '../../kvm/control/kvm-locks.js';
import type { VcpuFirstExitContext, VcpuFirstExitHook } from '../../kvm/vcpu/vcpu.js';
import { VmConfigError } from '../../kvm/vm/vm-config.js';
import type { InjectedLockBug } from '../../kvm/control/kvm-locks.js';
import {
  createReplayHandshake,
  HANDSHAKE_TIMEOUT_MS,
  HANG_BOUND_MS,
  handshakeIndex,
  type ReplayHandshakeWord,
} from './lock-replays-handshake.js';

type VcpuPart = (replay: ReplayThread) => void;

interface VcpuReplaySpec {
  /** vCPU index -> its part. */
  readonly parts: Readonly<Record<number, VcpuPart>>;
  /** The replay has a main-thread side: vCPU parts wait for `mainReady`. */
  readonly withMain: boolean;
}

/** One vCPU's view of a replay in progress: its context plus the handshake words. */
class ReplayThread {
  /** What the run loop lends the part: its locks and its own SRCU read section (vcpu->srcu_idx). */
  readonly context: VcpuFirstExitContext;
  readonly #words: Int32Array;
  readonly #name: string;

  constructor(context: VcpuFirstExitContext, handshake: SharedArrayBuffer, name: string) {
    this.context = context;
    this.#words = new Int32Array(handshake);
    this.#name = name;
  }

  get locks(): VcpuLocks {
    return this.context.locks;
  }

  get reported(): boolean {
    return this.locks.lockdep.report() !== undefined;
  }

  signal(word: ReplayHandshakeWord): void {
    setWord(this.#words, handshakeIndex(word));
  }

  waitFor(word: ReplayHandshakeWord): void {
    if (
      !waitForWordBlocking(
        this.#words,
        handshakeIndex(word),
        hostThread().nowMs() + HANDSHAKE_TIMEOUT_MS,
        () => this.locks.lockdep.waitsAborted,
      )
    ) {
      if (this.locks.lockdep.waitsAborted) throw new LockWaitAborted(`handshake ${word}`, 'the', `vCPU ${this.context.vcpu}`);
      throw new Error(`lock replay ${this.#name}: vCPU ${this.context.vcpu} waited ${HANDSHAKE_TIMEOUT_MS} ms for "${word}"`);
    }
  }

  finished(): void {
    Atomics.add(this.#words, handshakeIndex('vcpuDone'), 1);
    Atomics.notify(this.#words, handshakeIndex('vcpuDone'));
  }

  /**
   * mutex_lock, validated first: when that validation (or any thread before it) reported, back out
   * without waiting and return false. With the validator off this is a plain bounded lock.
   */
  lockUnlessReported(mutex: InstrumentedMutex, site: string, announce?: ReplayHandshakeWord): boolean {
    const lockdep = this.locks.lockdep;
    if (lockdep.enabled) lockdep.checkAcquire(mutex.lockClass, LockMode.Write, site, mutex.instance);
    if (this.reported) return false;
    if (announce !== undefined) this.signal(announce); // validated, about to wait: the other side may go
    mutex.lock(site, HANG_BOUND_MS);
    return true;
  }

  /** synchronize_srcu(&kvm->srcu), validated first, skipped once reported. */
  synchronizeUnlessReported(site: string): boolean {
    const { lockdep, srcu } = this.locks;
    if (lockdep.enabled) lockdep.synchronize(srcu.lockClass, site, srcu.instance);
    if (this.reported) return false;
    srcu.synchronizeBlocking(site, HANG_BOUND_MS);
    return true;
  }
}

// ---- the parts ----

/**
 * __x86_set_memory_region(kvm, APIC_ACCESS_PAGE_PRIVATE_MEMSLOT, 0, 0) from a vCPU, slots_lock held:
 * a DELETE waits for two grace periods (invalidate, then delete), each after slots_arch_lock is
 * dropped (kvm_swap_active_memslots). The memslot table itself is main's; this is its locking.
 */
function deleteApicAccessMemslot(replay: ReplayThread): void {
  const archLock = replay.locks.slotsArchLock;
  for (const phase of ['invalidate', 'delete']) {
    archLock.lock(`kvm_set_memslot (${phase})`, KVM_LOCK_TIMEOUT_MS);
    archLock.unlock();
    if (!replay.synchronizeUnlessReported(`kvm_swap_active_memslots (${phase}): synchronize_srcu`)) return;
  }
}

/** S1, the 2020 code: avic_update_access_page from inside the exit handler's SRCU read section. */
const s1: VcpuPart = (replay) => {
  const slotsLock = replay.locks.slotsLock;
  if (!replay.lockUnlessReported(slotsLock, 'avic_update_access_page (S1: inside kvm->srcu)')) return;
  try {
    replay.synchronizeUnlessReported('__x86_set_memory_region: synchronize_srcu');
  } finally {
    slotsLock.unlock();
  }
};

/** S1 fixed (36222b117e36): the inhibit zaps the APIC GFN under a nested read; no slot change, no synchronize. */
const s1Fixed: VcpuPart = (replay) => {
  const { apicvUpdateLock, srcu } = replay.locks;
  apicvUpdateLock.writeLock('kvm_set_or_clear_apicv_inhibit: down_write', KVM_LOCK_TIMEOUT_MS);
  try {
    const index = srcu.readLock(replay.context.vcpu + 1, '__kvm_set_or_clear_apicv_inhibit: srcu_read_lock around the zap');
    srcu.readUnlock(replay.context.vcpu + 1, index);
  } finally {
    apicvUpdateLock.writeUnlock();
  }
};

/** Every other vCPU handles KVM_REQ_APICV_UPDATE: __kvm_vcpu_update_apicv takes the read side inside SRCU. */
const apicvRefresh: VcpuPart = (replay) => {
  const apicvUpdateLock = replay.locks.apicvUpdateLock;
  apicvUpdateLock.readLock('__kvm_vcpu_update_apicv: down_read', KVM_LOCK_TIMEOUT_MS);
  apicvUpdateLock.readUnlock();
};

/** S3 buggy: kvm_inhibit_apic_access_page without dropping the vCPU's SRCU read section. */
const s3: VcpuPart = (replay) => {
  const slotsLock = replay.locks.slotsLock;
  if (!replay.lockUnlessReported(slotsLock, 'kvm_inhibit_apic_access_page (SRCU not dropped)')) return;
  try {
    deleteApicAccessMemslot(replay);
  } finally {
    slotsLock.unlock();
  }
};

/** S3 as KVM does it (2008fab34530): drop SRCU, slots_lock, delete the slot, unlock, re-take SRCU. */
const s3Fixed: VcpuPart = (replay) => {
  const slotsLock = replay.locks.slotsLock;
  replay.context.dropSrcu();
  try {
    slotsLock.lock('kvm_inhibit_apic_access_page: slots_lock (SRCU dropped)', KVM_LOCK_TIMEOUT_MS);
    try {
      deleteApicAccessMemslot(replay);
    } finally {
      slotsLock.unlock();
    }
  } finally {
    replay.context.retakeSrcu('kvm_inhibit_apic_access_page: srcu_read_lock again');
  }
};

/**
 * rfc-v2 hot-add, the vCPU side: KVM_RUN (vcpu->mutex held) reaches the hybrid-AVIC x2APIC inhibit,
 * which drops SRCU and takes slots_lock (S3, as KVM does it): vcpu->mutex -> slots_lock. With the
 * validator on it runs at once, before main's hot-add, so the two orders are seen at different
 * times and reported without any wait (what lockdep is for); without it, it waits for main to be
 * inside the re-initialisation (slots_lock held, waiting for this vCPU's mutex), so the paths
 * overlap and really deadlock. SRCU is dropped before that wait: main's resize synchronizes.
 */
const rfcV2X2apicInhibit: VcpuPart = (replay) => {
  const slotsLock = replay.locks.slotsLock;
  replay.context.dropSrcu();
  try {
    if (!replay.locks.lockdep.enabled) replay.waitFor('mainWaiting');
    if (!replay.lockUnlessReported(slotsLock, 'kvm_inhibit_apic_access_page: slots_lock (SRCU dropped, vcpu->mutex held)')) return;
    try {
      deleteApicAccessMemslot(replay);
    } finally {
      slotsLock.unlock();
    }
  } finally {
    replay.context.retakeSrcu('kvm_inhibit_apic_access_page: srcu_read_lock again');
  }
};

/** S4: a vCPU exit handler (SRCU read) takes a VM mutex while main holds kvm->lock across synchronize_srcu. */
function s4(fixed: boolean): VcpuPart {
  return (replay) => {
    replay.waitFor('mainHolds');
    replay.signal('vcpuAttempting');
    const { kvmLock, xenLock } = replay.locks;
    const mutex = fixed ? xenLock : kvmLock;
    const site = fixed ? 'kvm_xen_set_evtchn: xen_lock (leaf)' : 'kvm_xen_set_evtchn: kvm->lock (inside kvm->srcu)';
    if (!replay.lockUnlessReported(mutex, site)) return;
    mutex.unlock();
  };
}

/** S5's T4: KVM_RUN, SRCU read, kvm_lapic_set_base -> static_branch_inc -> cpus_read_lock. */
const s5ApicEnable: VcpuPart = (replay) => {
  replay.waitFor('mainWaiting');
  const lockdep = replay.locks.lockdep;
  const hotplug = replay.locks.cpuHotplugLock;
  const site = 'kvm_lapic_set_base: static_branch_inc: cpus_read_lock';
  if (lockdep.enabled) lockdep.checkAcquire(hotplug.lockClass, hotplug.readMode, site, hotplug.instance);
  if (replay.reported) return;
  hotplug.readLock(site, HANG_BOUND_MS);
  hotplug.readUnlock();
};

/** A deliberate ABBA between two vCPU workers (the validator's and the watchdog's own test). */
function abba(first: 'irqLock' | 'slotsArchLock'): VcpuPart {
  return (replay) => {
    const locks = replay.locks;
    const [outer, inner] = first === 'irqLock' ? [locks.irqLock, locks.slotsArchLock] : [locks.slotsArchLock, locks.irqLock];
    const who = `vCPU ${replay.context.vcpu}`;
    outer.lock(`abba: ${who} takes ${outer.name} first`, KVM_LOCK_TIMEOUT_MS);
    try {
      // vCPU 0 validates its second acquisition first, so vCPU 1's closes the cycle (one report, always the same).
      if (first === 'irqLock') {
        replay.signal('firstHolds');
        replay.waitFor('secondHolds');
      } else {
        replay.signal('secondHolds');
        replay.waitFor('firstHolds');
        replay.waitFor('firstAttempting');
      }
      const announce = first === 'irqLock' ? 'firstAttempting' : undefined;
      if (replay.lockUnlessReported(inner, `abba: ${who} takes ${inner.name} second`, announce)) inner.unlock();
    } finally {
      outer.unlock();
    }
  };
}

const VCPU_LOCK_REPLAYS = {
  s1: { parts: { 0: s1 }, withMain: false },
  's1-fixed': { parts: { 0: s1Fixed, 1: apicvRefresh }, withMain: false },
  s3: { parts: { 0: s3 }, withMain: true },
  's3-fixed': { parts: { 0: s3Fixed }, withMain: true },
  s4: { parts: { 0: s4(false) }, withMain: true },
  's4-fixed': { parts: { 0: s4(true) }, withMain: true },
  s5: { parts: { 0: s5ApicEnable }, withMain: true },
  's5-fixed': { parts: { 0: s5ApicEnable }, withMain: true },
  abba: { parts: { 0: abba('irqLock'), 1: abba('slotsArchLock') }, withMain: false },
  'rfc-v2-hot-add': { parts: { 0: rfcV2X2apicInhibit }, withMain: true },
  'rfc-v2-hot-add-fixed': { parts: { 0: rfcV2X2apicInhibit }, withMain: true },
} as const satisfies Record<string, VcpuReplaySpec>;

/** The replays' names (VmConfig.injectLockBug's, besides 'none'). */
export type VcpuLockReplayName = keyof typeof VCPU_LOCK_REPLAYS;
export const VCPU_LOCK_REPLAY_NAMES = Object.keys(VCPU_LOCK_REPLAYS) as VcpuLockReplayName[];

export function isVcpuLockReplayName(name: string): name is VcpuLockReplayName {
  return Object.hasOwn(VCPU_LOCK_REPLAYS, name);
}

/**
 * VmConfig.injectLockBug for replay `name`, checked: its handshake words (shared by main and every
 * worker) and whether a report is what it is for (the buggy replays; VmReport.ok stays true with one).
 */
export function injectedLockBug(name: string): InjectedLockBug {
  if (!isVcpuLockReplayName(name))
    throw new VmConfigError(`injectLockBug must be 'none' or one of ${VCPU_LOCK_REPLAY_NAMES.join(', ')}, got ${name}`);
  return { name, handshake: createReplayHandshake(), expectsReport: !name.endsWith('-fixed') };
}

/** vCPU indices a replay needs (its parts). */
export function replayVcpus(name: VcpuLockReplayName): number[] {
  return Object.keys(VCPU_LOCK_REPLAYS[name].parts).map(Number);
}

/**
 * The part vCPU `vcpu` plays in the injected replay, if any: its first-exit hook (called once, at
 * its first exit). Without handshake words (a bare name in VmConfig) the part gets words of its own:
 * enough for a part that meets no other thread (s1), not for one that waits for main or another vCPU.
 */
export function vcpuLockReplay(injected: InjectedLockBug | undefined, vcpu: number): VcpuFirstExitHook | undefined {
  if (injected === undefined) return undefined;
  const { name } = injected;
  if (!isVcpuLockReplayName(name))
    throw new Error(`injectLockBug: no lock replay is named "${name}"; the replays are ${VCPU_LOCK_REPLAY_NAMES.join(', ')}`);
  const spec: VcpuReplaySpec = VCPU_LOCK_REPLAYS[name];
  const part = spec.parts[vcpu];
  if (part === undefined) return undefined;
  const handshake = injected.handshake ?? createReplayHandshake();
  return (context) => {
    const replay = new ReplayThread(context, handshake, name);
    try {
      if (spec.withMain) replay.waitFor('mainReady');
      replay.signal('vcpuReading');
      part(replay);
    } catch (error) {
      // A deadlock left to its bound, or a teardown: the run is over for this part, not an emulator bug.
      if (!(error instanceof LockWaitTimeout || error instanceof LockWaitAborted)) throw error;
    } finally {
      replay.finished();
    }
  };
}
