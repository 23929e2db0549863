// Import cycles among source files: the strongly connected components of the import graph (Tarjan's
// algorithm), each with closed paths through it that together visit every one of its files, so a
// failing test prints the imports to cut. A component of more than one file is a cycle; so is a file
// that imports itself.

/** File -> the files it imports (repository-relative .ts paths). */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

export interface ImportCycle {
  /** The component's files, sorted: the cycle's identity (what a known-cycles list names). */
  readonly files: readonly string[];
  /** Closed paths (first file repeated at the end), shortest first from each file not yet on one. */
  readonly paths: readonly (readonly string[])[];
}

/**
 * The graph of `edges` (importsOf's: a relative target is named as imported, './x.js' for x.ts),
 * restricted to edges whose target is a file of the graph itself.
 */
export function importGraphOf(files: readonly string[], edges: readonly { from: string; target: string | undefined }[]): ImportGraph {
  const graph = new Map<string, string[]>(files.map((file) => [file, []]));
  for (const edge of edges) {
    const { from } = edge;
    const target = edge.target?.replace(/\.js$/, '.ts');
    if (target === undefined || !graph.has(target)) continue;
    const targets = graph.get(from);
    if (targets !== undefined && !targets.includes(target)) targets.push(target);
  }
  return graph;
}

/** Every cycle in `graph`, sorted by its first file. */
export function importCycles(graph: ImportGraph): ImportCycle[] {
  return stronglyConnectedComponents(graph)
    .filter((component) => component.length > 1 || (graph.get(component[0]!) ?? []).includes(component[0]!))
    .map((component) => {
      const files = [...component].sort();
      return { files, paths: coveringPaths(graph, new Set(files), files) };
    })
    .sort((a, b) => a.files[0]!.localeCompare(b.files[0]!));
}

/** "a -> b -> a", for messages. */
export const describePath = (path: readonly string[]): string => path.join(' -> ');

/** Tarjan's algorithm, iterative (no recursion depth limit on long import chains). */
function stronglyConnectedComponents(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  for (const root of [...graph.keys()].sort()) {
    if (index.has(root)) continue;
    // Each frame: a file and how many of its imports have been looked at.
    const frames: { file: string; edge: number }[] = [{ file: root, edge: 0 }];
    index.set(root, next);
    lowLink.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const targets = graph.get(frame.file) ?? [];
      if (frame.edge < targets.length) {
        const target = targets[frame.edge++]!;
        if (!index.has(target)) {
          index.set(target, next);
          lowLink.set(target, next++);
          stack.push(target);
          onStack.add(target);
          frames.push({ file: target, edge: 0 });
        } else if (onStack.has(target)) {
          lowLink.set(frame.file, Math.min(lowLink.get(frame.file)!, index.get(target)!));
        }
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent !== undefined) lowLink.set(parent.file, Math.min(lowLink.get(parent.file)!, lowLink.get(frame.file)!));
      if (lowLink.get(frame.file) === index.get(frame.file)) {
        const component: string[] = [];
        for (;;) {
          const file = stack.pop()!;
          onStack.delete(file);
          component.push(file);
          if (file === frame.file) break;
        }
        components.push(component);
      }
    }
  }
  return components;
}

/** Shortest closed paths inside `component`, one through each file that no earlier path visited. */
function coveringPaths(graph: ImportGraph, component: ReadonlySet<string>, files: readonly string[]): string[][] {
  const visited = new Set<string>();
  const paths: string[][] = [];
  for (const start of files) {
    if (visited.has(start)) continue;
    const path = shortestCycleThrough(graph, component, start);
    for (const file of path) visited.add(file);
    paths.push(path);
  }
  return paths;
}

/** Breadth-first from `start` back to itself, staying inside the component (which guarantees a way back). */
function shortestCycleThrough(graph: ImportGraph, component: ReadonlySet<string>, start: string): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const file = queue[head]!;
    for (const target of graph.get(file) ?? []) {
      if (!component.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let step = file; step !== start; step = cameFrom.get(step)!) path.splice(1, 0, step);
        return [...path, start];
      }
      if (!cameFrom.has(target)) {
        cameFrom.set(target, file);
        queue.push(target);
      }
    }
  }
  throw new Error(`${start} is on no cycle inside its component`);
}
