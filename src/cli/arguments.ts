// Option value parsers for the command line: each rejects bad input with one clear message, which
// commander prints with the option's name before exiting with status 2.

import { InvalidArgumentError } from 'commander';

export function positiveInteger(name: string, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`${name} must be a whole number, got "${text}"`);
    const value = Number(text);
    if (value < 1 || value > max) throw new InvalidArgumentError(`${name} must be from 1 to ${max}, got ${value}`);
    return value;
  };
}

export function positiveNumber(name: string): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text.trim()) || !Number.isFinite(value) || value <= 0)
      throw new InvalidArgumentError(`${name} must be a number above 0, got "${text}"`);
    return value;
  };
}

/** A whole number from 0 to `max` (seeds). */
export function nonNegativeInteger(name: string, max = 0xffff_ffff): (text: string) => number {
  return (text) => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`${name} must be a whole number from 0 to ${max}, got "${text}"`);
    const value = Number(text);
    if (value > max) throw new InvalidArgumentError(`${name} must be from 0 to ${max}, got ${value}`);
    return value;
  };
}

/** A comma-separated list of whole numbers from 1 to `max` ("1,2,4,8"): sorted, duplicates removed. */
export function positiveIntegerList(name: string, max: number): (text: string) => number[] {
  return (text) => {
    const items = text.split(',').map((item) => item.trim());
    if (items.some((item) => !/^\d+$/.test(item))) {
      throw new InvalidArgumentError(
        `${name} must be a comma-separated list of whole numbers from 1 to ${max} (like 1,2,4,8), got "${text}"`,
      );
    }
    const values = items.map(Number);
    const outside = values.find((value) => value < 1 || value > max);
    if (outside !== undefined) throw new InvalidArgumentError(`${name} values must be from 1 to ${max}, got ${outside} in "${text}"`);
    return [...new Set(values)].sort((a, b) => a - b);
  };
}

/** One name out of `known`; the message lists every valid name. */
export function oneOf<T>(what: string, known: ReadonlyMap<string, T>, plural = `${what}s`): (text: string) => T {
  return (text) => {
    const value = known.get(text.trim());
    if (value === undefined)
      throw new InvalidArgumentError(`unknown ${what} "${text}"; the ${plural} are: ${[...known.keys()].join(', ')}`);
    return value;
  };
}
