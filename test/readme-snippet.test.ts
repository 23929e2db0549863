// The README's "Library" snippet, run as written: the fenced ```ts block under "## Library" is taken
// from README.md, its `from 'avic-smp'` import pointed at the built package entry (dist/src/index.js),
// transpiled and run by Node in a scratch directory that holds the examples/ file the snippet reads.
// So the README and the library cannot drift apart: a snippet that no longer runs fails here.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));
const PACKAGE_ENTRY = join(REPOSITORY, 'dist', 'src', 'index.js');

/** The first ```ts block after the "## Library" heading, before the next heading. */
function librarySnippet(readme: string): string {
  const section = /^## Library\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  if (section === undefined) throw new Error('README.md has no "## Library" section');
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(section)?.[1];
  if (block === undefined) throw new Error('the "## Library" section of README.md has no ```ts block');
  return block;
}

let directory = '';
let script = '';

beforeAll(() => {
  const snippet = librarySnippet(readFileSync(join(REPOSITORY, 'README.md'), 'utf8'));
  const importPattern = /from 'avic-smp'/g;
  expect(snippet, 'the snippet imports the package by its name').toMatch(importPattern);
  const runnable = snippet.replace(importPattern, `from ${JSON.stringify(pathToFileURL(PACKAGE_ENTRY).href)}`);
  const javascript = ts.transpileModule(runnable, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  directory = mkdtempSync(join(tmpdir(), 'avic-smp-readme-'));
  mkdirSync(join(directory, 'examples'));
  script = join(directory, 'snippet.mjs');
  writeFileSync(script, javascript);
});

afterAll(() => {
  if (directory !== '') rmSync(directory, { recursive: true, force: true });
});

/** Runs the snippet with `source` as the examples/ file it reads (whichever file it names). */
function runSnippet(fileName: string, source: string): { status: number | null; stdout: string; stderr: string } {
  writeFileSync(join(directory, 'examples', fileName), source);
  const result = spawnSync(process.execPath, [script], { cwd: directory, encoding: 'utf8', timeout: 90_000 });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The examples/ file the snippet reads, and its text with a smaller IPI budget (a short run). */
function exampleTheSnippetReads(): { fileName: string; source: string } {
  const snippet = librarySnippet(readFileSync(join(REPOSITORY, 'README.md'), 'utf8'));
  const fileName = /readFileSync\('examples\/([\w.-]+)'/.exec(snippet)?.[1];
  if (fileName === undefined) throw new Error('the snippet reads no examples/ file');
  const source = readFileSync(join(REPOSITORY, 'examples', fileName), 'utf8').replace(/(\.equ\s+IPI_COUNT\s*,\s*)\d+/, '$11000');
  return { fileName, source };
}

describe('README "Library" snippet', () => {
  it('runs as written and prints a successful report with every IPI delivered', () => {
    const { fileName, source } = exampleTheSnippetReads();
    const result = runSnippet(fileName, source);

    expect(result.stderr).toBe('');
    expect(result.status, result.stdout).toBe(0);
    expect(result.stdout).toMatch(/^OK: /);
    // halter-sender with IPI_COUNT 1000: 1000 IPIs and the last one that stops the halter.
    expect(result.stdout).toContain('delivered 1001, lost 0');
  });

  it('prints assembler errors as file:line:col: error: (not [object Object])', () => {
    const { fileName } = exampleTheSnippetReads();
    const result = runSnippet(fileName, '        .entry start\nstart:  frob r1\n');

    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`${fileName}:2:9: error: unknown mnemonic 'frob'`);
    expect(result.stderr).not.toContain('[object Object]');
  });
});
