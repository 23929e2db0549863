// A fault raised while an interrupt is being delivered (no handler in the vector table, a frame
// pushed outside memory) stops the vCPU at once, wherever the delivery happens: the evaluation at
// guest entry (after a halt), an interrupt window inside a slice (after sti), an NMI. The guest must
// not run on with a recorded fault until the run times out.
import { describe, expect, it } from 'vitest';
import { runGuest, summary } from './smp-support.js';

/** A self-IPI with IF = 0, so it waits in IRR; `then` decides where it is delivered. */
const selfIpiThen = (then: string) => `
        .entry start
start:  li r2, APIC_DEST_SELF | APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r2
${then}
`;

const cases = [
  {
    name: 'at guest entry after sti; hlt (the halt path)',
    source: selfIpiThen(`idle:   sti
        hlt
        jmp idle`),
    detail: /no handler for vector 64/,
  },
  {
    name: 'in the interrupt window after sti, in a spin loop (no exit)',
    source: selfIpiThen(`        sti
spin:   jmp spin`),
    detail: /no handler for vector 64/,
  },
  {
    name: 'for an NMI with IF = 0 (vector 2 has no handler)',
    source: `
        .entry start
start:  li r2, APIC_DEST_SELF | APIC_DM_NMI | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r2
spin:   jmp spin
`,
    detail: /no handler for vector 2/,
  },
  {
    name: 'when the interrupt frame cannot be pushed (sp outside memory)',
    source: `
        .entry start
start:  li r2, handler
        st32 [ivt + 4 * 0x40], r2
        livt ivt
        li sp, 0x7ffffff0
        li r2, APIC_DEST_SELF | APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r2
idle:   sti
        hlt
        jmp idle
handler: iret
        .align 8
ivt:    .zero 4 * 256
`,
    detail: /stack push outside memory/,
  },
] as const;

describe('a fault during interrupt delivery stops the vCPU', () => {
  for (const { name, source, detail } of cases) {
    it(name, async () => {
      const report = await runGuest(source, { vcpus: 1 }, { timeoutSeconds: 5 });
      expect(report.exit.reason, summary(report)).toBe('fault');
      expect(report.faults).toHaveLength(1);
      expect(report.faults[0]!.fault.detail).toMatch(detail);
      // Stopped at the fault: a handful of instructions, not a slice after slice of spinning.
      expect(report.instructions, summary(report)).toBeLessThan(100);
    });
  }
});
