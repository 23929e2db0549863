// The schedule's randomness and its fingerprint, over words in shared memory so that whichever
// thread holds the baton draws the next number of one sequence.
//
// xoshiro128** (Blackman and Vigna): four 32-bit words of state, 32-bit outputs, only 32-bit
// operations (fast in JavaScript, where 64-bit arithmetic means BigInt). The seed (0..2^53-1) is
// spread over the state by splitmix64, as the xoshiro authors recommend, so that nearby seeds give
// unrelated sequences. The fingerprint is FNV-1a 64 over bytes, computed in two 32-bit halves.

/** The four state words for `seed` (splitmix64 twice). */
export function seedState(seed: number): [number, number, number, number] {
  let x = BigInt(seed);
  const mask = (1n << 64n) - 1n;
  const words: number[] = [];
  for (let i = 0; i < 2; i++) {
    x = (x + 0x9e3779b97f4a7c15n) & mask;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    z ^= z >> 31n;
    words.push(Number(z >> 32n) | 0, Number(z & 0xffffffffn) | 0);
  }
  // An all-zero state would stay zero; splitmix64 never yields two zero outputs in a row, but be sure.
  if (!words.some((word) => word !== 0)) words[0] = 1;
  return words as [number, number, number, number];
}

const rotl = (value: number, bits: number): number => (value << bits) | (value >>> (32 - bits));

/** The next 32-bit output (unsigned) of the state at int32[at..at+3], which it advances. */
export function next32(int32: Int32Array, at: number): number {
  const s0 = int32[at]!;
  const s1 = int32[at + 1]!;
  let s2 = int32[at + 2]!;
  let s3 = int32[at + 3]!;
  const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  int32[at + 1] = s1 ^ s2;
  int32[at] = s0 ^ s3;
  int32[at + 2] = s2 ^ t;
  int32[at + 3] = rotl(s3, 11);
  return result;
}

/** A whole number in [0, bound) (bound up to 2^32; the bias is below bound / 2^32). */
export function nextBelow(int32: Int32Array, at: number, bound: number): number {
  return Math.floor((next32(int32, at) / 0x1_0000_0000) * bound);
}

/** A number in [0, 1) with 53 random bits. */
export function nextUnit(int32: Int32Array, at: number): number {
  const high = next32(int32, at) >>> 5;
  const low = next32(int32, at) >>> 6;
  return (high * 67108864 + low) / 9007199254740992;
}

/** FNV-1a 64's offset basis, as high and low 32-bit words. */
export const FNV_OFFSET_HIGH = 0xcbf29ce4 | 0;
export const FNV_OFFSET_LOW = 0x84222325 | 0;

/**
 * Folds one byte into the FNV-1a 64 hash at int32[at] (high word) and int32[at + 1] (low word):
 * xor the byte in, then multiply by the FNV prime 2^40 + 0x1b3 modulo 2^64. The products of a 32-bit
 * word and 0x1b3 stay below 2^41, exact in doubles.
 */
export function fnvFold(int32: Int32Array, at: number, byte: number): void {
  const high = int32[at]! >>> 0;
  const low = (int32[at + 1]! ^ (byte & 0xff)) >>> 0;
  const lowProduct = low * 0x1b3;
  const carry = Math.floor(lowProduct / 0x1_0000_0000);
  int32[at + 1] = lowProduct >>> 0;
  // (high * 0x1b3 + carry) mod 2^32 plus the 2^40 term: low << 8 lands in the high word.
  int32[at] = (((high * 0x1b3 + carry) >>> 0) + (low << 8)) | 0;
}

/** The hash as 16 hex digits. */
export function hashText(high: number, low: number): string {
  return (high >>> 0).toString(16).padStart(8, '0') + (low >>> 0).toString(16).padStart(8, '0');
}
