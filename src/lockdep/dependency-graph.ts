// The lock dependency graph, shared by all threads: one word per (prev class, next class) whose
// bits are the dependency types seen (lockdep-design.rst: -(SR)->, -(ER)->, -(SN)->, -(EN)->), plus,
// per (edge, type), a record of where it was first seen. Set-only: bits are never cleared while
// threads run, so adding an edge needs no lock.
//
// Adding an edge, and why a cycle is never missed between two threads:
//   1. claim the (edge, type) record: compareExchange recordedBy 0 -> slot + 1 (one winner);
//   2. the winner writes the record, then sets the type bit (Atomics.or), then searches for a path
//      next ->* prev. A loser does nothing: the winner searches.
// Two threads closing the same cycle from its two ends each set their bit before loading the
// other's (seq-cst or, then seq-cst loads): at least one sees both edges and reports. A reader
// that sees a bit also sees its record, which was written before the bit.
//
// The search is lockdep's "strong path" rule (lockdep-design.rst, "Recursive Read Deadlock
// Detection"): a path is strong when no -(xR)-> edge is followed by an -(Sx)-> edge; a cycle is a
// possible deadlock iff it is strong. Breadth-first over states (class, arrived by an -(xR)->
// edge?), so the path found is a shortest strong path; arriving by -(xN)-> allows every next edge,
// arriving by -(xR)-> allows only -(Ex)->, so a class reached by -(xN)-> need not be revisited by
// -(xR)->.

import {
  type EDGE_RECORD,
  endsRecursive,
  startsExclusive,
  type DependencyType,
  type LockdepIndices,
  type LockMode,
} from './lockdep-layout.js';

type RecordField = Exclude<keyof typeof EDGE_RECORD, 'words'>;

export interface EdgeRecord {
  readonly threadSlot: number;
  /** Label id of the thread's name when the edge was first seen. */
  readonly threadName: number;
  /** The vCPU that thread ran (-1: none). */
  readonly vcpu: number;
  readonly prevSite: number;
  readonly nextSite: number;
  readonly prevMode: LockMode;
  readonly nextMode: LockMode;
  /** Next was a synchronize (lock_sync): it waited for next's readers without holding next. */
  readonly synchronize: boolean;
}

export interface DependencyLink {
  readonly prev: number;
  readonly next: number;
  readonly type: DependencyType;
  /** Undefined only while the first thread is still writing it. */
  readonly record: EdgeRecord | undefined;
}

/** The far end of the new edge, for the search: where the path must end and how it may end there. */
export interface PathTarget {
  readonly classId: number;
  /** The held lock was held as a writer: a path may reach it by an -(xR)-> edge (the new edge is -(Ex)->). */
  readonly heldExclusive: boolean;
}

const DEPENDENCY_TYPES: readonly DependencyType[] = [3, 2, 1, 0]; // EN, SN, ER, SR: -(xN)-> first

export class DependencyGraph {
  readonly classCount: number;
  readonly #int32: Int32Array;
  readonly #indices: LockdepIndices;

  constructor(int32: Int32Array, indices: LockdepIndices) {
    this.#int32 = int32;
    this.#indices = indices;
    this.classCount = indices.classCount;
  }

  /** Bitmask of the dependency types seen from prev to next. */
  types(prev: number, next: number): number {
    return Atomics.load(this.#int32, this.#indices.dependency(prev, next));
  }

  has(prev: number, next: number, type: DependencyType): boolean {
    return (this.types(prev, next) & (1 << type)) !== 0;
  }

  /** Adds prev -(type)-> next; true when this call added it (and must therefore search). */
  add(prev: number, next: number, type: DependencyType, record: EdgeRecord): boolean {
    if (this.has(prev, next, type)) return false;
    const claim = this.#indices.edgeRecord(prev, next, type, 'recordedBy');
    if (Atomics.compareExchange(this.#int32, claim, 0, record.threadSlot + 1) !== 0) return false;
    const store = (field: Exclude<RecordField, 'recordedBy'>, value: number): void => {
      Atomics.store(this.#int32, this.#indices.edgeRecord(prev, next, type, field), value);
    };
    store('threadName', record.threadName);
    store('vcpu', record.vcpu);
    store('prevSite', record.prevSite);
    store('nextSite', record.nextSite);
    store('prevMode', record.prevMode);
    store('nextMode', record.nextMode);
    store('synchronize', record.synchronize ? 1 : 0);
    Atomics.or(this.#int32, this.#indices.dependency(prev, next), 1 << type);
    Atomics.add(this.#int32, this.#indices.header('dependencyCount'), 1);
    return true;
  }

  record(prev: number, next: number, type: DependencyType): EdgeRecord | undefined {
    const load = (field: RecordField): number => Atomics.load(this.#int32, this.#indices.edgeRecord(prev, next, type, field));
    const recordedBy = load('recordedBy');
    if (recordedBy === 0 || !this.has(prev, next, type)) return undefined;
    return {
      threadSlot: recordedBy - 1,
      threadName: load('threadName'),
      vcpu: load('vcpu'),
      prevSite: load('prevSite'),
      nextSite: load('nextSite'),
      prevMode: load('prevMode') as LockMode,
      nextMode: load('nextMode') as LockMode,
      synchronize: load('synchronize') !== 0,
    };
  }

  /**
   * A shortest strong path source ->* target that closes a strong cycle with the new edge
   * target -> source, or undefined. `sourceTakenRecursive`: the new edge ends -(xR)->, so the path's
   * first edge must be -(Ex)->; `target.heldExclusive`: the new edge starts -(Ex)->, so the path's
   * last edge may be -(xR)->.
   */
  findStrongPath(source: number, sourceTakenRecursive: boolean, target: PathTarget): DependencyLink[] | undefined {
    const search = new StrongPathSearch(this, source, sourceTakenRecursive);
    for (let state = search.next(); state !== undefined; state = search.next()) {
      const found = this.#expand(search, state, target);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Every edge and type seen so far (for dumps and docs). */
  allLinks(): DependencyLink[] {
    const links: DependencyLink[] = [];
    for (let prev = 0; prev < this.classCount; prev++) {
      for (let next = 0; next < this.classCount; next++) {
        const types = this.types(prev, next);
        for (const type of DEPENDENCY_TYPES) {
          if ((types & (1 << type)) !== 0) links.push({ prev, next, type, record: this.record(prev, next, type) });
        }
      }
    }
    return links;
  }

  #expand(search: StrongPathSearch, state: number, target: PathTarget): DependencyLink[] | undefined {
    const node = state >> 1;
    const arrivedRecursive = (state & 1) === 1;
    for (let next = 0; next < this.classCount; next++) {
      const types = this.types(node, next);
      if (types === 0) continue;
      for (const type of DEPENDENCY_TYPES) {
        if ((types & (1 << type)) === 0) continue;
        if (arrivedRecursive && !startsExclusive(type)) continue; // -(xR)-> then -(Sx)->: not strong
        const reachedRecursive = endsRecursive(type);
        if (next === target.classId && (!reachedRecursive || target.heldExclusive)) {
          return this.#pathTo(search, state, next, type);
        }
        search.visit(next, reachedRecursive, state, type);
      }
    }
    return undefined;
  }

  #pathTo(search: StrongPathSearch, lastState: number, target: number, lastType: DependencyType): DependencyLink[] {
    const links: DependencyLink[] = [
      { prev: lastState >> 1, next: target, type: lastType, record: this.record(lastState >> 1, target, lastType) },
    ];
    for (let state = lastState; search.parentOf(state) >= 0; state = search.parentOf(state)) {
      const prev = search.parentOf(state) >> 1;
      const type = search.typeInto(state);
      links.unshift({ prev, next: state >> 1, type, record: this.record(prev, state >> 1, type) });
    }
    return links;
  }
}

/** Breadth-first queue over states (class * 2 + arrived-by-(xR)), with parent links for the path. */
class StrongPathSearch {
  readonly #visited: Uint8Array;
  readonly #parent: Int32Array;
  readonly #typeInto: Uint8Array;
  readonly #queue: number[] = [];
  #head = 0;

  constructor(graph: DependencyGraph, source: number, sourceTakenRecursive: boolean) {
    const states = graph.classCount * 2;
    this.#visited = new Uint8Array(states);
    this.#parent = new Int32Array(states).fill(-1);
    this.#typeInto = new Uint8Array(states);
    const start = source * 2 + (sourceTakenRecursive ? 1 : 0);
    this.#visited[start] = 1;
    this.#queue.push(start);
  }

  next(): number | undefined {
    return this.#head < this.#queue.length ? this.#queue[this.#head++] : undefined;
  }

  visit(node: number, arrivedRecursive: boolean, from: number, type: DependencyType): void {
    const state = node * 2 + (arrivedRecursive ? 1 : 0);
    // A class reached by -(xN)-> allows every next edge: reaching it again by -(xR)-> adds nothing.
    if (this.#visited[state] === 1 || (arrivedRecursive && this.#visited[node * 2] === 1)) return;
    this.#visited[state] = 1;
    this.#parent[state] = from;
    this.#typeInto[state] = type;
    this.#queue.push(state);
  }

  parentOf(state: number): number {
    return this.#parent[state] ?? -1;
  }

  typeInto(state: number): DependencyType {
    return (this.#typeInto[state] ?? 0) as DependencyType;
  }
}
