// Output files (--trace, --svg) are checked before a run starts, so a typo in a path costs nothing:
// the directory must exist and be writable, and the path must not be a directory.

import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BadInput } from './bad-input.js';

export function checkOutputFile(option: string, path: string): void {
  const absolute = resolve(path);
  const existing = statSync(absolute, { throwIfNoEntry: false });
  if (existing?.isDirectory() === true) throw new BadInput(`${option} ${path}: is a directory`);
  const directory = dirname(absolute);
  const parent = statSync(directory, { throwIfNoEntry: false });
  if (parent === undefined || !parent.isDirectory()) throw new BadInput(`${option} ${path}: the directory ${directory} does not exist`);
  try {
    accessSync(existing === undefined ? directory : absolute, constants.W_OK);
  } catch {
    throw new BadInput(`${option} ${path}: not writable`);
  }
}
