// The VM's shared memory, declared once. Three buffers:
//
//   ram          guest RAM pool: the host memory behind the RAM memslots (guest-defined contents)
//   apicPages    regions of one 4 KiB APIC register page per vCPU. Under the upstream policy one
//                region holds the lapic's own pages, which are also the AVIC backing pages; under
//                rfc-v2 two regions take turns as the host memory behind the resized APIC-access
//                memslot (backing-page-policy.ts)
//   control      everything else, laid out below
//
// Each field names its writer. "owning vCPU" means the worker currently running that vCPU; the main
// thread writes a vCPU's fields only before its worker starts.

import { defineBufferLayout, defineStruct, type BufferLayout } from '../../host/shared-layout.js';
import { memslotSnapshotRegionBytes } from '../../memory/memslot-snapshot.js';
import { Srcu } from '../../host/srcu.js';
import { PHYSICAL_APIC_ID_TABLE_ENTRIES, PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES } from '../../hw/avic/physical-apic-id-table.js';
import { HostCpuState, HostCpuStatistics } from '../../host/host-cpu.js';
import { HostRunQueue, HostTask } from '../../host/run-queue.js';
import { VcpuSaveArea } from './vcpu-save-area.js';

/** The host CPU and task structs live with their mechanism (src/host/); the layout places them. */
export { HostCpuState, HostCpuStatistics, HostRunQueue, HostTask };

/** Physical APIC ID table entries in one page, the default region size: defined in hw. */
export { PHYSICAL_APIC_ID_TABLE_ENTRIES };
/** Logical APIC ID table entries (one 4 KiB page of 32-bit entries). */
export const LOGICAL_APIC_ID_TABLE_ENTRIES = 1024;
/** Guest-reported values per vCPU (hypercall Report) and counters (hypercall Count). */
export const GUEST_REPORT_SLOTS = 16;

export const VmHeader = defineStruct('VmHeader', {
  stopRequested: { type: 'i32', writer: 'main (set once when the VM stops)' },
  mainDoorbell: { type: 'i32', writer: 'any thread: Atomics.add + notify; the main thread waitAsyncs on it' },
  runnableVcpus: { type: 'i32', writer: 'each vCPU: Atomics.add on unblock, Atomics.sub on block (reports and tools)' },
  hostCpus: { type: 'i32', writer: 'main, at VM creation: the host CPUs the vCPUs are scheduled onto (VmConfig.hostCpus)' },
  erratum1235WindowNs: {
    type: 'i32',
    writer: "main, at VM creation: the AMD erratum #1235 model's window W in ns, 0 when the model is off (VmConfig.erratum1235)",
  },
  injectedBugs: {
    type: 'i32',
    writer:
      "main, at VM creation: the InjectedBugFlag of VmConfig.inject (injected-bugs.ts), 0 for none and for every fixed twin; each vCPU's parts read it once",
  },
  apicMapGeneration: { type: 'i32', writer: 'main, after it rebuilds the logical APIC ID table' },
  apicMapRequests: { type: 'i32', writer: 'any vCPU: Atomics.add when its LDR/DFR/ID changed (asks main to rebuild)' },
  createdVcpus: { type: 'i32', writer: "main: vCPUs 0..n-1 exist; raised after a new vCPU's physical table entry is valid" },
  apicvInhibitReasons: {
    type: 'i32',
    writer:
      'main (kvm->arch.apicv_inhibit_reasons, ApicvInhibitReason bits, apic-inhibit.ts): sets or clears APIC_ID_MODIFIED and LOGICAL_ID_ALIASED with Atomics.or/and at each APIC map rebuild; sets PHYSICAL_ID_TOO_BIG at a vCPU creation',
  },
});

export const VcpuControlBlock = defineStruct('VcpuControlBlock', {
  runState: { type: 'i32', writer: 'owning vCPU (main writes Created before the worker starts)' },
  mode: { type: 'i32', writer: 'owning vCPU: OutsideGuestMode / InGuestMode (KVM vcpu->mode)' },
  requests: { type: 'i32', writer: 'any thread sets bits with Atomics.or; the owning vCPU clears them with Atomics.and' },
  hostThreadSlot: { type: 'i32', writer: 'owning vCPU, at load: the host CPU it is loaded on (kept while put: vcpu->cpu)' },
  observedMemslotGeneration: { type: 'i32', writer: 'owning vCPU, after it reloads its RAM windows' },
  heartbeat: { type: 'i32', writer: 'owning vCPU: +1 per run-loop iteration (watchdog)' },
  waitReason: { type: 'i32', writer: 'owning vCPU: what it is waiting for, if anything (VcpuWaitReason)' },
  finished: { type: 'i32', writer: 'owning vCPU: why its run ended (VcpuFinish: 0 = still running, done, stopped, fault, emulator error)' },
  apicPageBase: {
    type: 'i32',
    writer: "main: word index of the vCPU's current APIC page in apicPages (at creation; rfc-v2: at every re-initialisation)",
  },
  startUpVector: { type: 'i32', writer: 'a sender of a start-up IPI: the vector, stored before it sets VcpuRequest.StartUp' },
  nmiQueued: {
    type: 'i32',
    writer: 'any NMI sender: Atomics.add 1 before it sets VcpuRequest.Nmi; the owner takes them with Atomics.exchange (KVM nmi_queued)',
  },
  nmiPending: { type: 'i32', writer: 'owning vCPU: NMIs latched and not yet taken, 0..2 (KVM nmi_pending; read by main for the report)' },
  apicMode: {
    type: 'i32',
    writer:
      'owning vCPU: VcpuApicMode (0 = xAPIC, the reset state; 1 = x2APIC), stored after the ID and LDR it implies, read by software-path senders',
  },
  pendingErrorStatus: {
    type: 'i32',
    writer:
      'any thread: Atomics.or of ESR bits (a sender: send illegal vector on itself, receive illegal vector on a target); the owning vCPU Atomics.exchange(0) on an ESR write, which latches them into ESR',
  },
  arbitrationCounter: { type: 'i32', writer: 'senders of lowest-priority IPIs: Atomics.add(1) on the winner (KVM apic_arb_prio)' },
  apicTimerArmed: {
    type: 'i32',
    writer: 'owning vCPU: 1 while its LVT timer counts toward an unmasked expiry (a halted vCPU with one is not idle)',
  },
  hostThreadId: {
    type: 'i32',
    writer:
      'the host CPU that loads the vCPU: its OS thread id (Linux /proc/thread-self; 0 = unknown), stored at each load; HostThreadRunTime reads its CPU time (vcpu-run-time.ts)',
  },
  entryPoint: { type: 'i32', writer: 'main, before it starts the vCPU: where it begins (its host CPU builds the vCPU from these words)' },
  waitForStartUp: { type: 'i32', writer: 'main, before it starts the vCPU: 1 for an application processor in wait-for-SIPI' },
  stackTop: { type: 'i32', writer: 'main, before it starts the vCPU: its initial stack pointer' },
  lostWakeupVector: {
    type: 'i32',
    writer:
      'the host CPU of a blocked vCPU: vector + 1 (256 + 1 for another event) of an event it found pending with no wake-up coming (0 = none)',
  },
});

/** Per-vCPU counters. Written only by the owning vCPU (plain stores), summed by main at the end. */
export const VcpuStatistics = defineStruct('VcpuStatistics', {
  ipiCommands: { type: 'f64', writer: 'owning vCPU: ICR writes that sent an IPI' },
  ipisSent: { type: 'f64', writer: 'owning vCPU: IPI messages (one per destination vCPU, or one dropped)' },
  ipisAccepted: { type: 'f64', writer: 'owning vCPU: messages that newly set an IRR bit' },
  ipisCoalesced: { type: 'f64', writer: 'owning vCPU: messages whose IRR bit was already set (the APIC merges them)' },
  ipisDroppedIllegalVector: { type: 'f64', writer: 'owning vCPU: vector < 16 (incomplete-IPI cause 4; ESR bit 5)' },
  ipisDroppedInvalidTarget: { type: 'f64', writer: 'owning vCPU: destination matched no vCPU' },
  ipisDroppedUnsupported: {
    type: 'f64',
    writer: 'owning vCPU: messages the model drops by kind: SMI (no SMM), the reserved delivery modes, level de-asserts KVM ignores',
  },
  interruptsDelivered: { type: 'f64', writer: 'owning vCPU: interrupts taken (handler entries), IPIs and others' },
  nmisDelivered: { type: 'f64', writer: 'owning vCPU' },
  nmisMerged: {
    type: 'f64',
    writer: 'owning vCPU: NMIs that found the latch full (2 pending, or 1 while an NMI is in service) and merged',
  },
  doorbellsRung: { type: 'f64', writer: 'owning vCPU: AVIC doorbells rung by its ICR writes' },
  erratumStaleIsRunningReads: {
    type: 'f64',
    writer: 'owning vCPU: targets of its ICR writes whose recent IsRunning clear the erratum #1235 model missed (doorbell, no exit)',
  },
  incompleteIpiExits: { type: 'f64', count: 5, writer: 'owning vCPU: AVIC_INCOMPLETE_IPI exits by cause 0..4' },
  unacceleratedAccessTrapExits: { type: 'f64', writer: 'owning vCPU' },
  unacceleratedAccessFaultExits: { type: 'f64', writer: 'owning vCPU' },
  apicMmioEmulationExits: {
    type: 'f64',
    writer:
      'owning vCPU: APIC-page accesses emulated as MMIO because AVIC was inactive (an inhibit: the APIC-access page is not mapped, so the nested page fault goes to kvm_emulate_instruction and apic_mmio_read/apic_mmio_write)',
  },
  haltExits: { type: 'f64', writer: 'owning vCPU' },
  haltPollSuccesses: { type: 'f64', writer: 'owning vCPU: halts ended by an event during halt-polling' },
  blocks: { type: 'f64', writer: 'owning vCPU: times it really slept' },
  wakeups: { type: 'f64', writer: 'owning vCPU: sleeps ended by a ring (not a timeout)' },
  kicksSent: { type: 'f64', writer: 'owning vCPU: wake-ups it sent (incomplete-IPI handling, software delivery)' },
  lostWakeups: { type: 'f64', writer: 'owning vCPU: events found pending with no ring, none within a second (must stay 0)' },
  lateWakeups: { type: 'f64', writer: 'owning vCPU: events found pending before their ring, which came later (a preempted sender)' },
  pauseLoopExits: { type: 'f64', writer: 'owning vCPU' },
  hypercalls: { type: 'f64', writer: 'owning vCPU' },
  msrAccesses: {
    type: 'f64',
    writer: 'owning vCPU: MSR exits, i.e. RDMSR/WRMSR KVM intercepts (every MSR but the x2APIC ones x2AVIC passes through)',
  },
  interruptCommandsWhileInhibited: {
    type: 'f64',
    writer: 'owning vCPU: ICR writes emulated in software because an APICv inhibit was set (kvm_lapic_reg_write, no AVIC)',
  },
  backingPageReloads: { type: 'f64', writer: 'owning vCPU: switches to a re-initialised backing page (rfc-v2 only)' },
  timerExpiries: {
    type: 'f64',
    writer: 'owning vCPU: LVT timer expiries, masked or not (every period of a periodic timer, missed ones too)',
  },
  timerInterruptsAccepted: {
    type: 'f64',
    writer: 'owning vCPU: timer expiries that newly set the LVT vector in its IRR (not IPIs; in the balance)',
  },
  timerInterruptsCoalesced: {
    type: 'f64',
    writer: 'owning vCPU: timer expiries whose vector was still pending in IRR (merged, as the APIC does)',
  },
  initsTaken: {
    type: 'f64',
    writer: 'owning vCPU: INIT signals it acted on (reset, then wait-for-SIPI); also counted in interruptsDelivered',
  },
  startUpsTaken: {
    type: 'f64',
    writer: 'owning vCPU: start-up IPIs that started it (wait-for-SIPI only); also counted in interruptsDelivered',
  },
  startUpsIgnored: {
    type: 'f64',
    writer: 'owning vCPU: start-up IPIs consumed and ignored (not waiting for one, SDM); also counted in interruptsDelivered',
  },
  interruptsDiscardedByInit: {
    type: 'f64',
    writer: 'owning vCPU: accepted interrupts an INIT wiped before they were taken (IRR bits, a pending NMI)',
  },
  slices: { type: 'f64', writer: 'owning vCPU: guest entries' },
  instructions: { type: 'f64', writer: 'owning vCPU: instructions retired' },
  latencySamples: { type: 'f64', writer: 'owning vCPU: hypercall LatencySample count' },
  latencySumNs: { type: 'f64', writer: 'owning vCPU' },
  latencyMinNs: { type: 'f64', writer: 'owning vCPU' },
  latencyMaxNs: { type: 'f64', writer: 'owning vCPU' },
  latencyEpoch: { type: 'f64', writer: 'owning vCPU: +1 at each hypercall LatencyReset (its samples before it are discarded)' },
});

export const VcpuGuestReport = defineStruct('VcpuGuestReport', {
  reports: { type: 'f64', count: GUEST_REPORT_SLOTS, writer: 'owning vCPU (hypercall Report)' },
  counters: { type: 'f64', count: GUEST_REPORT_SLOTS, writer: 'owning vCPU (hypercall Count)' },
  doneStatus: { type: 'f64', writer: 'owning vCPU (hypercall Done: status + 1; 0 = not done)' },
});

export type VmControlRegion =
  | 'header'
  | 'physicalApicIdTable'
  | 'physicalApicIdTableClearedAt'
  | 'logicalApicIdTable'
  | 'memslots'
  | 'srcu'
  | 'hostCpus'
  | 'hostCpuStatistics'
  | 'runQueues'
  | 'hostTasks'
  | 'vcpuSaveAreas'
  | 'vcpuControlBlocks'
  | 'vcpuStatistics'
  | 'vcpuGuestReports';

/**
 * The control buffer of a VM with `vcpuCount` vCPU slots and a physical APIC ID table of
 * `physicalApicIdTableEntries` entries (contiguous and page-aligned, as __get_free_pages gives KVM:
 * x2avic.ts physicalApicIdTableBytes / 8).
 */
export function vmControlLayout(
  vcpuCount: number,
  physicalApicIdTableEntries: number = PHYSICAL_APIC_ID_TABLE_ENTRIES,
): BufferLayout<VmControlRegion> {
  if (
    !Number.isInteger(physicalApicIdTableEntries) ||
    physicalApicIdTableEntries < 1 ||
    physicalApicIdTableEntries % PHYSICAL_APIC_ID_TABLE_ENTRIES !== 0
  ) {
    throw new RangeError(
      `the physical APIC ID table is whole pages of ${PHYSICAL_APIC_ID_TABLE_ENTRIES} entries, got ${physicalApicIdTableEntries} entries`,
    );
  }
  return defineBufferLayout<VmControlRegion>('VmControl', {
    header: { struct: VmHeader, count: 1, writer: 'see fields' },
    physicalApicIdTable: {
      bytes: physicalApicIdTableEntries * PHYSICAL_APIC_ID_TABLE_ENTRY_BYTES,
      align: 4096,
      writer:
        'main writes a whole entry at vCPU creation (none for a vCPU ID past the table: PHYSICAL_ID_TOO_BIG); then the owning vCPU writes IsRunning and the host id (avic_vcpu_load / avic_vcpu_put)',
    },
    physicalApicIdTableClearedAt: {
      bytes: physicalApicIdTableEntries * 8,
      align: 8,
      writer:
        'the owning vCPU, erratum #1235 model only: one Float64 per entry, the VM-clock ns of its last IsRunning 1 -> 0 clear, stored before the clear (PhysicalApicIdTable.setIsRunning)',
    },
    logicalApicIdTable: {
      bytes: LOGICAL_APIC_ID_TABLE_ENTRIES * 4,
      align: 4096,
      writer: 'main only (rebuilt as a whole, kvm_recalculate_apic_map)',
    },
    memslots: { bytes: memslotSnapshotRegionBytes(), writer: 'main only, with slots_lock held' },
    srcu: { bytes: Srcu.regionBytes(vcpuCount + 1), writer: 'readers: their own counters; synchronize: the index word' },
    hostCpus: { struct: HostCpuState, count: vcpuCount, writer: 'see fields (at most one host CPU per vCPU)' },
    hostCpuStatistics: { struct: HostCpuStatistics, count: vcpuCount, writer: 'owning host CPU' },
    runQueues: { struct: HostRunQueue, count: vcpuCount, writer: 'see fields' },
    hostTasks: { struct: HostTask, count: vcpuCount, writer: 'see fields' },
    vcpuSaveAreas: { struct: VcpuSaveArea, count: vcpuCount, writer: 'the host CPU that puts the vCPU (see fields)' },
    vcpuControlBlocks: { struct: VcpuControlBlock, count: vcpuCount, writer: 'see fields' },
    vcpuStatistics: { struct: VcpuStatistics, count: vcpuCount, writer: 'owning vCPU' },
    vcpuGuestReports: { struct: VcpuGuestReport, count: vcpuCount, writer: 'owning vCPU' },
  });
}

type VcpuStatisticName = keyof typeof VcpuStatistics.fieldOffsets;

/**
 * Float64 offset of each counter inside one vCPU's VcpuStatistics struct, for the hot path:
 * `statistics[base + VcpuStatistic.ipisSent] += 1` is a constant-offset store.
 */
export const VcpuStatistic: Readonly<Record<VcpuStatisticName, number>> = Object.freeze(
  Object.fromEntries(
    (Object.keys(VcpuStatistics.fieldOffsets) as VcpuStatisticName[]).map((name) => [name, VcpuStatistics.fieldOffsets[name] / 8]),
  ) as Record<VcpuStatisticName, number>,
);
