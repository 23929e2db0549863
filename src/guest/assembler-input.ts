// assemble()'s arguments come from the host, not from guest source: a wrong type there is a bug in
// the caller, so it throws (AssemblerInputError, one line saying what was expected) instead of
// becoming a diagnostic. TypeScript callers cannot get here; plain JavaScript callers (and values
// that crossed a JSON or worker boundary) can, and would otherwise meet "text.split is not a
// function" from deep inside the assembler.

export class AssemblerInputError extends TypeError {
  override readonly name = 'AssemblerInputError';
}

const OPTION_NAMES: readonly string[] = ['fileName', 'origin', 'defines', 'readInclude'];
const TEXT_HINT = ": decode it first (readFileSync(path, 'utf8'))";

/** "a number (42)", "a string ('x.s')", "an object", "undefined": what the caller passed. */
export function describeValue(value: unknown, expectsText = false): string {
  if (value === undefined || value === null) return String(value);
  if (typeof value === 'string') return `a string (${quote(value)})`;
  if (typeof value === 'number' || typeof value === 'boolean') return `a ${typeof value} (${String(value)})`;
  if (typeof value === 'bigint') return `a bigint (${value}n)`;
  if (typeof value === 'function' || typeof value === 'symbol') return `a ${typeof value}`;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer)
    return `a ${value.constructor.name === 'Buffer' ? 'Uint8Array' : value.constructor.name}${expectsText ? TEXT_HINT : ''}`;
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Map) return 'a Map';
  return 'an object';
}

function quote(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return `'${shown.replace(/[\r\n]/g, ' ')}'`;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Throws AssemblerInputError for the first argument of the wrong type or shape. */
export function checkAssemblerInput(source: unknown, options: unknown): void {
  const fail = (message: string): never => {
    throw new AssemblerInputError(`assemble: ${message}`);
  };
  if (typeof source !== 'string') fail(`source must be a string (the program text), got ${describeValue(source, true)}`);
  if (!isObject(options)) {
    fail(`options must be an object with at least fileName, got ${describeValue(options)}`);
    return;
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) fail(`unknown option '${key}'; the options are ${OPTION_NAMES.join(', ')}`);
  }
  const { fileName, origin, defines, readInclude } = options;
  if (typeof fileName !== 'string' || fileName === '')
    fail(`options.fileName must be a non-empty string (used in diagnostics), got ${describeValue(fileName)}`);
  // The origin's value (aligned, below 2^32) is checked by assemble() itself: a RangeError.
  if (origin !== undefined && typeof origin !== 'number') fail(`options.origin must be a number, got ${describeValue(origin)}`);
  if (defines !== undefined) {
    const expected = 'options.defines must be a Map from symbol name to number';
    if (!(defines instanceof Map)) {
      fail(`${expected}, got ${describeValue(defines)}${isObject(defines) ? ' (new Map(Object.entries(...)) makes one)' : ''}`);
    } else {
      // Names and values are then checked as symbols (AssemblerDefineError): here only their types.
      for (const [name, value] of defines as Map<unknown, unknown>) {
        if (typeof name !== 'string') fail(`${expected}, got the name ${String(name)} (a ${typeof name})`);
        if (typeof value !== 'number') fail(`${expected}, got ${quote(name as string)} => ${describeValue(value)}`);
      }
    }
  }
  if (readInclude !== undefined && typeof readInclude !== 'function') {
    fail(`options.readInclude must be a function (name, fromFile) => string | undefined, got ${describeValue(readInclude)}`);
  }
}

/** What the include reader returned, if it is neither text nor undefined (a bug in the host's reader). */
export function checkIncludedText(text: unknown, name: string, fromFile: string): void {
  if (text !== undefined && typeof text !== 'string') {
    throw new AssemblerInputError(
      `assemble: options.readInclude(${quote(name)}, ${quote(fromFile)}) must return a string or undefined, got ${describeValue(text, true)}`,
    );
  }
}
