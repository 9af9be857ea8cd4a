// The driver API's batch helpers: a batch's per-page work done host side in one call, with the
// kernel's semantics (the pages, flags and dst entries a driver's own loop would make) and its
// rules (bad handles and calls out of place are -EINVAL, forged range entries are never mapped).
// And Float64Arrays crossing the wall, which the batches travel in.
import { describe, expect, it } from 'vitest';
import { check_mirror_coherence, cpu_view_of } from '../../../src-main/kernel/mm/debug_vm';
import { PluginError, PluginSandbox } from '../../../src-main/drivers/sandbox';
import { ANON, PAGE, int32s, pluginLab, smallMachine, ts } from './helpers';

/**
 * A driver built on the batch helpers: `migrate` / `home` move the range, `fault_in` maps it
 * through hmm_range_fault and device_pt_map_pfns; `probe_api` runs `a.op`, one misuse, and
 * answers the errno it threw.
 */
const DRIVER = ts`
  import {
    PAGE_SIZE, VM_FAULT_SIGBUS, device_pt_lookup_range, device_pt_map_migrated, device_pt_map_pfns,
    devmem_nr_free, devmem_pages_in_use, devmem_pfn_first, find_vma, get_page, hmm_devmem_add,
    hmm_mirror_register, pfn_to_page, put_page,
    hmm_range_alloc, hmm_range_fault, hmm_range_pfns, hmm_range_register, hmm_range_set_pfns,
    hmm_range_unregister, migrate_alloc_devmem_pages, migrate_alloc_system_pages, migrate_vma,
    vma_mm,
  } from 'hmm-lab';
  let devmem = 0;
  const mirrors = new Map<number, number>();
  let mode = '';
  let seen: number[] = [];
  export function probe(dev: { memory: number }): number {
    devmem = hmm_devmem_add(dev.memory);
    return devmem < 0 ? devmem : 0;
  }
  export function open(mm: number): number {
    const m = hmm_mirror_register(mm);
    if (m < 0) return m;
    mirrors.set(mm, m);
    return 0;
  }
  export function alloc_and_copy(vma: number, src: Float64Array, _s: number, _e: number, priv: number): number[] | void {
    seen = [src.length, Object.prototype.toString.call(src) === '[object Float64Array]' ? 1 : 0];
    if (mode === 'throw') {
      migrate_alloc_devmem_pages(devmem);
      throw new Error('after the helper');
    }
    const n = priv === 0 ? migrate_alloc_devmem_pages(devmem) : migrate_alloc_system_pages();
    seen.push(n);
    if (mode === 'return') return new Array(src.length).fill(0);
  }
  export function finalize_and_map(vma: number, _src: Float64Array, _dst: Float64Array): void {
    const mm = vma_mm(vma);
    const other = [...mirrors.keys()].find((m) => m !== mm) ?? mm;
    seen.push(device_pt_map_migrated(mode === 'count' ? 0 : mirrors.get(mode === 'other' ? other : mm)!));
  }
  export function fault(vma: number, addr: number): number {
    const start = addr - (addr % PAGE_SIZE);
    return migrate_vma(vma, start, start + PAGE_SIZE, 1) ? VM_FAULT_SIGBUS : 0;
  }
  export function sync_cpu_device_pagetables(): number {
    return 0;
  }
  type Args = { mm: number; addr: number; pages: number };
  function move(a: Args, dir: number, m = '') {
    mode = m;
    seen = [];
    const ret = migrate_vma(find_vma(a.mm, a.addr), a.addr, a.addr + a.pages * PAGE_SIZE, dir);
    return { ret, seen, free: devmem_nr_free(devmem), inUse: Array.from(devmem_pages_in_use(devmem)) };
  }
  function faultIn(a: Args, m = '') {
    const r = hmm_range_alloc(a.pages, [1, 2, 4], [8, 0, 10], 4);
    hmm_range_register(r, mirrors.get(a.mm)!, a.addr, a.addr + a.pages * PAGE_SIZE);
    hmm_range_set_pfns(r, new Float64Array(a.pages).fill(m === 'forge' ? 0x100 * 16 + 1 : 1));
    if (m !== 'forge') hmm_range_fault(r, true);
    if (m === 'store') hmm_range_set_pfns(r, hmm_range_pfns(r));
    const ret = device_pt_map_pfns(mirrors.get(a.mm)!, r, false);
    hmm_range_unregister(r);
    return ret < 0 ? { ret } : { ret: 0, cpages: ret };
  }
  function misuse(call: () => void) {
    try {
      call();
      return { ret: 0 };
    } catch (e) {
      return { ret: (e as { errno?: number }).errno ?? -1, message: (e as Error).message };
    }
  }
  export const commands = {
    migrate: (a: Args) => move(a, 0),
    migrate_count: (a: Args) => move(a, 0, 'count'),
    migrate_return: (a: Args) => move(a, 0, 'return'),
    migrate_throw: (a: Args) => move(a, 0, 'throw'),
    migrate_other: (a: Args) => move(a, 0, 'other'),
    home: (a: Args) => move(a, 1),
    lookup(a: Args) {
      const e = device_pt_lookup_range(mirrors.get(a.mm)!, a.addr, a.pages);
      return { ret: 0, entries: Array.from(e), missing: e.indexOf(-1) };
    },
    fault_in: (a: Args) => faultIn(a),
    fault_forge: (a: Args) => faultIn(a, 'forge'),
    fault_store: (a: Args) => faultIn(a, 'store'),
    outside: () => misuse(() => migrate_alloc_devmem_pages(devmem)),
    outside_sys: () => misuse(() => migrate_alloc_system_pages()),
    outside_map: () => misuse(() => device_pt_map_migrated(0)),
    bad_devmem: () => misuse(() => migrate_alloc_devmem_pages(devmem + 1000)),
    bad_range: (a: Args) => misuse(() => device_pt_lookup_range(mirrors.get(a.mm)!, a.addr + 1, 1)),
    too_many: (a: Args) => misuse(() => device_pt_lookup_range(mirrors.get(a.mm)!, a.addr, 65_537)),
    // Takes the device's first page by hand (get_page), or gives it back.
    grab: () => {
      get_page(pfn_to_page(devmem_pfn_first(devmem)));
      return { ret: 0, page: pfn_to_page(devmem_pfn_first(devmem)) };
    },
    drop: () => {
      put_page(pfn_to_page(devmem_pfn_first(devmem)));
      return { ret: 0, oldest: Array.from(devmem_pages_in_use(devmem, 1)) };
    },
  };
`;

async function lab(pages = 8) {
  const l = await pluginLab(
    smallMachine([{ name: 'gpu0', kind: 'private', memory: '128M', driver: 'plugin:dmirror' }]),
    { 'device:gpu0': { name: 'batch', filename: 'batch.ts', source: DRIVER } },
  );
  l.op({ op: 'spawn', proc: 'p' });
  l.op({ op: 'mmap', proc: 'p', name: 'buf', length: pages * PAGE, ...ANON });
  l.op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
  expect(l.op({ op: 'open', proc: 'p', device: 'gpu0' })).toMatchObject({ ret: 0 });
  return l;
}

const cmd = (name: string, extra: Record<string, unknown> = {}) => ({
  op: 'device',
  proc: 'p',
  device: 'gpu0',
  cmd: name,
  at: 'buf',
  ...extra,
});

/** The extra fields of a plugin command's result. */
function extra(r: unknown): Record<string, unknown> {
  return r as Record<string, unknown>;
}

describe('batch helpers: migrate_alloc_devmem_pages, migrate_alloc_system_pages, device_pt_map_migrated', () => {
  it('move a batch to device memory and home with the kernel’s entries; data, stamps and the device page table follow', async () => {
    const l = await lab();
    const total = l.plugin('gpu0').memory().pages;
    const to = extra(l.op(cmd('migrate')));
    // src crossed as a Float64Array of 8; 8 pages allocated; 8 mapped by finalize.
    expect(to).toMatchObject({ ret: 0, seen: [8, 1, 8, 8], free: total - 8 });
    expect((to.inUse as number[]).length).toBe(8);
    const task = l.u.procs.get('p')!;
    const base = l.u.mappings.get('buf')!.addr;
    for (let i = 0; i < 8; i++)
      expect(cpu_view_of(l.k, task.mm!, base + i * PAGE)).toMatchObject({ kind: 'device', write: true });
    expect(check_mirror_coherence(l.k)).toEqual([]);
    const pt = l.plugin('gpu0').pageTable(task.mm!)!;
    expect(pt.size).toBe(8);
    // The device pages hold the data (the DMA batch copied it).
    const first = Math.floor(pt.get(base / PAGE)! / 2);
    expect(l.k.mem.stamp[first]).toBeGreaterThan(0);

    const home = extra(l.op(cmd('home', { pages: 4 })));
    expect(home).toMatchObject({ ret: 0, seen: [4, 1, 4, 4], free: total - 4 });
    expect(pt.size).toBe(4);
    expect(cpu_view_of(l.k, task.mm!, base).kind).toBe('page');
    // The CPU fault brings the rest home through the same helper.
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', offset: 6 * PAGE, length: 8 }))).toEqual([
      6 * 1024,
      6 * 1024 + 1,
    ]);
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', length: 8 }))).toEqual([0, 1]);
    expect(l.reports).toEqual([]);
  });

  it('devmem_pages_in_use lists the pages handed out, least recently first; freed pages are reused', async () => {
    const l = await lab();
    const a = extra(l.op(cmd('migrate', { pages: 2 })));
    const b = extra(l.op(cmd('migrate', { offset: 4 * PAGE, pages: 2 })));
    expect(b.inUse).toEqual([...(a.inUse as number[]), ...(b.inUse as number[]).slice(2)]);
    l.op(cmd('home', { pages: 2 }));
    const c = extra(l.op(cmd('migrate', { offset: 2 * PAGE, pages: 2 })));
    // The two pages given back come out again (LIFO, as dmirror's free list).
    expect(new Set((c.inUse as number[]).slice(2))).toEqual(new Set(a.inUse as number[]));
    expect(l.reports).toEqual([]);
  });

  it('a page the plugin holds by other means is not handed out; devmem_pages_in_use takes a max', async () => {
    const l = await lab();
    const page = extra(l.op(cmd('grab'))).page as number;
    const r = extra(l.op(cmd('migrate', { pages: 4 })));
    expect(r).toMatchObject({ ret: 0, seen: [4, 1, 4, 4] });
    expect(r.inUse).toHaveLength(4);
    expect(r.inUse).not.toContain(page);
    expect(extra(l.op(cmd('drop'))).oldest).toEqual((r.inUse as number[]).slice(0, 1));
    expect(l.reports).toEqual([]);
  });

  it('a hole migrates as zeroes, writable in a writable vma; mirror 0 only counts', async () => {
    const l = await lab();
    l.op({ op: 'mmap', proc: 'p', name: 'hole', length: 2 * PAGE, ...ANON });
    const r = extra(l.op({ ...cmd('migrate_count'), at: 'hole' }));
    expect(r).toMatchObject({ ret: 0, seen: [2, 1, 2, 2] });
    const task = l.u.procs.get('p')!;
    expect(cpu_view_of(l.k, task.mm!, l.u.mappings.get('hole')!.addr)).toMatchObject({
      kind: 'device',
      write: true,
    });
    expect(l.plugin('gpu0').pageTable(task.mm!)?.size ?? 0).toBe(0);
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'hole', length: 8 }))).toEqual([0, 0]);
  });

  it('outside their callbacks, or with a handle that is not a devmem, the helpers throw -EINVAL', async () => {
    const l = await lab();
    for (const name of ['outside', 'outside_sys', 'outside_map', 'bad_devmem'])
      expect(extra(l.op(cmd(name)))).toMatchObject({ ret: '-EINVAL' });
    expect(extra(l.op(cmd('outside'))).message).toMatch(/only inside alloc_and_copy/);
    expect(extra(l.op(cmd('outside_map'))).message).toMatch(/only inside finalize_and_map/);
    expect(l.plugin('gpu0').memory().free).toBe(l.plugin('gpu0').memory().pages);
  });

  it('dst entries returned after a helper filled dst are ignored with a warning; the helper’s entries stand', async () => {
    const l = await lab();
    expect(extra(l.op(cmd('migrate_return', { pages: 2 })))).toMatchObject({ ret: 0 });
    expect(l.reports).toHaveLength(1);
    expect(l.reports[0]).toMatchObject({ kind: 'rule', callback: 'alloc_and_copy' });
    expect(l.reports[0]!.message).toMatch(
      /returned dst entries after a batch helper filled dst; the returned entries are ignored/,
    );
    const task = l.u.procs.get('p')!;
    expect(cpu_view_of(l.k, task.mm!, l.u.mappings.get('buf')!.addr).kind).toBe('device');
  });

  it('alloc_and_copy throwing after a helper filled dst: nothing migrates, the device pages are free again', async () => {
    const l = await lab();
    l.op(cmd('migrate_throw', { pages: 4 }));
    expect(l.reports[0]).toMatchObject({
      kind: 'throw',
      callback: 'alloc_and_copy',
      message: 'after the helper',
    });
    const task = l.u.procs.get('p')!;
    expect(cpu_view_of(l.k, task.mm!, l.u.mappings.get('buf')!.addr).kind).toBe('page');
    const mem = l.plugin('gpu0').memory();
    expect(mem.free).toBe(mem.pages);
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', offset: PAGE, length: 4 }))).toEqual([1024]);
  });
});

describe('device_pt_map_migrated: only a mirror of the migrated mm', () => {
  it('a mirror of another process throws -EINVAL in finalize_and_map; the pages still move, unmapped', async () => {
    const l = await lab();
    l.op({ op: 'spawn', proc: 'q' });
    expect(l.op({ op: 'open', proc: 'q', device: 'gpu0' })).toMatchObject({ ret: 0 });
    l.op(cmd('migrate_other', { pages: 2 }));
    expect(l.reports[0]).toMatchObject({ kind: 'throw', callback: 'finalize_and_map' });
    expect(l.reports[0]!.message).toMatch(/does not mirror the migrated mm/);
    const task = l.u.procs.get('p')!;
    expect(l.plugin('gpu0').pageTable(task.mm!)?.size ?? 0).toBe(0);
    expect(check_mirror_coherence(l.k)).toEqual([]);
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', offset: PAGE, length: 4 }))).toEqual([1024]);
  });
});

describe('device_pt_map_pfns and device_pt_lookup_range', () => {
  it('maps what hmm_range_fault filled, as the CPU maps it; lookup_range reads it back, -1 where none', async () => {
    const l = await lab();
    expect(l.op(cmd('fault_in', { pages: 6 }))).toMatchObject({ ret: 0, cpages: 6 });
    expect(check_mirror_coherence(l.k)).toEqual([]);
    const r = extra(l.op(cmd('lookup')));
    expect(r.missing).toBe(6);
    const task = l.u.procs.get('p')!;
    const base = l.u.mappings.get('buf')!.addr;
    const entries = r.entries as number[];
    for (let i = 0; i < 6; i++) {
      const cpu = cpu_view_of(l.k, task.mm!, base + i * PAGE) as { pfn: number; write: boolean };
      expect(entries[i]).toBe(l.k.mem.pfn_to_page(cpu.pfn) * 2 + (cpu.write ? 1 : 0));
    }
    expect(entries.slice(6)).toEqual([-1, -1]);
  });

  it('never maps entries the plugin wrote itself, only the kernel’s: -EAGAIN', async () => {
    const l = await lab();
    expect(l.op(cmd('fault_forge', { pages: 4 }))).toMatchObject({ ret: '-EAGAIN' });
    expect(l.op(cmd('fault_store', { pages: 4 }))).toMatchObject({ ret: '-EAGAIN' });
    expect(extra(l.op(cmd('lookup'))).missing).toBe(0);
  });

  it('lookup_range refuses an unaligned or oversized range with -EINVAL', async () => {
    const l = await lab();
    expect(extra(l.op(cmd('bad_range')))).toMatchObject({ ret: '-EINVAL' });
    expect(extra(l.op(cmd('too_many')))).toMatchObject({ ret: '-EINVAL' });
  });
});

describe('Float64Arrays across the wall', () => {
  const api = {
    give: () => Float64Array.from([5, 6, 7]),
    take: (v: unknown) => {
      taken.push(v);
    },
  };
  const taken: unknown[] = [];

  it('the host’s enter as Float64Arrays; the plugin’s reach the host as arrays of numbers', async () => {
    const sb = await PluginSandbox.load(
      ts`
        import { give, take } from 'hmm-lab';
        export function f(x: Float64Array): string {
          const g = give();
          take(g.subarray(1));
          return [Object.prototype.toString.call(x), x.length, x[2], g[0]].join(',');
        }
        export function back(): Float64Array {
          return new Float64Array([1.5, -2]);
        }
      `,
      'f64.ts',
      api,
    );
    taken.length = 0;
    expect(sb.call('f', [Float64Array.from([1, 2, 3])])).toBe('[object Float64Array],3,3,5');
    expect(taken).toEqual([[6, 7]]);
    expect(sb.call('back')).toEqual([1.5, -2]);
  });

  it('NaN or Infinity in a Float64Array does not leave the plugin: bad-value', async () => {
    const sb = await PluginSandbox.load(
      ts`
        import { take } from 'hmm-lab';
        export function nan(): Float64Array {
          return new Float64Array([1, NaN]);
        }
        export function inf(): number {
          try {
            take(new Float64Array([Infinity]));
          } catch (e) {
            return (e as Error).name === 'TypeError' ? 1 : 0;
          }
          return 2;
        }
      `,
      'nan.ts',
      api,
    );
    let err: unknown;
    try {
      sb.call('nan');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PluginError);
    expect(err).toMatchObject({ kind: 'bad-value' });
    expect((err as PluginError).message).toMatch(/result\[1\]: NaN is not a finite number/);
    expect(sb.call('inf')).toBe(1);
  });
});
