// The JavaScript that runs in each fresh QuickJS context before the plugin. It locks the realm down
// (no code from strings, no clock, a seeded Math.random) and returns the helpers the host calls
// through handles. Every built-in it uses is captured before plugin code exists, so a plugin that
// later rewrites Object, JSON or Array.prototype changes nothing here. Nothing it returns is trusted:
// the host checks again whatever these helpers produce.

/** The helpers prelude() returns, by name. */
export interface PreludeHelpers {
  /**
   * (value) -> an ArrayBuffer of float64s for a dense array of finite numbers; else text: '' for
   * undefined, '!' + path + ': ' + reason for a value that may not leave, or JSON.
   */
  out: unknown;
  /** (ArrayBuffer of float64s, count) -> a plain array of those numbers. */
  numbersIn: unknown;
  /** (ArrayBuffer of float64s) -> a Float64Array over it (a batch the host passes as a view). */
  typedIn: unknown;
  /** (json) -> the value. */
  decode: unknown;
  /** (JSON [keys, booleans as '0'/'1' per key]) -> the number of that flat shape, for flatIn. */
  shapeIn: unknown;
  /** (shape, ArrayBuffer of float64s) -> a plain object of that shape with those values. */
  flatIn: unknown;
  /** (shape) -> JSON [keys, booleans as '0'/'1' per key] of a shape out() gave a flat object. */
  shapeOut: unknown;
  /** (thrown) -> JSON {name, message, stack, errno?}, read defensively. */
  describe: unknown;
  /** (message, errno) -> an Error named HostError with `.errno`. */
  hostError: unknown;
  /** (object) -> the object, frozen with everything reachable through its own data properties. */
  deepFreeze: unknown;
  /** (namespace) -> JSON array of the export paths that are functions ("probe", "ops.fault"). */
  exportPaths: unknown;
  /** (namespace, path) -> the function at that export path, or undefined. */
  lookup: unknown;
}

/** Called with (seed, maxString, maxDepth, maxNodes, maxJson, maxFlat). */
export const PRELUDE_SOURCE = String.raw`(function prelude(seed, maxString, maxDepth, maxNodes, maxJson, maxFlat) {
  'use strict';
  const G = globalThis;
  const O = Object;
  const getProto = O.getPrototypeOf;
  const getDesc = O.getOwnPropertyDescriptor;
  const defProp = O.defineProperty;
  const hasOwn = O.hasOwn;
  const create = O.create;
  const freeze = O.freeze;
  const ownKeys = Reflect.ownKeys;
  const objectKeys = O.keys;
  const apply = Reflect.apply;
  const isArray = Array.isArray;
  const quote = JSON.stringify;
  const parse = JSON.parse;
  const slice = String.prototype.slice;
  const ErrorCtor = Error;
  const ArrayCtor = Array;
  const ArrayBufferCtor = ArrayBuffer;
  const Float64ArrayCtor = Float64Array;
  const TypeErrorCtor = TypeError;
  const ObjectProto = O.prototype;
  const ArrayProto = Array.prototype;
  const Float64Proto = Float64Array.prototype;
  // The typed array accessors, captured: a plugin may redefine them on the prototypes later.
  const TypedProto = getProto(Float64Proto);
  const bufferOf = getDesc(TypedProto, 'buffer').get;
  const byteOffsetOf = getDesc(TypedProto, 'byteOffset').get;
  const byteLengthOf = getDesc(TypedProto, 'byteLength').get;
  const sliceBuffer = ArrayBuffer.prototype.slice;

  // No code from strings: eval is gone and every function constructor throws. The host compiles the
  // plugin itself; nothing at run time needs a parser (and a parser is what deep nesting overflows).
  delete G.eval;
  const FunctionProto = getProto(function () {});
  const denied = function Function() {
    throw new TypeErrorCtor('plugins cannot compile code from strings');
  };
  defProp(denied, 'prototype', { value: FunctionProto });
  const samples = [function () {}, async function () {}, function* () {}, async function* () {}];
  for (let i = 0; i < samples.length; i++) {
    defProp(getProto(samples[i]), 'constructor', { value: denied, writable: false, configurable: false });
  }
  defProp(G, 'Function', { value: denied, writable: true, configurable: true, enumerable: false });

  // Runs are reproducible: Math.random is xorshift32 from the session's seed (Date is not installed).
  let state = (seed | 0) || 0x2545f491;
  defProp(Math, 'random', {
    value: function random() {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 4294967296;
    },
    writable: true,
    configurable: true,
  });

  const cut = (s, n) => (s.length > n ? apply(slice, s, [0, n]) + '...' : s);

  function Bad(reason) {
    this.reason = reason;
  }

  // Values are read as JavaScript reads them (a getter or Proxy trap of the plugin's runs, inside its
  // budget); only the text produced leaves, and the host parses and checks that text again. The walk
  // keeps its state here rather than in per-call closures (QuickJS makes closures slowly); a getter
  // that calls the host can re-enter encode, so each call saves and restores the text it builds (a
  // re-entered walk may blur the cycle check's ancestors, which the depth limit still bounds).
  let text = '';
  let nodes = 0;
  const trail = create(null);
  const ancestors = create(null);
  // Field names repeat from call to call; JSON-quoting one costs as much as a dozen loop iterations.
  const quotedKeys = create(null);
  let cachedKeys = 0;

  function fail(depth, why) {
    let path = '';
    for (let i = 0; i < depth; i++) {
      const k = trail[i];
      path += typeof k === 'number' ? '[' + k + ']' : '.' + k;
    }
    throw new Bad(path + ': ' + why);
  }

  // self: the object x stands for in cycle checks (a copy of it is walked instead), if any.
  function walk(x, depth, self) {
    if (++nodes > maxNodes) fail(depth, 'more than ' + maxNodes + ' values');
    const t = typeof x;
    if (t === 'number') {
      if (x - x !== 0) fail(depth, x + ' is not a finite number');
      text += x === 0 ? '0' : '' + x;
      return;
    }
    if (t === 'string') {
      if (x.length > maxString) fail(depth, 'a string of ' + x.length + ' characters (the limit is ' + maxString + ')');
      text += quote(x);
      if (text.length > maxJson) fail(depth, 'more than ' + maxJson + ' characters of data');
      return;
    }
    if (t === 'boolean') {
      text += x ? 'true' : 'false';
      return;
    }
    if (x === null) {
      text += 'null';
      return;
    }
    if (t !== 'object') fail(depth, 'a ' + t + ' cannot leave the plugin');
    if (depth >= maxDepth) fail(depth, 'nested deeper than ' + maxDepth);
    for (let i = 0; i < depth; i++) if (ancestors[i] === x) fail(depth, 'a cycle');
    ancestors[depth] = self === undefined ? x : self;
    if (isArray(x)) {
      if (getProto(x) !== ArrayProto) fail(depth, 'not a plain array');
      const n = x.length;
      text += '[';
      for (let i = 0; i < n; i++) {
        const v = x[i];
        if (i > 0) text += ',';
        // Page numbers and flags, the common element, stay off the recursive path.
        if (typeof v === 'number' && v - v === 0 && ++nodes <= maxNodes) {
          text += v === 0 ? '0' : '' + v;
          continue;
        }
        trail[depth] = i;
        if (v === undefined) fail(depth + 1, 'undefined (or a hole)');
        walk(v, depth + 1);
      }
      text += ']';
    } else {
      const p = getProto(x);
      if (p !== ObjectProto && p !== null) fail(depth, 'not a plain object');
      const keys = objectKeys(x);
      text += '{';
      let first = true;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        const v = x[k];
        if (v === undefined) continue;
        trail[depth] = k;
        if (k === '__proto__') fail(depth + 1, 'a "__proto__" key');
        let q = quotedKeys[k];
        if (q === undefined) {
          q = quote(k) + ':';
          if (cachedKeys++ < 4096) quotedKeys[k] = q;
        }
        text += first ? q : ',' + q;
        first = false;
        walk(v, depth + 1);
      }
      text += '}';
    }
    ancestors[depth] = undefined;
    if (text.length > maxJson) fail(depth, 'more than ' + maxJson + ' characters of data');
  }

  function encode(value, self) {
    if (value === undefined) return '';
    const savedText = text;
    const savedNodes = nodes;
    text = '';
    nodes = 0;
    try {
      walk(value, 0, self);
      return text;
    } catch (e) {
      if (e instanceof Bad) return '!' + e.reason;
      throw e;
    } finally {
      text = savedText;
      nodes = savedNodes;
    }
  }

  // Flat objects: a plain object of at most maxFlat keys whose values are finite numbers or
  // booleans (a command's arguments and result) crosses as float64s and the number of its shape
  // (its keys, and which are booleans), not as JSON: QuickJS formats and parses numbers slowly,
  // and a command's objects cross on every fault. Shapes are numbered once per direction.
  const outShapes = create(null);
  const outShapeIds = create(null);
  let nOutShapes = 0;
  const inShapes = create(null);
  let nInShapes = 0;

  // x, read once: as float64s NaN, its shape's number, its values (NaN cannot start a batch of
  // numbers); or, when x is not flat, its text from a null-prototype copy of the values read.
  function flatOut(x, keys) {
    const n = keys.length;
    const read = create(null);
    let sig = '';
    let bools = '';
    let flat = true;
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      const v = x[k];
      read[k] = v;
      if (!flat) continue;
      const t = typeof v;
      if (k === '__proto__') flat = false;
      else if (t === 'number' && v - v === 0) {
        sig += k + '\u0000';
        bools += '0';
      } else if (t === 'boolean') {
        sig += k + '\u0001';
        bools += '1';
      } else flat = false;
    }
    if (!flat) return encode(read, x);
    let id = outShapeIds[sig];
    if (id === undefined) {
      // Keys quoted one by one: quoting the array would look up a toJSON the plugin may define.
      let json = '[[';
      for (let i = 0; i < n; i++) json += (i ? ',' : '') + quote(keys[i]);
      id = nOutShapes++;
      outShapes[id] = json + '],"' + bools + '"]';
      outShapeIds[sig] = id;
    }
    const buf = new ArrayBufferCtor((n + 2) * 8);
    const f = new Float64ArrayCtor(buf);
    f[0] = 0 / 0;
    f[1] = id;
    // A boolean's number, 1 or 0: + on a boolean runs no plugin code.
    for (let i = 0; i < n; i++) f[i + 2] = +read[keys[i]];
    return buf;
  }

  function shapeOut(id) {
    return outShapes[id];
  }

  // (JSON [keys, booleans as a string of 0 and 1]) from the host, which checked it.
  function shapeIn(json) {
    const shape = parse(json);
    const keys = shape[0];
    const bools = shape[1];
    const template = create(null);
    for (let i = 0; i < keys.length; i++) template[keys[i]] = 0;
    inShapes[nInShapes] = { keys, bools, template };
    return nInShapes++;
  }

  function flatIn(id, buf) {
    const s = inShapes[id];
    const f = new Float64ArrayCtor(buf);
    // Spread defines the keys as own data properties, so no setter on Object.prototype runs;
    // the stores below then only change their values.
    const o = { ...s.template };
    const keys = s.keys;
    const bools = s.bools;
    for (let i = 0; i < keys.length; i++) o[keys[i]] = bools[i] === '1' ? f[i] !== 0 : f[i];
    return o;
  }

  // A dense plain array of finite numbers (a batch of pfns or flags) crosses as the bytes of a
  // Float64Array: QuickJS formats and parses numbers slowly, and these arrays are the bulk of traffic.
  function out(value) {
    // A Float64Array leaves as a copy of its bytes, without a loop in the engine; the host checks
    // every number (and the count) again.
    if (value !== null && typeof value === 'object' && getProto(value) === Float64Proto) {
      const bytes = apply(byteLengthOf, value, []);
      if (bytes === 0) return '[]';
      if (bytes > maxNodes * 8) return '!: more than ' + maxNodes + ' values';
      // NaN first is a flat object's mark: the host would read the batch as one.
      const first = value[0];
      if (first - first !== 0) return '![0]: ' + first + ' is not a finite number';
      const at = apply(byteOffsetOf, value, []);
      return apply(sliceBuffer, apply(bufferOf, value, []), [at, at + bytes]);
    }
    if (isArray(value) && getProto(value) === ArrayProto) {
      const n = value.length;
      if (n > 0 && n <= maxNodes) {
        const buf = new ArrayBufferCtor(n * 8);
        const f = new Float64ArrayCtor(buf);
        let i = 0;
        for (; i < n; i++) {
          const v = value[i];
          if (typeof v !== 'number' || v - v !== 0) break;
          f[i] = v;
        }
        if (i === n) return buf;
      }
    }
    if (value !== null && typeof value === 'object' && !isArray(value) && getProto(value) === ObjectProto) {
      const keys = objectKeys(value);
      if (keys.length > 0 && keys.length <= maxFlat) return flatOut(value, keys);
    }
    return encode(value);
  }

  function numbersIn(buf, n) {
    const f = new Float64ArrayCtor(buf);
    const a = new ArrayCtor(n);
    for (let i = 0; i < n; i++) a[i] = f[i];
    return a;
  }

  function typedIn(buf) {
    return new Float64ArrayCtor(buf);
  }

  function decode(json) {
    return parse(json);
  }

  function describe(e) {
    let name = '';
    let message = '';
    let stack = '';
    let errno;
    try {
      if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
        const n = e.name;
        const m = e.message;
        const s = e.stack;
        const no = e.errno;
        if (typeof n === 'string') name = cut(n, 200);
        if (typeof m === 'string') message = cut(m, 2000);
        if (typeof s === 'string') stack = cut(s, 8000);
        if (typeof no === 'number' && no === (no | 0)) errno = no;
        if (!name && !message) message = isArray(e) ? 'threw an array' : 'threw an object';
      } else if (typeof e === 'string') {
        message = 'threw ' + quote(cut(e, 2000));
      } else {
        message = 'threw ' + (typeof e === 'symbol' ? 'a symbol' : '' + e);
      }
    } catch (x) {
      message = message || 'threw a value that could not be read';
    }
    return (
      '{"name":' + quote(name) + ',"message":' + quote(message) + ',"stack":' + quote(stack) +
      (errno === undefined ? '' : ',"errno":' + errno) + '}'
    );
  }

  function hostError(message, errno) {
    const e = new ErrorCtor(message);
    defProp(e, 'name', { value: 'HostError', writable: true, configurable: true });
    defProp(e, 'errno', { value: errno, writable: true, configurable: true, enumerable: true });
    return e;
  }

  function deepFreeze(x) {
    if ((typeof x === 'object' && x !== null) || typeof x === 'function') {
      freeze(x);
      const keys = ownKeys(x);
      for (let i = 0; i < keys.length; i++) {
        const d = getDesc(x, keys[i]);
        if (d && hasOwn(d, 'value')) deepFreeze(d.value);
      }
    }
    return x;
  }

  // Exports are read through data properties only: no getter of the plugin's runs while the host
  // builds its table.
  const dataValue = (x, k) => {
    const d = getDesc(x, k);
    return d && hasOwn(d, 'value') ? d.value : undefined;
  };

  function exportPaths(ns) {
    const paths = [];
    const visit = (x, prefix, depth) => {
      const keys = ownKeys(x);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (typeof k !== 'string') continue;
        const v = dataValue(x, k);
        const path = prefix ? prefix + '.' + k : k;
        if (typeof v === 'function') paths[paths.length] = quote(path);
        else if (depth < 3 && typeof v === 'object' && v !== null && !isArray(v)) visit(v, path, depth + 1);
      }
    };
    visit(ns, '', 0);
    let out = '[';
    for (let i = 0; i < paths.length; i++) out += (i ? ',' : '') + paths[i];
    return out + ']';
  }

  function lookup(ns, path) {
    let x = ns;
    let start = 0;
    for (let i = 0; i <= path.length; i++) {
      if (i === path.length || path[i] === '.') {
        if (typeof x !== 'object' || x === null) return undefined;
        x = dataValue(x, apply(slice, path, [start, i]));
        start = i + 1;
      }
    }
    return typeof x === 'function' ? x : undefined;
  }

  return {
    out,
    numbersIn,
    typedIn,
    decode,
    shapeIn,
    flatIn,
    shapeOut,
    describe,
    hostError,
    deepFreeze,
    exportPaths,
    lookup,
  };
})`;
