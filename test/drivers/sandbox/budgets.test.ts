// Plugins that never return, recurse without end or allocate without bound are stopped with an error
// naming the callback and the line, the sandbox they ran in is stopped, and the host goes on.
import { describe, expect, it } from 'vitest';
import { HEALTHY, load, loadError, pluginError, positionOf, ts } from './helpers';
import { PluginSandbox } from '../../../src-main/drivers/sandbox';

/** After a stopping fault: later calls say so, and a fresh sandbox from the same source works. */
async function expectStoppedButHostFine(sb: PluginSandbox, source: string, callback: string): Promise<void> {
  const again = pluginError(() => sb.call(callback));
  expect(again.kind).toBe('stopped');
  expect(sb.stopped?.callback).toBe(callback);
  expect(sb.source).toBe(source);
  const fresh = await load(HEALTHY);
  expect(fresh.call('add', [2, 3])).toBe(5);
}

describe('time budget', () => {
  const source = ts`
    export const ops = {
      fault(addr: number): number {
        let spins: number = 0;
        while (addr >= 0) {
          spins++;
        }
        return spins;
      },
    };
  `;

  it('stops an endless loop in fault() at the loop, in polls not wall time', async () => {
    const sb = await load(source, {}, { budget: 200 });
    const err = pluginError(() => sb.call('ops.fault', [0x1000]));
    expect(err.kind).toBe('timeout');
    expect(err.callback).toBe('ops.fault');
    expect(err.file).toBe('driver.ts');
    // QuickJS places the interrupt at the loop, or at the start of the function it spins in.
    expect([positionOf(source, 'fault').line, positionOf(source, 'while').line]).toContain(err.line);
    expect(err.message).toMatch(
      /^driver\.ts:\d+:\d+: ops\.fault: ran past its budget of 200 interrupt polls/,
    );
    expect(sb.pollsUsed).toBeGreaterThan(200);
    await expectStoppedButHostFine(sb, source, 'ops.fault');
  });

  it('cuts a loop at the same point on every run: the budget is deterministic', async () => {
    const progress = ts`
      import { tick } from 'hmm-lab';
      export function spin(): void {
        for (let i = 0; ; i++) if (i % 1000 === 0) tick(i);
      }
    `;
    const last: number[] = [];
    for (let run = 0; run < 2; run++) {
      let seen = -1;
      const sb = await load(progress, { tick: (i) => void (seen = i as number) }, { budget: 50 });
      expect(pluginError(() => sb.call('spin')).kind).toBe('timeout');
      last.push(seen);
    }
    expect(last[0]).toBeGreaterThan(0);
    expect(last[1]).toBe(last[0]);
  });

  it('stops a loop in the module body at load, naming the function it spins in', async () => {
    const body = ts`
      const table: number[] = [];
      function fill(): void {
        for (;;) table.length = 0;
      }
      fill();
      export function probe(): number { return 0; }
    `;
    const err = await loadError(load(body, {}, { budget: 50 }));
    expect(err).toMatchObject({ kind: 'timeout', callback: '<load>' });
    expect([2, 3]).toContain(err.line);
    expect(err.pluginStack?.split('\n').map((l) => l.replace(/:\d+:\d+\)$/, ')'))).toEqual([
      '    at fill (driver.ts)',
      '    at <anonymous> (driver.ts)',
    ]);
  });

  it('lets a callback that finishes within budget run every time', async () => {
    const sb = await load(
      ts`
        export function busy(n: number): number {
          let s = 0;
          for (let i = 0; i < n; i++) s += i;
          return s;
        }
      `,
      {},
      { budget: 50 },
    );
    for (let i = 0; i < 20; i++) expect(sb.call('busy', [10_000])).toBe(49_995_000);
  });
});

describe('stack budget', () => {
  it('stops unbounded recursion at the recursive call', async () => {
    const source = ts`
      function walk(depth: number): number {
        return walk(depth + 1) + 1;
      }
      export function release(): number {
        return walk(0);
      }
    `;
    const sb = await load(source);
    const err = pluginError(() => sb.call('release'));
    expect(err.kind).toBe('stack');
    expect(err.callback).toBe('release');
    expect(err.line).toBe(2);
    expect(err.reason).toBe('recursed past its stack limit of 262144 bytes');
    expect(err.pluginStack?.split('\n')[0]).toBe(`    at walk (driver.ts:2:${err.column})`);
    await expectStoppedButHostFine(sb, source, 'release');
  });

  it('stops recursion inside a built-in that overflows the native stack first, dropping the engine', async () => {
    const source = ts`
      export function free(): number {
        let nest: unknown[] = [];
        for (let i = 0; i < 200000; i++) nest = [nest];
        return JSON.stringify(nest).length;
      }
    `;
    const bystander = await load(HEALTHY);
    const sb = await load(source, {}, { budget: 100_000 });
    const err = pluginError(() => sb.call('free'));
    expect(err.kind).toBe('stack');
    expect(err.callback).toBe('free');
    await expectStoppedButHostFine(sb, source, 'free');
    // Each sandbox has its own engine instance: a trap in one leaves the other whole.
    expect(bystander.call('add', [20, 22])).toBe(42);
  });

  it('lets a plugin catch a stack overflow it provoked and carry on', async () => {
    const sb = await load(ts`
      function down(n: number): number { return down(n + 1); }
      export function probe(): string {
        try { return String(down(0)); } catch (e) { return (e as Error).message; }
      }
    `);
    expect(sb.call('probe')).toBe('stack overflow');
    expect(sb.call('probe')).toBe('stack overflow');
    expect(sb.stopped).toBeUndefined();
  });
});

describe('memory budget', () => {
  const bombs: Record<string, string> = {
    'a growing array': ts`
      export function alloc_and_copy(): number {
        const pages: string[] = [];
        for (;;) pages.push('page ' + pages.length + ' '.repeat(100));
      }
    `,
    'a doubling string': ts`
      export function alloc_and_copy(): number {
        let s: string = 'x';
        for (;;) s = s + s + '.';
      }
    `,
    'a huge typed array': ts`
      export function alloc_and_copy(): number {
        const vram = new Uint8Array(1 << 30);
        return vram.length;
      }
    `,
    'a map of objects': ts`
      export function alloc_and_copy(): number {
        const m = new Map<number, { pfn: number }>();
        for (let i = 0; ; i++) m.set(i, { pfn: i });
      }
    `,
  };
  for (const [name, source] of Object.entries(bombs)) {
    it(`stops ${name} at its memory limit`, async () => {
      const sb = await load(source, {}, { memoryLimit: 8 * 2 ** 20, budget: 100_000 });
      const err = pluginError(() => sb.call('alloc_and_copy'));
      expect(err.kind).toBe('memory');
      expect(err.callback).toBe('alloc_and_copy');
      // At the allocation; or, when QuickJS could not even build the error, at the callback.
      expect(err.line).toBeLessThanOrEqual(3);
      await expectStoppedButHostFine(sb, source, 'alloc_and_copy');
    });
  }
});
