// docs/json.md against the real `--json` output of every command: the field tables are parsed from
// the document, each command is run briefly with --json (the CLI's main() in this process: what the
// executable prints is its stdout, which the other CLI tests read from the built binary), and the
// two are compared both ways:
//   - every documented field is present, unless it is `optional`, or its parent is absent (an
//     optional object left out, an empty array: nothing to look into; so the runs below are chosen
//     to have a fault, a skipped count, a file's threads);
//   - every field in the output is documented, with a documented type.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { explore, lostWakeup, passing, report } from '../support/explore-fake.js';
import { REPOSITORY } from '../support/cli.js';
import { runMainInProcess } from '../support/cli-in-process.js';

interface DocumentedField {
  readonly types: ReadonlySet<string>;
  readonly optional: boolean;
}

type FieldTable = ReadonlyMap<string, DocumentedField>;

const TYPES = new Set(['number', 'string', 'boolean', 'object', 'array']);

/** The rows `| `path` | type | meaning |` of each "## `avic-smp X --json`" and "### Shape" section. */
function parseJsonDoc(markdown: string): { commands: Map<string, FieldTable>; shapes: Map<string, FieldTable> } {
  const commands = new Map<string, FieldTable>();
  const shapes = new Map<string, FieldTable>();
  // Raw rows first; "see X" is expanded once every shape is known.
  const raw = new Map<string, { section: 'command' | 'shape'; rows: { path: string; type: string }[] }>();
  let current: { section: 'command' | 'shape'; rows: { path: string; type: string }[] } | undefined;
  for (const line of markdown.split('\n')) {
    const command = /^## `avic-smp (\w+) --json`/.exec(line);
    const shape = /^### (\w+)\s*$/.exec(line);
    if (command !== null) {
      current = { section: 'command', rows: [] };
      raw.set(`command:${command[1]}`, current);
    } else if (shape !== null) {
      current = { section: 'shape', rows: [] };
      raw.set(`shape:${shape[1]}`, current);
    } else if (line.startsWith('#')) current = undefined;
    else {
      const row = /^\| `([^`]+)` \| ([^|]+?) \|/.exec(line);
      if (row !== null && current !== undefined) current.rows.push({ path: row[1]!, type: row[2]! });
    }
  }
  const expand = (rows: readonly { path: string; type: string }[], prefix: string, into: Map<string, DocumentedField>): void => {
    for (const { path, type } of rows) {
      const full = prefix === '' ? path : `${prefix}.${path}`;
      const words = type.replace(/,/g, ' ').split(/\s+/);
      const types = new Set(words.filter((word) => TYPES.has(word) || word === 'null'));
      if (types.size === 0) throw new Error(`docs/json.md: ${full} has no type in "${type}"`);
      into.set(full, { types, optional: words.includes('optional') });
      const see = /see \[(\w+)\]/.exec(type)?.[1];
      if (see !== undefined) {
        const shapeRows = raw.get(`shape:${see}`);
        if (shapeRows === undefined) throw new Error(`docs/json.md: ${full} refers to an unknown shape ${see}`);
        expand(shapeRows.rows, full, into);
      }
    }
  };
  for (const [key, section] of raw) {
    const table = new Map<string, DocumentedField>();
    expand(section.rows, '', table);
    (section.section === 'command' ? commands : shapes).set(key.slice(key.indexOf(':') + 1), table);
  }
  return { commands, shapes };
}

/** Every path in a JSON value, with the types seen there ("[]" for array elements). */
function fieldsOf(value: unknown, path = '', into = new Map<string, Set<string>>()): Map<string, Set<string>> {
  const note = (type: string): void => {
    if (path === '') return;
    const types = into.get(path) ?? new Set<string>();
    types.add(type);
    into.set(path, types);
  };
  if (Array.isArray(value)) {
    note('array');
    for (const element of value) fieldsOf(element, `${path}[]`, into);
  } else if (value !== null && typeof value === 'object') {
    note('object');
    for (const [key, child] of Object.entries(value)) fieldsOf(child, path === '' ? key : `${path}.${key}`, into);
  } else {
    note(value === null ? 'null' : typeof value);
  }
  return into;
}

const parentOf = (path: string): string =>
  path.endsWith('[]') ? path.slice(0, -2) : path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';

function compare(table: FieldTable, outputs: readonly unknown[]): { missing: string[]; undocumented: string[]; wrongType: string[] } {
  const seen = new Map<string, Set<string>>();
  for (const output of outputs) {
    for (const [path, types] of fieldsOf(output)) seen.set(path, new Set([...(seen.get(path) ?? []), ...types]));
  }
  const missing = [...table]
    .filter(([path, field]) => {
      // An array's elements exist only when it has some: "x[]" itself is never required.
      if (field.optional || seen.has(path) || path.endsWith('[]')) return false;
      const parent = parentOf(path);
      return parent === '' || seen.has(parent);
    })
    .map(([path]) => path);
  const undocumented = [...seen.keys()].filter((path) => !table.has(path));
  const wrongType = [...seen].flatMap(([path, types]) => {
    const documented = table.get(path);
    const bad = documented === undefined ? [] : [...types].filter((type) => !documented.types.has(type));
    return bad.length === 0 ? [] : [`${path}: ${bad.join(', ')} (documented: ${[...documented!.types].join(' or ')})`];
  });
  return { missing, undocumented, wrongType };
}

/** Runs the command and parses stdout as one JSON object; the exit status must be one of `statuses`. */
async function jsonOf(args: readonly string[], statuses: readonly number[] = [0]): Promise<unknown> {
  const result = await runMainInProcess(args, REPOSITORY);
  expect(statuses, `avic-smp ${args.join(' ')} exited ${result.status}\n${result.stderr}`).toContain(result.status);
  return JSON.parse(result.stdout);
}

const DOC = parseJsonDoc(readFileSync(`${REPOSITORY}/docs/json.md`, 'utf8'));

/**
 * `explore --json` in-process with a fake seed runner (test/support/explore-fake.ts): the runs it
 * explores need the subcommands' deterministic mode. A failure shrunk, one that cannot be (a run
 * timeout), with another finding beside it, and a clean exploration.
 */
async function exploreOutputs(): Promise<unknown[]> {
  const shrunk = await explore(['examples/halter-sender.s', '--runs', '3', '--keep-going', '--json'], (request) =>
    request.seed === 1 && (request.maxSwitches ?? 9) >= 4 ? lostWakeup(9) : passing(),
  );
  const timedOut = await explore(
    ['--pattern', 'storm', '--vcpus', '2', '--runs', '2', '--depth', '2', '--max-switches', '5', '--json'],
    () => ({ exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '', timedOut: true, cancelled: false }),
  );
  const twoFindings = await explore(['--lock-scenario', 's1', '--runs', '1', '--no-shrink', '--json'], () =>
    report(1, { verdict: 'possible-deadlock', cycle: ['a', 'b', 'a'], problems: ['a thread failed'] }),
  );
  const clean = await explore(['examples/halter-sender.s', '--runs', '2', '--json'], () => passing());
  const pct = await explore(['examples/halter-sender.s', '--strategy', 'pct', '--expected-points', '50', '--runs', '1', '--json'], () =>
    passing(),
  );
  return [shrunk, timedOut, twoFindings, clean, pct].map(({ output }) => JSON.parse(output));
}

const RUNS: ReadonlyArray<readonly [string, () => unknown[] | Promise<unknown[]>]> = [
  [
    'run',
    async () => [
      await jsonOf(['run', 'test/fixtures/cli/load-outside-memory.s', '--vcpus', '2', '--json'], [1]),
      await jsonOf(['run', 'test/fixtures/cli/report-index.s', '--vcpus', '2', '--lockdep', '--json']),
      await jsonOf(['run', 'test/fixtures/cli/report-index.s', '--vcpus', '2', '--deterministic', '--json']),
    ],
  ],
  [
    'stress',
    async () => [
      await jsonOf(['stress', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--json']),
      await jsonOf(['stress', '--pattern', 'storm', '--vcpus', '2', '--ipis', '200', '--lockdep', '--json']),
    ],
  ],
  [
    'scale',
    async () => [
      await jsonOf(['scale', '--pattern', 'ping-pong', '--vcpus', '1,2', '--ipis', '200', '--json']),
      await jsonOf(['scale', '--pattern', 'ping-pong', '--vcpus', '2', '--ipis', '200', '--deterministic', '--json']),
    ],
  ],
  [
    'lockdep',
    async () => [
      await jsonOf(['lockdep', '--scenario', 's1', '--ipis', '500', '--json'], [1]),
      await jsonOf(['lockdep', '--file', 'examples/locks/abba.yaml', '--json'], [1]),
    ],
  ],
  ['conformance', async () => [await jsonOf(['conformance', '--case', 'apic/self-ipi-xapic', '--json'])]],
  ['explore', exploreOutputs],
];

describe('docs/json.md', () => {
  it('documents every command with --json, and its tables parse', () => {
    expect([...DOC.commands.keys()].sort()).toEqual(RUNS.map(([command]) => command).sort());
    expect([...DOC.shapes.keys()].sort()).toEqual(['Exits', 'IpiBalance', 'LatencySummary', 'Memslots', 'ScheduleSummary', 'VcpuCreation']);
    for (const table of DOC.commands.values()) expect(table.size).toBeGreaterThan(4);
  });

  it.each(RUNS)('avic-smp %s --json has exactly the documented fields', async (command, run) => {
    const table = DOC.commands.get(command)!;
    const { missing, undocumented, wrongType } = compare(table, await run());
    expect({ missing, undocumented, wrongType }).toEqual({ missing: [], undocumented: [], wrongType: [] });
  });
});
