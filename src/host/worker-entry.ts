// Where the compiled vCPU worker lives. Workers always load built JavaScript (dist/), whether the
// caller runs from dist/ or from TypeScript sources under vitest: Node 20 cannot load .ts in a worker
// without a loader, and compiled workers start several times faster.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from './package-root.js';

export function workerEntryUrl(): string {
  const file = join(packageRoot(), 'dist', 'workers', 'vcpu-worker-entry.cjs');
  if (!existsSync(file)) throw new Error(`the vCPU worker is not built (${file}); run "npm run build"`);
  return pathToFileURL(file).href;
}
