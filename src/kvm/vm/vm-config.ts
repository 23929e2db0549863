// VM configuration: the options, their defaults, and validation with one message per mistake.

import os from 'node:os';
import { XAPIC_MAX_PHYSICAL_ID } from '../../hw/apic/apic-id.js';
import { X2AVIC_MAX_PHYSICAL_INDEX } from '../../hw/avic/x2avic.js';
import { MAX_THREAD_SLOTS } from '../../lockdep/lockdep-layout.js';
import { BACKING_PAGE_POLICY_NAMES, BackingPagePolicyName } from '../control/backing-page-policy.js';
import type { InjectedLockBug } from '../control/kvm-locks.js';

export type { InjectedLockBug };

export interface VmConfig {
  /**
   * vCPUs created with the VM: 1..255 (xAVIC physical IDs 0..0xFE), or 1..512 with x2avic (x2AVIC
   * physical IDs 0..0x1FF). vCPUs 255 and up have no xAPIC ID of their own and are reachable once
   * they switch to x2APIC mode (docs/amd-intel-differences.md).
   */
  readonly vcpus: number;
  /**
   * Capacity: vCPU ids up to maxVcpus - 1 may be hot-added later (Vm.hotAddVcpu). Shared memory,
   * stacks and worker threads are sized for it. Default `vcpus` (no hot-add).
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
   * covers IDs 0..0x1FF. false models
   * "hybrid AVIC" (avic_activate_vmcb): AVIC for xAPIC vCPUs only, every x2APIC IPI emulated by KVM, and at
   * most 255 vCPUs (more would set PHYSICAL_ID_TOO_BIG). Default true.
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
  /** Halt-polling (KVM's halt_poll_ns). Default true. */
  readonly haltPolling?: boolean;
  /** Stack bytes per vCPU at the top of RAM. Default 16 KiB. */
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
}

/** validateConfig's result: every option set, the injected replay in its object form. */
export type ValidVmConfig = Required<Omit<VmConfig, 'injectLockBug'>> & { readonly injectLockBug: 'none' | InjectedLockBug };

export class VmConfigError extends Error {
  override readonly name = 'VmConfigError';
}

const DEFAULT_MEMORY_BYTES = 16 << 20;

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

/** The most vCPUs a VM may have: 255 (xAVIC, IDs 0..0xFE) or 512 (x2AVIC, IDs 0..0x1FF). */
export function maxVcpusFor(x2avic: boolean): number {
  return (x2avic ? X2AVIC_MAX_PHYSICAL_INDEX : XAPIC_MAX_PHYSICAL_ID) + 1;
}

function vcpuLimitReason(x2avic: boolean): string {
  return x2avic
    ? ' (x2AVIC physical IDs 0..0x1ff)'
    : ` (xAPIC physical IDs 0..0x${XAPIC_MAX_PHYSICAL_ID.toString(16)}; up to ${maxVcpusFor(true)} need x2avic: true, without x2AVIC KVM would inhibit AVIC with PHYSICAL_ID_TOO_BIG)`;
}

export function validateConfig(config: VmConfig): ValidVmConfig {
  const { vcpus } = config;
  const x2avic = config.x2avic ?? true;
  if (config.x2avic !== undefined && typeof config.x2avic !== 'boolean') throw new VmConfigError(`x2avic must be true or false, got ${String(config.x2avic)}`);
  const limit = maxVcpusFor(x2avic);
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > limit) {
    throw new VmConfigError(`vcpus must be an integer from 1 to ${limit}${vcpuLimitReason(x2avic)}, got ${vcpus}`);
  }
  const maxVcpus = config.maxVcpus ?? vcpus;
  if (!Number.isInteger(maxVcpus) || maxVcpus < vcpus || maxVcpus > limit) {
    throw new VmConfigError(`maxVcpus must be an integer from vcpus (${vcpus}) to ${limit}${vcpuLimitReason(x2avic)}, got ${maxVcpus}`);
  }
  const policy = config.policy ?? BackingPagePolicyName.Upstream;
  if (!BACKING_PAGE_POLICY_NAMES.includes(policy)) {
    throw new VmConfigError(`policy must be one of ${BACKING_PAGE_POLICY_NAMES.join(', ')}, got ${String(policy)}`);
  }
  const memoryBytes = config.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  if (!Number.isInteger(memoryBytes) || memoryBytes % 4096 !== 0 || memoryBytes < 64 << 10 || memoryBytes > 1 << 30) {
    throw new VmConfigError(`memoryBytes must be a multiple of 4096 from 64 KiB to 1 GiB, got ${memoryBytes}`);
  }
  const stackBytesPerVcpu = config.stackBytesPerVcpu ?? DEFAULT_STACK_BYTES;
  if (!Number.isInteger(stackBytesPerVcpu) || stackBytesPerVcpu % 16 !== 0 || stackBytesPerVcpu < 256) {
    throw new VmConfigError(`stackBytesPerVcpu must be a multiple of 16 and at least 256, got ${stackBytesPerVcpu}`);
  }
  const hostCpus = config.hostCpus ?? Math.min(vcpus, os.availableParallelism());
  if (!Number.isInteger(hostCpus) || hostCpus < 1 || hostCpus > maxVcpus) {
    throw new VmConfigError(`hostCpus must be an integer from 1 to maxVcpus (${maxVcpus}), got ${hostCpus}`);
  }
  const quantumUs = config.quantumUs ?? defaultQuantumUs();
  if (!Number.isFinite(quantumUs) || quantumUs < 10 || quantumUs > 1_000_000) {
    throw new VmConfigError(`quantumUs must be a number from 10 to 1000000, got ${quantumUs}`);
  }
  if (config.erratum1235 !== undefined && typeof config.erratum1235 !== 'boolean') throw new VmConfigError(`erratum1235 must be true or false, got ${String(config.erratum1235)}`);
  const erratum1235WindowUs = config.erratum1235WindowUs ?? ERRATUM_1235_DEFAULT_WINDOW_US;
  if (!Number.isFinite(erratum1235WindowUs) || erratum1235WindowUs < 1 || erratum1235WindowUs > 1_000_000) {
    throw new VmConfigError(`erratum1235WindowUs must be a number of microseconds from 1 to 1000000, got ${erratum1235WindowUs}`);
  }
  const injectLockBug = injectedLockBugShape(config.injectLockBug);
  // Thread slots: main, one per vCPU worker, and the main thread's 8 async contexts (kvm-locks.ts).
  if (config.lockdep === true && maxVcpus + 9 > MAX_THREAD_SLOTS) throw new VmConfigError(`the lock-order validator supports at most ${MAX_THREAD_SLOTS - 9} vCPUs, got ${maxVcpus}`);
  if (maxVcpus * stackBytesPerVcpu >= memoryBytes / 2) throw new VmConfigError(`${maxVcpus} stacks of ${stackBytesPerVcpu} bytes need more than half of the ${memoryBytes}-byte RAM`);
  return {
    vcpus,
    maxVcpus,
    memoryBytes,
    policy,
    ipiVirtualization: config.ipiVirtualization ?? true,
    erratum1235: config.erratum1235 ?? false,
    erratum1235WindowUs,
    x2avic,
    hostCpus,
    quantumUs,
    haltPolling: config.haltPolling ?? true,
    stackBytesPerVcpu,
    lockdep: config.lockdep ?? false,
    injectLockBug,
  };
}

/** Only the shape of VmConfig.injectLockBug: which replays exist is src/scenarios' to know. */
function injectedLockBugShape(value: VmConfig['injectLockBug']): 'none' | InjectedLockBug {
  if (value === undefined || value === 'none') return 'none';
  const injected: InjectedLockBug | undefined = typeof value === 'string' ? { name: value } : typeof value === 'object' && value !== null ? value : undefined;
  if (
    injected === undefined ||
    typeof injected.name !== 'string' ||
    injected.name === '' ||
    !(injected.handshake === undefined || injected.handshake instanceof SharedArrayBuffer) ||
    !(injected.expectsReport === undefined || typeof injected.expectsReport === 'boolean')
  ) {
    throw new VmConfigError(`injectLockBug must be 'none', a lock replay's name or { name, handshake?: SharedArrayBuffer, expectsReport?: boolean }, got ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
  }
  return injected;
}
