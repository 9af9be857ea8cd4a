import { describe, it, expect } from 'vitest';
import { bootSmall, M, PAGE, recordTrace } from '../helpers';
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
  tmpfsFile,
  vma,
} from './address_space';
import { EINVAL, ENOMEM } from '../../../src-main/kernel/include/errno';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED } from '../../../src-main/kernel/mm/mmap';
import {
  do_madvise,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MADV_NORMAL,
} from '../../../src-main/kernel/mm/madvise';
import { do_fork } from '../../../src-main/kernel/kernel/fork';
import { show_smaps } from '../../../src-main/kernel/fs/proc/task_mmu';
import { VM_HUGEPAGE, VM_NOHUGEPAGE } from '../../../src-main/kernel/include/mm_types';
import { pmd_trans_huge, pte_dirty, pte_young } from '../../../src-main/kernel/include/pgtable';
import { PG_swapbacked } from '../../../src-main/kernel/include/page-flags';
import { page_count } from '../../../src-main/kernel/include/mm';
import { IS_ERR } from '../../../src-main/kernel/include/errno';

const HPAGE = 2 * M;

describe('mm/madvise.c: MADV_DONTNEED', () => {
  it('anonymous memory: the pages are freed and read back as zeroes', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 4 * PAGE });
    for (let i = 0; i < 4; i++) store(k, p, a + i * PAGE, [i + 1]);
    const free = nr_free_pages(k);
    const trace = recordTrace(k);
    expect(do_madvise(k, p.mm!, a + PAGE, 2 * PAGE, MADV_DONTNEED)).toBe(0);
    expect(nr_free_pages(k)).toBe(free + 2);
    expect(rss(p.mm!).anon).toBe(2);
    expect(pteAt(k, p.mm!, a + PAGE)).toBe(0);
    expect(p.mm!.mmap.length).toBe(1);
    expect(load(k, p, a + PAGE, 1)).toEqual([0]);
    expect(load(k, p, a, 1)).toEqual([1]);
    expect(load(k, p, a + 3 * PAGE, 1)).toEqual([4]);
    expect(trace.find((e) => e.name === 'mmu_notifier_invalidate_range_start')).toMatchObject({
      start: a + PAGE,
      end: a + 3 * PAGE,
      event: 'clear',
    });
  });

  it('a private file mapping drops its copy and re-reads the file', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = tmpfsFile(k, 'f', 1, 0x20);
    const a = map(k, p, { len: PAGE, file: f, flags: MAP_PRIVATE });
    store(k, p, a, [0x99]);
    expect(rss(p.mm!)).toMatchObject({ anon: 1, shmem: 0 });
    expect(do_madvise(k, p.mm!, a, PAGE, MADV_DONTNEED)).toBe(0);
    expect(rss(p.mm!)).toMatchObject({ anon: 0, shmem: 0 });
    expect(load(k, p, a, 2)).toEqual([0x20, 0x20]);
    expect(pageAt(k, p.mm!, a)).toBe(f.f_mapping.pages.get(0));
  });

  it('a shared mapping keeps its data: the page cache still has the writes', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = tmpfsFile(k, 'f', 1, 0);
    const a = map(k, p, { len: PAGE, file: f, flags: MAP_SHARED });
    const s = map(k, p, { len: PAGE, flags: MAP_SHARED | MAP_ANONYMOUS });
    store(k, p, a, [0x42]);
    store(k, p, s, [0x43]);
    expect(do_madvise(k, p.mm!, s, PAGE, MADV_DONTNEED)).toBe(0);
    expect(do_madvise(k, p.mm!, a, PAGE, MADV_DONTNEED)).toBe(0);
    expect(rss(p.mm!).shmem).toBe(0);
    expect(load(k, p, a, 1)).toEqual([0x42]);
    expect(load(k, p, s, 1)).toEqual([0x43]);
  });

  it('device entries are zapped too (F-DEV-4), giving the device page back', () => {
    const k = bootSmall();
    const devmem = deviceMemory(k);
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    const page = k.mem.pfn_to_page(devmem.pfn_first);
    installDeviceEntry(k, p, a, page, true, false);
    expect(do_madvise(k, p.mm!, a, PAGE, MADV_DONTNEED)).toBe(0);
    expect(pteAt(k, p.mm!, a)).toBe(0);
    expect(page_count(k, page)).toBe(1);
    expect(rss(p.mm!).anon).toBe(0);
  });

  it('-EINVAL for hugetlb areas', () => {
    const k = bootSmall();
    const p = spawn(k);
    const h = map(k, p, { len: HPAGE, flags: ANON | MAP_HUGETLB });
    store(k, p, h, [1]);
    expect(do_madvise(k, p.mm!, h, HPAGE, MADV_DONTNEED)).toBe(-EINVAL);
    expect(load(k, p, h, 1)).toEqual([1]);
  });
});

describe('mm/madvise.c: MADV_HUGEPAGE and MADV_NOHUGEPAGE', () => {
  it('MADV_HUGEPAGE sets VM_HUGEPAGE on exactly the range, splitting the vma; the next fault there maps a THP', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 3 * HPAGE });
    store(k, p, a, [1]);
    expect(do_madvise(k, p.mm!, a + HPAGE, HPAGE, MADV_HUGEPAGE)).toBe(0);
    expect(p.mm!.mmap.map((v) => [v.vm_start - a, v.vm_end - a, (v.vm_flags & VM_HUGEPAGE) !== 0])).toEqual([
      [0, HPAGE, false],
      [HPAGE, 2 * HPAGE, true],
      [2 * HPAGE, 3 * HPAGE, false],
    ]);
    // Already-faulted memory is left as it is.
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a))).toBe(false);
    store(k, p, a + HPAGE + PAGE, [2]);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a + HPAGE))).toBe(true);
    store(k, p, a + 2 * HPAGE, [3]);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a + 2 * HPAGE))).toBe(false);
    expect(rss(p.mm!).anon).toBe(514);
    // Advice that changes nothing does not split.
    expect(do_madvise(k, p.mm!, a + HPAGE, PAGE, MADV_HUGEPAGE)).toBe(0);
    expect(p.mm!.mmap.length).toBe(3);
  });

  it('a vma boundary inside a THP splits its PMD, so each vma counts only its own pages', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: HPAGE });
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_HUGEPAGE)).toBe(0);
    store(k, p, a, [1]);
    expect(do_madvise(k, p.mm!, a, PAGE, MADV_NOHUGEPAGE)).toBe(0);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a))).toBe(false);
    expect(p.mm!.mmap.length).toBe(2);
    expect(show_smaps(k, p.mm!, vma(p, a)).Rss).toBe(4);
    expect(show_smaps(k, p.mm!, vma(p, a + PAGE))).toMatchObject({ Rss: 2044, AnonHugePages: 0 });
    expect(load(k, p, a, 1)).toEqual([1]);
  });

  it('MADV_NOHUGEPAGE clears VM_HUGEPAGE and sets VM_NOHUGEPAGE: faults map base pages', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: HPAGE });
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_HUGEPAGE)).toBe(0);
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_NOHUGEPAGE)).toBe(0);
    expect(vma(p, a).vm_flags & (VM_HUGEPAGE | VM_NOHUGEPAGE)).toBe(VM_NOHUGEPAGE);
    store(k, p, a, [1]);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a))).toBe(false);
    expect(rss(p.mm!).anon).toBe(1);
  });
});

describe('mm/madvise.c: MADV_FREE', () => {
  it('private anonymous pages stay mapped and readable, clean and old, counted as LazyFree until written again', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 3 * PAGE });
    for (let i = 0; i < 3; i++) store(k, p, a + i * PAGE, [i + 1]);
    const free = nr_free_pages(k);
    expect(do_madvise(k, p.mm!, a, 2 * PAGE, MADV_FREE)).toBe(0);
    expect(nr_free_pages(k)).toBe(free);
    expect(rss(p.mm!).anon).toBe(3);
    const pte = pteAt(k, p.mm!, a);
    expect([pte_dirty(pte), pte_young(pte)]).toEqual([false, false]);
    expect(k.mem.flags[pageAt(k, p.mm!, a)]! & PG_swapbacked).toBe(0);
    let s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.Rss, s.LazyFree, s.Private_Clean, s.Private_Dirty]).toEqual([12, 8, 8, 4]);
    // The lab has no reclaim: the data is still there.
    expect(load(k, p, a + PAGE, 1)).toEqual([2]);
    store(k, p, a, [9]);
    s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.LazyFree, s.Private_Dirty]).toEqual([4, 8]);
  });

  it('a whole THP becomes lazily freeable as one; part of one is split first', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 2 * HPAGE });
    expect(do_madvise(k, p.mm!, a, 2 * HPAGE, MADV_HUGEPAGE)).toBe(0);
    store(k, p, a, [1]);
    store(k, p, a + HPAGE, [2]);
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_FREE)).toBe(0);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a))).toBe(true);
    expect(pte_dirty(pmdAt(k, p.mm!, a))).toBe(false);
    expect(do_madvise(k, p.mm!, a + HPAGE, PAGE, MADV_FREE)).toBe(0);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a + HPAGE))).toBe(false);
    const s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.AnonHugePages, s.LazyFree]).toEqual([2048, 2052]);
  });

  it('-EINVAL for file and shared anonymous mappings, which are not anonymous memory', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = map(k, p, { len: PAGE, file: tmpfsFile(k, 'f', 1, 0), flags: MAP_PRIVATE });
    const s = map(k, p, { len: PAGE, flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(do_madvise(k, p.mm!, f, PAGE, MADV_FREE)).toBe(-EINVAL);
    expect(do_madvise(k, p.mm!, s, PAGE, MADV_FREE)).toBe(-EINVAL);
  });

  it('a page fork shares loses PG_swapbacked, but only a clean PTE makes it LazyFree; device entries are left alone', () => {
    const k = bootSmall();
    const devmem = deviceMemory(k);
    const p = spawn(k);
    const a = map(k, p, { len: 2 * PAGE });
    store(k, p, a, [1]);
    installDeviceEntry(k, p, a + PAGE, k.mem.pfn_to_page(devmem.pfn_first), true, false);
    const c = do_fork(k, p, 'c');
    if (IS_ERR(c)) throw new Error('fork');
    const dev = pteAt(k, p.mm!, a + PAGE);
    expect(do_madvise(k, p.mm!, a, 2 * PAGE, MADV_FREE)).toBe(0);
    expect(pteAt(k, p.mm!, a + PAGE)).toBe(dev);
    expect(show_smaps(k, p.mm!, vma(p, a)).LazyFree).toBe(4);
    // The child's PTE is still dirty: reclaim could not discard the page for it.
    expect(show_smaps(k, c.mm!, vma(c, a)).LazyFree).toBe(0);
    expect(load(k, c, a, 1)).toEqual([1]);
  });
});

describe('mm/madvise.c: errors', () => {
  it('-EINVAL for advice the lab does not model and an unaligned start; a zero length is 0', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    expect(do_madvise(k, p.mm!, a, PAGE, MADV_NORMAL)).toBe(-EINVAL);
    expect(do_madvise(k, p.mm!, a, PAGE, 1234)).toBe(-EINVAL);
    expect(do_madvise(k, p.mm!, a + 1, PAGE, MADV_DONTNEED)).toBe(-EINVAL);
    expect(do_madvise(k, p.mm!, a, 0, MADV_DONTNEED)).toBe(0);
  });

  it('-ENOMEM for a range with unmapped parts, after advising the mapped parts', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: PAGE });
    const b = map(k, p, { addr: 0x40002000, len: PAGE });
    store(k, p, a, [1]);
    store(k, p, b, [2]);
    expect(do_madvise(k, p.mm!, a, 3 * PAGE, MADV_DONTNEED)).toBe(-ENOMEM);
    expect(rss(p.mm!).anon).toBe(0);
    expect(do_madvise(k, p.mm!, 0x50000000, PAGE, MADV_DONTNEED)).toBe(-ENOMEM);
    expect(do_madvise(k, p.mm!, b, 2 * PAGE, MADV_HUGEPAGE)).toBe(-ENOMEM);
    expect(vma(p, b).vm_flags & VM_HUGEPAGE).toBe(VM_HUGEPAGE);
  });
});
