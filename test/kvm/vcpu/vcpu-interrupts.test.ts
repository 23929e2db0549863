// What a vCPU takes and what wakes it (src/kvm/vcpu/vcpu-interrupts.ts) alone: IF, TPR/PPR, NMI
// blocking and merging, the requests that end a sleep, and wait-for-SIPI.
import { describe, expect, it } from 'vitest';
import { isIsrSet, setIrrAtomic } from '../../../src/hw/apic/apic-backing-page.js';
import { ApicRegister } from '../../../src/hw/apic/apic-register.js';
import { FLAGS_INTERRUPT_ENABLE } from '../../../src/guest/instruction-set.js';
import { VcpuRequest } from '../../../src/kvm/control/vcpu-run-state.js';
import { VcpuInterrupts, WAKING_REQUESTS, type InterruptibleCpu } from '../../../src/kvm/vcpu/vcpu-interrupts.js';
import { createdViews, controlWord, FakeCounters, pageOf, requestsOf } from '../vcpu-parts.js';

const VECTOR = 0x80;

class FakeInterruptibleCpu implements InterruptibleCpu {
  flags = 0;
  nmiBlocked = false;
  readonly delivered: number[] = [];
  get interruptsEnabled(): boolean {
    return (this.flags & FLAGS_INTERRUPT_ENABLE) !== 0;
  }
  deliverInterrupt(vector: number): boolean {
    this.delivered.push(vector);
    return true;
  }
}

function setUp(options: { interruptsEnabled?: boolean; waiting?: boolean } = {}) {
  const views = createdViews(1);
  const page = pageOf(views, 0);
  const cpu = new FakeInterruptibleCpu();
  if (options.interruptsEnabled ?? true) cpu.flags = FLAGS_INTERRUPT_ENABLE;
  const counters = new FakeCounters();
  const boot = { waiting: options.waiting ?? false };
  const interrupts = new VcpuInterrupts({ views, index: 0, page, cpu, counters, trace: undefined, boot });
  const queueNmis = (count: number): void => {
    Atomics.add(views.control, views.controlBlockIndex(0, 'nmiQueued'), count);
    views.addRequest(0, VcpuRequest.Nmi);
  };
  return { views, page, cpu, counters, boot, interrupts, queueNmis };
}

describe('hasEvents (kvm_vcpu_check_block) and canTakeInterrupt (HLT ends)', () => {
  it('nothing pending: neither', () => {
    const { interrupts } = setUp();
    expect([interrupts.hasEvents(), interrupts.canTakeInterrupt()]).toEqual([false, false]);
  });

  it('a deliverable vector with IF set: both', () => {
    const { page, interrupts } = setUp();
    setIrrAtomic(page.words, page.base, VECTOR);
    expect([interrupts.hasEvents(), interrupts.canTakeInterrupt()]).toEqual([true, true]);
  });

  it('IF clear: a pending vector neither wakes nor ends HLT', () => {
    const { page, interrupts } = setUp({ interruptsEnabled: false });
    setIrrAtomic(page.words, page.base, VECTOR);
    expect([interrupts.hasEvents(), interrupts.canTakeInterrupt()]).toEqual([false, false]);
  });

  it("TPR at or above the vector's class masks it", () => {
    const { page, interrupts } = setUp();
    setIrrAtomic(page.words, page.base, VECTOR);
    page.write(ApicRegister.TaskPriority, VECTOR & 0xf0);
    expect(interrupts.hasEvents()).toBe(false);
    page.write(ApicRegister.TaskPriority, (VECTOR & 0xf0) - 0x10);
    expect(interrupts.hasEvents()).toBe(true);
  });

  it('an NMI wakes and ends HLT whatever IF says, unless one is in service', () => {
    const { cpu, interrupts, queueNmis } = setUp({ interruptsEnabled: false });
    queueNmis(1);
    expect([interrupts.hasEvents(), interrupts.canTakeInterrupt()]).toEqual([true, true]);
    cpu.nmiBlocked = true;
    expect([interrupts.hasEvents(), interrupts.canTakeInterrupt()]).toEqual([false, false]);
  });

  it.each([
    VcpuRequest.Stop,
    VcpuRequest.Pause,
    VcpuRequest.Kick,
    VcpuRequest.MemslotsChanged,
    VcpuRequest.ApicPageReload,
    VcpuRequest.Init,
    VcpuRequest.StartUp,
  ])('request 0x%s wakes a sleeper (the run loop services it) but does not end HLT', (request) => {
    expect(WAKING_REQUESTS & request).toBe(request);
    const { views, interrupts } = setUp();
    views.addRequest(0, request);
    expect([interrupts.hasEvents(), interrupts.canTakeInterrupt()]).toEqual([true, false]);
  });

  it('ApicvUpdate wakes nobody (KVM_REQUEST_NO_WAKEUP)', () => {
    const { views, interrupts } = setUp();
    views.addRequest(0, VcpuRequest.ApicvUpdate);
    expect(interrupts.hasEvents()).toBe(false);
  });

  it("in wait-for-SIPI only INIT, start-up and the host's requests wake: interrupts and NMIs wait", () => {
    const { views, page, interrupts, queueNmis } = setUp({ waiting: true });
    setIrrAtomic(page.words, page.base, VECTOR);
    queueNmis(1);
    expect(interrupts.hasEvents()).toBe(false);
    views.addRequest(0, VcpuRequest.StartUp);
    expect(interrupts.hasEvents()).toBe(true);
  });
});

describe('inject (kvm_check_and_inject_events)', () => {
  it('acknowledges the highest deliverable vector: IRR -> ISR, delivered through the CPU, counted', () => {
    const { page, cpu, counters, interrupts } = setUp();
    setIrrAtomic(page.words, page.base, VECTOR);
    setIrrAtomic(page.words, page.base, VECTOR + 0x10);
    expect(interrupts.inject()).toBe(true);
    expect(cpu.delivered).toEqual([VECTOR + 0x10]);
    expect(isIsrSet(page.words, page.base, VECTOR + 0x10)).toBe(true);
    expect(counters.nonZero()).toEqual({ interruptsDelivered: 1 });
  });

  it('an NMI goes first, even with IF clear, and blocks further NMIs until iret', () => {
    const { page, cpu, counters, interrupts, queueNmis } = setUp({ interruptsEnabled: false });
    setIrrAtomic(page.words, page.base, VECTOR);
    queueNmis(1);
    expect(interrupts.inject()).toBe(true);
    expect(cpu.delivered).toEqual([2]);
    expect(cpu.nmiBlocked).toBe(true);
    expect(counters.nonZero()).toEqual({ nmisDelivered: 1, interruptsDelivered: 1 });
  });

  it('process_nmi: at most two latched (one while an NMI is in service), the rest merged; the request bit cleared', () => {
    const { views, cpu, counters, interrupts, queueNmis } = setUp();
    queueNmis(3);
    expect(interrupts.collectNmis()).toBe(2);
    expect(counters.get('nmisMerged')).toBe(1);
    expect(requestsOf(views, 0) & VcpuRequest.Nmi).toBe(0);
    expect(controlWord(views, 0, 'nmiPending')).toBe(2);
    cpu.nmiBlocked = true;
    queueNmis(1);
    expect(interrupts.collectNmis()).toBe(1);
    expect(counters.get('nmisMerged')).toBe(3);
  });

  it('INIT drops the latched and queued NMIs and says how many', () => {
    const { views, interrupts, queueNmis } = setUp();
    queueNmis(1);
    interrupts.collectNmis();
    queueNmis(2);
    expect(interrupts.discardNmis()).toBe(3);
    expect([interrupts.nmisLatched, controlWord(views, 0, 'nmiQueued'), requestsOf(views, 0)]).toEqual([0, 0, 0]);
  });
});
