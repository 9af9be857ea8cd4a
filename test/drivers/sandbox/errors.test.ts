// A plugin's failures come back at its TypeScript positions: compile errors where the parser stopped,
// exceptions where they were thrown, through the source map past the types that compilation removed.
import { describe, expect, it } from 'vitest';
import { EBUSY } from '../../../src-main/kernel/include/errno';
import { HostError, returns } from '../../../src-main/drivers/sandbox';
import { HEALTHY, load, loadError, pluginError, positionOf, ts } from './helpers';

describe('compile errors', () => {
  it('report the TypeScript line and column where the syntax breaks, and load nothing', async () => {
    const source = ts`
      interface Mirror { id: number }
      export function sync_cpu_device_pagetables(m: Mirror, start: number): number {
        const end: number = start + ;
        return end;
      }
    `;
    const err = await loadError(load(source));
    expect(err.kind).toBe('compile');
    expect(err.callback).toBe('<load>');
    expect(err.reason).toBe('TS1109: Expression expected.');
    expect({ line: err.line, column: err.column }).toEqual(positionOf(source, ';'));
    expect(err.message).toBe(`driver.ts:3:${err.column}: <load>: TS1109: Expression expected.`);
  });
});

describe('exceptions map back to TypeScript', () => {
  // Types removed by compilation shift the JavaScript's lines (the interface, the type alias) and
  // columns (annotations before the throw on its own line): only the source map puts them back.
  const source = ts`
    interface Page {
      pfn: number;
      flags: number;
    }
    type Batch = ReadonlyArray<Page>;

    export function fault(addr: number, batch: Batch): number {
      const table: Map<number, Page> = new Map<number, Page>(); const first: Page | undefined = batch[0]; if (!first) throw new RangeError('empty batch at ' + addr);
      table.set(first.pfn, first);
      return table.size;
    }

    export const ops = {
      free(pfn: number): void {
        const owner: { pfn: number } | null = null;
        (owner as unknown as { pfn: number }).pfn = pfn;
      },
    };
  `;

  it('gives the line and column of a throw after type annotations on the same line', async () => {
    const sb = await load(source);
    const err = pluginError(() => sb.call('fault', [0x7000, []]));
    expect(err.kind).toBe('throw');
    expect(err.callback).toBe('fault');
    expect(err.reason).toBe('RangeError: empty batch at 28672');
    expect({ line: err.line, column: err.column }).toEqual(positionOf(source, "('empty batch"));
    expect(err.pluginStack).toBe(`    at fault (driver.ts:8:${err.column})`);
  });

  it('gives the position of a TypeError inside an object-literal callback', async () => {
    const sb = await load(source);
    const err = pluginError(() => sb.call('ops.free', [5]));
    expect(err.kind).toBe('throw');
    expect(err.callback).toBe('ops.free');
    expect(err.reason).toMatch(/^TypeError: /);
    expect(err.line).toBe(positionOf(source, '(owner as unknown').line);
  });

  it('keeps the sandbox usable after an exception: the next call succeeds', async () => {
    const sb = await load(source);
    pluginError(() => sb.call('fault', [0, []]));
    expect(sb.call('fault', [0, [{ pfn: 9, flags: 0 }]])).toBe(1);
    expect(sb.stopped).toBeUndefined();
  });

  it('maps every frame of the plugin’s stack, innermost first', async () => {
    const deep = ts`
      function inner(n: number): never {
        throw new Error('at depth ' + n);
      }
      function outer(n: number): never {
        return inner(n + 1);
      }
      export function probe(): number {
        return outer(1);
      }
    `;
    const sb = await load(deep);
    const err = pluginError(() => sb.call('probe'));
    expect(err.pluginStack?.split('\n').map((l) => l.replace(/:\d+\)$/, ')'))).toEqual([
      '    at inner (driver.ts:2)',
      '    at outer (driver.ts:5)',
      '    at probe (driver.ts:8)',
    ]);
  });

  it('reports a thrown non-Error at the callback’s declaration', async () => {
    const thrower = ts`
      export const ops = {
        release(): void {
          throw 'no mirror';
        },
      };
    `;
    const sb = await load(thrower);
    const err = pluginError(() => sb.call('ops.release'));
    expect(err).toMatchObject({
      kind: 'throw',
      reason: 'threw "no mirror"',
      ...positionOf(thrower, 'release'),
    });
  });

  it('names the module body when evaluation throws', async () => {
    const body = ts`
      const size: number = 4096;
      if (size > 0) throw new Error('bad init');
      export function probe(): number { return size; }
    `;
    const err = await loadError(load(body));
    expect(err).toMatchObject({ kind: 'throw', callback: '<load>', reason: 'bad init', line: 2 });
  });
});

describe('host errors', () => {
  it('reach the plugin as an exception with .errno, and an uncaught one names its errno', async () => {
    const source = ts`
      import { hmm_devmem_add } from 'hmm-lab';
      export function probe(size: number): number {
        try {
          hmm_devmem_add(size);
          return 0;
        } catch (e) {
          return (e as { errno: number }).errno;
        }
      }
      export function probe_uncaught(size: number): number {
        return hmm_devmem_add(size) as number;
      }
    `;
    const api = {
      hmm_devmem_add: () => {
        throw new HostError(-EBUSY);
      },
    };
    const sb = await load(source, api);
    expect(sb.call('probe', [1 << 21])).toBe(-EBUSY);
    const err = pluginError(() => sb.call('probe_uncaught', [1 << 21]));
    expect(err).toMatchObject({ kind: 'throw', errno: -EBUSY, reason: 'HostError: hmm_devmem_add: -EBUSY' });
    expect(err.line).toBe(positionOf(source, 'return hmm_devmem_add').line);
  });

  it('rethrow a host function’s own bug to the host unchanged, and keep the sandbox', async () => {
    const bug = new TypeError('kernel bug');
    const sb = await load(
      ts`
        import { broken } from 'hmm-lab';
        export function probe(): string {
          try {
            broken();
          } catch {
            return 'swallowed';
          }
          return 'returned';
        }
        export function add(a: number, b: number): number { return a + b; }
      `,
      {
        broken: () => {
          throw bug;
        },
      },
    );
    expect(() => sb.call('probe')).toThrow(bug);
    expect(sb.call('add', [1, 1])).toBe(2);
  });
});

describe('the error value', () => {
  it('serialises to plain data for the wire', async () => {
    const sb = await load(HEALTHY);
    const err = pluginError(() => sb.call('add', [1, 'x'], returns.int));
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      kind: 'bad-value',
      callback: 'add',
      message: 'returned a bad value: expected an integer, got "1x"',
      file: 'driver.ts',
      line: 1,
      column: 17,
    });
  });
});
