// The SharedArrayBuffers a structured-cloneable value reaches, in one fixed order (depth first, in
// key order, each buffer once). The main thread lists the buffers of what it sends a worker, and the
// worker lists those of what it received: structured cloning keeps keys in order and a buffer
// reached twice stays one object, so both lists name the same memory at the same positions, which
// is what DeterministicSchedule.watch needs.

/** The buffers reachable from `value`, skipping properties named in `skip`. */
export function sharedBuffersOf(value: unknown, skip: ReadonlySet<string> = new Set()): SharedArrayBuffer[] {
  const found: SharedArrayBuffer[] = [];
  const seen = new Set<unknown>();
  const visit = (item: unknown): void => {
    if (typeof item !== 'object' || item === null || seen.has(item)) return;
    seen.add(item);
    if (item instanceof SharedArrayBuffer) {
      found.push(item);
      return;
    }
    if (ArrayBuffer.isView(item)) {
      visit(item.buffer);
      return;
    }
    if (Array.isArray(item)) {
      for (const element of item) visit(element);
      return;
    }
    for (const [key, property] of Object.entries(item)) if (!skip.has(key)) visit(property);
  };
  visit(value);
  return found;
}
