// Reading the emulator's own sources for architecture tests: every .ts file under a directory, its
// import specifiers as TypeScript itself parses them (static, type-only, re-exports and dynamic
// import()), and the places it calls a given method.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Repository-relative paths with '/' separators, sorted. */
export function typeScriptFilesUnder(directory: string): string[] {
  const absolute = resolve(REPOSITORY_ROOT, directory);
  const walk = (current: string): string[] =>
    readdirSync(current, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(join(current, entry.name)) : entry.name.endsWith('.ts') ? [join(current, entry.name)] : [],
    );
  return walk(absolute)
    .map((file) => relative(REPOSITORY_ROOT, file).split(sep).join('/'))
    .sort();
}

export function readSource(file: string): string {
  return readFileSync(resolve(REPOSITORY_ROOT, file), 'utf8');
}

export interface ImportEdge {
  /** Repository-relative importing file. */
  readonly from: string;
  readonly specifier: string;
  /** Repository-relative target for a relative specifier; undefined for a package or builtin. */
  readonly target: string | undefined;
}

export function importsOf(file: string): ImportEdge[] {
  const info = ts.preProcessFile(readSource(file), true, true);
  return info.importedFiles.map(({ fileName: specifier }) => ({
    from: file,
    specifier,
    target: specifier.startsWith('.')
      ? relative(REPOSITORY_ROOT, resolve(REPOSITORY_ROOT, dirname(file), specifier))
          .split(sep)
          .join('/')
      : undefined,
  }));
}

/** 1-based lines of every call of `object.method(...)` in the file (comments and strings never match). */
export function callSitesOf(file: string, object: string, method: string): number[] {
  const source = ts.createSourceFile(file, readSource(file), ts.ScriptTarget.Latest, true);
  const lines: number[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      ts.isIdentifier(node.expression.expression) &&
      node.expression.expression.text === object &&
      node.expression.name.text === method
    ) {
      lines.push(source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return lines;
}

export function lineCount(file: string): number {
  const text = readSource(file);
  return text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
}
