// Comments and strings stand on their own: they cite the AMD APM, the Intel SDM, KVM's functions or
// a document in docs/, never a document outside the repository (a spec or research note, or a path
// into a sibling directory). Checked over every file under src/, bench/, test/ and workers/.

import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { REPOSITORY_ROOT } from '../support/source-files.js';

const SCANNED_DIRECTORIES = ['src', 'bench', 'test', 'workers'];

function filesUnder(directory: string): string[] {
  const absolute = resolve(REPOSITORY_ROOT, directory);
  if (!existsSync(absolute)) return [];
  const walk = (current: string): string[] =>
    readdirSync(current, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(join(current, entry.name)) : [join(current, entry.name)],
    );
  return walk(absolute)
    .map((file) => relative(REPOSITORY_ROOT, file).split(sep).join('/'))
    .sort();
}

// Built from pieces so that this file does not match itself.
const SECTION = '\u00a7';
const FORBIDDEN: readonly { readonly what: string; readonly pattern: RegExp }[] = [
  { what: `a spec section ("spec ${SECTION}")`, pattern: new RegExp(`spec ${SECTION}`, 'i') },
  { what: `a research section ("research ${SECTION}")`, pattern: new RegExp(`research ${SECTION}`, 'i') },
  {
    what: `a path outside the repository (${['..', 'shared'].join('/')}, ${['/work', 'shared'].join('/')})`,
    // Not a sibling module whose name starts so (src/host/deterministic imports ../shared-layout.js).
    pattern: new RegExp(`(\\.\\.|/work)/${'shared'}(?![\\w-])`),
  },
  {
    what: 'a document that lives outside the repository',
    pattern: new RegExp(
      ['avic-model', 'peers-and-scenarios', 'aesthetic-anchors', 'node-runtime-limits', 'upstream-avic-and-determinism']
        .map((name) => `${name}\\.md`)
        .join('|'),
    ),
  },
];

const FILES = SCANNED_DIRECTORIES.flatMap(filesUnder);

describe('citations stay inside the repository', () => {
  it('scans the sources, the benchmarks, the tests and the workers', () => {
    expect(FILES).toContain('src/kvm/vcpu/vcpu.ts');
    expect(FILES).toContain('test/architecture/citations.test.ts');
    expect(FILES.some((file) => file.endsWith('.s'))).toBe(true);
  });

  it.each(FORBIDDEN)('no file cites $what', ({ pattern }) => {
    const offenders = FILES.flatMap((file) =>
      readFileSync(resolve(REPOSITORY_ROOT, file), 'utf8')
        .split('\n')
        .flatMap((line, index) => (pattern.test(line) ? [`${file}:${index + 1}: ${line.trim()}`] : [])),
    );

    expect(offenders).toEqual([]);
  });
});
