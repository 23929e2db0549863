// Where the compiled vCPU worker lives. Workers always load built JavaScript (dist/), whether the
// caller runs from dist/ or from TypeScript sources under vitest: Node 20 cannot load .ts in a worker
// without a loader, and compiled workers start five times faster (research §5).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function packageRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'avic-smp') return directory;
    const parent = dirname(directory);
    if (parent === directory) throw new Error('cannot find the avic-smp package root');
    directory = parent;
  }
}

export function workerEntryUrl(): string {
  const file = join(packageRoot(), 'dist', 'workers', 'vcpu-worker-entry.cjs');
  if (!existsSync(file)) throw new Error(`the vCPU worker is not built (${file}); run "npm run build"`);
  return pathToFileURL(file).href;
}
