// What `npm pack` ships, from a clean clone (no dist/): the package's entry (main: dist/src/index.js),
// the CLI and the vCPU worker must be in the tarball, so a tarball or a git install works. The
// `prepare` script builds them; this test copies the sources npm would see in a fresh clone into a
// scratch directory (node_modules linked, nothing built) and lists the dry-run tarball there.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));
/** A fresh clone's files that matter to npm pack; tests and benchmarks are left out to keep the build short. */
const CLONE_ENTRIES = ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'src', 'workers', 'examples', 'docs'];

let directory = '';
afterAll(() => {
  if (directory !== '') rmSync(directory, { recursive: true, force: true });
});

describe('npm pack from a clean clone', () => {
  it('ships the built package entry, the CLI and the vCPU worker', () => {
    directory = mkdtempSync(join(tmpdir(), 'avic-smp-pack-'));
    for (const entry of CLONE_ENTRIES) cpSync(join(REPOSITORY, entry), join(directory, entry), { recursive: true });
    symlinkSync(join(REPOSITORY, 'node_modules'), join(directory, 'node_modules'), 'dir');
    expect(existsSync(join(directory, 'dist'))).toBe(false);

    const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--silent'], { cwd: directory, encoding: 'utf8', timeout: 180_000 });
    if (result.error !== undefined) throw result.error;
    expect(result.status, result.stderr).toBe(0);
    // Lifecycle output (the build's banner) may precede the JSON array on stdout.
    const json = result.stdout.slice(result.stdout.indexOf('[\n'));
    const [packed] = JSON.parse(json) as [{ files: { path: string }[] }];
    const files = new Set(packed.files.map((file) => file.path));

    const manifest = JSON.parse(readFileSync(join(REPOSITORY, 'package.json'), 'utf8')) as { main: string; bin: Record<string, string> };
    for (const path of [
      manifest.main,
      'dist/src/index.d.ts',
      ...Object.values(manifest.bin),
      'dist/workers/vcpu-worker-entry.cjs',
      'dist/workers/vcpu-worker.js',
    ]) {
      expect(files, `${path} is not in the tarball`).toContain(path);
    }
    // The guest programs the scenarios and the conformance suite assemble at run time.
    expect(files).toContain('src/scenarios/programs/ping-pong.s');
    // Nothing of the tests is shipped.
    expect([...files].filter((path) => path.startsWith('dist/test/') || path.startsWith('test/'))).toEqual([]);
  }, 240_000);
});
