// The doorbell lines and the host CPU a vCPU is loaded on (src/host/host-cpu.ts), in one thread: the
// claim, the ring, and what a sleep announces. (The cross-thread wake-up is the SMP tests' business.)
import { describe, expect, it } from 'vitest';
import { DoorbellLines, HostThreadDoorbell } from '../../src/host/host-cpu.js';

function lines(count: number, regionOffset = 128): DoorbellLines {
  const words = new Int32Array(new SharedArrayBuffer(regionOffset + count * HostThreadDoorbell.byteSize));
  return new DoorbellLines(words, regionOffset, count);
}

describe('DoorbellLines', () => {
  it('places line i at its struct in the region, one cache line each', () => {
    const doorbells = lines(3);
    expect(doorbells.index(0, 'ring')).toBe(128 / 4);
    expect(doorbells.index(2, 'claimed') - doorbells.index(1, 'claimed')).toBe(HostThreadDoorbell.byteSize / 4);
  });

  it('claims the preferred free line first, then the next free one, wrapping; never one twice', () => {
    const doorbells = lines(3);
    expect(doorbells.claim(1).slot).toBe(1);
    expect(doorbells.claim(1).slot).toBe(2);
    expect(doorbells.claim(1).slot).toBe(0);
    expect(() => doorbells.claim(0)).toThrow(/no free host thread slot/);
  });

  it('a ring moves only that line\'s ring word', () => {
    const doorbells = lines(2);
    const first = doorbells.claim(0);
    const second = doorbells.claim(1);
    doorbells.ring(1);
    doorbells.ring(1);
    expect([first.ringValue(), second.ringValue()]).toEqual([0, 2]);
  });
});

describe('HostCpu.sleep', () => {
  it('returns at once when the ring already moved from the value seen, and leaves sleeping clear', () => {
    const doorbells = lines(1);
    const cpu = doorbells.claim(0);
    const seen = cpu.ringValue();
    doorbells.ring(0);
    expect(cpu.sleep(seen, 1000)).toBe('not-equal');
    expect(Atomics.load(doorbells.words, doorbells.index(0, 'sleeping'))).toBe(0);
    // The watchdog sees the value it slept on.
    expect(Atomics.load(doorbells.words, doorbells.index(0, 'waitValue'))).toBe(seen);
  });
});
