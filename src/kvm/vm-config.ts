// VM configuration: the options, their defaults, and validation with one message per mistake.

import { XAPIC_MAX_PHYSICAL_ID } from '../hw/apic/apic-id.js';
import { BackingPagePolicyName } from './backing-page-policy.js';

export interface VmConfig {
  /** Number of vCPUs, 1..255 (xAPIC: physical IDs 0..0xFE). */
  readonly vcpus: number;
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
  /** Debug only: replay a historical lock bug from vCPU 0 (spec §3.4 S1, the APICv toggle inside SRCU). Default 'none'. */
  readonly injectLockBug?: 'none' | 's1';
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
  const memoryBytes = config.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  if (!Number.isInteger(memoryBytes) || memoryBytes % 4096 !== 0 || memoryBytes < 64 << 10 || memoryBytes > 1 << 30) {
    throw new VmConfigError(`memoryBytes must be a multiple of 4096 from 64 KiB to 1 GiB, got ${memoryBytes}`);
  }
  const stackBytesPerVcpu = config.stackBytesPerVcpu ?? DEFAULT_STACK_BYTES;
  if (!Number.isInteger(stackBytesPerVcpu) || stackBytesPerVcpu % 16 !== 0 || stackBytesPerVcpu < 256) {
    throw new VmConfigError(`stackBytesPerVcpu must be a multiple of 16 and at least 256, got ${stackBytesPerVcpu}`);
  }
  if (config.injectLockBug !== undefined && config.injectLockBug !== 'none' && config.injectLockBug !== 's1') {
    throw new VmConfigError(`injectLockBug must be 'none' or 's1', got ${String(config.injectLockBug)}`);
  }
  if (config.lockdep === true && vcpus > 254) throw new VmConfigError(`the lock-order validator supports at most 254 vCPUs, got ${vcpus}`);
  if (vcpus * stackBytesPerVcpu >= memoryBytes / 2) throw new VmConfigError(`${vcpus} stacks of ${stackBytesPerVcpu} bytes need more than half of the ${memoryBytes}-byte RAM`);
  return {
    vcpus,
    memoryBytes,
    policy: config.policy ?? BackingPagePolicyName.Upstream,
    ipiVirtualization: config.ipiVirtualization ?? true,
    haltPolling: config.haltPolling ?? true,
    stackBytesPerVcpu,
    lockdep: config.lockdep ?? false,
    injectLockBug: config.injectLockBug ?? 'none',
  };
}
