// The VM on the main thread (KVM's struct kvm and its ioctls): it owns the VM-wide tables (physical
// and logical APIC ID tables) and the memslots, creates vCPUs, and runs them on its host CPUs (one
// long piscina task each, host-cpu-tasks.ts). It is never on the IPI path and never calls
// Atomics.wait: everything here that waits uses the main thread's host (waitAsync, its clock:
// src/host/host-thread.ts) or timers, so the event loop (piscina's, vitest's) keeps turning.

import { sourceOf, type ProgramImage } from '../../guest/assembler-program-image.js';
import type { FaultSource } from '../../guest/guest-fault.js';
import { mainHostThread } from '../../host/host-thread.js';
import { MemslotKind, MemslotSet, memslotId, userMemslotId } from '../../memory/memslot.js';
import { guestPhysicalAddress } from '../../memory/guest-physical-address.js';
import { backingPagePolicy, type BackingPagePolicy } from '../control/backing-page-policy.js';
import { injectedBugFlags } from '../control/injected-bugs.js';
import { rebuildLogicalApicIdTable } from './apic-map.js';
import { VcpuFinish, VcpuRequest, VcpuRunState, runStateName } from '../control/vcpu-run-state.js';
import { allocateVmBuffers, VmControlViews } from '../control/vm-control-views.js';
import { KvmLocks } from '../control/kvm-locks.js';
import { VmMemslots, type MemslotEdit } from './memslot-updates.js';
import { VcpuCreation } from './vcpu-creation.js';
import { avicReachMaxId } from '../../hw/avic/x2avic.js';
import { buildVmReport, finalExit, type VmExit, type VmReport, type VmReportInput } from '../report/vm-report.js';
import { VmConfigError, validateConfig, vmBufferSizes, type ValidVmConfig, type VmConfig } from './vm-config.js';
import { loadProgramIntoRam, WAIT_FOR_START_UP, type ProgramLoad } from './program-load.js';
import { allVcpusIdle, describeVcpu } from './vm-watchdog.js';
import { VmWatchdogs } from './vm-watchdogs.js';
import { buildChromeTrace, type ChromeTrace } from '../report/chrome-trace.js';
import { buildFtraceText, type FtraceText } from '../report/ftrace-text.js';
import type { RunOptions, StartOptions } from './run-options.js';
import { HostCpuTasks } from './host-cpu-tasks.js';
import { DeterministicRun } from './deterministic-run.js';

export { VmConfigError, type VmConfig, type ProgramLoad };

export type { RunOptions, StartOptions } from './run-options.js';

const RAM_SLOT = memslotId(0);

export class Vm {
  readonly config: ValidVmConfig;
  readonly memory: VmControlViews;
  readonly policy: BackingPagePolicy;
  /** KVM's locks (kvm->lock, slots_lock, slots_arch_lock, kvm->srcu, ...), instrumented; see kvm-locks.ts. */
  readonly locks: KvmLocks;
  readonly #memslots: VmMemslots;
  /** vCPU creation and the backing-page policy's cost (memslot resizes, re-initialised pages). */
  readonly creation: VcpuCreation;
  #logicalEntries: ReadonlyMap<number, number> = new Map();
  #entryPoints: number[];
  #programLoaded = false;
  /** The loaded image, when loadProgram was given one: its source map names faulting instructions. */
  #image: ProgramImage | undefined;
  #started = false;
  #waited = false;
  /** The run is over (wait() is stopping the vCPUs): no more hot-adds. */
  #ending = false;
  #startedAt = 0;
  /** When every vCPU had left Created (its worker loaded and running); 0 until then. */
  #allRunningAt = 0;
  #allRunningWaiters: (() => void)[] = [];
  /** The host CPUs' piscina tasks and what they return (host-cpu-tasks.ts). */
  readonly #hostCpuTasks: HostCpuTasks;
  /** The hot-adds queued so far (hotAddVcpu serialises them). */
  #hotAdds: Promise<void> = Promise.resolve();
  #deterministic: DeterministicRun | undefined; // VmConfig.deterministic's schedule, from start() on

  private constructor(config: ValidVmConfig) {
    this.config = config;
    this.memory = new VmControlViews(allocateVmBuffers(config.maxVcpus, config.memoryBytes, vmBufferSizes(config)));
    this.policy = backingPagePolicy(config.policy, config.maxVcpus);
    this.locks = new KvmLocks(this.memory, config.maxVcpus, {
      enabled: config.lockdep,
      ...(config.injectLockBug === 'none' ? {} : { injectLockBug: config.injectLockBug }),
    });
    Atomics.store(this.memory.control, this.memory.headerIndex('hostCpus'), config.hostCpus);
    Atomics.store(
      this.memory.control,
      this.memory.headerIndex('erratum1235WindowNs'),
      config.erratum1235 ? Math.round(config.erratum1235WindowUs * 1000) : 0,
    );
    Atomics.store(this.memory.control, this.memory.headerIndex('injectedBugs'), injectedBugFlags(config.inject));
    this.#entryPoints = new Array<number>(config.maxVcpus).fill(WAIT_FOR_START_UP);
    this.#hostCpuTasks = new HostCpuTasks(this.memory, config.hostCpus, config.maxVcpus);
    const ram = MemslotSet.empty(config.memoryBytes).createMemslot({
      id: RAM_SLOT,
      guestPhysicalAddress: guestPhysicalAddress(0),
      size: config.memoryBytes,
      hostOffset: 0,
      kind: MemslotKind.ram,
    });
    if (!ram.ok) throw new VmConfigError(ram.error.message);
    this.#memslots = new VmMemslots(this.memory, this.locks, ram.set, () => this.#started);
    this.creation = new VcpuCreation(this.memory, this.locks, this.policy, this.#memslots, avicReachMaxId(config));
  }

  /** Creates a VM and its vCPUs (KVM_CREATE_VM, then KVM_CREATE_VCPU for each). */
  static async create(config: VmConfig): Promise<Vm> {
    const full = validateConfig(config);
    const vm = new Vm(full);
    const locks = vm.locks;
    await locks.inContext('KVM_SET_USER_MEMORY_REGION', () =>
      locks.withMutex(locks.slotsLock, 'kvm_vm_ioctl_set_memory_region', () => vm.#memslots.publish(vm.#memslots.set, false)),
    );
    for (let vcpu = 0; vcpu < full.vcpus; vcpu++) await vm.creation.create(vcpu);
    return vm;
  }

  get memslots(): MemslotSet {
    return this.#memslots.set;
  }

  /** Memslot updates and grace periods so far. */
  get memslotStatistics(): VmMemslots['statistics'] {
    return this.#memslots.statistics;
  }

  /** vCPUs created so far (ids 0..n-1); config.maxVcpus bounds hot-add. */
  get createdVcpus(): number {
    return this.memory.createdVcpus();
  }

  /**
   * KVM_CREATE_VCPU while the VM runs (or before it starts): creates the next vCPU id under the
   * backing-page policy (vcpu-creation.ts) and, once the VM runs, starts its worker at its entry
   * point. Resolves with the new vCPU's index once it is a valid IPI target.
   */
  hotAddVcpu(): Promise<number> {
    // One creation at a time, in id order (KVM serialises them under kvm->lock and checks the id):
    // concurrent calls queue behind each other; a failed one does not stop the next.
    const next = this.#hotAdds.then(() => this.#hotAddNext());
    this.#hotAdds = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  async #hotAddNext(): Promise<number> {
    const vcpu = this.createdVcpus;
    if (vcpu >= this.config.maxVcpus) throw new VmConfigError(`cannot hot-add a vCPU: all ${this.config.maxVcpus} (maxVcpus) exist`);
    if (this.#ending) throw new VmConfigError('cannot hot-add a vCPU after the run ended');
    const started = mainHostThread().nowMs();
    await this.creation.create(vcpu);
    if (this.#ending) throw new VmConfigError(`vCPU ${vcpu} was created as the run ended; it did not run`);
    if (this.#started) {
      this.creation.statistics.hotAdds++;
      this.creation.statistics.hotAddMs.push(mainHostThread().nowMs() - started);
      this.#allRunningAt = 0;
      this.#startVcpu(vcpu);
    }
    return vcpu;
  }

  /**
   * Copies a program into guest RAM and records its entry points: pass assemble()'s ProgramImage as it
   * is (every ".entry", the default and the per-vCPU ones), or a ProgramLoad. Before run() only.
   */
  loadProgram(image: ProgramImage | ProgramLoad): void {
    if (this.#started) throw new VmConfigError('load the program before the VM runs');
    const ramSlots = this.#memslots.set.slots.filter((slot) => slot.kind === MemslotKind.ram);
    this.#entryPoints = loadProgramIntoRam(this.memory.buffers.ram, ramSlots, this.config, image);
    this.#programLoaded = true;
    this.#image = 'entryPoints' in image ? image : undefined;
  }

  /** Where the instruction at `address` was written (the loaded image's source map), if known. */
  sourceOf(address: number): FaultSource | undefined {
    return this.#image === undefined ? undefined : sourceOf(this.#image, address);
  }

  // ---- memslots (kvm_set_memory_region), main thread, under slots_lock ----

  // User slots only (userMemslotId, checked before slots_lock as kvm_vm_ioctl_set_memory_region does):
  // the private APIC-access slot is KVM's, and naming it is a PrivateMemslotIdError.

  async setMemoryRegion(slot: { id: number; guestPhysicalAddress: number; size: number; hostOffset: number }): Promise<void> {
    const id = userMemslotId(slot.id);
    const address = guestPhysicalAddress(slot.guestPhysicalAddress);
    const memslot = { id, guestPhysicalAddress: address, size: slot.size, hostOffset: slot.hostOffset, kind: MemslotKind.ram };
    await this.#updateMemslots((set) => set.createMemslot(memslot), false);
  }

  async deleteMemoryRegion(id: number): Promise<void> {
    const slot = userMemslotId(id);
    await this.#updateMemslots((set) => set.deleteMemslot(slot), true);
  }

  async moveMemoryRegion(id: number, newGuestPhysicalAddress: number): Promise<void> {
    const slot = userMemslotId(id);
    await this.#updateMemslots((set) => set.moveMemslot(slot, guestPhysicalAddress(newGuestPhysicalAddress)), true);
  }

  async #updateMemslots(edit: MemslotEdit, removesMemory: boolean): Promise<void> {
    await this.#memslots.update(edit, removesMemory);
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
    if (!this.#programLoaded) throw new VmConfigError('load a program before running the VM');
    // A vCPU without an entry point runs only once another sends it INIT and start-up IPIs; if no
    // created vCPU has one, nothing could ever run, and the run would "succeed" having done nothing.
    const created = this.createdVcpus;
    if (this.#entryPoints.slice(0, created).every((entry) => entry === WAIT_FOR_START_UP)) {
      throw new VmConfigError(
        `none of the ${created} vCPUs has an entry point, so none could ever run: the program's .entry lines name only vCPUs that do not exist (${this.#entryPoints.flatMap((entry, vcpu) => (entry === WAIT_FOR_START_UP ? [] : [vcpu])).join(', ')})`,
      );
    }
    this.#started = true;
    const settings = {
      buffers: this.memory.buffers,
      policy: this.config.policy,
      ipiVirtualization: this.config.ipiVirtualization,
      x2avic: this.config.x2avic,
      x2avicExtended: this.config.x2avicExtended,
      haltPolling: this.config.haltPolling,
      pauseFilterCount: this.config.pauseFilterCount,
      quantumMs: this.config.quantumUs / 1000,
      idlePollMs: this.config.hostIdlePollUs / 1000,
      trace: options.trace ?? false,
      locks: this.locks.shared,
      stall: this.config.stallHostCpu,
    };
    this.#deterministic = DeterministicRun.begin(this.config.deterministic, this.config.hostCpus, settings);
    this.#startedAt = mainHostThread().nowMs();
    this.#hostCpuTasks.start({ ...settings, schedule: this.#deterministic?.shared }, () => this.#deterministic?.leave());
    for (let vcpu = 0; vcpu < this.createdVcpus; vcpu++) this.#startVcpu(vcpu);
  }

  /**
   * KVM_RUN for vCPU `vcpu`: its startup words (read by its host CPU when it first loads it), then it
   * joins its host CPU's run queue.
   */
  #startVcpu(vcpu: number): void {
    const control = this.memory.control;
    const entry = this.#entryPoints[vcpu]!;
    Atomics.store(control, this.memory.controlBlockIndex(vcpu, 'entryPoint'), Math.max(0, entry));
    Atomics.store(control, this.memory.controlBlockIndex(vcpu, 'waitForStartUp'), entry === WAIT_FOR_START_UP ? 1 : 0);
    Atomics.store(control, this.memory.controlBlockIndex(vcpu, 'stackTop'), this.config.memoryBytes - vcpu * this.config.stackBytesPerVcpu);
    this.memory.scheduling.start(vcpu);
  }

  /** Waits for the run started by start() to end (see RunOptions), stops every vCPU and reports. */
  async wait(options: RunOptions = {}): Promise<VmReport> {
    if (!this.#started || this.#waited) throw new VmConfigError('wait() follows one start()');
    this.#waited = true;
    const results = this.#hostCpuTasks.results;
    const exit = await this.#supervise(options, this.#startedAt).catch(DeterministicRun.exitOf);
    this.#ending = true;
    // Whoever waits for "all running" must not wait past the end of the run.
    for (const resolve of this.#allRunningWaiters.splice(0)) resolve();
    // The wait-for graph is taken while the stuck threads still hold and wait (before stopping them).
    const graphAtWatchdog = exit.reason === 'watchdog' ? this.locks.waitForGraphText() : undefined;
    const torn = await this.#hostCpuTasks.stopAll(this.createdVcpus, options.stopTimeoutSeconds ?? 5, (vcpu) =>
      describeVcpu(this.memory, vcpu, (slot) => this.locks.locksHeldBy(slot)),
    );
    const endedAt = mainHostThread().nowMs();
    await this.#hostCpuTasks.destroy();
    const runningAt = this.#allRunningAt === 0 ? endedAt : this.#allRunningAt;
    this.creation.countStrandedAtEnd();
    // The report reads this plain record (report/ sits below vm/ and imports nothing from it).
    const input: VmReportInput = {
      memory: this.memory,
      createdVcpus: this.createdVcpus,
      config: this.config,
      creation: this.creation.statistics,
      memslots: this.#memslots.statistics,
      lockdep: this.locks.summary(),
      lockReportExpected: this.config.injectLockBug !== 'none' && this.config.injectLockBug.expectsReport !== false,
      sourceOf: (address) => this.sourceOf(address),
    };
    const report = buildVmReport(
      input,
      finalExit(exit, torn, () => graphAtWatchdog ?? this.locks.waitForGraphText()),
      results,
      { durationSeconds: (endedAt - this.#startedAt) / 1000, startupSeconds: (runningAt - this.#startedAt) / 1000 },
    );
    return DeterministicRun.endWithReport(report, this.#deterministic);
  }

  /** Makes vCPU `vcpu` leave guest mode and look at its requests (kvm_vcpu_kick). */
  kick(vcpu: number): void {
    this.#assertRunning('kick');
    this.memory.kick(this.#checkVcpu(vcpu), VcpuRequest.Kick);
  }

  /**
   * Parks every vCPU (each puts itself: IsRunning cleared, SRCU dropped) and resolves once all are
   * parked for this call (VcpuRequest.PauseAcknowledge) or finished, also right after a resume().
   * IPIs sent to a paused vCPU wait in its IRR and are delivered after resume().
   */
  async pause(timeoutMs = 10_000): Promise<void> {
    this.#assertRunning('pause');
    for (let vcpu = 0; vcpu < this.createdVcpus; vcpu++) this.memory.kick(vcpu, VcpuRequest.Pause | VcpuRequest.PauseAcknowledge);
    const control = this.memory.control;
    const deadline = mainHostThread().nowMs() + timeoutMs;
    for (let vcpu = 0; vcpu < this.createdVcpus; vcpu++) {
      const requests = this.memory.controlBlockIndex(vcpu, 'requests');
      const runState = this.memory.controlBlockIndex(vcpu, 'runState');
      for (;;) {
        // Not the Paused state alone: a vCPU shows it until it acts on an earlier resume(). The
        // acknowledgement is cleared after Paused is published (park), so this load pairs with it.
        const seen = Atomics.load(control, requests);
        if ((seen & VcpuRequest.PauseAcknowledge) === 0) break;
        const state = Atomics.load(control, runState);
        if (state === VcpuRunState.Finished) break;
        if (mainHostThread().nowMs() > deadline)
          throw new VmConfigError(`vCPU ${vcpu} did not pause within ${timeoutMs} ms (it is ${runStateName(state)})`);
        this.memory.kick(vcpu, 0);
        await mainHostThread().waitAsync(control, requests, seen, 5);
      }
    }
  }

  /** Lets paused vCPUs run again. */
  resume(): void {
    this.#assertRunning('resume');
    for (let vcpu = 0; vcpu < this.createdVcpus; vcpu++) {
      Atomics.and(
        this.memory.control,
        this.memory.controlBlockIndex(vcpu, 'requests'),
        ~(VcpuRequest.Pause | VcpuRequest.PauseAcknowledge),
      );
      this.memory.kick(vcpu, 0);
    }
  }

  /** Run state of every vCPU, by name (for tests and tools). */
  runStates(): string[] {
    return Array.from({ length: this.createdVcpus }, (_, vcpu) =>
      runStateName(Atomics.load(this.memory.control, this.memory.controlBlockIndex(vcpu, 'runState'))),
    );
  }

  #assertRunning(what: string): void {
    if (!this.#started || this.#waited) throw new VmConfigError(`${what}() needs a VM that has been started and not yet waited for`);
  }

  #checkVcpu(vcpu: number): number {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.createdVcpus)
      throw new VmConfigError(`no vCPU ${vcpu} (this VM has ${this.createdVcpus})`);
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
    for (let vcpu = 0; vcpu < this.createdVcpus; vcpu++) {
      if (Atomics.load(this.memory.control, this.memory.controlBlockIndex(vcpu, 'runState')) === VcpuRunState.Created) return;
    }
    this.#allRunningAt = mainHostThread().nowMs();
    for (const resolve of this.#allRunningWaiters.splice(0)) resolve();
  }

  /** IPI messages sent so far, summed over vCPUs (read live from their counters; for progress). */
  liveIpisSent(): number {
    let total = 0;
    for (let vcpu = 0; vcpu < this.createdVcpus; vcpu++) total += this.memory.controlFloat64[this.memory.statisticIndex(vcpu, 'ipisSent')]!;
    return total;
  }

  /** After wait(): the trace the vCPUs recorded (start({ trace: true })), as Chrome trace-event JSON. */
  chromeTrace(): ChromeTrace {
    return buildChromeTrace(this.#hostCpuTasks.recordedTraces());
  }

  /** After wait(): the same trace as ftrace text, the lines a KVM host's tracefs prints (ftrace-text.ts). */
  ftraceText(): FtraceText {
    return buildFtraceText(this.#hostCpuTasks.recordedTraces());
  }

  /** The main thread's service loop: APIC map rebuilds, the end conditions, the watchdog. */
  async #supervise(options: RunOptions, started: number): Promise<VmExit> {
    const control = this.memory.control;
    const doorbell = this.memory.headerIndex('mainDoorbell');
    const limitMs = (options.seconds ?? options.timeoutSeconds ?? 60) * 1000;
    const watchdogs = new VmWatchdogs(this.memory, this.locks, (options.watchdogSeconds ?? 10) * 1000, this.config);
    let lastProgress = started;
    for (;;) {
      const seen = Atomics.load(control, doorbell);
      this.#serviceApicMapRequests();
      if (this.#allRunningAt === 0) this.#noteAllRunning();
      const now = mainHostThread().nowMs();
      const hostCpuErrors = this.#hostCpuTasks.errors;
      if (hostCpuErrors.length > 0) return { reason: 'fault', detail: `a host CPU failed: ${hostCpuErrors[0]!.message}` };
      // The vCPUs' finished words (their reports come back with their host CPUs, at the end).
      let failed = -1;
      let running = 0;
      for (let vcpu = 0; vcpu < this.createdVcpus && failed < 0; vcpu++) {
        const finished = Atomics.load(control, this.memory.controlBlockIndex(vcpu, 'finished'));
        if (finished === VcpuFinish.Fault || finished === VcpuFinish.Error) failed = vcpu;
        else if (finished === VcpuFinish.Running) running++;
      }
      if (failed >= 0) return { reason: 'fault', detail: `vCPU ${failed} stopped the VM` };
      if (running === 0) return { reason: 'all-done', detail: 'every vCPU reported done' };
      if (options.seconds === undefined && allVcpusIdle(this.memory))
        return { reason: 'all-halted', detail: 'every vCPU is done or halted with nothing pending' };
      if (now - started >= limitMs) {
        return options.seconds !== undefined
          ? { reason: 'time-limit', detail: `ran for ${options.seconds} s` }
          : { reason: 'timeout', detail: `the guest did not finish within ${limitMs / 1000} s` };
      }
      const found = watchdogs.check(now);
      if (found !== undefined) return { reason: 'watchdog', detail: found };
      if (options.onProgress !== undefined && now - lastProgress >= 100) {
        lastProgress = now;
        options.onProgress((now - started) / 1000);
      }
      await mainHostThread().waitAsync(control, doorbell, seen, 10);
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
}
