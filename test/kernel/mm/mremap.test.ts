import { describe, it, expect } from 'vitest';
import { bootSmall, M, PAGE } from '../helpers';
import {
  ANON,
  deviceMemory,
  installDeviceEntry,
  load,
  map,
  nr_free_pages,
  pageAt,
  pmdAt,
  pteAt,
  rss,
  spawn,
  store,
  storeSignal,
  tmpfsFile,
  vma,
} from './address_space';
import { EFAULT, EINVAL, ENOMEM } from '../../../src-main/kernel/include/errno';
import { MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED } from '../../../src-main/kernel/mm/mmap';
import { do_mremap, MREMAP_FIXED, MREMAP_MAYMOVE } from '../../../src-main/kernel/mm/mremap';
import { do_madvise, MADV_HUGEPAGE } from '../../../src-main/kernel/mm/madvise';
import { vma_address } from '../../../src-main/kernel/mm/rmap';
import { pmd_trans_huge, pte_pfn, pte_soft_dirty } from '../../../src-main/kernel/include/pgtable';
import {
  pte_swp_soft_dirty,
  pte_to_swp_entry,
  swp_offset,
  swp_type,
} from '../../../src-main/kernel/include/swapops';
import { page_count, page_mapcount } from '../../../src-main/kernel/include/mm';

const HPAGE = 2 * M;

function fillPages(k: ReturnType<typeof bootSmall>, p: ReturnType<typeof spawn>, a: number, n: number): void {
  for (let i = 0; i < n; i++) store(k, p, a + i * PAGE, [i + 1, 0xee]);
}

describe('mm/mremap.c: do_mremap', () => {
  it('shrinking unmaps the tail in place', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 4 * PAGE });
    fillPages(k, p, a, 4);
    const free = nr_free_pages(k);
    expect(do_mremap(k, p.mm!, a, 4 * PAGE, 2 * PAGE, 0)).toBe(a);
    expect(vma(p, a).vm_end).toBe(a + 2 * PAGE);
    expect(rss(p.mm!).anon).toBe(2);
    expect(nr_free_pages(k)).toBe(free + 2);
    expect(load(k, p, a + PAGE, 2)).toEqual([2, 0xee]);
    expect(storeSignal(k, p, a + 2 * PAGE)).toBe('SIGSEGV');
  });

  it('growing extends the vma in place when the space after it is free', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 2 * PAGE });
    fillPages(k, p, a, 2);
    expect(do_mremap(k, p.mm!, a, 2 * PAGE, 5 * PAGE, 0)).toBe(a);
    expect(p.mm!.mmap.length).toBe(1);
    expect(vma(p, a).vm_end).toBe(a + 5 * PAGE);
    expect(load(k, p, a + PAGE, 1)).toEqual([2]);
    expect(load(k, p, a + 4 * PAGE, 1)).toEqual([0]);
    store(k, p, a + 4 * PAGE, [5]);
    expect(rss(p.mm!).anon).toBe(3);
  });

  it('growing into a mapped area without MREMAP_MAYMOVE is -ENOMEM', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 2 * PAGE });
    map(k, p, { addr: a + 2 * PAGE, len: PAGE });
    expect(do_mremap(k, p.mm!, a, 2 * PAGE, 3 * PAGE, 0)).toBe(-ENOMEM);
    expect(vma(p, a).vm_end).toBe(a + 2 * PAGE);
  });

  it('MREMAP_MAYMOVE moves the mapping: same pages with their data, rss unchanged, rmap finds them at the new address', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 3 * PAGE });
    map(k, p, { addr: a + 3 * PAGE, len: PAGE });
    fillPages(k, p, a, 3);
    const pages = [0, 1, 2].map((i) => pageAt(k, p.mm!, a + i * PAGE));
    const free = nr_free_pages(k);
    const before = rss(p.mm!);
    const n = do_mremap(k, p.mm!, a, 3 * PAGE, 6 * PAGE, MREMAP_MAYMOVE);
    expect(n).not.toBe(a);
    expect(n).toBeGreaterThan(0);
    expect(rss(p.mm!)).toEqual(before);
    expect(nr_free_pages(k)).toBe(free);
    expect([0, 1, 2].map((i) => pageAt(k, p.mm!, n + i * PAGE))).toEqual(pages);
    expect(load(k, p, n + 2 * PAGE, 2)).toEqual([3, 0xee]);
    expect(load(k, p, n + 5 * PAGE, 1)).toEqual([0]);
    const moved = vma(p, n);
    expect([moved.vm_end - n, moved.vm_pgoff]).toEqual([6 * PAGE, a / PAGE]);
    for (let i = 0; i < 3; i++) expect(vma_address(k, pages[i]!, moved)).toBe(n + i * PAGE);
    expect(pages.map((pg) => [page_count(k, pg), page_mapcount(k, pg)])).toEqual([
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
    // Moved entries are soft-dirty; the old range is gone.
    expect(pte_soft_dirty(pteAt(k, p.mm!, n))).toBe(true);
    expect(storeSignal(k, p, a)).toBe('SIGSEGV');
    // Still anonymous and exclusive: a write reuses the page.
    store(k, p, n, [0x77]);
    expect(pageAt(k, p.mm!, n)).toBe(pages[0]);
  });

  it('MREMAP_FIXED moves to exactly new_addr, replacing what was there; overlapping ranges are -EINVAL', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 2 * PAGE });
    const t = map(k, p, { addr: 0x50000000, len: 4 * PAGE });
    fillPages(k, p, a, 2);
    store(k, p, t, [0x55]);
    const free = nr_free_pages(k);
    expect(do_mremap(k, p.mm!, a, 2 * PAGE, PAGE, MREMAP_FIXED)).toBe(-EINVAL);
    expect(do_mremap(k, p.mm!, a, 2 * PAGE, 2 * PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, a + PAGE)).toBe(-EINVAL);
    expect(do_mremap(k, p.mm!, a, 2 * PAGE, 2 * PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, t + 1)).toBe(-EINVAL);
    expect(do_mremap(k, p.mm!, a, 2 * PAGE, 2 * PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, t)).toBe(t);
    // The page that was at t is freed; the moved ones are not copied.
    expect(nr_free_pages(k)).toBe(free + 1);
    expect(load(k, p, t, 2)).toEqual([1, 0xee]);
    expect(load(k, p, t + PAGE, 1)).toEqual([2]);
    expect(p.mm!.mmap.map((v) => [v.vm_start - t, v.vm_end - t])).toEqual([
      [0, 2 * PAGE],
      [2 * PAGE, 4 * PAGE],
    ]);
    expect(rss(p.mm!).anon).toBe(2);
  });

  it('a PMD-aligned move of a THP moves the huge PMD whole', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: HPAGE });
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_HUGEPAGE)).toBe(0);
    store(k, p, a + 9 * PAGE, [9]);
    const pfn = pte_pfn(pmdAt(k, p.mm!, a));
    const to = 0x80000000;
    expect(do_mremap(k, p.mm!, a, HPAGE, HPAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to)).toBe(to);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, to))).toBe(true);
    expect(pte_pfn(pmdAt(k, p.mm!, to))).toBe(pfn);
    expect(pmdAt(k, p.mm!, a)).toBe(0);
    expect(rss(p.mm!).anon).toBe(512);
    expect(load(k, p, to + 9 * PAGE, 1)).toEqual([9]);
  });

  it('an unaligned move of a THP splits it and moves its PTEs', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: HPAGE });
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_HUGEPAGE)).toBe(0);
    store(k, p, a + 9 * PAGE, [9]);
    const to = 0x80001000;
    expect(do_mremap(k, p.mm!, a, HPAGE, HPAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to)).toBe(to);
    expect(rss(p.mm!).anon).toBe(512);
    expect(load(k, p, to + 9 * PAGE, 1)).toEqual([9]);
    expect(load(k, p, to + 511 * PAGE, 1)).toEqual([0]);
  });

  it('device entries move with the mapping: same page, same reference, rss unchanged', () => {
    const k = bootSmall();
    const devmem = deviceMemory(k);
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 2 * PAGE });
    store(k, p, a, [1]);
    const page = k.mem.pfn_to_page(devmem.pfn_first);
    installDeviceEntry(k, p, a + PAGE, page, true, false);
    const before = rss(p.mm!);
    expect(before.anon).toBe(2);
    const to = do_mremap(k, p.mm!, a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, 0x50000000);
    expect(to).toBe(0x50000000);
    const pte = pteAt(k, p.mm!, to + PAGE);
    const entry = pte_to_swp_entry(pte);
    expect([swp_type(entry), swp_offset(entry)]).toEqual([k.swp.SWP_DEVICE_WRITE, devmem.pfn_first]);
    expect(pte_swp_soft_dirty(pte)).toBe(true);
    expect(pteAt(k, p.mm!, a + PAGE)).toBe(0);
    expect([page_count(k, page), page_mapcount(k, page)]).toEqual([2, 1]);
    expect(vma_address(k, page, vma(p, to))).toBe(to + PAGE);
    expect(rss(p.mm!)).toEqual(before);
  });

  it('file mappings move with their page offset; old_len 0 duplicates a shared mapping', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = tmpfsFile(k, 'f', 4, 0x30);
    const a = map(k, p, { addr: 0x40000000, len: 2 * PAGE, file: f, flags: MAP_SHARED, offset: 2 * PAGE });
    map(k, p, { addr: a + 2 * PAGE, len: PAGE });
    expect(load(k, p, a, 1)).toEqual([0x32]);
    const n = do_mremap(k, p.mm!, a + PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE);
    expect(vma(p, n).vm_pgoff).toBe(3);
    expect(load(k, p, n, 1)).toEqual([0x33]);
    const dup = do_mremap(k, p.mm!, a, 0, PAGE, MREMAP_MAYMOVE);
    expect(dup).toBeGreaterThan(0);
    store(k, p, dup, [0x99]);
    expect(load(k, p, a, 1)).toEqual([0x99]);
    expect(f.f_count).toBe(4);
  });

  it('errors: -EINVAL for bad flags, an unaligned address, a zero new length, hugetlb, duplicating a private mapping', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 2 * PAGE });
    const h = map(k, p, { len: HPAGE, flags: ANON | MAP_HUGETLB });
    expect(do_mremap(k, p.mm!, a, PAGE, 2 * PAGE, 4)).toBe(-EINVAL);
    expect(do_mremap(k, p.mm!, a + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE)).toBe(-EINVAL);
    expect(do_mremap(k, p.mm!, a, PAGE, 0, MREMAP_MAYMOVE)).toBe(-EINVAL);
    expect(do_mremap(k, p.mm!, h, HPAGE, 2 * HPAGE, MREMAP_MAYMOVE)).toBe(-EINVAL);
    expect(do_mremap(k, p.mm!, a, 0, PAGE, MREMAP_MAYMOVE)).toBe(-EINVAL);
  });

  it('errors: -EFAULT for an unmapped address or an old range across vmas', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 2 * PAGE });
    map(k, p, { addr: a + 2 * PAGE, len: PAGE, flags: MAP_PRIVATE, file: tmpfsFile(k, 'f', 1, 0) });
    expect(do_mremap(k, p.mm!, 0x60000000, PAGE, 2 * PAGE, MREMAP_MAYMOVE)).toBe(-EFAULT);
    expect(do_mremap(k, p.mm!, a, 3 * PAGE, 4 * PAGE, MREMAP_MAYMOVE)).toBe(-EFAULT);
    expect(p.mm!.mmap.length).toBe(2);
  });
});
