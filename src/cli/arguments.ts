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
    if (!/^\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text.trim()) || !Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a number above 0, got "${text}"`);
    return value;
  };
}
