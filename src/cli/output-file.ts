// Output files (--trace, --svg). They are checked before a run starts, so a typo in a path costs
// nothing: the directory must exist and be writable, and the path must not be a directory. Writing
// can still fail after the run (a full disk, /dev/full, a path that became a directory): the command
// then prints the run's results first and fails with one line from writeOutputFile's BadInput
// (exit status 2), so a long run's results are never lost to a stack trace.

import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
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

/** Plain words for the errors a write meets; others keep Node's own description. */
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  EISDIR: 'is a directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a component of the path is not a directory',
  EIO: 'input/output error',
};

/** The one-line BadInput for a failed write of `option`'s file at `path`. */
export function outputFileError(option: string, path: string, error: unknown): BadInput {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // Node's system-error messages read "CODE: description, syscall 'path'".
  const description =
    (code === undefined ? undefined : DESCRIPTIONS[code]) ?? /^[A-Z]+: ([^,]*)/.exec(message)?.[1] ?? message.split('\n')[0];
  return new BadInput(`${option} ${path}: cannot write it: ${code === undefined ? description : `${code} (${description})`}`);
}

/** Writes `text` to `path`; a failure is outputFileError's one-line BadInput. */
export function writeOutputFile(option: string, path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (error) {
    throw outputFileError(option, path, error);
  }
}
