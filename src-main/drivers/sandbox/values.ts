// What may cross the sandbox wall: plain data only (null, booleans, finite numbers, bounded strings,
// arrays and plain objects of them), never a function, a handle or an object with a prototype of its
// own. The engine side encodes (prelude.ts); this side checks again, since it trusts nothing from it.
import { HostError } from './errors';
import { EINVAL } from '../../kernel/include/errno';

export type PlainValue = null | boolean | number | string | PlainValue[] | { [key: string]: PlainValue };

/**
 * An argument or result: plain data, or undefined (a missing argument, a void callback). A
 * Float64Array the host passes enters the plugin as a Float64Array (a batch of entries, copied in
 * one piece); one the plugin passes or returns reaches the host as an array of numbers.
 */
export type CallValue = PlainValue | Float64Array | undefined;

export interface ValueLimits {
  /** Longest string, in UTF-16 units. */
  maxString: number;
  /** Deepest nesting of arrays and objects. */
  maxDepth: number;
  /** Most values (every array, object, string, number...) in one argument or result. */
  maxNodes: number;
}

// A driver exchanges page numbers, flags and short messages: a fault batch is 256 entries, a printk
// line is short. These leave two orders of magnitude above that and keep one crossing under ~1 MiB.
export const DEFAULT_LIMITS: ValueLimits = { maxString: 64 * 1024, maxDepth: 32, maxNodes: 65_536 };

/** Where a value fails the rules, as "result.pages[3]: NaN is not a finite number", or undefined. */
export function checkPlain(v: unknown, limits: ValueLimits, where: string): string | undefined {
  let nodes = 0;
  // The keys down to the value being checked; a path is spelled out only for a failure.
  const trail: (string | number)[] = [];
  const at = (): string => where + trail.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');
  const walk = (x: unknown, depth: number): string | undefined => {
    if (++nodes > limits.maxNodes) return `${where}: more than ${limits.maxNodes} values`;
    switch (typeof x) {
      case 'boolean':
        return undefined;
      case 'number':
        return Number.isFinite(x) ? undefined : `${at()}: ${x} is not a finite number`;
      case 'string':
        return x.length <= limits.maxString
          ? undefined
          : `${at()}: a string of ${x.length} characters (the limit is ${limits.maxString})`;
      case 'object': {
        if (x === null) return undefined;
        if (depth >= limits.maxDepth) return `${at()}: nested deeper than ${limits.maxDepth}`;
        if (Array.isArray(x)) {
          if (Object.getPrototypeOf(x) !== Array.prototype) return `${at()}: not a plain array`;
          for (let i = 0; i < x.length; i++) {
            const e: unknown = x[i];
            if (typeof e === 'number' && Number.isFinite(e) && ++nodes <= limits.maxNodes) continue;
            trail.push(i);
            const bad = walk(e, depth + 1);
            if (bad) return bad;
            trail.pop();
          }
          return undefined;
        }
        const proto = Object.getPrototypeOf(x);
        if (proto !== Object.prototype && proto !== null) return `${at()}: not a plain object`;
        for (const key of Object.keys(x)) {
          const e = (x as Record<string, unknown>)[key];
          if (e === undefined) continue;
          trail.push(key);
          // An own "__proto__" would become a prototype the moment host code spreads or assigns it.
          if (key === '__proto__') return `${at()}: a "__proto__" key`;
          const bad = walk(e, depth + 1);
          if (bad) return bad;
          trail.pop();
        }
        return undefined;
      }
      default:
        return `${at()}: a ${typeof x} cannot cross into or out of a plugin`;
    }
  };
  return walk(v, 0);
}

/**
 * A flat object's shape: its keys, and which of them hold booleans ('1') rather than numbers
 * ('0'). A plain object of at most MAX_FLAT keys, each a finite number or a boolean (a command's
 * arguments and result), crosses the wall as float64s and the number of its shape, not as JSON.
 */
export interface FlatShape {
  keys: string[];
  bools: string;
}

export const MAX_FLAT = 32;

/** A flat object taken apart: its shape, a key naming the shape, its values as numbers. */
export interface FlatValue {
  shape: FlatShape;
  sig: string;
  values: Float64Array;
}

/** v taken apart as a flat object, or null when v is not flat. */
export function flatShape(v: object): FlatValue | null {
  if (Object.getPrototypeOf(v) !== Object.prototype) return null;
  const keys = Object.keys(v);
  if (keys.length === 0 || keys.length > MAX_FLAT) return null;
  const values = new Float64Array(keys.length);
  let bools = '';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === 'boolean') bools += '1';
    else if (typeof x === 'number' && Number.isFinite(x)) bools += '0';
    else return null;
    if (k === '__proto__') return null;
    values[i] = Number(x);
  }
  return { shape: { keys, bools }, sig: `${bools}${keys.join('\0')}`, values };
}

/** A flat shape's text from the engine, checked: [keys, bools] for n values, or a reason. */
export function parseFlatShape(text: string, n: number, limits: ValueLimits): FlatShape | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'a flat object of no known shape';
  }
  if (!Array.isArray(v) || v.length !== 2 || !Array.isArray(v[0]) || typeof v[1] !== 'string')
    return 'a flat object of no known shape';
  const keys = v[0] as unknown[];
  const bools = v[1];
  if (keys.length !== n || bools.length !== n || !/^[01]*$/.test(bools))
    return 'a flat object whose shape does not match its values';
  for (const k of keys)
    if (typeof k !== 'string' || k === '__proto__' || k.length > limits.maxString)
      return 'a flat object with a bad key';
  if (new Set(keys).size !== n) return 'a flat object with a repeated key';
  return { keys: keys as string[], bools };
}

/** A check on a callback's result, beyond plainness: a message when it fails. */
export type Expect = (v: CallValue) => string | undefined;

/** Result checks for the kernel's callback signatures. */
export const returns = {
  /** A safe integer: an errno, a count, a pfn. */
  int: ((v) =>
    typeof v === 'number' && Number.isSafeInteger(v)
      ? undefined
      : `expected an integer, got ${describe(v)}`) as Expect,
  /** Nothing, or undefined: a void callback. */
  void: ((v) => (v === undefined ? undefined : `expected no value, got ${describe(v)}`)) as Expect,
  bool: ((v) => (typeof v === 'boolean' ? undefined : `expected a boolean, got ${describe(v)}`)) as Expect,
};

export function describe(v: CallValue): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Float64Array) return `a Float64Array of ${v.length}`;
  if (typeof v === 'object' && v !== null) return 'an object';
  return String(v);
}

/** For host functions: argument `i` as a safe integer, or a HostError(-EINVAL) the plugin sees. */
export function intArg(args: readonly CallValue[], i: number, name: string): number {
  const v = args[i];
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new HostError(-EINVAL, `${name}: expected an integer, got ${describe(v)}`);
}

/** For host functions: argument `i` as a string, or a HostError(-EINVAL). */
export function stringArg(args: readonly CallValue[], i: number, name: string): string {
  const v = args[i];
  if (typeof v === 'string') return v;
  throw new HostError(-EINVAL, `${name}: expected a string, got ${describe(v)}`);
}
