// No import cycles inside src/ (docs/architecture.md "The layers, and which way imports go"): a type-only
// import counts, since it still ties the two files' designs together. The checker is shown to work
// on small made-up graphs first, then run over the repository's own import graph.

import { describe, expect, it } from 'vitest';
import { describePath, importCycles, importGraphOf, type ImportGraph } from '../support/import-cycles.js';
import { importsOf, typeScriptFilesUnder } from '../support/source-files.js';

const graph = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges));

describe('the import-cycle checker, on made-up graphs', () => {
  it('finds nothing in a graph without cycles (a diamond is not a cycle)', () => {
    expect(importCycles(graph({ a: ['b', 'c'], b: ['d'], c: ['d'], d: [] }))).toEqual([]);
  });

  it('finds a two-file cycle, with its path', () => {
    expect(importCycles(graph({ a: ['b'], b: ['a', 'c'], c: [] }))).toEqual([{ files: ['a', 'b'], paths: [['a', 'b', 'a']] }]);
  });

  it('finds a file that imports itself', () => {
    expect(importCycles(graph({ a: ['a', 'b'], b: [] }))).toEqual([{ files: ['a'], paths: [['a', 'a']] }]);
  });

  it('reports a component once, with paths that together visit every file in it', () => {
    // Two cycles sharing b: a -> b -> a and b -> c -> d -> b; e hangs off the component, outside it.
    const [cycle, ...rest] = importCycles(graph({ a: ['b'], b: ['a', 'c'], c: ['d'], d: ['b', 'e'], e: [] }));
    expect(rest).toEqual([]);
    expect(cycle?.files).toEqual(['a', 'b', 'c', 'd']);
    expect(cycle?.paths).toEqual([
      ['a', 'b', 'a'],
      ['c', 'd', 'b', 'c'],
    ]);
  });

  it('keeps separate components apart, sorted by their first file', () => {
    const cycles = importCycles(graph({ z: ['y'], y: ['z'], a: ['b'], b: ['a'], m: ['a', 'z'] }));
    expect(cycles.map((cycle) => cycle.files)).toEqual([
      ['a', 'b'],
      ['y', 'z'],
    ]);
  });

  it('follows the shortest way back, and walks a long chain without recursing', () => {
    const length = 20_000;
    const chain = Object.fromEntries(Array.from({ length }, (_, file) => [`f${file}`, [`f${(file + 1) % length}`]]));
    const [cycle] = importCycles(graph({ ...chain, f0: ['f1', 'f2'], f2: ['f3', 'f0'] }));
    expect(cycle?.files).toHaveLength(length);
    expect(cycle?.paths[0]).toEqual(['f0', 'f2', 'f0']);
  });

  it('builds the graph from import edges (x.js names x.ts), leaving out packages and files outside it', () => {
    const built = importGraphOf(
      ['src/a.ts', 'src/b.ts'],
      [
        { from: 'src/a.ts', target: 'src/b.js' },
        { from: 'src/a.ts', target: 'src/b.ts' },
        { from: 'src/a.ts', target: undefined },
        { from: 'src/b.ts', target: 'test/x.ts' },
      ],
    );
    expect(built).toEqual(
      new Map([
        ['src/a.ts', ['src/b.ts']],
        ['src/b.ts', []],
      ]),
    );
    expect(describePath(['a', 'b', 'a'])).toBe('a -> b -> a');
  });
});

describe('no import cycles in src/', () => {
  const files = typeScriptFilesUnder('src');
  const cycles = importCycles(importGraphOf(files, files.flatMap(importsOf)));

  it('no cycle at all (a type-only import counts)', () => {
    expect(cycles.flatMap((cycle) => cycle.paths.map(describePath))).toEqual([]);
  });
});
