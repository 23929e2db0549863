// The LVT timer's arithmetic on a clock the test moves by hand: expiry times, one-shot vs periodic,
// masking, the divider, the current count, TPR gating of the vector it raises, and INIT's reset.
import { describe, expect, it } from 'vitest';
import {
  APIC_BUS_NS_PER_TICK,
  ApicTimer,
  MINIMUM_PERIODIC_NS,
  timerDivisor,
  type ApicTimerHost,
} from '../../../src/kvm/lapic/apic-timer.js';
import { allocateVmBuffers, VmControlViews } from '../../../src/kvm/control/vm-control-views.js';
import { VcpuStatistic } from '../../../src/kvm/control/vm-layout.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { isIrrSet, pendingDeliverableVector, resetApicPage } from '../../../src/hw/apic/apic-backing-page.js';
import { apicId } from '../../../src/hw/apic/apic-id.js';

const VECTOR = 0xee;
const PERIODIC = 1 << 17;
const MASKED = 1 << 16;
const DIVIDE_BY_1 = 0xb;

function setUp(): { timer: ApicTimer; memory: VmControlViews; clock: { now: number }; counters: Map<number, number>; base: number } {
  const memory = new VmControlViews(allocateVmBuffers(1, 1 << 16));
  const base = memory.apicPageBase(0);
  resetApicPage(memory.apicPageWords, base, apicId(0));
  const clock = { now: 1_000_000 };
  const counters = new Map<number, number>();
  const host: ApicTimerHost = {
    views: memory,
    index: 0,
    page: { base },
    readClock: () => clock.now,
    counters: {
      count: (statistic, amount = 1) => {
        counters.set(statistic, (counters.get(statistic) ?? 0) + amount);
      },
    },
    cpu: { requestInterruptEvaluation: () => undefined, requestExit: () => undefined },
  };
  return { timer: new ApicTimer(host), memory, clock, counters, base };
}

const armed = (memory: VmControlViews): number => Atomics.load(memory.control, memory.controlBlockIndex(0, 'apicTimerArmed'));

describe('ApicTimer', () => {
  it('decodes the divide configuration as the SDM table does (0b1011 = 1, 0 = 2, 0b1010 = 128)', () => {
    expect([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa, 0xb].map(timerDivisor)).toEqual([2, 4, 8, 16, 32, 64, 128, 1]);
  });

  it('one-shot: fires once, count * divisor ns after the initial-count write, then stops', () => {
    const { timer, memory, clock, counters, base } = setUp();
    timer.write(ApicRegister.LvtTimer, VECTOR);
    timer.write(ApicRegister.TimerDivideConfiguration, 0x0); // divide by 2
    timer.write(ApicRegister.TimerInitialCount, 1000);
    expect(armed(memory)).toBe(1);
    expect(timer.remainingNs()).toBe(2000 * APIC_BUS_NS_PER_TICK);
    expect(timer.readCurrentCount()).toBe(1000);
    clock.now += 1000;
    expect(timer.readCurrentCount()).toBe(500);
    expect(timer.poll()).toBe(false);
    expect(isIrrSet(memory.apicPageWords, base, VECTOR)).toBe(false);
    clock.now += 1000;
    expect(timer.poll()).toBe(true);
    expect(isIrrSet(memory.apicPageWords, base, VECTOR)).toBe(true);
    expect(counters.get(VcpuStatistic.timerInterruptsAccepted)).toBe(1);
    expect(timer.counting).toBe(false);
    expect(armed(memory)).toBe(0);
    expect(timer.readCurrentCount()).toBe(0);
    clock.now += 1_000_000;
    expect(timer.poll()).toBe(false);
    expect(counters.get(VcpuStatistic.timerExpiries)).toBe(1);
  });

  it('periodic: reloads at every expiry; missed periods merge into the pending vector and are counted coalesced', () => {
    const { timer, memory, clock, counters, base } = setUp();
    timer.write(ApicRegister.LvtTimer, PERIODIC | VECTOR);
    timer.write(ApicRegister.TimerDivideConfiguration, DIVIDE_BY_1);
    timer.write(ApicRegister.TimerInitialCount, MINIMUM_PERIODIC_NS);
    clock.now += MINIMUM_PERIODIC_NS;
    expect(timer.poll()).toBe(true);
    expect(timer.counting).toBe(true);
    expect(timer.remainingNs()).toBe(MINIMUM_PERIODIC_NS);
    // Three more periods pass before anyone looks, with the first interrupt still pending.
    clock.now += 3 * MINIMUM_PERIODIC_NS + 10;
    expect(timer.poll()).toBe(true);
    expect(counters.get(VcpuStatistic.timerExpiries)).toBe(4);
    expect(counters.get(VcpuStatistic.timerInterruptsAccepted)).toBe(1);
    expect(counters.get(VcpuStatistic.timerInterruptsCoalesced)).toBe(3);
    expect(timer.remainingNs()).toBe(MINIMUM_PERIODIC_NS - 10);
    expect(isIrrSet(memory.apicPageWords, base, VECTOR)).toBe(true);
  });

  it("periodic: a period shorter than KVM's 200 us minimum is raised to it", () => {
    const { timer, clock } = setUp();
    timer.write(ApicRegister.LvtTimer, PERIODIC | VECTOR);
    timer.write(ApicRegister.TimerDivideConfiguration, DIVIDE_BY_1);
    timer.write(ApicRegister.TimerInitialCount, 10);
    clock.now += 10;
    expect(timer.poll()).toBe(false);
    clock.now += MINIMUM_PERIODIC_NS;
    expect(timer.poll()).toBe(true);
  });

  it('masked: the count still expires, but no interrupt is raised and the timer is not armed', () => {
    const { timer, memory, clock, counters, base } = setUp();
    timer.write(ApicRegister.LvtTimer, MASKED | PERIODIC | VECTOR);
    timer.write(ApicRegister.TimerDivideConfiguration, DIVIDE_BY_1);
    timer.write(ApicRegister.TimerInitialCount, MINIMUM_PERIODIC_NS);
    expect(armed(memory)).toBe(0);
    clock.now += MINIMUM_PERIODIC_NS;
    expect(timer.poll()).toBe(false);
    expect(counters.get(VcpuStatistic.timerExpiries)).toBe(1);
    expect(isIrrSet(memory.apicPageWords, base, VECTOR)).toBe(false);
    // Unmasking lets the next period interrupt.
    timer.write(ApicRegister.LvtTimer, PERIODIC | VECTOR);
    expect(armed(memory)).toBe(1);
    clock.now += MINIMUM_PERIODIC_NS;
    expect(timer.poll()).toBe(true);
  });

  it('expiries due before an LVT write are judged by the old entry, though a trap has already put the new one in the page', () => {
    const { timer, memory, clock, counters, base } = setUp();
    timer.write(ApicRegister.LvtTimer, MASKED | PERIODIC | VECTOR);
    timer.write(ApicRegister.TimerDivideConfiguration, DIVIDE_BY_1);
    timer.write(ApicRegister.TimerInitialCount, MINIMUM_PERIODIC_NS);
    clock.now += 5 * MINIMUM_PERIODIC_NS;
    // The trap: the unmasked value reaches the page first, then the handler calls write().
    memory.apicPageWords[base + (ApicRegister.LvtTimer >> 2)] = PERIODIC | VECTOR;
    timer.write(ApicRegister.LvtTimer, PERIODIC | VECTOR);
    expect(counters.get(VcpuStatistic.timerExpiries)).toBe(5);
    expect(counters.get(VcpuStatistic.timerInterruptsAccepted)).toBeUndefined();
    expect(isIrrSet(memory.apicPageWords, base, VECTOR)).toBe(false);
  });

  it('an initial count of 0 stops a periodic timer', () => {
    const { timer, memory, clock } = setUp();
    timer.write(ApicRegister.LvtTimer, PERIODIC | VECTOR);
    timer.write(ApicRegister.TimerInitialCount, MINIMUM_PERIODIC_NS);
    timer.write(ApicRegister.TimerInitialCount, 0);
    expect(timer.counting).toBe(false);
    expect(armed(memory)).toBe(0);
    clock.now += 10 * MINIMUM_PERIODIC_NS;
    expect(timer.poll()).toBe(false);
  });

  it('a divider change mid-count goes on at the new rate from where the count is', () => {
    const { timer, clock } = setUp();
    timer.write(ApicRegister.LvtTimer, VECTOR);
    timer.write(ApicRegister.TimerDivideConfiguration, DIVIDE_BY_1);
    timer.write(ApicRegister.TimerInitialCount, 1000);
    clock.now += 400;
    timer.write(ApicRegister.TimerDivideConfiguration, 0x1); // divide by 4
    expect(timer.readCurrentCount()).toBe(600);
    expect(timer.remainingNs()).toBe(2400);
  });

  it('a timer vector whose class is not above TPR stays pending in IRR (PPR gating)', () => {
    const { timer, memory, clock, base } = setUp();
    memory.apicPageWords[base + (ApicRegister.TaskPriority >> 2)] = 0xf0;
    timer.write(ApicRegister.LvtTimer, VECTOR);
    timer.write(ApicRegister.TimerInitialCount, 1);
    clock.now += 2;
    expect(timer.poll()).toBe(true);
    expect(isIrrSet(memory.apicPageWords, base, VECTOR)).toBe(true);
    expect(pendingDeliverableVector(memory.apicPageWords, base)).toBe(-1);
    memory.apicPageWords[base + (ApicRegister.TaskPriority >> 2)] = 0;
    expect(pendingDeliverableVector(memory.apicPageWords, base)).toBe(VECTOR);
  });

  it('reset (INIT) stops the timer and disarms it', () => {
    const { timer, memory, clock } = setUp();
    timer.write(ApicRegister.LvtTimer, VECTOR);
    timer.write(ApicRegister.TimerInitialCount, 100);
    timer.reset();
    expect(armed(memory)).toBe(0);
    clock.now += 1000;
    expect(timer.poll()).toBe(false);
  });
});
