// Calling in and out: many calls, a callback that calls the kernel which calls the plugin again, and
// the sandbox's life (dispose, a fresh load after a fault) and its use from a worker thread.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { PluginError, PluginSandbox, returns } from '../../../src-main/drivers/sandbox';
import { HEALTHY, load, pluginError, ts } from './helpers';

describe('calls', () => {
  it('completes 10,000 fault callbacks, each calling back into the host', async () => {
    let charged = 0;
    const sb = await load(
      ts`
        import { charge } from 'hmm-lab';
        export function fault(addr: number, write: boolean): number {
          charge(write ? 2 : 1);
          return (addr >> 12) & 0xff;
        }
      `,
      { charge: (n) => void (charged += n as number) },
    );
    let sum = 0;
    let expected = 0;
    for (let i = 0; i < 10_000; i++) {
      sum += sb.call('fault', [i * 4096, i % 2 === 0], returns.int) as number;
      expected += i & 0xff;
    }
    expect(sum).toBe(expected);
    expect(charged).toBe(15_000);
  });

  it('lists the exported callbacks, including members of exported objects', async () => {
    const sb = await load(ts`
      export function probe(): number { return 0; }
      export const mirror_ops = { sync_cpu_device_pagetables(): void {}, release(): void {} };
      export const DEVICE_NAME = 'dummy';
      export default { free(): void {} };
    `);
    expect([...sb.callbacks].sort()).toEqual([
      'default.free',
      'mirror_ops.release',
      'mirror_ops.sync_cpu_device_pagetables',
      'probe',
    ]);
    expect(sb.has('probe')).toBe(true);
    expect(sb.has('DEVICE_NAME')).toBe(false);
    expect(() => sb.call('DEVICE_NAME')).toThrow('driver.ts exports no function DEVICE_NAME');
  });

  it('re-enters: fault() calls the kernel, which calls the plugin’s alloc_and_copy()', async () => {
    const sb: PluginSandbox = await load(
      ts`
        import { migrate_vma } from 'hmm-lab';
        let copied = 0;
        export function fault(start: number, npages: number): number {
          return migrate_vma(start, npages) as number;
        }
        export function alloc_and_copy(src: number[]): number[] {
          copied += src.length;
          return src.map((pfn) => pfn + 0x100000);
        }
        export function total(): number { return copied; }
      `,
      {
        migrate_vma: (start, npages) => {
          const src = Array.from({ length: npages as number }, (_, i) => (start as number) + i);
          const dst = sb.call('alloc_and_copy', [src]) as number[];
          return dst.length;
        },
      },
    );
    expect(sb.call('fault', [0x10, 16])).toBe(16);
    expect(sb.call('fault', [0x20, 4])).toBe(4);
    expect(sb.call('total')).toBe(20);
  });

  it('stops the whole nesting when the inner callback runs away, naming the inner one', async () => {
    const sb: PluginSandbox = await load(
      ts`
        import { migrate_vma } from 'hmm-lab';
        export function fault(): number {
          try {
            migrate_vma();
          } catch {
            // A plugin cannot swallow the fault of a nested callback.
          }
          for (;;) {}
        }
        export function alloc_and_copy(): void {
          for (;;) {}
        }
      `,
      { migrate_vma: () => sb.call('alloc_and_copy') },
      { budget: 100 },
    );
    const err = pluginError(() => sb.call('fault'));
    expect(err).toMatchObject({ kind: 'timeout', callback: 'alloc_and_copy' });
    expect(sb.stopped).toBe(err);
    expect(pluginError(() => sb.call('fault')).kind).toBe('stopped');
  });

  it('fails every call after dispose()', async () => {
    const sb = await load(HEALTHY);
    expect(sb.call('add', [1, 2])).toBe(3);
    sb.dispose();
    const err = pluginError(() => sb.call('add', [1, 2]));
    expect(err.kind).toBe('stopped');
    expect(err.reason).toBe('the plugin was stopped by dispose()');
  });

  it('gives Math.random the session’s seed, so runs repeat', async () => {
    const source = ts`export function roll(): number[] { return [Math.random(), Math.random()]; }`;
    const a = await load(source, {}, { seed: 7 });
    const b = await load(source, {}, { seed: 7 });
    const c = await load(source, {}, { seed: 8 });
    const first = a.call('roll');
    expect(b.call('roll')).toEqual(first);
    expect(c.call('roll')).not.toEqual(first);
  });

  it('keeps the user’s source exactly as given', async () => {
    const source = ts`
      export function probe(): number {
        return 1; // a comment the compiler drops
      }
    `;
    const sb = await load(source);
    expect(sb.source).toBe(source);
  });
});

describe('in a worker thread', () => {
  it('runs a plugin and stops a runaway one there, as the lab worker will', async () => {
    const entry = new URL('./worker-entry.ts', import.meta.url);
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); });`;
    const worker = new Worker(bootstrap, { eval: true });
    const result = await new Promise<unknown>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(result).toMatchObject({ sum: 5, fault: { kind: 'timeout', callback: 'spin' } });
    expect([2, 3]).toContain((result as { fault: { line: number } }).fault.line);
  });
});

it('PluginError is exported for hosts to test against', () => {
  expect(
    new PluginError({ kind: 'throw', callback: 'x', message: 'm', file: 'f.ts', line: 1, column: 2 }).message,
  ).toBe('f.ts:1:2: x: m');
});
