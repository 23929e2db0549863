// A vCPU's save area (src/kvm/control/vcpu-save-area.ts) round-trips through a Vcpu: every field the
// layout declares, filled from VCPU_SAVE_FIELD_RANGES, restored into a fresh Vcpu and saved again,
// comes back unchanged. A field the save or the restore forgets comes back as the fresh object's
// value or 0, which at least one of the two fillings tells apart.
import { PAUSE_LOOP_WINDOW } from '../../../src/guest/guest-cpu.js';
import { describe, expect, it } from 'vitest';
import { KvmLocks } from '../../../src/kvm/control/kvm-locks.js';
import { VCPU_SAVE_FIELD_RANGES, VcpuSaveArea, type VcpuSaveField } from '../../../src/kvm/control/vcpu-save-area.js';
import { Vcpu } from '../../../src/kvm/vcpu/vcpu.js';
import { createdViews } from '../vcpu-parts.js';

const FIELDS = Object.keys(VCPU_SAVE_FIELD_RANGES) as VcpuSaveField[];

function freshVcpu(): { vcpu: Vcpu; views: ReturnType<typeof createdViews> } {
  const views = createdViews(2);
  const locks = new KvmLocks(views, 2, { enabled: false });
  const vcpu = new Vcpu({
    buffers: views.buffers,
    vcpu: 1,
    policy: 'upstream',
    ipiVirtualization: true,
    x2avic: false,
    x2avicExtended: false,
    haltPolling: true,
    pauseFilterCount: PAUSE_LOOP_WINDOW,
    clockOriginNs: String(process.hrtime.bigint()),
    entryPoint: 0x1000,
    waitForStartUp: false,
    stackTop: 0x8000,
    trace: false,
    locks: locks.shared,
  });
  return { vcpu, views };
}

/** Filling `round` (0 or 1): each element a value in its field's range, differing between rounds. */
function sample(field: VcpuSaveField, element: number, round: number): number {
  const [min, max] = VCPU_SAVE_FIELD_RANGES[field];
  const span = max - min + 1;
  return min + ((FIELDS.indexOf(field) * 7 + element * 3 + 1 + round) % span);
}

describe('the vCPU save area', () => {
  it('declares a range for every field but its generation and savedBy', () => {
    const declared = Object.keys(VcpuSaveArea.fields).filter((field) => field !== 'generation' && field !== 'savedBy');
    expect(declared.sort()).toEqual([...FIELDS].sort());
  });

  for (const round of [0, 1]) {
    it(`save after restore gives back every field (filling ${round})`, () => {
      const { vcpu, views } = freshVcpu();
      const source = views.saveArea(0);
      const expected: Record<string, number[]> = {};
      for (const field of FIELDS) {
        const values = Array.from({ length: VcpuSaveArea.fields[field].count ?? 1 }, (_, element) => sample(field, element, round));
        expected[field] = values;
        for (const [element, value] of values.entries()) source.set(field, value, element);
      }
      vcpu.restore(source);
      const target = views.saveArea(1);
      vcpu.save(target);
      const actual = Object.fromEntries(
        FIELDS.map((field) => [
          field,
          Array.from({ length: VcpuSaveArea.fields[field].count ?? 1 }, (_, element) => target.get(field, element)),
        ]),
      );
      expect(actual).toEqual(expected);
    });
  }

  it('commit publishes who saved it and moves the generation', () => {
    const { views } = freshVcpu();
    const area = views.saveArea(1);
    expect([area.generation, area.savedBy]).toEqual([0, -1]);
    expect(area.commit(3)).toBe(1);
    expect([area.generation, area.savedBy]).toEqual([1, 3]);
  });
});
