// The local APIC timer of one vCPU (Intel SDM vol. 3 §11.5.4; AMD APM vol. 2 §16.4.1; KVM's
// lapic timer in arch/x86/kvm/lapic.c), run by the owning vCPU's worker on the host clock.
//
// Registers: LVT timer (0x320: vector 7:0, mask 16, mode 18:17), initial count (0x380), current
// count (0x390, computed, never stored) and divide configuration (0x3E0). AVIC traps the writes
// (is_avic_unaccelerated_access_trap) and faults the current-count read; the handlers call write() and readCurrentCount().
//
// Clock: the APIC bus runs at 1 GHz, one tick per nanosecond before the divider, as KVM's default
// APIC_BUS_CYCLE_NS = 1. So a count of N at divide-by-D expires N * D ns after the initial-count write.
//
// Nothing here waits or rings: only the owning vCPU fires its own timer (poll(), from the run loop
// at every guest entry, while halt-polling and from each bounded wait of a halted vCPU, which waits
// no longer than remainingMs()), and an IRR bit set by the vCPU that will scan the IRR next needs no
// doorbell. Expiry sets the vector in the vCPU's own page with the same atomic OR senders use, so a
// remote sender ORing another bit at that moment is not lost.

import { ApicRegister } from '../../hw/apic/apic-register.js';
import { FIRST_LEGAL_VECTOR, LVT_MASKED, isApicSoftwareEnabled, setIrrAtomic } from '../../hw/apic/apic-backing-page.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VmControlViews } from '../control/vm-control-views.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { VcpuSaveAreaView } from '../control/vcpu-save-area.js';

/** LVT timer mode, bits 18:17 (SDM table 11-11 / figure 11-8). */
export const LvtTimerMode = {
  OneShot: 0,
  Periodic: 1,
  /** Needs IA32_TSC_DEADLINE (MSR 0x6E0), which this model does not implement: the timer does not count. */
  TscDeadline: 2,
} as const;
const LVT_TIMER_MODE_SHIFT = 17;
const LVT_VECTOR_MASK = 0xff;
/** The bits of the LVT timer entry software can write: vector, mask, mode (delivery status 12 is read-only). */
const LVT_TIMER_WRITABLE = LVT_VECTOR_MASK | LVT_MASKED | (3 << LVT_TIMER_MODE_SHIFT);
/** Divide configuration: bits 0, 1 and 3 are the divide value; the rest are reserved (read 0). */
const DIVIDE_CONFIGURATION_MASK = 0xb;
/** Nanoseconds per APIC bus tick: a 1 GHz bus (KVM's APIC_BUS_CYCLE_NS default). */
export const APIC_BUS_NS_PER_TICK = 1;
/**
 * KVM's min_timer_period_us (200 us): a shorter periodic period is raised to it
 * (limit_periodic_timer_frequency), so a guest cannot make the host expire a timer every few ns.
 */
export const MINIMUM_PERIODIC_NS = 200_000;
/** The shortest guest slice a near deadline asks for, in instructions. */
const MINIMUM_SLICE_INSTRUCTIONS = 256;
/** First guess of the interpreter's speed (instructions per ns) until a timed slice measures it. */
const INITIAL_INSTRUCTIONS_PER_NS = 0.05;

/** Divide-configuration value (register bits 3, 1:0) to the divisor: 2^(value + 1), and 0b111 = 1 (SDM figure 11-10). */
export function timerDivisor(divideConfiguration: number): number {
  const value = (divideConfiguration & 3) | ((divideConfiguration & 8) >> 1);
  return 1 << ((value + 1) & 7);
}

/** What the timer needs from its vCPU. */
export interface ApicTimerHost {
  /** The VM's control views: the timer's apicTimerArmed word. */
  readonly views: Pick<VmControlViews, 'control' | 'apicPageWords' | 'controlBlockIndex'>;
  readonly index: number;
  /** The vCPU's current APIC page (its base moves under rfc-v2). */
  readonly page: { readonly base: number };
  /** Nanoseconds on the VM clock. */
  readClock(): number;
  readonly counters: VcpuCounting;
  /** An interrupt may be pending now: evaluate at the next instruction boundary (GuestCpu). */
  readonly cpu: { requestInterruptEvaluation(): void; requestExit(): void };
}

export class ApicTimer {
  readonly #host: ApicTimerHost;
  readonly #words: Int32Array;
  readonly #control: Int32Array;
  readonly #armedIndex: number;
  /**
   * The LVT timer entry as last applied by write(). Kept here, not read back from the page, because
   * a trapped write has already replaced the page's value when write() runs, and expiries that fell
   * due before the write must see the old entry. Reset: masked.
   */
  #lvtValue = LVT_MASKED;
  /** Ticks programmed by the last initial-count write (0: stopped). */
  #initialCount = 0;
  #divisor = timerDivisor(0);
  /** When the current count reaches 0, in VM-clock ns; Infinity when the timer is not counting. */
  #deadlineNs = Infinity;
  /** Length of one count from the initial count, ns (a periodic timer's period). */
  #periodNs = 0;
  /** Measured interpreter speed, a moving average over slices shortened for the deadline. */
  #instructionsPerNs = INITIAL_INSTRUCTIONS_PER_NS;
  /** When the current shortened slice began (ns), or -1 when the slice was not shortened. */
  #sliceStartNs = -1;

  constructor(host: ApicTimerHost) {
    this.#host = host;
    this.#words = host.views.apicPageWords;
    this.#control = host.views.control;
    this.#armedIndex = host.views.controlBlockIndex(host.index, 'apicTimerArmed');
  }

  /** Migration (vcpu-save-area.ts): the timer's state, the deadline in VM-clock ns every worker shares. */
  save(area: VcpuSaveAreaView): void {
    area.set('timerLvt', this.#lvtValue);
    area.set('timerInitialCount', this.#initialCount);
    area.set('timerDivisor', this.#divisor);
    area.set('timerDeadlineNs', this.#deadlineNs);
    area.set('timerPeriodNs', this.#periodNs);
    area.set('timerInstructionsPerNs', this.#instructionsPerNs);
  }

  restore(area: VcpuSaveAreaView): void {
    this.#lvtValue = area.get('timerLvt');
    this.#initialCount = area.get('timerInitialCount') >>> 0;
    this.#divisor = area.get('timerDivisor');
    this.#deadlineNs = area.get('timerDeadlineNs');
    this.#periodNs = area.get('timerPeriodNs');
    this.#instructionsPerNs = area.get('timerInstructionsPerNs');
    this.#sliceStartNs = -1;
  }

  /** True while the counter runs (whether or not its expiry is masked). */
  get counting(): boolean {
    return this.#deadlineNs !== Infinity;
  }

  #register(offset: number): number {
    return this.#host.page.base + (offset >> 2);
  }

  #lvt(): number {
    return this.#lvtValue;
  }

  #mode(): number {
    return (this.#lvt() >>> LVT_TIMER_MODE_SHIFT) & 3;
  }

  /**
   * A guest write to the LVT timer, initial count or divide configuration, after the trap (the
   * value may already be in the page; it is stored again with the read-only bits cleared).
   * Other offsets are not the timer's and are ignored.
   */
  write(offset: number, value: number): void {
    // Expiries that fell due before this write happened under the old settings: fire them first,
    // and have the vCPU look at IRR right after the writing instruction, as it would have.
    if (this.poll()) this.#host.cpu.requestInterruptEvaluation();
    switch (offset) {
      case ApicRegister.LvtTimer:
        this.#writeLvt(value);
        break;
      case ApicRegister.TimerInitialCount:
        this.#writeInitialCount(value >>> 0);
        break;
      case ApicRegister.TimerDivideConfiguration:
        this.#writeDivideConfiguration(value);
        break;
      default:
        return;
    }
    this.#publishArmed();
    // A slice that began before the timer was armed has a budget blind to its deadline: end it, so
    // the next one is cut to the deadline (beginSlice).
    if (Atomics.load(this.#control, this.#armedIndex) !== 0) this.#host.cpu.requestExit();
  }

  #writeLvt(value: number): void {
    const previousMode = this.#mode();
    // While the APIC is software-disabled every LVT entry stays masked (SDM §11.4.7.2).
    const software = isApicSoftwareEnabled(this.#words, this.#host.page.base) ? 0 : LVT_MASKED;
    this.#lvtValue = (value & LVT_TIMER_WRITABLE) | software;
    this.#words[this.#register(ApicRegister.LvtTimer)] = this.#lvtValue;
    // One-shot <-> periodic keeps counting and takes effect at the next expiry; entering or leaving
    // TSC-deadline mode stops the timer and clears the initial count (KVM apic_update_lvtt).
    const mode = this.#mode();
    if ((previousMode === LvtTimerMode.TscDeadline) !== (mode === LvtTimerMode.TscDeadline)) this.#stop();
  }

  #writeInitialCount(count: number): void {
    // In TSC-deadline mode the initial count is ignored (SDM §11.5.4.1).
    if (this.#mode() === LvtTimerMode.TscDeadline) return;
    this.#words[this.#register(ApicRegister.TimerInitialCount)] = count | 0;
    this.#initialCount = count;
    if (count === 0) {
      // A zero initial count stops the timer (SDM §11.5.4).
      this.#deadlineNs = Infinity;
      this.#periodNs = 0;
      return;
    }
    this.#periodNs = count * this.#divisor * APIC_BUS_NS_PER_TICK;
    this.#deadlineNs = this.#host.readClock() + (this.#mode() === LvtTimerMode.Periodic ? this.#effectivePeriodNs() : this.#periodNs);
  }

  #writeDivideConfiguration(value: number): void {
    this.#words[this.#register(ApicRegister.TimerDivideConfiguration)] = value & DIVIDE_CONFIGURATION_MASK;
    const divisor = timerDivisor(value);
    if (divisor === this.#divisor) return;
    // A running count goes on at the new rate from where it is (KVM update_target_expiration).
    if (this.counting) {
      const now = this.#host.readClock();
      const remaining = Math.max(0, this.#deadlineNs - now);
      this.#deadlineNs = now + (remaining * divisor) / this.#divisor;
    }
    this.#divisor = divisor;
    this.#periodNs = this.#initialCount * divisor * APIC_BUS_NS_PER_TICK;
  }

  /** The current-count register (0x390): ticks left in this count, 0 when stopped or expired one-shot. */
  readCurrentCount(): number {
    if (!this.counting) return 0;
    let remaining = this.#deadlineNs - this.#host.readClock();
    if (remaining <= 0) {
      // Expired but not yet polled: a periodic timer has already reloaded.
      if (this.#mode() !== LvtTimerMode.Periodic) return 0;
      const period = this.#effectivePeriodNs();
      remaining = period - (-remaining % period);
    }
    return Math.min(this.#initialCount, Math.ceil(remaining / (this.#divisor * APIC_BUS_NS_PER_TICK))) >>> 0;
  }

  #effectivePeriodNs(): number {
    return Math.max(this.#periodNs, MINIMUM_PERIODIC_NS);
  }

  /** Nanoseconds until the next expiry (0 if due), or Infinity when not counting. */
  remainingNs(now = this.#host.readClock()): number {
    return this.counting ? Math.max(0, this.#deadlineNs - now) : Infinity;
  }

  /**
   * Fires the timer if its deadline has passed: sets the LVT vector in IRR unless masked, then
   * reloads (periodic) or stops (one-shot). Returns true if it set an IRR bit or found it set, so
   * the caller knows an interrupt may now be pending.
   */
  poll(now?: number): boolean {
    if (this.#deadlineNs === Infinity) return false;
    const time = now ?? this.#host.readClock();
    if (time < this.#deadlineNs) return false;
    const lvt = this.#lvt();
    const mode = (lvt >>> LVT_TIMER_MODE_SHIFT) & 3;
    let expiries = 1;
    if (mode === LvtTimerMode.Periodic) {
      // Periods missed while the vCPU was not looking (descheduled, paused) merge into one interrupt.
      const period = this.#effectivePeriodNs();
      const late = time - this.#deadlineNs;
      expiries += Math.floor(late / period);
      this.#deadlineNs += expiries * period;
    } else {
      this.#deadlineNs = Infinity;
    }
    const host = this.#host;
    host.counters.count(VcpuStatistic.timerExpiries, expiries);
    const vector = lvt & LVT_VECTOR_MASK;
    // Masked, software-disabled, or an illegal vector (SDM: "receive illegal vector"; the ESR bit is
    // not modelled here): the count expired but no interrupt is raised.
    const deliverable = (lvt & LVT_MASKED) === 0 && vector >= FIRST_LEGAL_VECTOR && isApicSoftwareEnabled(this.#words, host.page.base);
    if (!deliverable) {
      if (!this.counting) this.#publishArmed();
      return false;
    }
    if (setIrrAtomic(this.#words, host.page.base, vector)) {
      host.counters.count(VcpuStatistic.timerInterruptsAccepted);
      host.counters.count(VcpuStatistic.timerInterruptsCoalesced, expiries - 1);
    } else {
      host.counters.count(VcpuStatistic.timerInterruptsCoalesced, expiries);
    }
    if (!this.counting) this.#publishArmed();
    return true;
  }

  /**
   * The instruction budget of the next guest slice. The interpreter only looks at the clock between
   * slices, so with an unmasked timer counting the slice is cut to end near the deadline (as VMX's
   * preemption timer or a host hrtimer would interrupt the guest there), from the measured speed.
   */
  beginSlice(maximum: number): number {
    if (!this.counting || (this.#lvt() & LVT_MASKED) !== 0) return maximum;
    const now = this.#host.readClock();
    const wanted = Math.ceil((this.#deadlineNs - now) * this.#instructionsPerNs);
    if (wanted >= maximum) return maximum;
    this.#sliceStartNs = now;
    return Math.max(MINIMUM_SLICE_INSTRUCTIONS, wanted);
  }

  /** After a slice beginSlice() shortened: learn the speed from it. */
  endSlice(instructions: number): void {
    if (this.#sliceStartNs < 0) return;
    const elapsed = this.#host.readClock() - this.#sliceStartNs;
    this.#sliceStartNs = -1;
    if (elapsed > 0 && instructions > 0) this.#instructionsPerNs = 0.75 * this.#instructionsPerNs + 0.25 * (instructions / elapsed);
  }

  /** INIT: the timer stops, the LVT entry is masked, counts and divider go to their reset values. */
  reset(): void {
    this.#stop();
    this.#lvtValue = LVT_MASKED;
    this.#divisor = timerDivisor(0);
    this.#publishArmed();
  }

  #stop(): void {
    this.#deadlineNs = Infinity;
    this.#periodNs = 0;
    this.#initialCount = 0;
    this.#words[this.#register(ApicRegister.TimerInitialCount)] = 0;
  }

  /** For the main thread's idle check: a halted vCPU whose timer will raise an interrupt is not idle. */
  #publishArmed(): void {
    const armed = this.counting && (this.#lvt() & LVT_MASKED) === 0 ? 1 : 0;
    if (Atomics.load(this.#control, this.#armedIndex) !== armed) Atomics.store(this.#control, this.#armedIndex, armed);
  }
}
