import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const hwRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/hw');

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(directory, entry.name)) : entry.name.endsWith('.ts') ? [join(directory, entry.name)] : [],
  );
}

describe('src/hw layering (architecture.md)', () => {
  it('imports nothing outside src/hw, no node modules, and uses .js specifiers', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(hwRoot)) {
      for (const match of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)) {
        const specifier = match[1]!;
        const target = resolve(dirname(file), specifier);
        if (!specifier.startsWith('.') || relative(hwRoot, target).startsWith('..') || !specifier.endsWith('.js')) {
          offenders.push(`${relative(hwRoot, file)} -> ${specifier}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it('never blocks on Atomics.wait and reads no clock', () => {
    for (const file of sourceFiles(hwRoot)) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/Atomics\.wait|Date\.now|performance\.now|setTimeout/);
    }
  });
});
