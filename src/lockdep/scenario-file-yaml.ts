// Reads a lock scenario file's text (scenario-file.ts) into one YAML document, refusing hostile input
// with a positioned message before it can cost more than the file itself: a scenario is a few
// kilobytes of plain mappings, lists, strings and numbers, and anything beyond that is a mistake or
// an attack, reported like any other mistake ("file:line:column: malformed file: ...").
//
//   - size: at most MAX_SCENARIO_FILE_BYTES, checked before anything is parsed (and, for a file,
//     before it is read whole: scenario-file.ts reads one byte past the limit at most);
//   - nesting: the parser's tokens are walked first, without recursion, and more than MAX_NESTING
//     collections deep is refused. The yaml package would otherwise recurse until the stack runs out
//     and report that; relying on stack exhaustion is fragile (V8 can be left unable to compile a
//     regular expression afterwards), so it never gets that far;
//   - one document: a second one ("---") is an error, not silently ignored;
//   - tags: the core schema only, without the YAML 1.1 extras (!!set, !!binary, !!timestamp...), and
//     any tag it cannot resolve is an error rather than a warning (the value would be a string);
//   - aliases: each must follow its anchor and lie outside it (no cycles), and expanding them may
//     produce at most MAX_ALIAS_COUNT copies ("billion laughs"): see the comment there.

import { Composer, LineCounter, Parser, visit, type CST, type Document, type Node } from 'yaml';

/** A scenario for 64 vCPUs with a hundred steps each is a few hundred KiB; anything bigger is a mistake. */
export const MAX_SCENARIO_FILE_BYTES = 1024 * 1024;

/** The format nests six deep (threads, a thread, its steps, a step); this leaves room for flow style. */
export const MAX_NESTING = 64;

/**
 * The yaml package's own measure of alias expansion (ToJSOptions.maxAliasCount: each use of an anchor
 * counts once per alias inside that anchor). Chosen deliberately rather than inherited: reusing an
 * anchor (one list of steps for several threads) stays far below it, and with the file size bound it
 * caps the expanded document at about a hundred times the file; a nested bomb exceeds it at once.
 * 0 would forbid aliases, and -1 would remove the bound.
 */
export const MAX_ALIAS_COUNT = 100;

export type ScenarioDocument =
  | { readonly ok: true; readonly document: Document.Parsed; readonly lines: LineCounter; readonly root: unknown }
  | { readonly ok: false; readonly problems: readonly string[] };

const TAGS_HINT = 'a scenario file takes plain values, without tags';

export function readScenarioDocument(text: string, file: string): ScenarioDocument {
  if (Buffer.byteLength(text) > MAX_SCENARIO_FILE_BYTES) return { ok: false, problems: [tooLarge(file)] };
  const lines = new LineCounter();
  const at = (offset: number, message: string): string => {
    const position = lines.linePos(offset);
    return `${file}:${position.line}:${position.col}: malformed file: ${message}`;
  };
  const tokens = Array.from(new Parser(lines.addNewLine).parse(text));
  const tooDeep = deepestBeyond(tokens, MAX_NESTING);
  if (tooDeep !== undefined) return { ok: false, problems: [at(tooDeep, `collections nested more than ${MAX_NESTING} deep`)] };

  const composer = new Composer({ schema: 'core', resolveKnownTags: false, uniqueKeys: true, logLevel: 'error', prettyErrors: false });
  const [document, second] = Array.from(composer.compose(tokens, true, text.length));
  if (document === undefined) return { ok: false, problems: [at(0, 'no document')] };
  const problems = [
    ...document.errors.map((error) => at(error.pos[0], error.message.split('\n')[0]!)),
    ...document.warnings.map((warning) =>
      at(warning.pos[0], `${warning.message.split('\n')[0]!}${warning.code === 'TAG_RESOLVE_FAILED' ? ` (${TAGS_HINT})` : ''}`),
    ),
    ...(second === undefined ? [] : [at(second.range[0], 'a second YAML document; a scenario file holds one')]),
  ];
  if (problems.length > 0) return { ok: false, problems };

  const aliases: { source: string; offset: number; anchor: Node | undefined }[] = [];
  visit(document, {
    Alias: (_key, alias) => void aliases.push({ source: alias.source, offset: alias.range?.[0] ?? 0, anchor: alias.resolve(document) }),
  });
  for (const alias of aliases) {
    if (alias.anchor === undefined) problems.push(at(alias.offset, `alias *${alias.source} has no anchor &${alias.source} before it`));
    else if (contains(alias.anchor, alias.offset))
      problems.push(at(alias.offset, `alias *${alias.source} is inside its own anchor &${alias.source} (a cycle)`));
  }
  if (problems.length > 0) return { ok: false, problems };
  try {
    return { ok: true, document, lines, root: document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown };
  } catch (error) {
    // Every alias resolves and none is cyclic (checked above), so what toJS can still refuse is the
    // expansion's size: reported at the first alias, where the multiplying starts.
    if (!(error instanceof ReferenceError) || aliases.length === 0) throw error;
    return {
      ok: false,
      problems: [
        at(
          aliases[0]!.offset,
          `aliases expand to more than ${MAX_ALIAS_COUNT} copies of their anchors (an anchor may be reused, not multiplied)`,
        ),
      ],
    };
  }
}

export function tooLarge(file: string): string {
  return `${file}: too large: a scenario file may be at most ${MAX_SCENARIO_FILE_BYTES / (1024 * 1024)} MiB`;
}

function contains(node: Node, offset: number): boolean {
  const range = node.range;
  return range !== undefined && range !== null && range[0] <= offset && offset < range[1];
}

/** The offset of a collection nested deeper than `limit`, or undefined; walks without recursion. */
function deepestBeyond(tokens: readonly CST.Token[], limit: number): number | undefined {
  const pending: { token: CST.Token; depth: number }[] = tokens.map((token) => ({ token, depth: 0 }));
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { token, depth } = next;
    if (token.type === 'document') {
      if (token.value !== undefined) pending.push({ token: token.value, depth });
      continue;
    }
    if (token.type !== 'block-map' && token.type !== 'block-seq' && token.type !== 'flow-collection') continue;
    if (depth + 1 > limit) return token.offset;
    for (const item of token.items) {
      if (item.key !== undefined && item.key !== null) pending.push({ token: item.key, depth: depth + 1 });
      if (item.value !== undefined) pending.push({ token: item.value, depth: depth + 1 });
    }
  }
  return undefined;
}
