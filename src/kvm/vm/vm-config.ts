// VM configuration: the options, their defaults, and validation with one message per mistake.

import os from 'node:os';
import { X2AVIC_4K_MAX_PHYSICAL_ID } from '../../hw/apic/apic-id.js';
import { PAUSE_LOOP_WINDOW } from '../../guest/guest-cpu.js';
import { PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES } from '../../hw/avic/physical-apic-id-table.js';
import { avicReachMaxId, physicalApicIdTableBytes } from '../../hw/avic/x2avic.js';
import { MAX_THREAD_SLOTS } from '../../lockdep/lockdep-layout.js';
import { BACKING_PAGE_POLICY_NAMES, BackingPagePolicyName, backingPagePolicy } from '../control/backing-page-policy.js';
import { APIC_PAGE_REGIONS, type VmBufferSizes } from '../control/vm-control-views.js';
import type { InjectedLockBug } from '../control/kvm-locks.js';
import { scheduleOptionsProblem, type ScheduleOptions } from '../../host/deterministic/deterministic-schedule.js';
import { findInjectedBug, injectedBugNames } from '../control/injected-bugs.js';
import { HOST_CPU_STALL_KINDS, type HostCpuStall } from '../vcpu/host-cpu-stall.js';

export type { InjectedLockBug };

export interface VmConfig {
  /**
   * vCPUs created with the VM: 1..4096. AVIC addresses vCPU IDs up to 0xFFF with x2avicExtended,
   * 0x1FF with x2AVIC alone and 0xFE without x2AVIC; a VM with a vCPU ID beyond that runs with AVIC
   * inhibited (PHYSICAL_ID_TOO_BIG: every interrupt in software, none lost), as KVM does. vCPUs 255
   * and up have no xAPIC ID of their own and are reachable once they switch to x2APIC mode
   * (docs/amd-intel-differences.md).
   */
  readonly vcpus: number;
  /**
   * Capacity: vCPU ids up to maxVcpus - 1 may be hot-added later (Vm.hotAddVcpu). Shared memory,
   * the physical APIC ID table (KVM's max_vcpu_ids), stacks and worker threads are sized for it.
   * Default `vcpus` (no hot-add).
   */
  readonly maxVcpus?: number;
  /** Guest RAM in bytes (a multiple of 4 KiB, 64 KiB..1 GiB). Default 16 MiB. */
  readonly memoryBytes?: number;
  /** Backing-page policy. Default `upstream`. */
  readonly policy?: BackingPagePolicyName;
  /** enable_ipiv. false shows IsRunning = 0 to the hardware always (erratum #1235 work-around). Default true. */
  readonly ipiVirtualization?: boolean;
  /**
   * Model AMD erratum #1235 (src/hw/avic/erratum-1235.ts): a sender may miss a clear of the target's
   * IsRunning younger than erratum1235WindowUs, ring a doorbell nobody hears and take no exit, so a
   * blocking target can lose its wake-up. Default false (a correct part).
   */
  readonly erratum1235?: boolean;
  /** The erratum's visibility window W in microseconds, 1..1000000 (only with erratum1235). Default ERRATUM_1235_DEFAULT_WINDOW_US. */
  readonly erratum1235WindowUs?: number;
  /**
   * x2AVIC: the CPU has it and KVM uses it, so the x2APIC MSRs KVM passes through (reads, TPR, EOI,
   * ICR, ...; x2apic-msr.ts) are handled by the hardware (int_ctl bit 30) and the physical table
   * covers IDs 0..0x1FF (0xFFF with x2avicExtended). false models "hybrid AVIC"
   * (avic_activate_vmcb): AVIC for xAPIC vCPUs only, every x2APIC IPI emulated by KVM, and AVIC
   * addresses IDs 0..0xFE only. Default true.
   */
  readonly x2avic?: boolean;
  /**
   * Host CPUs the vCPUs are scheduled onto (one worker thread each): 1..maxVcpus. vCPU i runs on
   * host CPU i mod hostCpus. Default min(vcpus, os.availableParallelism()): with vCPUs <= cores every
   * vCPU has its own thread; beyond that vCPUs share host CPUs as vCPU threads share pCPUs under KVM.
   */
  readonly hostCpus?: number;
  /**
   * The host scheduler's quantum in microseconds: a vCPU runs at least this long before another
   * runnable one on its host CPU preempts it (checked between guest entries). Default the Linux
   * scheduler's base slice, 0.75 ms x (1 + log2(min(cores, 8))): 1.5 ms on 2 cores.
   */
  readonly quantumUs?: number;
  /**
   * Pause instructions a vCPU may execute in one entry before a pause-loop exit (KVM's
   * kvm_amd.pause_filter_count, the VMCB's 16-bit PAUSE filter count), 1 to 65535; each exit is a
   * directed yield (kvm_vcpu_on_spin). Default 4096 (PAUSE_LOOP_WINDOW).
   */
  readonly pauseFilterCount?: number;
  /**
   * The CPU has the x2AVIC "4K" extension (X86_FEATURE_X2AVIC_EXT, CPUID 0x8000000A ECX bit 6;
   * KVM uses it since 6.19): x2AVIC addresses IDs 0..0xFFF and the physical table spans up to 8
   * pages. Only with x2avic. Default true with x2avic: it changes nothing for VMs of up to 512
   * vCPUs (the same table page and max indices) and lets larger ones keep AVIC.
   */
  readonly x2avicExtended?: boolean;
  /** Halt-polling (KVM's halt_poll_ns). Default true. */
  readonly haltPolling?: boolean;
  /**
   * The most a host CPU with nothing to run polls for a wake-up before its thread sleeps, in
   * microseconds, 0 to 100000; 0: it sleeps at once, and every wake-up of an idle host CPU is an OS
   * thread wake-up. The window itself adapts as KVM's halt-poll window does (kvm_vcpu_halt: grows
   * from 10 us while idle periods end within the maximum, halves when one outlasts it). Default DEFAULT_HOST_IDLE_POLL_US in a parallel run whose host CPUs fit the
   * machine's cores, else 0 (a polling thread would take a core from a busy one); a deterministic
   * run never polls (its idle host CPUs hand the schedule on at once).
   */
  readonly hostIdlePollUs?: number;
  /**
   * Stack bytes per vCPU at the top of RAM. Default 16 KiB, or, for a VM whose 16 KiB stacks would
   * take half of RAM or more, the largest power of two (at least 256) that keeps them within a
   * quarter (8 KiB each for 512 vCPUs and 1 KiB for 4096 in the default 16 MiB).
   */
  readonly stackBytesPerVcpu?: number;
  /** Run the lock-order validator over the hypervisor's locks (docs/lock-order.md). Default false. */
  readonly lockdep?: boolean;
  /**
   * Debug only: the vCPUs play their part of a lock-order replay (docs/lock-scenarios.md), e.g. 's1',
   * the APICv toggle inside SRCU, or its fixed variant 's1-fixed'. Opaque to the core: the vCPU
   * workers look the name up among the replays (src/scenarios/lock-scenarios/) and run their part as
   * the vCPU's first-exit hook; src/scenarios builds and checks it (injectedLockBug()). A bare name is
   * short for { name } (no shared handshake words, a report expected). Default 'none'.
   */
  readonly injectLockBug?: 'none' | string | InjectedLockBug;
  /**
   * A deterministic run (docs/deterministic.md): the main thread and the host-CPU workers run one at
   * a time on a schedule drawn from `seed` (strategy random or pct, PCT depth, at most maxSwitches
   * preemptions, PCT's expectedPoints), in virtual time, so one seed repeats the run. Default off.
   */
  readonly deterministic?: ScheduleOptions;
  /**
   * Debug only: one bug of the AVIC bug zoo (docs/bug-zoo.md, src/kvm/control/injected-bugs.ts),
   * 'NAME', or its fixed twin 'NAME-fixed', which must run clean. 'erratum-1235' turns erratum1235
   * on; its twin turns it on with ipiVirtualization off (KVM's work-around). Default 'none'.
   */
  readonly inject?: string;
  /**
   * Debug only: host CPU `hostCpu` stalls at its load number `atLoad`, with that vCPU loaded, for at
   * most `seconds` (or until the VM is asked to stop): 'spin' runs its thread on without returning to
   * its loop and 'sleep' sleeps in waits that lead nowhere (hangs the watchdog must name),
   * 'descheduled' shows as a thread the OS keeps waiting for a core (slowness the watchdog must not
   * call a hang). Parallel runs only. Default none (src/kvm/vcpu/host-cpu-stall.ts).
   */
  readonly stallHostCpu?: HostCpuStall;
}

/** validateConfig's result: every option set, the injected replay in its object form. */
export type ValidVmConfig = Required<Omit<VmConfig, 'injectLockBug' | 'deterministic' | 'stallHostCpu'>> & {
  readonly injectLockBug: 'none' | InjectedLockBug;
  /** The schedule of a deterministic run, undefined for a parallel one. */
  readonly deterministic: ScheduleOptions | undefined;
  readonly stallHostCpu: HostCpuStall | undefined;
};

export class VmConfigError extends Error {
  override readonly name = 'VmConfigError';
}

const DEFAULT_MEMORY_BYTES = 16 << 20;

/**
 * VmConfig.hostIdlePollUs's default: KVM's halt_poll_ns default on x86 (200 us), the most the
 * kernel lets a halted vCPU poll, for the same reason. On this emulator's hosts an OS thread wake-up
 * costs 25-40 us and, on a busy core, up to a scheduler tick; a host CPU idle for less than the
 * window takes its next vCPU without one (docs/architecture.md, O9).
 */
export const DEFAULT_HOST_IDLE_POLL_US = 200;

/**
 * The erratum #1235 model's default window W, in microseconds. It stands for the store-to-load
 * visibility gap the missing ordering opens on the sender: well under a microsecond on silicon, but
 * the model has to meet the emulator's time scale, where a guest instruction takes some 100 times
 * longer and blocking (clear IsRunning, re-check, Blocked, put) is host code. Measured on this
 * 2-core machine, a sender reads a just-blocked halter's IsRunning = 0 a median 20-27 us after the
 * clear (p90 63 us with 1 host CPU, 345 us with 2). 100 us covers most of those reads, so
 * halter-sender loses a wake-up within its first few dozen IPIs; 20 us still does, after hundreds.
 * It stays far below the 1 s lost-wake-up grace, so the loss is reported within about a second.
 */
export const ERRATUM_1235_DEFAULT_WINDOW_US = 100;

/**
 * The Linux scheduler's base slice (sysctl_sched_base_slice, 0.75 ms) scaled as it scales it by
 * default (SCHED_TUNABLESCALING_LOG: x (1 + ilog2(min(online CPUs, 8)))): 1.5 ms on 2 cores.
 */
export function defaultQuantumUs(cores = os.availableParallelism()): number {
  return 750 * (1 + Math.floor(Math.log2(Math.min(Math.max(1, cores), 8))));
}
const DEFAULT_STACK_BYTES = 16 << 10;
const MIN_STACK_BYTES = 256;

/** The most vCPUs a VM may have: 4096, IDs 0..0xFFF (X2AVIC_4K_MAX_PHYSICAL_ID, the widest AVIC reach). */
export const MAX_VCPUS = X2AVIC_4K_MAX_PHYSICAL_ID + 1;

/**
 * The most vCPUs AVIC addresses: 255 (xAVIC, IDs 0..0xFE), 512 (x2AVIC, IDs 0..0x1FF) or 4096
 * (x2AVIC with the 4K extension). More vCPUs are allowed (up to MAX_VCPUS) but inhibit AVIC.
 */
export function maxVcpusFor(x2avic: boolean, x2avicExtended = false): number {
  return avicReachMaxId({ x2avic, x2avicExtended: x2avic && x2avicExtended }) + 1;
}

/** 16 KiB while the stacks take less than half of RAM (the limit below), else a quarter's worth. */
function defaultStackBytes(maxVcpus: number, memoryBytes: number): number {
  if (maxVcpus * DEFAULT_STACK_BYTES < memoryBytes / 2) return DEFAULT_STACK_BYTES;
  const share = Math.floor(memoryBytes / 4 / maxVcpus);
  return Math.max(MIN_STACK_BYTES, 2 ** Math.floor(Math.log2(Math.max(1, share))));
}

/**
 * The sizes of the VM's shared regions (vm-control-views.ts): the physical APIC ID table as KVM allocates
 * it (avic_get_physical_id_table_order for max_vcpu_ids = maxVcpus), and one region of APIC pages
 * unless the policy alternates two (rfc-v2).
 */
export function vmBufferSizes(config: Pick<ValidVmConfig, 'maxVcpus' | 'policy' | 'x2avic' | 'x2avicExtended'>): VmBufferSizes {
  return {
    physicalApicIdTableEntries: physicalApicIdTableBytes(config, config.maxVcpus) / PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES,
    apicPageRegions: backingPagePolicy(config.policy, config.maxVcpus).growsWithVcpuId ? APIC_PAGE_REGIONS : 1,
  };
}

export function validateConfig(config: VmConfig): ValidVmConfig {
  const { vcpus } = config;
  const x2avic = config.x2avic ?? true;
  if (config.x2avic !== undefined && typeof config.x2avic !== 'boolean')
    throw new VmConfigError(`x2avic must be true or false, got ${String(config.x2avic)}`);
  if (config.x2avicExtended !== undefined && typeof config.x2avicExtended !== 'boolean')
    throw new VmConfigError(`x2avicExtended must be true or false, got ${String(config.x2avicExtended)}`);
  if (config.x2avicExtended === true && !x2avic) throw new VmConfigError('x2avicExtended needs x2avic: the 4K extension widens x2AVIC');
  const x2avicExtended = config.x2avicExtended ?? x2avic;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new VmConfigError(`vcpus must be an integer from 1 to ${MAX_VCPUS}, got ${vcpus}`);
  }
  const maxVcpus = config.maxVcpus ?? vcpus;
  if (!Number.isInteger(maxVcpus) || maxVcpus < vcpus || maxVcpus > MAX_VCPUS) {
    throw new VmConfigError(`maxVcpus must be an integer from vcpus (${vcpus}) to ${MAX_VCPUS}, got ${maxVcpus}`);
  }
  const policy = config.policy ?? BackingPagePolicyName.Upstream;
  if (!BACKING_PAGE_POLICY_NAMES.includes(policy)) {
    throw new VmConfigError(`policy must be one of ${BACKING_PAGE_POLICY_NAMES.join(', ')}, got ${String(policy)}`);
  }
  const memoryBytes = config.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  if (!Number.isInteger(memoryBytes) || memoryBytes % 4096 !== 0 || memoryBytes < 64 << 10 || memoryBytes > 1 << 30) {
    throw new VmConfigError(`memoryBytes must be a multiple of 4096 from 64 KiB to 1 GiB, got ${memoryBytes}`);
  }
  const stackBytesPerVcpu = config.stackBytesPerVcpu ?? defaultStackBytes(maxVcpus, memoryBytes);
  if (!Number.isInteger(stackBytesPerVcpu) || stackBytesPerVcpu % 16 !== 0 || stackBytesPerVcpu < MIN_STACK_BYTES) {
    throw new VmConfigError(`stackBytesPerVcpu must be a multiple of 16 and at least ${MIN_STACK_BYTES}, got ${stackBytesPerVcpu}`);
  }
  const hostCpus = config.hostCpus ?? Math.min(vcpus, os.availableParallelism());
  if (!Number.isInteger(hostCpus) || hostCpus < 1 || hostCpus > maxVcpus) {
    throw new VmConfigError(`hostCpus must be an integer from 1 to maxVcpus (${maxVcpus}), got ${hostCpus}`);
  }
  const quantumUs = config.quantumUs ?? defaultQuantumUs();
  if (!Number.isFinite(quantumUs) || quantumUs < 10 || quantumUs > 1_000_000) {
    throw new VmConfigError(`quantumUs must be a number from 10 to 1000000, got ${quantumUs}`);
  }
  const pauseFilterCount = config.pauseFilterCount ?? PAUSE_LOOP_WINDOW;
  if (!Number.isInteger(pauseFilterCount) || pauseFilterCount < 1 || pauseFilterCount > 0xffff) {
    throw new VmConfigError(`pauseFilterCount must be an integer from 1 to 65535, got ${pauseFilterCount}`);
  }
  if (config.erratum1235 !== undefined && typeof config.erratum1235 !== 'boolean')
    throw new VmConfigError(`erratum1235 must be true or false, got ${String(config.erratum1235)}`);
  const erratum1235WindowUs = config.erratum1235WindowUs ?? ERRATUM_1235_DEFAULT_WINDOW_US;
  if (!Number.isFinite(erratum1235WindowUs) || erratum1235WindowUs < 1 || erratum1235WindowUs > 1_000_000) {
    throw new VmConfigError(`erratum1235WindowUs must be a number of microseconds from 1 to 1000000, got ${erratum1235WindowUs}`);
  }
  const injectLockBug = injectedLockBugShape(config.injectLockBug);
  const deterministic = config.deterministic;
  if (deterministic !== undefined) {
    const problem =
      typeof deterministic === 'object' && deterministic !== null ? scheduleOptionsProblem(deterministic) : 'it must be an object';
    if (problem !== undefined) throw new VmConfigError(`deterministic: ${problem}`);
  }
  const hostIdlePollUs =
    config.hostIdlePollUs ?? (deterministic === undefined && hostCpus <= os.availableParallelism() ? DEFAULT_HOST_IDLE_POLL_US : 0);
  if (!Number.isFinite(hostIdlePollUs) || hostIdlePollUs < 0 || hostIdlePollUs > 100_000) {
    throw new VmConfigError(`hostIdlePollUs must be a number of microseconds from 0 to 100000, got ${hostIdlePollUs}`);
  }
  if (deterministic !== undefined && hostIdlePollUs > 0)
    throw new VmConfigError('hostIdlePollUs is for parallel runs (a deterministic run hands its schedule on instead of polling)');
  const inject = validateInject(config.inject);
  const stallHostCpu = validateStall(config.stallHostCpu, hostCpus, deterministic !== undefined);
  const injected = inject === 'none' ? undefined : findInjectedBug(inject);
  // erratum #1235 is a VM setting: the bug is the erratum with IPI virtualization on, its twin KVM's work-around.
  const erratumInjected = injected?.bug.name === 'erratum-1235';
  // Thread slots: main, one per vCPU worker, and the main thread's 8 async contexts (kvm-locks.ts).
  if (config.lockdep === true && maxVcpus + 9 > MAX_THREAD_SLOTS)
    throw new VmConfigError(`the lock-order validator supports at most ${MAX_THREAD_SLOTS - 9} vCPUs, got ${maxVcpus}`);
  if (maxVcpus * stackBytesPerVcpu >= memoryBytes / 2)
    throw new VmConfigError(`${maxVcpus} stacks of ${stackBytesPerVcpu} bytes need more than half of the ${memoryBytes}-byte RAM`);
  return {
    vcpus,
    maxVcpus,
    memoryBytes,
    policy,
    ipiVirtualization: erratumInjected && injected?.fixed === true ? false : (config.ipiVirtualization ?? true),
    erratum1235: erratumInjected || (config.erratum1235 ?? false),
    erratum1235WindowUs,
    x2avic,
    hostCpus,
    quantumUs,
    pauseFilterCount,
    x2avicExtended,
    haltPolling: config.haltPolling ?? true,
    hostIdlePollUs,
    stackBytesPerVcpu,
    lockdep: config.lockdep ?? false,
    injectLockBug,
    deterministic,
    inject,
    stallHostCpu,
  };
}

/** VmConfig.stallHostCpu: undefined, or a host CPU of this VM, a load number, a kind and a bound. */
function validateStall(stall: HostCpuStall | undefined, hostCpus: number, deterministic: boolean): HostCpuStall | undefined {
  if (stall === undefined) return undefined;
  const { hostCpu, atLoad, how, seconds } = typeof stall === 'object' && stall !== null ? stall : ({} as Partial<HostCpuStall>);
  if (
    !Number.isInteger(hostCpu) ||
    hostCpu! < 0 ||
    hostCpu! >= hostCpus ||
    !Number.isInteger(atLoad) ||
    atLoad! < 1 ||
    !HOST_CPU_STALL_KINDS.includes(how!) ||
    !Number.isFinite(seconds) ||
    seconds! <= 0 ||
    seconds! > 3600
  )
    throw new VmConfigError(
      `stallHostCpu must be { hostCpu: 0..${hostCpus - 1}, atLoad: 1 or more, how: ${HOST_CPU_STALL_KINDS.slice(0, -1).join(', ')} or ${HOST_CPU_STALL_KINDS.at(-1)}, seconds: up to 3600 }, got ${JSON.stringify(stall)}`,
    );
  if (deterministic) throw new VmConfigError('stallHostCpu is for parallel runs (the watchdog reads real thread times)');
  return { hostCpu: hostCpu!, atLoad: atLoad!, how: how!, seconds: seconds! };
}

/** VmConfig.inject: 'none' (the default), a bug of the bug zoo or its -fixed twin; else one line that lists the names. */
export function validateInject(inject: unknown): string {
  if (inject === undefined || inject === 'none') return 'none';
  if (typeof inject !== 'string' || findInjectedBug(inject) === undefined)
    throw new VmConfigError(`unknown injected bug "${String(inject)}"; the bugs are: ${injectedBugNames().join(', ')}`);
  return inject;
}

/** Only the shape of VmConfig.injectLockBug: which replays exist is src/scenarios' to know. */
function injectedLockBugShape(value: VmConfig['injectLockBug']): 'none' | InjectedLockBug {
  if (value === undefined || value === 'none') return 'none';
  const injected: InjectedLockBug | undefined =
    typeof value === 'string' ? { name: value } : typeof value === 'object' && value !== null ? value : undefined;
  if (
    injected === undefined ||
    typeof injected.name !== 'string' ||
    injected.name === '' ||
    !(injected.handshake === undefined || injected.handshake instanceof SharedArrayBuffer) ||
    !(injected.expectsReport === undefined || typeof injected.expectsReport === 'boolean')
  ) {
    throw new VmConfigError(
      `injectLockBug must be 'none', a lock replay's name or { name, handshake?: SharedArrayBuffer, expectsReport?: boolean }, got ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`,
    );
  }
  return injected;
}
