// The lock-order replays of KVM's historical lock bugs (docs/lock-scenarios.md) on a real VM, and the registry `avic-smp lockdep
// --scenario NAME` runs from. Each replay starts a Vm whose vCPUs run an IPI-sending guest program
// (the caller's workload, e.g. the storm scenario), injects the vCPU side (lock-replays-vcpu.ts:
// their first exit handler takes the locks) and plays the main-thread side (lock-replays-main.ts)
// with vm.locks while the VM runs. The emulator's own paths take the same locks meanwhile (vCPU run loops, memslot
// updates), so a fixed variant is clean only if it is clean under that load.
//
// Verdicts: the validator's first report -> 'possible-deadlock' (buggy variants back out after it,
// so the run ends normally); with the validator off, the main thread's watchdog finding vCPUs stuck
// -> 'deadlock', with the wait-for graph; else 'clean'. Nothing waits unbounded: after a watchdog
// teardown, Lockdep.abortWaits() makes the main side's pending waits give up within a slice.
//
// The registry is a list of LockReplay (name, description, run). defineVmReplay() builds one from a
// vCPU part (VmConfig.injectLockBug) and a main part; add new entries to LOCK_REPLAYS.

import { LockWaitAborted, waitCycleClasses } from '../../lockdep/index.js';
import type { VmConfig } from '../../kvm/vm/vm-config.js';
import type { IpiBalance, VmReport } from '../../kvm/report/vm-report.js';
import { Vm } from '../../kvm/vm/vm.js';
import { injectedLockBug, replayVcpus, type VcpuLockReplayName } from './lock-replays-vcpu.js';
import { MainReplay, memslotChurn, rfcV2HotAddMain, s4Main, s5Main } from './lock-replays-main.js';

export type LockVerdict = 'possible-deadlock' | 'deadlock' | 'clean';

export interface LockReplayOutcome {
  readonly scenario: string;
  readonly verdict: LockVerdict;
  /** Lock class names around the cycle, closed (first repeated last); [] when clean. */
  readonly cycle: readonly string[];
  /** The splat (possible deadlock), the watchdog's finding and wait-for graph (deadlock), or ''. */
  readonly report: string;
  readonly validator: boolean;
  /** The replay VM's IPI balance (VmReport.ipis, as run and stress report it). */
  readonly ipis?: IpiBalance;
  /** Anything else that went wrong (a fault, a lost IPI, a main-side error): the run is not clean. */
  readonly problems: readonly string[];
  /** The whole VM report, when a VM ran. */
  readonly vmReport?: VmReport;
}

/** The guest program a replay's VM runs: IPI-sending code, so vCPUs run and exit meanwhile. */
export interface LockReplayWorkload {
  readonly load: (vm: Vm) => void;
}

export interface LockReplayRunOptions {
  readonly validator: boolean;
  readonly workload: LockReplayWorkload;
  /** vCPUs (at least what the replay needs; default 2). */
  readonly vcpus?: number;
  /** Host CPUs the vCPUs are scheduled onto (VmConfig.hostCpus, at most the vCPUs); default the VM's. */
  readonly hostCpus?: number;
  /** VmConfig.inject: a bug of the bug zoo (docs/bug-zoo.md) or its fixed twin, in the replay's VM. */
  readonly inject?: string;
  /** The main thread's watchdog bound (default 2 s). */
  readonly watchdogSeconds?: number;
  /** How long teardown waits for stuck vCPUs before terminating their workers (default 1 s). */
  readonly stopTimeoutSeconds?: number;
  /** A deterministic run's schedule (VmConfig.deterministic); default a parallel run. */
  readonly deterministic?: VmConfig['deterministic'];
}

export interface LockReplay {
  readonly name: string;
  /** One line, for --list. */
  readonly description: string;
  readonly run: (options: LockReplayRunOptions) => Promise<LockReplayOutcome>;
}

export interface VmReplaySpec {
  readonly name: string;
  readonly description: string;
  /** The vCPU side (VmConfig.injectLockBug), if any. */
  readonly inject?: VcpuLockReplayName;
  /** The main-thread side, run while the VM runs; vCPU parts start once it has begun. */
  readonly main?: (main: MainReplay) => Promise<void>;
  readonly minimumVcpus?: number;
  /** VM settings the replay needs (a backing-page policy, hot-add room). */
  readonly vmConfig?: Partial<VmConfig>;
  /**
   * Lost IPIs are the design's cost, not a failure of the replay (rfc-v2: pages re-initialised under
   * running senders). They stay in `ipis`; they are not listed as problems.
   */
  readonly lossesAreTheDesign?: boolean;
}

export function defineVmReplay(spec: VmReplaySpec): LockReplay {
  return { name: spec.name, description: spec.description, run: (options) => runVmReplay(spec, options) };
}

async function runVmReplay(spec: VmReplaySpec, options: LockReplayRunOptions): Promise<LockReplayOutcome> {
  const needed = Math.max(
    2,
    spec.minimumVcpus ?? 0,
    ...(spec.inject === undefined ? [] : replayVcpus(spec.inject).map((vcpu) => vcpu + 1)),
  );
  const vcpus = Math.max(needed, options.vcpus ?? 2);
  const injected = spec.inject === undefined ? undefined : injectedLockBug(spec.inject);
  const vm = await Vm.create({
    ...spec.vmConfig,
    vcpus,
    ...(spec.vmConfig?.maxVcpus === undefined ? {} : { maxVcpus: Math.max(vcpus, spec.vmConfig.maxVcpus) }),
    ...(options.hostCpus === undefined ? {} : { hostCpus: Math.min(options.hostCpus, vcpus) }),
    ...(options.inject === undefined ? {} : { inject: options.inject }),
    lockdep: options.validator,
    // Every IPI exits (the erratum #1235 work-around), so every sender reaches its exit handler.
    ipiVirtualization: false,
    ...(injected === undefined ? {} : { injectLockBug: injected }),
    ...(options.deterministic === undefined ? {} : { deterministic: options.deterministic }),
  });
  options.workload.load(vm);
  const main = new MainReplay(vm, injected?.handshake);
  vm.start();
  const ending = vm.wait({
    timeoutSeconds: 60,
    watchdogSeconds: options.watchdogSeconds ?? 2,
    stopTimeoutSeconds: options.stopTimeoutSeconds ?? 1,
  });
  const problems: string[] = [];
  const mainSide = (spec.main?.(main) ?? Promise.resolve()).catch((error: unknown) => {
    if (!(error instanceof LockWaitAborted)) problems.push(`main side: ${error instanceof Error ? error.message : String(error)}`);
  });
  main.signal('mainReady'); // the main side has begun (up to its first await)
  const vmReport = await ending;
  main.end();
  // Taken before the main side's waits are aborted: they are part of the cycle.
  const deadlockCycle = vmReport.exit.reason === 'watchdog' ? waitCycleClasses(vm.locks.lockdep) : [];
  vm.locks.abortWaits();
  await mainSide;
  return replayOutcome(spec.name, options.validator, vmReport, deadlockCycle, problems, spec.lossesAreTheDesign === true);
}

function replayOutcome(
  scenario: string,
  validator: boolean,
  vmReport: VmReport,
  deadlockCycle: string[],
  mainProblems: string[],
  lossesAreTheDesign: boolean,
): LockReplayOutcome {
  const splat = vmReport.lockdep?.report;
  const deadlock = splat === undefined && vmReport.exit.reason === 'watchdog';
  const verdict: LockVerdict = splat !== undefined ? 'possible-deadlock' : deadlock ? 'deadlock' : 'clean';
  const problems = [
    ...mainProblems,
    ...vmReport.faults.map((fault) => `vCPU ${fault.vcpu}: ${fault.description}`),
    // A deadlock's stuck workers are terminated by the teardown: their "errors" are that, not problems.
    ...vmReport.errors
      .filter((error) => !(deadlock && (vmReport.exit.stuckVcpus ?? []).includes(error.vcpu)))
      .map((error) => `vCPU ${error.vcpu}: ${error.message}`),
    ...(vmReport.ipis.lost !== 0 && !lossesAreTheDesign ? [`${vmReport.ipis.lost} IPIs lost`] : []),
    ...(vmReport.lostWakeups !== 0 ? [`${vmReport.lostWakeups} wake-ups lost`] : []),
    ...(vmReport.exit.reason === 'timeout' || (vmReport.exit.reason === 'watchdog' && !deadlock)
      ? [`the run ended by ${vmReport.exit.reason}: ${vmReport.exit.detail}`]
      : []),
  ];
  return {
    scenario,
    verdict,
    cycle: splat?.cycle ?? (deadlock ? deadlockCycle : []),
    report: splat?.text ?? (deadlock ? `${vmReport.exit.detail}` : ''),
    validator,
    ipis: vmReport.ipis,
    problems,
    vmReport,
  };
}

export const LOCK_REPLAYS: LockReplay[] = [
  defineVmReplay({
    name: 's1',
    description: 'S1 (2020): a vCPU toggles APICv from its exit handler: kvm->srcu read, then slots_lock and synchronize_srcu',
    inject: 's1',
  }),
  defineVmReplay({
    name: 's1-fixed',
    description: 'S1 fixed (36222b117e36): the inhibit zaps the APIC page under apicv_update_lock and a nested read; no memslot change',
    inject: 's1-fixed',
  }),
  defineVmReplay({
    name: 's3',
    description: 'S3 buggy: the hybrid-AVIC x2APIC switch deletes the APIC-access memslot without dropping SRCU, main updating memslots',
    inject: 's3',
    main: memslotChurn,
  }),
  defineVmReplay({
    name: 's3-fixed',
    description: 'S3 as KVM does it (2008fab34530): drop SRCU, slots_lock, delete the slot, re-take SRCU, main updating memslots',
    inject: 's3-fixed',
    main: memslotChurn,
  }),
  defineVmReplay({
    name: 's4',
    description: 'S4 (2023): main holds kvm->lock across synchronize_srcu while a vCPU exit handler (SRCU read) takes kvm->lock',
    inject: 's4',
    main: s4Main,
  }),
  defineVmReplay({
    name: 's4-fixed',
    description: 'S4 fixed (310bc39546a4): the vCPU takes the leaf kvm->arch.xen.xen_lock instead of kvm->lock',
    inject: 's4-fixed',
    main: s4Main,
  }),
  defineVmReplay({
    name: 's5',
    description: 'S5 (2025): slots_lock->synchronize; kvm_lock->slots_lock; cpu_hotplug_lock->kvm_lock; vCPU SRCU read->cpu_hotplug_lock',
    inject: 's5',
    main: (main) => s5Main(main, false),
  }),
  defineVmReplay({
    name: 's5-fixed',
    description: 'S5 fixed: set_nx_huge_pages drops kvm_lock (holding a VM reference) before taking slots_lock',
    inject: 's5-fixed',
    main: (main) => s5Main(main, true),
  }),
  defineVmReplay({
    name: 'rfc-v2-hot-add',
    description:
      'RFC v2 (2016): hot-add re-initialises every page under slots_lock, taking each vcpu->mutex; a vCPU takes slots_lock under its vcpu->mutex (S3)',
    inject: 'rfc-v2-hot-add',
    main: rfcV2HotAddMain,
    vmConfig: { policy: 'rfc-v2', maxVcpus: 3 },
    lossesAreTheDesign: true,
  }),
  defineVmReplay({
    name: 'rfc-v2-hot-add-fixed',
    description:
      "upstream (44a95dae1d22): the lapic's own page, one APIC-access page created once: hot-add moves nothing and takes no vcpu->mutex",
    inject: 'rfc-v2-hot-add-fixed',
    main: rfcV2HotAddMain,
    vmConfig: { policy: 'upstream', maxVcpus: 3 },
  }),
  defineVmReplay({
    name: 'abba',
    description: 'a deliberate ABBA between two vCPU workers on kvm->irq_lock and kvm->slots_arch_lock (a self-test, not a KVM bug)',
    inject: 'abba',
  }),
];

export function findLockReplay(name: string): LockReplay | undefined {
  return LOCK_REPLAYS.find((replay) => replay.name === name);
}
