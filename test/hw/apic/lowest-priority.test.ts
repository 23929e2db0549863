import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  LowestPriorityPolicy,
  lowestPriorityBecomesFixed,
  selectLowestPriorityTarget,
  type LowestPriorityCandidate,
} from '../../../src/hw/apic/lowest-priority.js';

const candidate = (vcpuIndex: number, fields: Partial<LowestPriorityCandidate> = {}): LowestPriorityCandidate => ({
  vcpuIndex,
  arbitrationCounter: 0,
  processorPriority: 0,
  isFocus: false,
  ...fields,
});
const candidates = fc
  .array(fc.record({ arbitrationCounter: fc.nat(20), processorPriority: fc.nat(255), isFocus: fc.boolean() }), {
    minLength: 1,
    maxLength: 16,
  })
  .map((list) => list.map((fields, vcpuIndex) => candidate(vcpuIndex, fields)));

describe('lowest-priority arbitration', () => {
  it('no candidates: the message is dropped (-1) under every policy', () => {
    for (const policy of Object.values(LowestPriorityPolicy)) expect(selectLowestPriorityTarget(policy, 0x40, [])).toBe(-1);
  });

  it('KVM arbitration counter: smallest counter wins, the lowest vCPU index on a tie, TPR/PPR ignored', () => {
    const list = [
      candidate(0, { arbitrationCounter: 3 }),
      candidate(1, { arbitrationCounter: 1, processorPriority: 0xf0 }),
      candidate(2, { arbitrationCounter: 1 }),
    ];
    expect(selectLowestPriorityTarget(LowestPriorityPolicy.KvmArbitrationCounter, 0x40, list)).toBe(1);
    fc.assert(
      fc.property(candidates, (list) => {
        const winner = selectLowestPriorityTarget(LowestPriorityPolicy.KvmArbitrationCounter, 0x40, list);
        const smallest = Math.min(...list.map((c) => c.arbitrationCounter));
        expect(winner).toBe(list.find((c) => c.arbitrationCounter === smallest)!.vcpuIndex);
      }),
    );
  });

  it('KVM arbitration counter rotates when the caller bumps the winner, as __apic_accept_irq does', () => {
    const counters = [0, 0, 0];
    const winners: number[] = [];
    for (let i = 0; i < 6; i++) {
      const winner = selectLowestPriorityTarget(
        LowestPriorityPolicy.KvmArbitrationCounter,
        0x40,
        counters.map((arbitrationCounter, vcpuIndex) => candidate(vcpuIndex, { arbitrationCounter })),
      );
      winners.push(winner);
      counters[winner]!++;
    }
    expect(winners).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('KVM vector hashing: the (vector mod n)-th candidate', () => {
    fc.assert(
      fc.property(candidates, fc.integer({ min: 16, max: 255 }), (list, vector) => {
        expect(selectLowestPriorityTarget(LowestPriorityPolicy.KvmVectorHashing, vector, list)).toBe(list[vector % list.length]!.vcpuIndex);
      }),
    );
    const list = [candidate(4), candidate(7), candidate(9)];
    expect(selectLowestPriorityTarget(LowestPriorityPolicy.KvmVectorHashing, 0x41, list)).toBe(9);
  });

  it('processor priority: a focus processor wins; else the lowest PPR class; ties to the lowest index', () => {
    const list = [
      candidate(0, { processorPriority: 0x50 }),
      candidate(1, { processorPriority: 0x2f }),
      candidate(2, { processorPriority: 0x20 }),
    ];
    expect(selectLowestPriorityTarget(LowestPriorityPolicy.ProcessorPriority, 0x40, list)).toBe(1);
    list.push(candidate(3, { processorPriority: 0xf0, isFocus: true }));
    expect(selectLowestPriorityTarget(LowestPriorityPolicy.ProcessorPriority, 0x40, list)).toBe(3);
    fc.assert(
      fc.property(candidates, (list) => {
        const winner = selectLowestPriorityTarget(LowestPriorityPolicy.ProcessorPriority, 0x40, list);
        const chosen = list.find((c) => c.vcpuIndex === winner)!;
        if (list.some((c) => c.isFocus)) expect(chosen.isFocus).toBe(true);
        else expect(list.every((c) => c.processorPriority >> 4 >= chosen.processorPriority >> 4)).toBe(true);
      }),
    );
  });

  it('lowest priority to the physical broadcast is delivered as fixed (KVM)', () => {
    expect(lowestPriorityBecomesFixed(true, true)).toBe(true);
    expect(lowestPriorityBecomesFixed(false, true)).toBe(false);
    expect(lowestPriorityBecomesFixed(true, false)).toBe(false);
  });
});
