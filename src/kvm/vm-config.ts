// VM configuration: the options, their defaults, and validation with one message per mistake.

import { XAPIC_MAX_PHYSICAL_ID } from '../hw/apic/apic-id.js';
import { BACKING_PAGE_POLICY_NAMES, BackingPagePolicyName } from './backing-page-policy.js';
import { VCPU_LOCK_REPLAY_NAMES, isVcpuLockReplayName, type VcpuLockReplayName } from './lock-replays-vcpu.js';

export interface VmConfig {
  /** vCPUs created with the VM, 1..255 (xAPIC: physical IDs 0..0xFE). */
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
  /** Halt-polling (KVM's halt_poll_ns). Default true. */
  readonly haltPolling?: boolean;
  /** Stack bytes per vCPU at the top of RAM. Default 16 KiB. */
  readonly stackBytesPerVcpu?: number;
  /** Run the lock-order validator over the hypervisor's locks (docs/lock-order.md). Default false. */
  readonly lockdep?: boolean;
  /**
   * Debug only: the vCPUs play their part of a lock-order replay (spec §3.4; lock-replays-vcpu.ts),
   * e.g. 's1', the APICv toggle inside SRCU, or its fixed variant 's1-fixed'. Default 'none'.
   */
  readonly injectLockBug?: 'none' | VcpuLockReplayName;
}

export class VmConfigError extends Error {
  override readonly name = 'VmConfigError';
}

const DEFAULT_MEMORY_BYTES = 16 << 20;
const DEFAULT_STACK_BYTES = 16 << 10;

export function validateConfig(config: VmConfig): Required<VmConfig> {
  const { vcpus } = config;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > XAPIC_MAX_PHYSICAL_ID + 1) {
    throw new VmConfigError(`vcpus must be an integer from 1 to ${XAPIC_MAX_PHYSICAL_ID + 1} (xAPIC physical IDs 0..0x${XAPIC_MAX_PHYSICAL_ID.toString(16)}), got ${vcpus}`);
  }
  const maxVcpus = config.maxVcpus ?? vcpus;
  if (!Number.isInteger(maxVcpus) || maxVcpus < vcpus || maxVcpus > XAPIC_MAX_PHYSICAL_ID + 1) {
    throw new VmConfigError(`maxVcpus must be an integer from vcpus (${vcpus}) to ${XAPIC_MAX_PHYSICAL_ID + 1}, got ${maxVcpus}`);
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
  if (config.injectLockBug !== undefined && config.injectLockBug !== 'none' && !isVcpuLockReplayName(config.injectLockBug)) {
    throw new VmConfigError(`injectLockBug must be 'none' or one of ${VCPU_LOCK_REPLAY_NAMES.join(', ')}, got ${String(config.injectLockBug)}`);
  }
  if (config.lockdep === true && maxVcpus > 254) throw new VmConfigError(`the lock-order validator supports at most 254 vCPUs, got ${maxVcpus}`);
  if (maxVcpus * stackBytesPerVcpu >= memoryBytes / 2) throw new VmConfigError(`${maxVcpus} stacks of ${stackBytesPerVcpu} bytes need more than half of the ${memoryBytes}-byte RAM`);
  return {
    vcpus,
    maxVcpus,
    memoryBytes,
    policy,
    ipiVirtualization: config.ipiVirtualization ?? true,
    haltPolling: config.haltPolling ?? true,
    stackBytesPerVcpu,
    lockdep: config.lockdep ?? false,
    injectLockBug: config.injectLockBug ?? 'none',
  };
}
