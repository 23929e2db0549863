// The VM on the main thread (KVM's struct kvm and its ioctls): it owns the VM-wide tables (physical
// and logical APIC ID tables) and the memslots, creates vCPUs, and runs them as one long piscina
// task each. It is never on the IPI path and never calls Atomics.wait: everything here that waits
// uses Atomics.waitAsync or timers, so the event loop (piscina's, vitest's) keeps turning.

import os from 'node:os';
import { Piscina } from 'piscina';
import { APIC_DEFAULT_PHYSICAL_BASE, APIC_PAGE_BYTES } from '../hw/apic/apic-register.js';
import { resetApicPage } from '../hw/apic/apic-backing-page.js';
import { apicId, hostPhysicalApicId } from '../hw/apic/apic-id.js';
import { GuestMemoryAccess } from '../guest/guest-memory-access.js';
import { APIC_ACCESS_PAGE_PRIVATE_MEMSLOT, MemslotKind, MemslotSet, memslotId, type MemslotError } from '../memory/memslot.js';
import { guestPhysicalAddress } from '../memory/guest-physical-address.js';
import { backingPagePolicy, type BackingPagePolicy } from './backing-page-policy.js';
import { rebuildLogicalApicIdTable } from './apic-map.js';
import { VcpuRequest, VcpuRunState, runStateName } from './vcpu-run-state.js';
import { allocateVmBuffers, VmMemory } from './vm-memory.js';
import { KVM_LOCK_TIMEOUT_MS, KvmLocks } from './kvm-locks.js';
import { buildVmReport, finalExit, type VmExit, type VmReport } from './vm-report.js';
import { workerEntryUrl } from './worker-entry.js';
import { VmConfigError, validateConfig, type VmConfig } from './vm-config.js';
import { allVcpusIdle, describeVcpu, findStuckVcpu } from './vm-watchdog.js';
import { buildChromeTrace, type ChromeTrace } from './chrome-trace.js';
import type { VcpuExitReport, VcpuStartup } from './vcpu.js';

export { VmConfigError, type VmConfig };

export interface ProgramLoad {
  readonly origin: number;
  readonly bytes: Uint8Array;
  /** Entry point for every vCPU without its own. */
  readonly entryPoint?: number;
  /** Per-vCPU entry points (vCPU index -> address). */
  readonly perVcpuEntryPoints?: ReadonlyMap<number, number>;
}

export interface RunOptions {
  /** Run for this long, then stop (the guest need not finish). */
  readonly seconds?: number;
  /** Without `seconds`: give up (exit "timeout") if the guest has not finished by then. Default 60. */
  readonly timeoutSeconds?: number;
  /** Stop waiting for a vCPU that does not finish after a stop request, name it and tear down. Default 5. */
  readonly stopTimeoutSeconds?: number;
  /** A running vCPU whose run loop makes no progress this long is reported stuck. Default 10. */
  readonly watchdogSeconds?: number;
  /** Called about every 100 ms while running (progress bars). */
  readonly onProgress?: (elapsedSeconds: number) => void;
}

export interface StartOptions {
  /** Record trace events in every vCPU (see chromeTrace()). */
  readonly trace?: boolean;
}

const RAM_SLOT = memslotId(0);

export class Vm {
  readonly config: Required<VmConfig>;
  readonly memory: VmMemory;
  readonly policy: BackingPagePolicy;
  /** KVM's locks (kvm->lock, slots_lock, slots_arch_lock, kvm->srcu, ...), instrumented; see kvm-locks.ts. */
  readonly locks: KvmLocks;
  #memslots: MemslotSet;
  #apicAccessMemslotEnabled = false;
  #logicalEntries: ReadonlyMap<number, number> = new Map();
  #entryPoints: number[];
  #pool: Piscina | undefined;
  #started = false;
  #waited = false;
  #startedAt = 0;
  /** When every vCPU had left Created (its worker loaded and running); 0 until then. */
  #allRunningAt = 0;
  #allRunningWaiters: (() => void)[] = [];
  #tasks: Promise<void>[] = [];
  readonly #results: (VcpuExitReport | Error | undefined)[];

  private constructor(config: Required<VmConfig>) {
    this.config = config;
    this.memory = new VmMemory(allocateVmBuffers(config.vcpus, config.memoryBytes));
    this.policy = backingPagePolicy(config.policy, config.vcpus);
    this.locks = new KvmLocks(this.memory, config.vcpus, { enabled: config.lockdep, ...(config.injectLockBug === 'none' ? {} : { injectLockBug: config.injectLockBug }) });
    this.#entryPoints = new Array<number>(config.vcpus).fill(-1);
    this.#results = new Array<VcpuExitReport | Error | undefined>(config.vcpus).fill(undefined);
    const ram = MemslotSet.empty(config.memoryBytes).createMemslot({ id: RAM_SLOT, guestPhysicalAddress: guestPhysicalAddress(0), size: config.memoryBytes, hostOffset: 0, kind: MemslotKind.ram });
    if (!ram.ok) throw new VmConfigError(ram.error.message);
    this.#memslots = ram.set;
  }

  /** Creates a VM and its vCPUs (KVM_CREATE_VM, then KVM_CREATE_VCPU for each). */
  static async create(config: VmConfig): Promise<Vm> {
    const full = validateConfig(config);
    const vm = new Vm(full);
    const locks = vm.locks;
    await locks.inContext('KVM_SET_USER_MEMORY_REGION', () => locks.withMutex(locks.slotsLock, 'kvm_vm_ioctl_set_memory_region', () => vm.#publishMemslots(vm.#memslots, false)));
    for (let vcpu = 0; vcpu < full.vcpus; vcpu++) await vm.#createVcpu(vcpu);
    return vm;
  }

  get memslots(): MemslotSet {
    return this.#memslots;
  }

  /**
   * kvm_vm_ioctl_create_vcpu + avic_init_backing_page: reset the lapic page, write the physical table
   * entry (Valid + backing page) before the vCPU can be a target, so broadcasts reach it at once
   * (spec §4 item 6), and create the APIC-access memslot on the first vCPU (spec §2.8).
   */
  async #createVcpu(vcpu: number): Promise<void> {
    const locks = this.locks;
    const control = this.memory.control;
    await locks.inContext(`KVM_CREATE_VCPU ${vcpu}`, async () => {
      // kvm->lock covers precreate and the final publish only; the arch create (the APIC-access page,
      // under slots_lock) runs outside it, as in kvm_vm_ioctl_create_vcpu (spec §2.8).
      await locks.withMutex(locks.kvmLock, 'kvm_vm_ioctl_create_vcpu: precreate', async () => {
        Atomics.store(control, this.memory.controlBlockIndex(vcpu, 'runState'), VcpuRunState.Created);
        Atomics.store(control, this.memory.controlBlockIndex(vcpu, 'hostThreadSlot'), -1);
      });
      await this.#allocateApicAccessPage();
      await locks.withMutex(locks.kvmLock, 'kvm_vm_ioctl_create_vcpu: publish', () =>
        locks.withMutex(locks.vcpuMutexes[vcpu]!, 'kvm_vm_ioctl_create_vcpu: install the vCPU fd', async () => {
          resetApicPage(this.memory.apicPageWords, this.memory.apicPageBase(vcpu), apicId(vcpu));
          this.memory.physicalApicIdTable.storeEntry(apicId(vcpu), {
            hostPhysicalApicId: hostPhysicalApicId(0),
            backingPagePointer: this.policy.backingPagePointer(vcpu),
            isRunning: false,
            isValid: true,
          });
        }));
    });
  }

  /** kvm_alloc_apic_access_page: one 4 KiB private slot at 0xFEE00000, created once, under slots_lock. */
  async #allocateApicAccessPage(): Promise<void> {
    await this.locks.withMutex(this.locks.slotsLock, 'kvm_alloc_apic_access_page', async () => {
      if (this.#apicAccessMemslotEnabled) return;
      const result = this.#memslots.createMemslot({
        id: APIC_ACCESS_PAGE_PRIVATE_MEMSLOT,
        guestPhysicalAddress: guestPhysicalAddress(APIC_DEFAULT_PHYSICAL_BASE),
        size: APIC_PAGE_BYTES,
        hostOffset: 0,
        kind: MemslotKind.apicAccess,
      });
      if (!result.ok) throw new VmConfigError(`cannot create the APIC-access memslot: ${result.error.message}`);
      await this.#publishMemslots(result.set, true);
      this.#apicAccessMemslotEnabled = true;
    });
  }

  /** Copies a program into guest RAM and records entry points. Before run() only. */
  loadProgram(program: ProgramLoad): void {
    if (this.#started) throw new VmConfigError('load the program before the VM runs');
    const access = new GuestMemoryAccess(this.memory.buffers.ram);
    access.setWindows(this.#memslots.slots.filter((slot) => slot.kind === MemslotKind.ram));
    const end = program.origin + program.bytes.length;
    const stackFloor = this.config.memoryBytes - this.config.vcpus * this.config.stackBytesPerVcpu;
    if (end > stackFloor) {
      throw new VmConfigError(`the program (0x${program.origin.toString(16)}-0x${end.toString(16)}) overlaps the vCPU stacks, which start at 0x${stackFloor.toString(16)}; give the VM more memory`);
    }
    if (!access.load(program.origin, program.bytes)) throw new VmConfigError(`the program at 0x${program.origin.toString(16)} does not fit in guest RAM`);
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) {
      const entry = program.perVcpuEntryPoints?.get(vcpu) ?? program.entryPoint;
      if (entry === undefined) throw new VmConfigError(`no entry point for vCPU ${vcpu}: add ".entry <label>" (all vCPUs) or ".entry <label>, ${vcpu}"`);
      this.#entryPoints[vcpu] = entry;
    }
  }

  // ---- memslots (kvm_set_memory_region), main thread, under slots_lock ----

  async setMemoryRegion(slot: { id: number; guestPhysicalAddress: number; size: number; hostOffset: number }): Promise<void> {
    await this.#updateMemslots((set) => set.createMemslot({ id: memslotId(slot.id), guestPhysicalAddress: guestPhysicalAddress(slot.guestPhysicalAddress), size: slot.size, hostOffset: slot.hostOffset, kind: MemslotKind.ram }), false);
  }

  async deleteMemoryRegion(id: number): Promise<void> {
    await this.#updateMemslots((set) => set.deleteMemslot(memslotId(id)), true);
  }

  async moveMemoryRegion(id: number, newGuestPhysicalAddress: number): Promise<void> {
    await this.#updateMemslots((set) => set.moveMemslot(memslotId(id), guestPhysicalAddress(newGuestPhysicalAddress)), true);
  }

  async #updateMemslots(edit: (set: MemslotSet) => { ok: true; set: MemslotSet } | { ok: false; error: MemslotError }, removesMemory: boolean): Promise<void> {
    const locks = this.locks;
    await locks.inContext('KVM_SET_USER_MEMORY_REGION', () => locks.withMutex(locks.slotsLock, 'kvm_vm_ioctl_set_memory_region', async () => {
      const result = edit(this.#memslots);
      if (!result.ok) throw new VmConfigError(result.error.message);
      await this.#publishMemslots(result.set, removesMemory);
    }));
  }

  /**
   * kvm_swap_active_memslots: write the inactive copy, publish, wait for a grace period, then bring the
   * old copy up to date. A delete or move waits twice (KVM first installs an invalid copy; here the
   * second grace period stands for it). The grace period covers SRCU readers (vCPUs handling exits)
   * and vCPUs in guest mode with an old RAM window (the TLB flush KVM does with a kick). slots_arch_lock
   * covers writing and publishing the inactive copy and is dropped before the grace period (§3.3).
   */
  async #publishMemslots(set: MemslotSet, removesMemory: boolean): Promise<void> {
    this.locks.assertSlotsLockHeld();
    const snapshot = this.memory.memslots;
    await this.locks.slotsArchLock.lockAsync('kvm_set_memslot', KVM_LOCK_TIMEOUT_MS);
    let generation: number;
    try {
      snapshot.writeInactiveCopy(set);
      generation = snapshot.publish();
    } finally {
      this.locks.slotsArchLock.unlock(); // kvm_swap_active_memslots: before synchronize_srcu
    }
    this.#memslots = set;
    if (this.#started) {
      await this.#waitForMemslotGracePeriod(generation);
      if (removesMemory) await this.#waitForMemslotGracePeriod(generation);
    }
    snapshot.writeInactiveCopy(set);
  }

  async #waitForMemslotGracePeriod(generation: number): Promise<void> {
    await this.locks.srcu.synchronize({ site: 'kvm_swap_active_memslots: synchronize_srcu', timeoutMs: KVM_LOCK_TIMEOUT_MS });
    const control = this.memory.control;
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) {
      const observed = this.memory.controlBlockIndex(vcpu, 'observedMemslotGeneration');
      const mode = this.memory.controlBlockIndex(vcpu, 'mode');
      const deadline = performance.now() + 10_000;
      for (;;) {
        const seen = Atomics.load(control, observed);
        if (seen - generation >= 0 || Atomics.load(control, mode) === 0 || Atomics.load(control, this.memory.controlBlockIndex(vcpu, 'finished')) === 1) break;
        if (performance.now() > deadline) throw new VmConfigError(`vCPU ${vcpu} did not acknowledge memslot generation ${generation} within 10 s`);
        this.memory.kick(vcpu, VcpuRequest.MemslotsChanged);
        const wait = Atomics.waitAsync(control, observed, seen, 5);
        if (wait.async) await wait.value;
      }
    }
  }

  // ---- running ----

  /** Starts every vCPU, waits for the run to end, stops and reports. */
  async run(options: RunOptions & StartOptions = {}): Promise<VmReport> {
    this.start(options);
    return this.wait(options);
  }

  /**
   * Starts one long-running piscina task per vCPU and returns at once; memslot updates, pause and
   * the like may then be issued while the vCPUs run. wait() ends the run.
   */
  start(options: StartOptions = {}): void {
    if (this.#started) throw new VmConfigError('a VM runs once');
    if (this.#entryPoints.some((entry) => entry < 0)) throw new VmConfigError('load a program before running the VM');
    this.#started = true;
    this.#startedAt = performance.now();
    const pool = new Piscina({
      filename: workerEntryUrl(),
      minThreads: this.config.vcpus,
      maxThreads: this.config.vcpus,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      maxQueue: 0,
    });
    this.#pool = pool;
    const clockOriginNs = process.hrtime.bigint().toString();
    this.#tasks = this.#entryPoints.map((entryPoint, vcpu) => {
      const startup: VcpuStartup = {
        buffers: this.memory.buffers,
        vcpu,
        policy: this.config.policy,
        ipiVirtualization: this.config.ipiVirtualization,
        haltPolling: this.config.haltPolling,
        hostCores: os.availableParallelism(),
        clockOriginNs,
        entryPoint,
        stackTop: this.config.memoryBytes - vcpu * this.config.stackBytesPerVcpu,
        trace: options.trace ?? false,
        locks: this.locks.shared,
      };
      // Handlers are attached at once: a task rejected by destroy() must not become an unhandled rejection.
      return pool.run(startup).then(
        (report: VcpuExitReport) => { this.#results[vcpu] = report; },
        (error: unknown) => { this.#results[vcpu] = error instanceof Error ? error : new Error(String(error)); },
      ).finally(() => this.memory.ringMainDoorbell());
    });
  }

  /** Waits for the run started by start() to end (see RunOptions), stops every vCPU and reports. */
  async wait(options: RunOptions = {}): Promise<VmReport> {
    if (!this.#started || this.#waited) throw new VmConfigError('wait() follows one start()');
    this.#waited = true;
    const results = this.#results;
    const exit = await this.#supervise(results, options, this.#startedAt);
    // Whoever waits for "all running" must not wait past the end of the run.
    for (const resolve of this.#allRunningWaiters.splice(0)) resolve();
    // The wait-for graph is taken while the stuck threads still hold and wait (before stopping them).
    const graphAtWatchdog = exit.reason === 'watchdog' ? this.locks.waitForGraphText() : undefined;
    const torn = await this.#stopAll(this.#tasks, results, options.stopTimeoutSeconds ?? 5);
    const endedAt = performance.now();
    await this.#pool?.destroy().catch(() => undefined);
    const runningAt = this.#allRunningAt === 0 ? endedAt : this.#allRunningAt;
    return buildVmReport(this, finalExit(exit, torn, () => graphAtWatchdog ?? this.locks.waitForGraphText()), results, {
      durationSeconds: (endedAt - this.#startedAt) / 1000,
      startupSeconds: (runningAt - this.#startedAt) / 1000,
    });
  }

  /** Makes vCPU `vcpu` leave guest mode and look at its requests (kvm_vcpu_kick). */
  kick(vcpu: number): void {
    this.#assertRunning('kick');
    this.memory.kick(this.#checkVcpu(vcpu), VcpuRequest.Kick);
  }

  /**
   * Parks every vCPU (each puts itself: IsRunning cleared, SRCU dropped) and resolves once all are
   * paused or finished. IPIs sent to a paused vCPU wait in its IRR and are delivered after resume().
   */
  async pause(timeoutMs = 10_000): Promise<void> {
    this.#assertRunning('pause');
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) this.memory.kick(vcpu, VcpuRequest.Pause);
    const control = this.memory.control;
    const deadline = performance.now() + timeoutMs;
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) {
      const runState = this.memory.controlBlockIndex(vcpu, 'runState');
      for (;;) {
        const state = Atomics.load(control, runState);
        if (state === VcpuRunState.Paused || state === VcpuRunState.Finished) break;
        if (performance.now() > deadline) throw new VmConfigError(`vCPU ${vcpu} did not pause within ${timeoutMs} ms (it is ${runStateName(state)})`);
        this.memory.kick(vcpu, 0);
        const wait = Atomics.waitAsync(control, runState, state, 5);
        if (wait.async) await wait.value;
      }
    }
  }

  /** Lets paused vCPUs run again. */
  resume(): void {
    this.#assertRunning('resume');
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) {
      Atomics.and(this.memory.control, this.memory.controlBlockIndex(vcpu, 'requests'), ~VcpuRequest.Pause);
      this.memory.kick(vcpu, 0);
    }
  }

  /** Run state of every vCPU, by name (for tests and tools). */
  runStates(): string[] {
    return Array.from({ length: this.config.vcpus }, (_, vcpu) => runStateName(Atomics.load(this.memory.control, this.memory.controlBlockIndex(vcpu, 'runState'))));
  }

  #assertRunning(what: string): void {
    if (!this.#started || this.#waited) throw new VmConfigError(`${what}() needs a VM that has been started and not yet waited for`);
  }

  #checkVcpu(vcpu: number): number {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.config.vcpus) throw new VmConfigError(`no vCPU ${vcpu} (this VM has ${this.config.vcpus})`);
    return vcpu;
  }

  /**
   * Resolves once every vCPU's worker has started running it (worker start-up is excluded from
   * rates; time-based scenarios start their clock here), or when the run ends first. Needs wait()
   * to be in progress or to follow.
   */
  whenAllRunning(): Promise<void> {
    if (this.#allRunningAt !== 0) return Promise.resolve();
    return new Promise((resolve) => this.#allRunningWaiters.push(resolve));
  }

  #noteAllRunning(): void {
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) {
      if (Atomics.load(this.memory.control, this.memory.controlBlockIndex(vcpu, 'runState')) === VcpuRunState.Created) return;
    }
    this.#allRunningAt = performance.now();
    for (const resolve of this.#allRunningWaiters.splice(0)) resolve();
  }

  /** IPI messages sent so far, summed over vCPUs (read live from their counters; for progress). */
  liveIpisSent(): number {
    let total = 0;
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) total += this.memory.controlFloat64[this.memory.statisticIndex(vcpu, 'ipisSent')]!;
    return total;
  }

  /** After wait(): the trace the vCPUs recorded (start({ trace: true })), as Chrome trace-event JSON. */
  chromeTrace(): ChromeTrace {
    const perVcpu = this.#results.flatMap((result, vcpu) =>
      result !== undefined && !(result instanceof Error) && result.trace !== undefined ? [{ vcpu, ...result.trace }] : []);
    return buildChromeTrace(perVcpu);
  }

  /** The main thread's service loop: APIC map rebuilds, the end conditions, the watchdog. */
  async #supervise(results: (VcpuExitReport | Error | undefined)[], options: RunOptions, started: number): Promise<VmExit> {
    const control = this.memory.control;
    const doorbell = this.memory.headerIndex('mainDoorbell');
    const limitMs = (options.seconds ?? options.timeoutSeconds ?? 60) * 1000;
    const watchdogMs = (options.watchdogSeconds ?? 10) * 1000;
    const heartbeats = new Array<{ value: number; since: number }>(this.config.vcpus).fill({ value: -1, since: started });
    let lastProgress = started;
    for (;;) {
      const seen = Atomics.load(control, doorbell);
      this.#serviceApicMapRequests();
      if (this.#allRunningAt === 0) this.#noteAllRunning();
      const now = performance.now();
      const failed = results.findIndex((result) => result instanceof Error || (result !== undefined && result.reason === 'fault'));
      if (failed >= 0) return { reason: 'fault', detail: `vCPU ${failed} stopped the VM` };
      if (results.every((result) => result !== undefined)) return { reason: 'all-done', detail: 'every vCPU reported done' };
      if (options.seconds === undefined && allVcpusIdle(this.memory, results)) return { reason: 'all-halted', detail: 'every vCPU is done or halted with nothing pending' };
      if (now - started >= limitMs) {
        return options.seconds !== undefined
          ? { reason: 'time-limit', detail: `ran for ${options.seconds} s` }
          : { reason: 'timeout', detail: `the guest did not finish within ${limitMs / 1000} s` };
      }
      const stuck = findStuckVcpu(this.memory, heartbeats, now, watchdogMs);
      if (stuck !== undefined) return { reason: 'watchdog', detail: stuck };
      if (options.onProgress !== undefined && now - lastProgress >= 100) {
        lastProgress = now;
        options.onProgress((now - started) / 1000);
      }
      const wait = Atomics.waitAsync(control, doorbell, seen, 10);
      if (wait.async) await wait.value;
    }
  }

  #serviceApicMapRequests(): void {
    const control = this.memory.control;
    const requested = Atomics.load(control, this.memory.headerIndex('apicMapRequests'));
    const generation = this.memory.headerIndex('apicMapGeneration');
    if (Atomics.load(control, generation) === requested) return;
    this.#logicalEntries = rebuildLogicalApicIdTable(this.memory, this.#logicalEntries).entries;
    Atomics.store(control, generation, requested);
    Atomics.notify(control, generation);
  }

  /** Asks every vCPU to stop and waits, bounded; returns a watchdog exit naming the vCPUs that did not. */
  async #stopAll(tasks: Promise<void>[], results: (VcpuExitReport | Error | undefined)[], stopTimeoutSeconds: number): Promise<VmExit | undefined> {
    Atomics.store(this.memory.control, this.memory.headerIndex('stopRequested'), 1);
    for (let vcpu = 0; vcpu < this.config.vcpus; vcpu++) this.memory.kick(vcpu, VcpuRequest.Stop);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), stopTimeoutSeconds * 1000); });
    const outcome = await Promise.race([Promise.all(tasks).then(() => 'stopped' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'stopped') return undefined;
    const stuck = results.map((result, vcpu) => (result === undefined ? vcpu : -1)).filter((vcpu) => vcpu >= 0);
    await this.#pool?.destroy().catch(() => undefined);
    const states = stuck.map((vcpu) => describeVcpu(this.memory, vcpu)).join('; ');
    return { reason: 'watchdog', detail: `vCPU ${stuck.join(', ')} did not stop within ${stopTimeoutSeconds} s (${states}); workers terminated`, stuckVcpus: stuck };
  }
}
