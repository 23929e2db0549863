// The one place where SharedArrayBuffer offsets are computed.
//
// A layout is declared as data: structs of 32-bit or 64-bit fields, each with the thread that may
// write it, and regions (arrays of words or of structs) placed in one buffer. Every offset used
// anywhere in the emulator comes from here; nothing else adds byte counts by hand. Structs that
// hold hot words are padded to 64-byte lines so that two vCPUs never share a cache line.

export const CACHE_LINE_BYTES = 64;

/** Which thread may store to a field. Written beside the field; shown by `describeLayout`. */
export type Writer = string;

export type FieldType = 'i32' | 'f64';

export interface FieldSpec {
  readonly type: FieldType;
  /** Number of consecutive elements (default 1). */
  readonly count?: number;
  readonly writer: Writer;
  readonly description?: string;
}

export interface StructLayout<F extends string> {
  readonly name: string;
  /** Byte offset of each field inside one struct instance. */
  readonly fieldOffsets: Readonly<Record<F, number>>;
  readonly fields: Readonly<Record<F, FieldSpec>>;
  /** Bytes per instance, padded to a whole number of cache lines. */
  readonly byteSize: number;
}

const FIELD_BYTES: Record<FieldType, number> = { i32: 4, f64: 8 };

const alignUp = (value: number, alignment: number): number => Math.ceil(value / alignment) * alignment;

/**
 * A name -> number table made in one step. V8 turns an object filled key by key in a loop into a
 * dictionary, a hash lookup at every read; Object.fromEntries gives it fast properties. Every field
 * index computed at run time (a host CPU's switch, a save area's fields) is read through such tables.
 */
export function fastRecord<K extends string>(entries: readonly (readonly [K, number])[]): Record<K, number> {
  return Object.fromEntries(entries) as Record<K, number>;
}

/**
 * Declares a struct. Fields are laid out in declaration order, each aligned to its own size; the
 * struct is padded to whole cache lines.
 */
export function defineStruct<F extends string>(name: string, fields: Record<F, FieldSpec>): StructLayout<F> {
  const offsets: [F, number][] = [];
  let cursor = 0;
  for (const [fieldName, spec] of Object.entries(fields) as [F, FieldSpec][]) {
    const elementBytes = FIELD_BYTES[spec.type];
    cursor = alignUp(cursor, elementBytes);
    offsets.push([fieldName, cursor]);
    cursor += elementBytes * (spec.count ?? 1);
  }
  return { name, fieldOffsets: fastRecord(offsets), fields, byteSize: alignUp(Math.max(cursor, 1), CACHE_LINE_BYTES) };
}

export interface RegionSpec {
  /** A struct repeated `count` times, or `bytes` of raw words. */
  readonly struct?: StructLayout<string>;
  readonly count?: number;
  readonly bytes?: number;
  /** Alignment of the region start in bytes (default one cache line). */
  readonly align?: number;
  readonly writer: Writer;
  readonly description?: string;
}

export interface BufferLayout<R extends string> {
  readonly name: string;
  readonly regionOffsets: Readonly<Record<R, number>>;
  readonly regionBytes: Readonly<Record<R, number>>;
  readonly regions: Readonly<Record<R, RegionSpec>>;
  readonly byteSize: number;
}

/** Places regions in one buffer, in declaration order, each aligned (default 64 bytes). */
export function defineBufferLayout<R extends string>(name: string, regions: Record<R, RegionSpec>): BufferLayout<R> {
  const offsets: [R, number][] = [];
  const sizes: [R, number][] = [];
  let cursor = 0;
  for (const [regionName, spec] of Object.entries(regions) as [R, RegionSpec][]) {
    const bytes = spec.struct !== undefined ? spec.struct.byteSize * (spec.count ?? 1) : (spec.bytes ?? 0);
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`${name}.${regionName}: bad size ${bytes}`);
    cursor = alignUp(cursor, spec.align ?? CACHE_LINE_BYTES);
    offsets.push([regionName, cursor]);
    sizes.push([regionName, bytes]);
    cursor += bytes;
  }
  return { name, regionOffsets: fastRecord(offsets), regionBytes: fastRecord(sizes), regions, byteSize: alignUp(cursor, CACHE_LINE_BYTES) };
}

/**
 * Index, in an Int32Array over the whole buffer, of field `field` of instance `instance` of the
 * struct array in region `region`.
 */
export function int32IndexOf<R extends string, F extends string>(
  layout: BufferLayout<R>,
  region: R,
  struct: StructLayout<F>,
  instance: number,
  field: F,
): number {
  return (layout.regionOffsets[region] + instance * struct.byteSize + struct.fieldOffsets[field]) >> 2;
}

/** Same as int32IndexOf, for a Float64Array over the whole buffer (the field must be f64). */
export function float64IndexOf<R extends string, F extends string>(
  layout: BufferLayout<R>,
  region: R,
  struct: StructLayout<F>,
  instance: number,
  field: F,
): number {
  return (layout.regionOffsets[region] + instance * struct.byteSize + struct.fieldOffsets[field]) >> 3;
}

/** Int32 index of the first word of a raw region. */
export function regionInt32Index<R extends string>(layout: BufferLayout<R>, region: R): number {
  return layout.regionOffsets[region] >> 2;
}

/** A human-readable table of a layout: offsets, sizes and writers (for docs and debugging). */
export function describeLayout<R extends string>(layout: BufferLayout<R>): string {
  const lines = [`${layout.name}: ${layout.byteSize} bytes`];
  for (const [regionName, spec] of Object.entries(layout.regions) as [R, RegionSpec][]) {
    const offset = layout.regionOffsets[regionName];
    lines.push(
      `  0x${offset.toString(16).padStart(6, '0')} ${regionName} (${layout.regionBytes[regionName]} bytes) writer: ${spec.writer}`,
    );
    if (spec.struct !== undefined) {
      for (const [fieldName, field] of Object.entries(spec.struct.fields) as [string, FieldSpec][]) {
        const fieldOffset = spec.struct.fieldOffsets[fieldName] ?? 0;
        lines.push(
          `      +0x${fieldOffset.toString(16).padStart(2, '0')} ${fieldName}: ${field.type}${(field.count ?? 1) > 1 ? `[${field.count}]` : ''} writer: ${field.writer}`,
        );
      }
    }
  }
  return lines.join('\n');
}
