import { describe, expect, it } from 'vitest';
import {
  CACHE_LINE_BYTES,
  defineBufferLayout,
  defineStruct,
  describeLayout,
  float64IndexOf,
  int32IndexOf,
  regionInt32Index,
} from '../../src/host/shared-layout.js';

const Doorbell = defineStruct('Doorbell', { ring: { type: 'i32', writer: 'any sender' }, waiting: { type: 'i32', writer: 'owner' } });

const Mixed = defineStruct('Mixed', {
  flag: { type: 'i32', writer: 'owner' },
  time: { type: 'f64', writer: 'owner', description: 'aligned to 8' },
  words: { type: 'i32', count: 3, writer: 'main' },
});

const Wide = defineStruct('Wide', { words: { type: 'i32', count: 20, writer: 'main' } });

describe('defineStruct', () => {
  it('lays fields out in declaration order, each aligned to its own size', () => {
    expect(Doorbell.fieldOffsets).toEqual({ ring: 0, waiting: 4 });
    expect(Mixed.fieldOffsets).toEqual({ flag: 0, time: 8, words: 16 });
  });

  it('pads every struct to whole 64-byte cache lines', () => {
    expect(CACHE_LINE_BYTES).toBe(64);
    expect(Doorbell.byteSize).toBe(64);
    expect(Mixed.byteSize).toBe(64);
    expect(Wide.byteSize).toBe(128); // 80 bytes of fields
    expect(defineStruct('Empty', {}).byteSize).toBe(64);
  });
});

describe('defineBufferLayout', () => {
  const layout = defineBufferLayout('Example', {
    control: { struct: Doorbell, writer: 'main' },
    raw: { bytes: 12, writer: 'main' },
    vcpus: { struct: Mixed, count: 3, writer: 'each vCPU its own' },
    tail: { bytes: 4, align: 4, writer: 'main' },
  });

  it('places regions in order, each on a cache line unless told otherwise', () => {
    expect(layout.regionOffsets).toEqual({ control: 0, raw: 64, vcpus: 128, tail: 128 + 3 * 64 });
    expect(layout.regionBytes).toEqual({ control: 64, raw: 12, vcpus: 192, tail: 4 });
    expect(layout.byteSize).toBe(384); // 324 rounded up to a line
  });

  it('honours a smaller alignment', () => {
    const packed = defineBufferLayout('Packed', { first: { bytes: 4, writer: 'main' }, second: { bytes: 4, align: 4, writer: 'main' } });
    expect(packed.regionOffsets.second).toBe(4);
    expect(packed.byteSize).toBe(64);
  });

  it('rejects a region of impossible size', () => {
    expect(() => defineBufferLayout('Bad', { broken: { bytes: -4, writer: 'main' } })).toThrow(RangeError);
    expect(() => defineBufferLayout('Bad', { broken: { bytes: 1.5, writer: 'main' } })).toThrow(/Bad.broken/);
  });

  it('computes element indices for Int32Array and Float64Array views over the whole buffer', () => {
    expect(int32IndexOf(layout, 'control', Doorbell, 0, 'waiting')).toBe(1);
    expect(int32IndexOf(layout, 'vcpus', Mixed, 2, 'words')).toBe((128 + 2 * 64 + 16) / 4);
    expect(float64IndexOf(layout, 'vcpus', Mixed, 1, 'time')).toBe((128 + 64 + 8) / 8);
    expect(regionInt32Index(layout, 'raw')).toBe(16);
  });

  it('gives indices that address distinct words of a real buffer', () => {
    const buffer = new SharedArrayBuffer(layout.byteSize);
    const int32 = new Int32Array(buffer);
    const float64 = new Float64Array(buffer);
    for (let vcpu = 0; vcpu < 3; vcpu++) {
      Atomics.store(int32, int32IndexOf(layout, 'vcpus', Mixed, vcpu, 'flag'), vcpu + 1);
      float64[float64IndexOf(layout, 'vcpus', Mixed, vcpu, 'time')] = vcpu + 0.5;
    }
    for (let vcpu = 0; vcpu < 3; vcpu++) {
      expect(int32[int32IndexOf(layout, 'vcpus', Mixed, vcpu, 'flag')]).toBe(vcpu + 1);
      expect(float64[float64IndexOf(layout, 'vcpus', Mixed, vcpu, 'time')]).toBe(vcpu + 0.5);
    }
  });

  it('puts each instance of a struct array on its own cache line', () => {
    const lines = [0, 1, 2].map((vcpu) => Math.floor((int32IndexOf(layout, 'vcpus', Mixed, vcpu, 'flag') * 4) / 64));
    expect(new Set(lines).size).toBe(3);
  });
});

describe('describeLayout', () => {
  it('prints offsets, sizes, field types and writers', () => {
    const layout = defineBufferLayout('Example', {
      control: { struct: Doorbell, writer: 'main' },
      vcpus: { struct: Mixed, count: 2, writer: 'each vCPU' },
      raw: { bytes: 8, writer: 'main' },
    });
    expect(describeLayout(layout)).toBe(
      [
        'Example: 256 bytes',
        '  0x000000 control (64 bytes) writer: main',
        '      +0x00 ring: i32 writer: any sender',
        '      +0x04 waiting: i32 writer: owner',
        '  0x000040 vcpus (128 bytes) writer: each vCPU',
        '      +0x00 flag: i32 writer: owner',
        '      +0x08 time: f64 writer: owner',
        '      +0x10 words: i32[3] writer: main',
        '  0x0000c0 raw (8 bytes) writer: main',
      ].join('\n'),
    );
  });
});
