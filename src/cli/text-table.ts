// Plain-text tables and number formats shared by the commands' human output.

/** A whole number with thousands separators: 1234567 -> "1,234,567". */
export const formatCount = (value: number): string => Math.round(value).toLocaleString('en-US');

/**
 * Nanoseconds as microseconds with about three significant digits: 431 -> "0.43", 5595 -> "5.60",
 * 45120 -> "45", 1204000 -> "1,204". Undefined (no samples) -> "-".
 */
export function formatMicroseconds(nanoseconds: number | undefined | null): string {
  if (nanoseconds === undefined || nanoseconds === null) return '-';
  const micro = nanoseconds / 1000;
  if (micro < 10) return micro.toFixed(2);
  if (micro < 100) return micro.toFixed(1);
  return formatCount(micro);
}

/** A ratio with two decimals (two significant digits below 0.1, so 0.0023 is not "0.00"), or "-" when it is not defined. */
export const formatRatio = (value: number | null): string =>
  value === null ? '-' : value === 0 || value >= 0.095 ? value.toFixed(2) : value.toPrecision(2);

/** Columns padded to their widest cell: the first left-aligned, the rest right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const width = (text: string): number => [...text].length;
  const widths = header.map((title, column) => Math.max(width(title), ...rows.map((row) => width(row[column] ?? ''))));
  const pad = (cell: string, column: number): string => {
    const fill = ' '.repeat(widths[column]! - width(cell));
    return column === 0 ? cell + fill : fill + cell;
  };
  const line = (cells: readonly string[]): string => cells.map(pad).join('  ').trimEnd();
  return [line(header), line(widths.map((columnWidth) => '-'.repeat(columnWidth))), ...rows.map(line)].join('\n');
}
