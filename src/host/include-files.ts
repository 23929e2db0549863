// `.include "name"` for programs on disk (docs/guest-isa.md 5.1). The assembler does no I/O; this is
// the reader the hosts give it (the run command, the scenario runner): a name is a path relative to
// the directory of the file whose .include names it, as a C preprocessor's "quoted" include is.
//
// The assembler calls the reader with the including file as it knows it: the program's own file name,
// or for a nested include the name the outer .include used. Each name it read is remembered with the
// path it resolved to, so a nested include resolves against the right directory. (A name can be
// included only once per program, so a name maps to one path.)

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The assembler's IncludeReader (src/guest/assembler-include.ts): the text, or undefined if no such file. */
export type IncludeFileReader = (name: string, fromFile: string) => string | undefined;

export interface IncludeFilesOptions {
  /** The name the program is assembled under, if not `programPath` itself (a scenario's "ping-pong.s"). */
  readonly fileName?: string;
  /** Only files in the program's own directory: no '/', '\' or '..' in a name (the shipped programs). */
  readonly sameDirectoryOnly?: boolean;
}

export function includeFilesRelativeTo(programPath: string, options: IncludeFilesOptions = {}): IncludeFileReader {
  const paths = new Map<string, string>([[options.fileName ?? programPath, resolve(programPath)]]);
  return (name, fromFile) => {
    if (options.sameDirectoryOnly === true && (name.includes('/') || name.includes('\\') || name.includes('..'))) {
      throw new Error("a shipped program may include only files beside it (no '/', no '..')");
    }
    const path = resolve(dirname(paths.get(fromFile) ?? resolve(fromFile)), name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      // The assembler turns this into "cannot include 'name': <message>" at the .include line.
      throw new Error(`cannot read ${path}: ${code ?? String(error)}`);
    }
    paths.set(name, path);
    return text;
  };
}
