// migrate_vma over ranges wider than a page table (the walk keeps its place per PMD), with
// holes that need new tables, and the dmirror structures the migration path leans on: the
// device page table's node cache and the device page LRU.
import { describe, it, expect } from 'vitest';
import { warnings } from '../helpers';
import {
  PS,
  anonRss,
  bootDmirror,
  devicePageAt,
  loadAll,
  mapAnon,
  pattern,
  storePattern,
  task,
} from './dmirror-machine';
import { DevicePagePool, DevicePageTable, DPT_KEEP, DPT_UNMAP } from '../../../src-main/drivers/dmirror';
import { page_count, page_mapcount } from '../../../src-main/kernel/include/mm';

/** Pages per PMD (x86-64). */
const PMD_PAGES = 512;

describe('mm/migrate.c: migrate_vma over several page tables in one call', () => {
  it('a 3-PMD batch starting mid-table moves every page and back, with rss and refcounts kept', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const n = 3 * PMD_PAGES;
    const addr = mapAnon(k, t, n + PMD_PAGES);
    // Start 100 pages into a table so that the batch crosses table boundaries unaligned.
    const start = addr + 100 * PS;
    storePattern(k, t, start, n, 5);
    d.batch = n;
    expect(d.migrate(t, start, n)).toEqual({ ret: 0, cpages: n });
    for (let i = 0; i < n; i++) {
      const page = devicePageAt(k, t, start + i * PS);
      expect(d.device_page(t.mm!, start + i * PS)).toBe(page);
      expect([page_count(k, page), page_mapcount(k, page)]).toEqual([2, 1]);
    }
    expect(d.migrate_to_sys(t, start, n)).toEqual({ ret: 0, cpages: n });
    expect(loadAll(k, t, start, n)).toEqual(pattern(n, 5));
    expect(anonRss(t)).toBe(n);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
    expect(warnings(k)).toEqual([]);
  });

  it('holes across PMDs without page tables get device pages, the tables allocated on the way', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const n = 2 * PMD_PAGES + 7;
    const addr = mapAnon(k, t, n);
    const tables = t.mm!.nr_ptes;
    d.batch = n;
    expect(d.migrate(t, addr, n)).toEqual({ ret: 0, cpages: n });
    expect(t.mm!.nr_ptes).toBeGreaterThan(tables);
    expect(anonRss(t)).toBe(n);
    // A hole arrives as zeroes; CPU reads fault every page home.
    expect(loadAll(k, t, addr, n)).toEqual(new Array<number>(n).fill(0));
    expect(d.faults).toBe(n);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
    expect(warnings(k)).toEqual([]);
  });

  it('the device faults a range in 256-page hmm_range_fault batches and maps every page', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const n = 1000;
    const addr = mapAnon(k, t, n);
    storePattern(k, t, addr, n, 9);
    d.range_pages = 256;
    const res = d.read(t, addr, n);
    expect([res.ret, res.cpages, res.faults]).toEqual([0, n, 1]);
    for (let i = 0; i < n; i++) expect(k.mem.stamp[d.device_page(t.mm!, addr + i * PS)]).toBe(9 + i);
  });
});

describe('dmirror: the device page table and the device page LRU', () => {
  it('the page table keeps entries of several nodes apart, and forgets its cached node on clear', () => {
    const pt = new DevicePageTable();
    pt.set(5, 10);
    pt.set(512 + 5, 20);
    pt.set(7, 30);
    expect([pt.get(5), pt.get(512 + 5), pt.get(7), pt.get(6), pt.get(4096)]).toEqual([
      10,
      20,
      30,
      undefined,
      undefined,
    ]);
    pt.delete(512 + 5);
    pt.delete(512 + 6);
    expect([pt.get(512 + 5), pt.size]).toEqual([undefined, 2]);
    pt.clear();
    expect([pt.get(5), pt.size]).toEqual([undefined, 0]);
    pt.set(5, 1);
    expect([pt.get(5), pt.get(7), pt.size]).toEqual([1, undefined, 1]);
  });

  it('range stores and lookups across node boundaries match page-by-page sets, deletes and gets', () => {
    const pt = new DevicePageTable();
    const byPage = new DevicePageTable();
    // Pages 500..1100 span three nodes; node 1 exists before, node 2 only through the store.
    for (const [vpn, v] of [
      [505, 7],
      [600, 8],
      [700, 9],
      [1000, 10],
    ] as const) {
      pt.set(vpn, v);
      byPage.set(vpn, v);
    }
    const first = 500;
    const n = 600;
    const values = new Float64Array(n).fill(DPT_KEEP);
    values[5] = DPT_UNMAP; // 505: dropped
    values[6] = DPT_UNMAP; // 506: nothing there, still nothing
    values[100] = 42; // 600: replaced
    values[11] = 0; // 511: page 0, the last entry of node 0
    values[12] = 3; // 512: the first of node 1
    values[599] = 5; // 1099: a node made by the store
    pt.store_range(first, n, values);
    for (let i = 0; i < n; i++) {
      if (values[i] === DPT_UNMAP) byPage.delete(first + i);
      else if (values[i] !== DPT_KEEP) byPage.set(first + i, values[i]!);
    }
    const out = new Float64Array(n + 2);
    pt.lookup_range(first - 1, n + 2, out);
    for (let i = 0; i < n + 2; i++) expect(out[i]).toBe(byPage.get(first - 1 + i) ?? -1);
    expect([pt.size, pt.get(600), pt.get(1099), pt.get(505)]).toEqual([byPage.size, 42, 5, undefined]);
    expect(pt.size).toBe(6);
  });

  it('the free pool hands out new pages in pfn order, then the last given back first, and warns past its size', () => {
    const { k, d } = bootDmirror();
    const first = d.devmem.pfn_first;
    const pool = new DevicePagePool(k, first, first + 2);
    const page = (i: number): number => k.mem.pfn_to_page(first + i);
    expect([pool.alloc(), pool.alloc(), pool.alloc(), pool.nr_free]).toEqual([page(0), page(1), -1, 0]);
    pool.free(page(0));
    pool.free(page(1));
    expect(pool.nr_free).toBe(2);
    pool.free(page(1));
    expect(pool.nr_free).toBe(2);
    expect(k.log.lines().some((l) => l.text.includes('freed twice'))).toBe(true);
    expect([pool.alloc(), pool.alloc(), pool.alloc()]).toEqual([page(1), page(0), -1]);
  });

  it('the LRU lists pages in the order they were added, once each, and unlinks any of them', () => {
    const { k, d } = bootDmirror();
    const first = d.devmem.pfn_first;
    const pool = new DevicePagePool(k, first, first + 16);
    const page = (i: number): number => k.mem.pfn_to_page(first + i);
    for (const i of [3, 1, 4, 1, 5, 9, 2, 6]) pool.lru.add(page(i));
    expect([...pool.lru]).toEqual([3, 1, 4, 5, 9, 2, 6].map(page));
    pool.lru.delete(page(3));
    pool.lru.delete(page(9));
    pool.lru.delete(page(6));
    pool.lru.delete(page(7));
    expect([...pool.lru]).toEqual([1, 4, 5, 2].map(page));
    pool.lru.add(page(3));
    expect([...pool.lru]).toEqual([1, 4, 5, 2, 3].map(page));
    for (const i of [1, 4, 5, 2, 3]) pool.lru.delete(page(i));
    expect([...pool.lru]).toEqual([]);
  });
});
