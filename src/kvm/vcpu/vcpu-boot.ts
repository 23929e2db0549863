// SMP bring-up on the target side: INIT and start-up IPIs (Intel SDM vol. 3 §9.4 "Multiple-processor
// (MP) initialization", §11.6.1 delivery modes 101 and 110; KVM's kvm_apic_accept_events and
// kvm_vcpu_reset). The sender (apic-software-ipi.ts, KVM's software IPI path: AVIC never
// accelerates INIT or start-up: incomplete-IPI cause 0) sets VcpuRequest.Init, or stores the vector in the
// control block's startUpVector and then sets VcpuRequest.StartUp; the target takes them here, in its
// own run loop, between guest entries.
//
// States, as KVM's mp_state:
//   Running         executing guest code (or halted)
//   WaitForInit     an application processor that never had an entry point (UNINITIALIZED): as in
//                   KVM, it needs an INIT before a start-up IPI can start it
//   WaitForStartUp  INIT received (INIT_RECEIVED): architectural state reset; the first start-up IPI
//                   starts it at vector << 12
// A start-up IPI in any other state is consumed and ignored (SDM: "a SIPI is ignored unless the
// processor is in wait-for-SIPI"), so the second SIPI of INIT-SIPI-SIPI does nothing to a vCPU the
// first one started. Unlike KVM, an INIT to the bootstrap vCPU also leaves it waiting for a start-up:
// this machine has no reset vector or firmware to restart it at.
//
// Counting, so that the report's balance stays exact: the sender counts each INIT or start-up it
// sets as sent and accepted (coalesced if the request bit was already set); the target counts every
// one it consumes as delivered (interruptsDelivered, plus initsTaken / startUpsTaken /
// startUpsIgnored), and interrupts an INIT wipes before they were taken as interruptsDiscardedByInit.

import { APIC_PAGE_WORDS, ApicRegister } from '../../hw/apic/apic-register.js';
import { DFR_FLAT, SVR_RESET, writeApicRegisterResetValues } from '../../hw/apic/apic-register-table.js';
import { STACK_POINTER } from '../../guest/instruction-set.js';
import type { GuestCpu } from '../../guest/guest-cpu.js';
import { VcpuRequest } from '../control/vcpu-run-state.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { VcpuSaveAreaView } from '../control/vcpu-save-area.js';

export const VcpuBootState = { Running: 0, WaitForInit: 1, WaitForStartUp: 2 } as const;
export type VcpuBootState = (typeof VcpuBootState)[keyof typeof VcpuBootState];

/** SVR after INIT or reset: 0xFF, APIC software-disabled (SDM §11.4.7.1); the AP's code enables it. */
export const SVR_AFTER_INIT = SVR_RESET;

const IRR_WORD = ApicRegister.InterruptRequest >> 2;
const ID_WORD = ApicRegister.Id >> 2;
const LDR_WORD = ApicRegister.LogicalDestination >> 2;
const DFR_WORD = ApicRegister.DestinationFormat >> 2;
/** The 256-bit registers (IRR) are eight 32-bit words, one per 16-byte slot. */
const BITMAP_WORDS = 8;
const BITMAP_STRIDE_WORDS = 4;

function bitCount(value: number): number {
  let bits = 0;
  for (let rest = value; rest !== 0; rest &= rest - 1) bits++;
  return bits;
}

function isIrrWord(relative: number): boolean {
  const offset = relative - IRR_WORD;
  return offset >= 0 && offset < BITMAP_WORDS * BITMAP_STRIDE_WORDS && offset % BITMAP_STRIDE_WORDS === 0;
}

/** Each register's value after INIT, by word (SDM §11.4.7.3): 0 but for the version, DFR, SVR and masked LVTs. */
const INIT_RESET_VALUES = (() => {
  const values = new Int32Array(APIC_PAGE_WORDS);
  writeApicRegisterResetValues(values, 0);
  return values;
})();

/**
 * The local APIC's INIT reset (SDM §11.4.7.3): every register to its power-up value except the APIC
 * ID, and in x2APIC mode (which INIT keeps: IA32_APIC_BASE is not reset) the LDR derived from it.
 * Other vCPUs' software IPI paths read this page while it is reset (collectTargets: ID, LDR, DFR),
 * as KVM's senders read the APIC map that INIT leaves alone, so each register goes straight to its
 * reset value with one atomic store and the kept ones are never written: a start-up IPI sent right
 * behind the INIT must find its target. IRR is cleared last, word by word with Atomics.exchange,
 * because remote senders may OR into it at any moment: a bit set before the exchange is counted as
 * discarded, one set after it stays pending. Returns the discarded IRR bits and whether the logical
 * destination (LDR, DFR) changed.
 */
export function resetApicPageForInit(
  words: Int32Array,
  base: number,
  x2apicMode: boolean,
): { discarded: number; logicalDestinationChanged: boolean } {
  const logicalDestinationChanged = !x2apicMode && (words[base + LDR_WORD] !== 0 || words[base + DFR_WORD] !== DFR_FLAT);
  for (let relative = 0; relative < APIC_PAGE_WORDS; relative++) {
    if (relative === ID_WORD || (x2apicMode && relative === LDR_WORD) || isIrrWord(relative)) continue;
    Atomics.store(words, base + relative, INIT_RESET_VALUES[relative]!);
  }
  let discarded = 0;
  for (let i = 0; i < BITMAP_WORDS; i++) discarded += bitCount(Atomics.exchange(words, base + IRR_WORD + i * BITMAP_STRIDE_WORDS, 0));
  return { discarded, logicalDestinationChanged };
}

/** What the boot logic needs from its vCPU. */
export interface VcpuBootHost {
  readonly views: Pick<
    VmControlViews,
    'control' | 'apicPageWords' | 'controlBlockIndex' | 'headerIndex' | 'ringMainDoorbell' | 'createdVcpus'
  >;
  readonly index: number;
  /** The vCPU's current APIC page (its base moves under rfc-v2). */
  readonly page: { readonly base: number };
  readonly cpu: Pick<GuestCpu, 'registers' | 'pc' | 'flags' | 'interruptVectorTableBase' | 'nmiBlocked' | 'msrHighWord'>;
  readonly timer: { reset(): void };
  readonly stackTop: number;
  readonly counters: VcpuCounting;
  /** Drops the latched and queued NMIs; returns how many (vcpu-interrupts.ts). */
  readonly nmis: { discardNmis(): number };
}

export class VcpuBoot {
  readonly #host: VcpuBootHost;
  readonly #control: Int32Array;
  readonly #requests: number;
  readonly #startUpVector: number;
  #state: VcpuBootState;

  constructor(host: VcpuBootHost, waitForStartUp: boolean) {
    this.#host = host;
    this.#control = host.views.control;
    this.#requests = host.views.controlBlockIndex(host.index, 'requests');
    this.#startUpVector = host.views.controlBlockIndex(host.index, 'startUpVector');
    this.#state = waitForStartUp ? VcpuBootState.WaitForInit : VcpuBootState.Running;
  }

  get state(): VcpuBootState {
    return this.#state;
  }

  /** Migration (vcpu-save-area.ts). */
  save(area: VcpuSaveAreaView): void {
    area.set('bootState', this.#state);
  }

  restore(area: VcpuSaveAreaView): void {
    this.#state = area.get('bootState') as VcpuBootState;
  }

  /** Not running guest code: waiting for INIT or a start-up IPI (the run loop sleeps instead). */
  get waiting(): boolean {
    return this.#state !== VcpuBootState.Running;
  }

  /**
   * Takes the INIT and start-up requests in `requests` (INIT first, as kvm_apic_accept_events does, so
   * INIT and a start-up that arrived together reset and then start the vCPU). Returns true if the
   * architectural state changed (reset or started): the caller ends any halt.
   */
  acceptEvents(requests: number): boolean {
    let changed = false;
    if ((requests & VcpuRequest.Init) !== 0) {
      Atomics.and(this.#control, this.#requests, ~VcpuRequest.Init);
      this.#init();
      changed = true;
    }
    if ((requests & VcpuRequest.StartUp) !== 0) {
      // Clear the bit, then read the vector: pairs with the sender's "store vector, then set bit".
      Atomics.and(this.#control, this.#requests, ~VcpuRequest.StartUp);
      const vector = Atomics.load(this.#control, this.#startUpVector) & 0xff;
      this.#host.counters.count(VcpuStatistic.interruptsDelivered);
      if (this.#state === VcpuBootState.WaitForStartUp) {
        this.#start(vector);
        changed = true;
      } else {
        this.#host.counters.count(VcpuStatistic.startUpsIgnored);
      }
    }
    return changed;
  }

  /** kvm_vcpu_reset(init_event = true), then INIT_RECEIVED. */
  #init(): void {
    const host = this.#host;
    host.counters.count(VcpuStatistic.initsTaken);
    host.counters.count(VcpuStatistic.interruptsDelivered);
    const cpu = host.cpu;
    cpu.registers.fill(0);
    cpu.pc = 0;
    cpu.flags = 0;
    cpu.interruptVectorTableBase = 0;
    cpu.nmiBlocked = false;
    cpu.msrHighWord = 0;
    // Pending and queued NMIs go too (KVM clears nmi_pending and nmi_queued at INIT).
    const memory = host.views;
    let discarded = host.nmis.discardNmis();
    // The control block's apicMode: 0 is xAPIC (the reset state), anything else x2APIC.
    const x2apicMode = Atomics.load(memory.control, memory.controlBlockIndex(host.index, 'apicMode')) !== 0;
    const page = resetApicPageForInit(memory.apicPageWords, host.page.base, x2apicMode);
    // ESR is zero again; errors noticed but not yet latched go with it.
    Atomics.store(memory.control, memory.controlBlockIndex(host.index, 'pendingErrorStatus'), 0);
    discarded += page.discarded;
    if (discarded > 0) host.counters.count(VcpuStatistic.interruptsDiscardedByInit, discarded);
    host.timer.reset();
    if (page.logicalDestinationChanged) {
      // LDR and DFR went back to 0 and flat: the main thread rebuilds the logical table (kvm_recalculate_apic_map).
      // No wait, unlike a guest LDR write: this vCPU sends nothing until a start-up IPI restarts it.
      Atomics.add(memory.control, memory.headerIndex('apicMapRequests'), 1);
      memory.ringMainDoorbell();
    }
    this.#state = VcpuBootState.WaitForStartUp;
  }

  /** Starts at the start-up page, with the start registers every vCPU gets (docs/guest-isa.md §1.1). */
  #start(vector: number): void {
    const host = this.#host;
    host.counters.count(VcpuStatistic.startUpsTaken);
    const cpu = host.cpu;
    cpu.pc = (vector << 12) >>> 0;
    cpu.registers[0] = host.index;
    cpu.registers[1] = host.views.createdVcpus();
    cpu.registers[STACK_POINTER] = host.stackTop | 0;
    this.#state = VcpuBootState.Running;
  }
}
