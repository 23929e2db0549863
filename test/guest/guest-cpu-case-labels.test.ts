// The interpreter's switch uses literal case labels so V8 can build a jump table (property reads
// such as `case Opcode.Add:` compile to a chain of comparisons: about 3x slower). Each label carries
// the opcode's name in a comment; this test keeps the two from disagreeing.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Opcode } from '../../src/guest/instruction-set.js';

const source = readFileSync(new URL('../../src/guest/guest-cpu.ts', import.meta.url), 'utf8');
const labels = [...source.matchAll(/case (0x[0-9a-f]+) \/\* Opcode\.(\w+) \*\/:/g)].map(([, value, name]) => ({
  value: Number(value),
  name: name!,
}));

describe('interpreter case labels', () => {
  it('every literal case label equals the opcode its comment names', () => {
    expect(labels.length).toBeGreaterThan(60);
    for (const { value, name } of labels) {
      expect(Opcode[name as keyof typeof Opcode], `case 0x${value.toString(16)} /* Opcode.${name} */`).toBe(value);
    }
  });

  it('every opcode except Invalid has a case in the interpreter', () => {
    const handled = new Set(labels.map((label) => label.name));
    const missing = Object.keys(Opcode).filter((name) => name !== 'Invalid' && !handled.has(name));
    expect(missing).toEqual([]);
  });

  it('no case label in the interpreter reads the Opcode object', () => {
    expect(source).not.toMatch(/case Opcode\.\w+:/);
  });
});
