// Fills of scenario files (../shared/design/SCENARIOS.md): what a store writes, a file or
// buffer starts with, and what `expect.data` checks a load against. Ints are int32, little
// endian, as the selftests' int buffers on x86.
import { InputError } from './input-error';

export type Fill =
  /** int32 at int index i (from the mapping or buffer start) holds i + add, or -i + add. */
  | { kind: 'pattern'; pattern: 'index' | 'negindex'; add: number }
  | { kind: 'byte'; value: number }
  /** The ints from the step's offset on, the list repeated. */
  | { kind: 'int32'; values: number[] };

const INT32_MIN = -(2 ** 31);
const UINT32_MAX = 2 ** 32 - 1;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int32(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < INT32_MIN || v > UINT32_MAX)
    throw new InputError(
      path,
      `expected an int32 (an integer from -2^31 to 2^32-1), got ${JSON.stringify(v)}`,
    );
  return v | 0;
}

const FILL_HINT =
  'expected a fill: {"pattern": "index"|"negindex", "add"?: n}, {"byte": n} or {"int32": [..]}';

export function parseFill(v: unknown, path: string): Fill {
  if (!isObject(v)) throw new InputError(path, `${FILL_HINT}, got ${JSON.stringify(v)}`);
  const keys = Object.keys(v);
  const allow = (allowed: string[]): void => {
    for (const key of keys)
      if (!allowed.includes(key))
        throw new InputError(`${path}.${key}`, `unknown field (expected one of: ${allowed.join(', ')})`);
  };
  if ('pattern' in v) {
    allow(['pattern', 'add']);
    if (v.pattern !== 'index' && v.pattern !== 'negindex')
      throw new InputError(
        `${path}.pattern`,
        `expected "index" or "negindex", got ${JSON.stringify(v.pattern)}`,
      );
    return {
      kind: 'pattern',
      pattern: v.pattern,
      add: v.add === undefined ? 0 : int32(v.add, `${path}.add`),
    };
  }
  if ('byte' in v) {
    allow(['byte']);
    const b = v.byte;
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255)
      throw new InputError(`${path}.byte`, `expected an integer from 0 to 255, got ${JSON.stringify(b)}`);
    return { kind: 'byte', value: b };
  }
  if ('int32' in v) {
    allow(['int32']);
    const list = v.int32;
    if (!Array.isArray(list) || list.length === 0)
      throw new InputError(
        `${path}.int32`,
        `expected a non-empty list of int32 values, got ${JSON.stringify(list)}`,
      );
    return { kind: 'int32', values: list.map((x, i) => int32(x, `${path}.int32[${i}]`)) };
  }
  throw new InputError(path, `${FILL_HINT}, got ${JSON.stringify(v)}`);
}

/** The int32 the fill puts at int index i of the range that starts at byte `start`. */
function intAt(fill: Fill, i: number, start: number): number {
  switch (fill.kind) {
    case 'pattern':
      return fill.pattern === 'index' ? (i + fill.add) | 0 : (-i + fill.add) | 0;
    case 'byte':
      return fill.value * 0x01010101;
    case 'int32': {
      // Counted from the step's offset, not from the start of the mapping.
      const j = i - Math.floor(start / 4);
      const n = fill.values.length;
      return fill.values[((j % n) + n) % n]!;
    }
  }
}

/**
 * The bytes the fill gives [start, start + length) of a mapping or buffer, `start` counted
 * from its beginning.
 */
export function fillBytes(fill: Fill, start: number, length: number): Uint8Array {
  if (fill.kind === 'byte') return new Uint8Array(length).fill(fill.value);
  // int32 lists start at the step's offset, patterns at the mapping start.
  const origin = fill.kind === 'int32' ? start : 0;
  const first = Math.floor((start - origin) / 4);
  const last = Math.ceil((start - origin + length) / 4);
  const ints = new Int32Array(last - first);
  for (let i = first; i < last; i++) ints[i - first] = intAt(fill, i + Math.floor(origin / 4), start);
  const skip = start - origin - first * 4;
  return new Uint8Array(ints.buffer, skip, length).slice();
}

export interface FillMismatch {
  /** Byte offset of the first differing byte, from the mapping or buffer start. */
  offset: number;
  /** The int32 expected and found at that byte's aligned int, when it lies whole in range. */
  expected: number;
  actual: number;
}

/** Compare data read from [start, start + data.length) with what the fill gives it. */
export function compareFill(data: Uint8Array, fill: Fill, start: number): FillMismatch | null {
  const want = fillBytes(fill, start, data.length);
  for (let p = 0; p < data.length; p++) {
    if (data[p] === want[p]) continue;
    const intStart = Math.max(0, p - ((start + p) % 4));
    const whole = intStart + 4 <= data.length;
    const read = (b: Uint8Array): number =>
      whole ? new DataView(b.buffer, b.byteOffset + intStart, 4).getInt32(0, true) : b[p]!;
    return { offset: start + p, expected: read(want), actual: read(data) };
  }
  return null;
}

/** The first int32 values of data (little endian), for a result summary. */
export function int32Head(data: Uint8Array, max = 16): number[] {
  const n = Math.min(max, Math.floor(data.length / 4));
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(view.getInt32(i * 4, true));
  return out;
}
