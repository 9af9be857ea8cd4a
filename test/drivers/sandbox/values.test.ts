// Only plain data crosses: a callback that returns (or hands a host function) anything else fails
// with kind 'bad-value' at its declaration, and the sandbox stays usable.
import { describe, expect, it } from 'vitest';
import { returns, type CallValue } from '../../../src-main/drivers/sandbox';
import { load, pluginError, positionOf, ts } from './helpers';

const source = ts`
  export const bad = {
    fn(): unknown { return () => 0; },
    nestedFn(): unknown { return { ops: { fault() { return 0; } } }; },
    symbol(): unknown { return Symbol('page'); },
    bigint(): unknown { return 1n << 64n; },
    nan(): unknown { return NaN; },
    infinity(): unknown { return [1, Infinity]; },
    huge(): unknown { return 'x'.repeat(100_000); },
    cyclic(): unknown { const a: Record<string, unknown> = {}; a.self = a; return a; },
    deep(): unknown { let v: unknown = 0; for (let i = 0; i < 40; i++) v = [v]; return v; },
    instance(): unknown { return new (class Page { pfn = 1; })(); },
    map(): unknown { return new Map([[1, 2]]); },
    typed(): unknown { return new Uint8Array(4); },
    hole(): unknown { const a = [1, 2]; a.length = 3; return a; },
    promise(): unknown { return Promise.resolve(1); },
    many(): unknown { return Array.from({ length: 70_000 }, (_, i) => ({ i })); },
  };
  export function errno(): unknown { return 0.5; }
  export function plain(): unknown {
    return { pfn: 0x1234, pages: [1, 2, 3], name: 'gpu0', flags: { write: true, dirty: false }, none: null, skip: undefined };
  }
  export function echo(v: unknown): unknown { return v; }
  export function typesOf(v: Record<string, unknown>): string {
    return Object.keys(v).map((k) => k + ':' + typeof v[k] + ':' + Object.prototype.hasOwnProperty.call(v, k)).join(',');
  }
  let setterRuns = 0;
  Object.defineProperty(Object.prototype, 'addr', { set() { setterRuns++; }, configurable: true });
  export function setterCount(): number { return setterRuns; }
  let getterRuns = 0;
  export function getterReads(flat: boolean): unknown {
    return { get pfn() { getterRuns++; return 7; }, name: flat ? 1 : 'gpu0' };
  }
  export function getterCount(): number { return getterRuns; }
  export function nanFirst(): unknown { return new Float64Array([NaN, 0, 1]); }
  export function shapes(i: number): unknown {
    return i % 3 === 0 ? { ret: 0, cpages: i } : i % 3 === 1 ? { ret: -14, write: i % 2 === 0 } : { cpages: i, ret: 1 };
  }
  export function pfns(n: number): number[] { return Array.from({ length: n }, (_, i) => 0x100000 + i); }
`;

describe('values a plugin may not return', () => {
  const cases: [string, string][] = [
    ['fn', 'result: a function cannot leave the plugin'],
    ['nestedFn', 'result.ops.fault: a function cannot leave the plugin'],
    ['symbol', 'result: a symbol cannot leave the plugin'],
    ['bigint', 'result: a bigint cannot leave the plugin'],
    ['nan', 'result: NaN is not a finite number'],
    ['infinity', 'result[1]: Infinity is not a finite number'],
    ['huge', 'result: a string of 100000 characters (the limit is 65536)'],
    ['cyclic', 'result.self: a cycle'],
    [
      'deep',
      'result[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 32',
    ],
    ['instance', 'result: not a plain object'],
    ['map', 'result: not a plain object'],
    ['typed', 'result: not a plain object'],
    ['hole', 'result[2]: undefined (or a hole)'],
    ['promise', 'result: not a plain object'],
    ['many', 'result[32767].i: more than 65536 values'],
  ];
  for (const [name, reason] of cases) {
    it(`refuses ${name}, at the callback's declaration, and keeps the sandbox`, async () => {
      const sb = await load(source);
      const err = pluginError(() => sb.call(`bad.${name}`));
      expect(err.kind).toBe('bad-value');
      expect(err.callback).toBe(`bad.${name}`);
      expect(err.reason).toBe(`returned a bad value: ${reason}`);
      expect({ line: err.line, column: err.column }).toEqual(positionOf(source, `${name}(): unknown`));
      expect(sb.call('echo', [7])).toBe(7);
    });
  }

  it('refuses a fraction where the kernel wants an integer', async () => {
    const sb = await load(source);
    const err = pluginError(() => sb.call('errno', [], returns.int));
    expect(err).toMatchObject({
      kind: 'bad-value',
      reason: 'returned a bad value: expected an integer, got 0.5',
    });
    expect(sb.call('errno')).toBe(0.5);
  });
});

describe('values that cross', () => {
  it('brings back plain objects, arrays, strings, booleans and null; undefined members are dropped', async () => {
    const sb = await load(source);
    expect(sb.call('plain')).toEqual({
      pfn: 0x1234,
      pages: [1, 2, 3],
      name: 'gpu0',
      flags: { write: true, dirty: false },
      none: null,
    });
  });

  it('round-trips every kind of plain value unchanged', async () => {
    const sb = await load(source);
    const values: CallValue[] = [
      undefined,
      null,
      true,
      false,
      0,
      -1,
      2 ** 52 + 1,
      1.5,
      '',
      'päge ✓',
      [],
      {},
      [1.25, -0.5, 2 ** 40],
      [[1, 2], { a: [true, null, 'x'] }],
      { nested: { deeper: { pfns: [1, 2, 3] } } },
    ];
    for (const v of values) expect(sb.call('echo', [v])).toEqual(v);
  });

  it('carries a batch of 512 page numbers both ways', async () => {
    const sb = await load(source);
    const batch = Array.from({ length: 512 }, (_, i) => 0x200000 + 3 * i);
    expect(sb.call('echo', [batch])).toEqual(batch);
    expect(sb.call('pfns', [512])).toEqual(batch.map((_, i) => 0x100000 + i));
  });

  it('carries flat objects (numbers and booleans only) as numbers, with types, keys and their order intact', async () => {
    const sb = await load(source);
    const args = { mm: 3, addr: 0x7f0000001000, pages: 1, buffer: 0, write: true, dirty: false, frac: -0.25 };
    expect(sb.call('echo', [args])).toEqual(args);
    expect(Object.keys(sb.call('echo', [args]) as object)).toEqual(Object.keys(args));
    expect(sb.call('typesOf', [args])).toBe(
      'mm:number:true,addr:number:true,pages:number:true,buffer:number:true,write:boolean:true,dirty:boolean:true,frac:number:true',
    );
    // Several shapes in turn, each met many times, each decoded as its own.
    for (let i = 0; i < 30; i++)
      expect(sb.call('shapes', [i])).toEqual(
        i % 3 === 0
          ? { ret: 0, cpages: i }
          : i % 3 === 1
            ? { ret: -14, write: i % 2 === 0 }
            : { cpages: i, ret: 1 },
      );
  });

  it("a flat object's keys arrive as its own data, past a setter the plugin put on Object.prototype", async () => {
    const sb = await load(source);
    expect(sb.call('typesOf', [{ addr: 5, pages: 2 }])).toBe('addr:number:true,pages:number:true');
    expect(sb.call('echo', [{ addr: 5 }])).toEqual({ addr: 5 });
    expect(sb.call('setterCount')).toBe(0);
  });

  it("reads a returned object's getters once, whether the object is flat or not", async () => {
    const sb = await load(source);
    expect(sb.call('getterReads', [true])).toEqual({ pfn: 7, name: 1 });
    expect(sb.call('getterCount')).toBe(1);
    expect(sb.call('getterReads', [false])).toEqual({ pfn: 7, name: 'gpu0' });
    expect(sb.call('getterCount')).toBe(2);
  });

  it('refuses a Float64Array whose first number is NaN (the mark of a flat object)', async () => {
    const sb = await load(source);
    const err = pluginError(() => sb.call('nanFirst'));
    expect(err.kind).toBe('bad-value');
    expect(err.reason).toBe('returned a bad value: result[0]: NaN is not a finite number');
  });

  it('refuses host arguments that are not plain data before the plugin runs', async () => {
    const sb = await load(source);
    expect(() => sb.call('echo', [NaN])).toThrow(TypeError);
    expect(() => sb.call('echo', [new Date() as unknown as CallValue])).toThrow('not a plain object');
    expect(() => sb.call('echo', [(() => 1) as unknown as CallValue])).toThrow(TypeError);
  });
});

describe('values passed to host functions', () => {
  it('arrive as plain copies; a bad one is a TypeError inside the plugin, the host function never runs', async () => {
    const seen: CallValue[][] = [];
    const sb = await load(
      ts`
        import { migrate } from 'hmm-lab';
        export function send(kind: string): string {
          const values: Record<string, unknown[]> = {
            good: [[1, 2, 3], { pfn: 7, write: true }, 'dst', null, undefined],
            fn: [() => 1],
            nan: [1, NaN],
            cyclic: [(() => { const a: unknown[] = []; a.push(a); return a; })()],
          };
          try {
            const r = migrate(...(values[kind] as []));
            return 'ok ' + JSON.stringify(r);
          } catch (e) {
            return (e as Error).name + ': ' + (e as Error).message;
          }
        }
      `,
      { migrate: (...args) => (seen.push(args), { moved: 3 }) },
    );
    expect(sb.call('send', ['good'])).toBe('ok {"moved":3}');
    expect(seen).toEqual([[[1, 2, 3], { pfn: 7, write: true }, 'dst', null, undefined]]);
    expect(sb.call('send', ['fn'])).toBe(
      'TypeError: migrate() argument 1: a function cannot leave the plugin',
    );
    expect(sb.call('send', ['nan'])).toBe('TypeError: migrate() argument 2: NaN is not a finite number');
    expect(sb.call('send', ['cyclic'])).toBe('TypeError: migrate() argument 1[0]: a cycle');
    expect(seen).toHaveLength(1);
  });

  it('refuses a host function result that is not plain data, as the host’s own bug', async () => {
    const sb = await load(
      ts`
        import { leak } from 'hmm-lab';
        export function probe(): unknown { return leak(); }
      `,
      { leak: () => ({ process }) as unknown as CallValue },
    );
    expect(() => sb.call('probe')).toThrow('leak() result.process: not a plain object');
  });
});
