import { describe, it, expect } from 'vitest';
import { bootSmall, M, PAGE } from '../helpers';
import {
  ANON,
  RW,
  load,
  loadSignal,
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
import { EINVAL, ENOMEM, EPERM, IS_ERR } from '../../../src-main/kernel/include/errno';
import {
  do_mmap,
  do_munmap,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  mmap_min_addr,
  PROT_READ,
} from '../../../src-main/kernel/mm/mmap';
import { do_fork } from '../../../src-main/kernel/kernel/fork';
import { do_exit } from '../../../src-main/kernel/kernel/exit';
import { do_madvise, MADV_HUGEPAGE } from '../../../src-main/kernel/mm/madvise';
import { do_mprotect } from '../../../src-main/kernel/mm/mprotect';
import { show_smaps } from '../../../src-main/kernel/fs/proc/task_mmu';
import {
  pmd_huge,
  pmd_trans_huge,
  pte_dirty,
  pte_pfn,
  pte_special,
  pte_write,
} from '../../../src-main/kernel/include/pgtable';
import { page_count, page_mapcount } from '../../../src-main/kernel/include/mm';
import { PageTransHuge } from '../../../src-main/kernel/mm/huge_memory';
import type { task_struct } from '../../../src-main/kernel/include/sched';

const MMAP_BASE = 0x7ffff7e00000;
const HPAGE = 2 * M;

function forkOf(k: ReturnType<typeof bootSmall>, parent: task_struct): task_struct {
  const child = do_fork(k, parent, 'child');
  if (IS_ERR(child)) throw new Error(`fork failed: ${child}`);
  return child;
}

describe('mm/mmap.c: placing areas', () => {
  it('areas are placed top-down below mmap_base, each right below the last', () => {
    const k = bootSmall();
    const p = spawn(k);
    expect(p.mm!.mmap_base).toBe(MMAP_BASE);
    const a = map(k, p, { len: 3 * PAGE });
    expect(a).toBe(MMAP_BASE - 3 * PAGE);
    const b = map(k, p, { len: 1 });
    expect(b).toBe(a - PAGE);
    // The highest hole that fits is reused.
    expect(do_munmap(k, p.mm!, a, PAGE)).toBe(0);
    expect(map(k, p, { len: 2 * PAGE })).toBe(b - 2 * PAGE);
    expect(map(k, p, { len: PAGE })).toBe(a);
    expect(p.mm!.mmap.map((v) => [v.vm_start, v.vm_end])).toEqual([
      [b - 2 * PAGE, b],
      [b, b + PAGE],
      [a, a + PAGE],
      [a + PAGE, a + 3 * PAGE],
    ]);
  });

  it('an alignment request rounds the top-down candidate down to it; a huge-page mapping is 2 MiB aligned', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    const b = map(k, p, { len: HPAGE, align: HPAGE });
    expect(b).toBe(0x7ffff7a00000);
    expect(b % HPAGE).toBe(0);
    expect(b + HPAGE).toBeLessThanOrEqual(a);
    const h = map(k, p, { len: PAGE, flags: ANON | MAP_HUGETLB });
    expect(h % HPAGE).toBe(0);
    // The length of a hugetlb mapping is rounded up to whole huge pages.
    expect(vma(p, h).vm_end - h).toBe(HPAGE);
  });

  it('a free hint address is taken as is; a taken one falls back to top-down', () => {
    const k = bootSmall();
    const p = spawn(k);
    expect(map(k, p, { addr: 0x40000000, len: 2 * PAGE })).toBe(0x40000000);
    expect(map(k, p, { addr: 0x40001000, len: PAGE })).toBe(MMAP_BASE - PAGE);
    // A hint below mmap_min_addr is raised to it.
    expect(map(k, p, { addr: PAGE, len: PAGE })).toBe(mmap_min_addr(k));
  });

  it('MAP_FIXED replaces what was mapped there: the vma is split and the old page freed', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 4 * PAGE });
    store(k, p, a, [1, 0, 0, 0]);
    for (let i = 0; i < 4; i++) store(k, p, a + i * PAGE, [i + 1]);
    expect(rss(p.mm!).anon).toBe(4);
    const free = nr_free_pages(k);
    expect(do_mmap(k, p.mm!, { addr: a + PAGE, len: PAGE, prot: RW, flags: ANON | MAP_FIXED })).toBe(
      a + PAGE,
    );
    expect(rss(p.mm!).anon).toBe(3);
    expect(nr_free_pages(k)).toBe(free + 1);
    expect(p.mm!.mmap.map((v) => [v.vm_start - a, v.vm_end - a])).toEqual([
      [0, PAGE],
      [PAGE, 2 * PAGE],
      [2 * PAGE, 4 * PAGE],
    ]);
    expect(load(k, p, a + PAGE, 1)).toEqual([0]);
    expect(load(k, p, a + 2 * PAGE, 1)).toEqual([3]);
  });

  it('bad requests: -EINVAL for a zero length, MAP_SHARED with MAP_PRIVATE or neither, an unaligned offset or fixed address, no file and no MAP_ANONYMOUS', () => {
    const k = bootSmall();
    const mm = spawn(k).mm!;
    const f = tmpfsFile(k, 'f', 1, 0);
    expect(do_mmap(k, mm, { len: 0, prot: RW, flags: ANON })).toBe(-EINVAL);
    expect(do_mmap(k, mm, { len: PAGE, prot: RW, flags: MAP_ANONYMOUS | MAP_PRIVATE | MAP_SHARED })).toBe(
      -EINVAL,
    );
    expect(do_mmap(k, mm, { len: PAGE, prot: RW, flags: MAP_ANONYMOUS })).toBe(-EINVAL);
    expect(do_mmap(k, mm, { len: PAGE, prot: RW, flags: MAP_SHARED, file: f, offset: 100 })).toBe(-EINVAL);
    expect(do_mmap(k, mm, { addr: 0x40000100, len: PAGE, prot: RW, flags: ANON | MAP_FIXED })).toBe(-EINVAL);
    expect(
      do_mmap(k, mm, { addr: 0x40001000, len: PAGE, prot: RW, flags: ANON | MAP_HUGETLB | MAP_FIXED }),
    ).toBe(-EINVAL);
    expect(do_mmap(k, mm, { len: PAGE, prot: RW, flags: MAP_PRIVATE })).toBe(-EINVAL);
    expect(mm.mmap).toEqual([]);
  });

  it('bad requests: -ENOMEM past TASK_SIZE, -EPERM for MAP_FIXED below mmap_min_addr', () => {
    const k = bootSmall();
    const mm = spawn(k).mm!;
    expect(
      do_mmap(k, mm, { addr: k.c.TASK_SIZE - PAGE, len: 2 * PAGE, prot: RW, flags: ANON | MAP_FIXED }),
    ).toBe(-ENOMEM);
    expect(do_mmap(k, mm, { len: k.c.TASK_SIZE + PAGE, prot: RW, flags: ANON })).toBe(-ENOMEM);
    expect(do_mmap(k, mm, { addr: PAGE, len: PAGE, prot: RW, flags: ANON | MAP_FIXED })).toBe(-EPERM);
    expect(do_mmap(k, mm, { addr: 0x10000, len: PAGE, prot: RW, flags: ANON | MAP_FIXED })).toBe(0x10000);
  });
});

describe('mm/mmap.c: munmap', () => {
  it('unmapping the middle splits the vma and frees exactly those pages', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 8 * PAGE });
    for (let i = 0; i < 8; i++) store(k, p, a + i * PAGE, [i + 1]);
    const free = nr_free_pages(k);
    expect(do_munmap(k, p.mm!, a + 3 * PAGE, 2 * PAGE)).toBe(0);
    expect(nr_free_pages(k)).toBe(free + 2);
    expect(rss(p.mm!).anon).toBe(6);
    expect(p.mm!.mmap.map((v) => [v.vm_start - a, v.vm_end - a])).toEqual([
      [0, 3 * PAGE],
      [5 * PAGE, 8 * PAGE],
    ]);
    // The upper part keeps its page offsets: rmap still finds its pages.
    expect(vma(p, a + 5 * PAGE).vm_pgoff).toBe(a / PAGE + 5);
    expect(storeSignal(k, p, a + 3 * PAGE)).toBe('SIGSEGV');
    expect(load(k, p, a + 2 * PAGE, 1)).toEqual([3]);
    expect(load(k, p, a + 5 * PAGE, 1)).toEqual([6]);
  });

  it('unmapping everything gives back every page and every page table', () => {
    const k = bootSmall();
    const p = spawn(k);
    const free = nr_free_pages(k);
    const tables = k.pt.inUse;
    const a = map(k, p, { len: 3 * HPAGE });
    const b = map(k, p, { addr: 0x100000000, len: 5 * PAGE });
    for (let off = 0; off < 3 * HPAGE; off += 64 * PAGE) store(k, p, a + off, [7]);
    for (let i = 0; i < 5; i++) store(k, p, b + i * PAGE, [i]);
    expect(k.pt.inUse).toBeGreaterThan(tables);
    expect(p.mm!.nr_ptes).toBe(k.pt.inUse);
    expect(do_munmap(k, p.mm!, b, 5 * PAGE)).toBe(0);
    expect(do_munmap(k, p.mm!, a, 3 * HPAGE)).toBe(0);
    expect(nr_free_pages(k)).toBe(free);
    expect(k.pt.inUse).toBe(tables);
    expect(p.mm!.nr_ptes).toBe(1);
    expect(rss(p.mm!)).toEqual({ file: 0, anon: 0, swapents: 0, shmem: 0 });
  });

  it('fork, exit and munmap of 1,024 touched pages leave the buddy allocator as it was, also with 2 MiB sections', () => {
    for (const sectionSizeBits of [27, 21]) {
      const k = bootSmall({ config: { sectionSizeBits } });
      const freeLists = (): number[] => k.node.node_zones.flatMap((z) => z.free_area.map((a) => a.nr_free));
      const p = spawn(k);
      const lists = freeLists();
      const a = map(k, p, { len: 1024 * PAGE });
      for (let i = 0; i < 1024; i++) store(k, p, a + i * PAGE, [i & 0xff]);
      const c = forkOf(k, p);
      expect(load(k, c, a + 1000 * PAGE, 1)).toEqual([1000 & 0xff]);
      do_exit(k, c);
      expect(rss(p.mm!).anon).toBe(1024);
      expect(do_munmap(k, p.mm!, a, 1024 * PAGE)).toBe(0);
      expect(rss(p.mm!).anon).toBe(0);
      // Every freed page merged back with its buddies: the same blocks as before.
      expect(freeLists()).toEqual(lists);
    }
  });

  it('-EINVAL for an unaligned start or a zero length; nothing mapped is 0', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    expect(do_munmap(k, p.mm!, a + 1, PAGE)).toBe(-EINVAL);
    expect(do_munmap(k, p.mm!, a, 0)).toBe(-EINVAL);
    expect(do_munmap(k, p.mm!, 0x40000000, PAGE)).toBe(0);
    expect(p.mm!.mmap.length).toBe(1);
  });
});

describe('mm/memory.c: anonymous faults', () => {
  it('a read fault maps the zero page read-only and costs no rss until written', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 2 * PAGE });
    const free = nr_free_pages(k);
    expect(load(k, p, a, 4)).toEqual([0, 0, 0, 0]);
    const pte = pteAt(k, p.mm!, a);
    expect(pte_pfn(pte)).toBe(k.zero_pfn);
    expect(pte_special(pte)).toBe(true);
    expect(pte_write(pte)).toBe(false);
    expect(rss(p.mm!).anon).toBe(0);
    expect(nr_free_pages(k)).toBe(free);
    store(k, p, a, [9]);
    expect(pte_pfn(pteAt(k, p.mm!, a))).not.toBe(k.zero_pfn);
    expect(pte_write(pteAt(k, p.mm!, a))).toBe(true);
    expect(rss(p.mm!).anon).toBe(1);
    expect(nr_free_pages(k)).toBe(free - 1);
    expect(load(k, p, a, 2)).toEqual([9, 0]);
  });
});

describe('kernel/fork.c: copy-on-write', () => {
  it('parent and child share write-protected pages, then each write gets its own copy', () => {
    const k = bootSmall();
    const parent = spawn(k);
    const a = map(k, parent, { len: 2 * PAGE });
    store(k, parent, a, [1, 2, 3]);
    store(k, parent, a + PAGE, [4]);
    const page = pageAt(k, parent.mm!, a);
    const free = nr_free_pages(k);
    const child = forkOf(k, parent);
    expect(rss(child.mm!).anon).toBe(2);
    expect(page_count(k, page)).toBe(2);
    expect(page_mapcount(k, page)).toBe(2);
    expect(pageAt(k, child.mm!, a)).toBe(page);
    expect(pte_write(pteAt(k, parent.mm!, a))).toBe(false);
    expect(pte_write(pteAt(k, child.mm!, a))).toBe(false);
    expect(nr_free_pages(k)).toBe(free);

    store(k, child, a, [9]);
    expect(pageAt(k, child.mm!, a)).not.toBe(page);
    expect(load(k, child, a, 3)).toEqual([9, 2, 3]);
    expect(load(k, parent, a, 3)).toEqual([1, 2, 3]);
    expect([page_count(k, page), page_mapcount(k, page)]).toEqual([1, 1]);
    expect(nr_free_pages(k)).toBe(free - 1);
    // The parent is the last user: its write reuses the page instead of copying.
    store(k, parent, a, [5]);
    expect(pageAt(k, parent.mm!, a)).toBe(page);
    expect(nr_free_pages(k)).toBe(free - 1);
    expect(load(k, child, a, 1)).toEqual([9]);
    expect(rss(parent.mm!).anon).toBe(2);
    expect(rss(child.mm!).anon).toBe(2);
  });

  it('a shared anonymous mapping stays shared after fork, also for pages first touched after it', () => {
    const k = bootSmall();
    const free = nr_free_pages(k);
    const parent = spawn(k);
    const a = map(k, parent, { len: 2 * PAGE, flags: MAP_SHARED | MAP_ANONYMOUS });
    store(k, parent, a, [1]);
    const child = forkOf(k, parent);
    store(k, child, a, [2]);
    store(k, child, a + PAGE, [3]);
    expect(load(k, parent, a, 1)).toEqual([2]);
    expect(load(k, parent, a + PAGE, 1)).toEqual([3]);
    // shmem_zero_setup: tmpfs pages, counted as shmem.
    expect(rss(parent.mm!)).toEqual({ file: 0, anon: 0, swapents: 0, shmem: 2 });
    expect(rss(child.mm!).shmem).toBe(2);
    do_exit(k, child);
    do_exit(k, parent);
    expect(nr_free_pages(k)).toBe(free);
  });
});

describe('mm/memory.c: file mappings', () => {
  it('a private file mapping reads the file and copies on write, leaving the file unchanged', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = tmpfsFile(k, 'data', 2, 0x10);
    const a = map(k, p, { len: 2 * PAGE, file: f, flags: MAP_PRIVATE });
    expect(load(k, p, a, 2)).toEqual([0x10, 0x10]);
    expect(load(k, p, a + PAGE, 1)).toEqual([0x11]);
    const cached = f.f_mapping.pages.get(0)!;
    expect(pageAt(k, p.mm!, a)).toBe(cached);
    expect(rss(p.mm!)).toEqual({ file: 0, anon: 0, swapents: 0, shmem: 2 });
    store(k, p, a, [0x99]);
    expect(pageAt(k, p.mm!, a)).not.toBe(cached);
    expect(rss(p.mm!)).toEqual({ file: 0, anon: 1, swapents: 0, shmem: 1 });
    expect(load(k, p, a, 2)).toEqual([0x99, 0x10]);
    expect(k.contents.peek(cached)![0]).toBe(0x10);
    expect(page_mapcount(k, cached)).toBe(0);
  });

  it('a shared file mapping: both processes see each other’s writes, and smaps shows the page shared', () => {
    const k = bootSmall();
    const f = tmpfsFile(k, 'shared', 1, 0);
    const p1 = spawn(k, 'a');
    const p2 = spawn(k, 'b');
    const a1 = map(k, p1, { len: PAGE, file: f, flags: MAP_SHARED });
    const a2 = map(k, p2, { len: PAGE, file: f, flags: MAP_SHARED });
    store(k, p1, a1, [0x42]);
    expect(load(k, p2, a2, 1)).toEqual([0x42]);
    store(k, p2, a2 + 1, [0x43]);
    expect(load(k, p1, a1, 2)).toEqual([0x42, 0x43]);
    const page = f.f_mapping.pages.get(0)!;
    expect(k.contents.peek(page)!.subarray(0, 2)).toEqual(Uint8Array.of(0x42, 0x43));
    expect([page_count(k, page), page_mapcount(k, page)]).toEqual([3, 2]);
    for (const [p, a] of [
      [p1, a1],
      [p2, a2],
    ] as const) {
      const s = show_smaps(k, p.mm!, vma(p, a));
      expect([s.Rss, s.Pss, s.Shared_Dirty, s.Shared_Clean, s.Private_Dirty, s.Anonymous]).toEqual([
        4, 2, 4, 0, 0, 0,
      ]);
    }
  });
});

describe('mm/huge_memory.c: transparent huge pages', () => {
  function thpTask() {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 2 * HPAGE, align: HPAGE });
    expect(do_madvise(k, p.mm!, a, 2 * HPAGE, MADV_HUGEPAGE)).toBe(0);
    return { k, p, a };
  }

  it('after madvise(MADV_HUGEPAGE) a write fault maps one 2 MiB page at the PMD: AnonHugePages 2048 kB', () => {
    const { k, p, a } = thpTask();
    const free = nr_free_pages(k);
    store(k, p, a + 5 * PAGE, [0xaa]);
    const pmd = pmdAt(k, p.mm!, a);
    expect(pmd_trans_huge(pmd)).toBe(true);
    expect(pte_write(pmd) && pte_dirty(pmd)).toBe(true);
    expect(pte_pfn(pmd) % 512).toBe(0);
    const head = k.mem.pfn_to_page(pte_pfn(pmd));
    expect(PageTransHuge(k, head)).toBe(true);
    expect(nr_free_pages(k)).toBe(free - 512);
    expect(rss(p.mm!).anon).toBe(512);
    const s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.Size, s.Rss, s.Pss, s.AnonHugePages, s.Anonymous, s.Private_Dirty]).toEqual([
      4096, 2048, 2048, 2048, 2048, 2048,
    ]);
    expect(load(k, p, a + 5 * PAGE, 1)).toEqual([0xaa]);
    // A read of the other huge page maps the huge zero page: no memory, no rss.
    expect(load(k, p, a + HPAGE, 1)).toEqual([0]);
    expect(pte_pfn(pmdAt(k, p.mm!, a + HPAGE))).toBe(k.huge_zero_pfn);
    expect(rss(p.mm!).anon).toBe(512);
  });

  it('munmap of part of a THP splits it: the rest stays mapped by PTEs with its data', () => {
    const { k, p, a } = thpTask();
    for (let i = 0; i < 512; i += 100) store(k, p, a + i * PAGE, [i & 0xff]);
    const free = nr_free_pages(k);
    expect(do_munmap(k, p.mm!, a, PAGE)).toBe(0);
    expect(pmd_huge(pmdAt(k, p.mm!, a + PAGE))).toBe(false);
    expect(rss(p.mm!).anon).toBe(511);
    expect(nr_free_pages(k)).toBe(free + 1);
    expect(load(k, p, a + 100 * PAGE, 1)).toEqual([100]);
    expect(load(k, p, a + 500 * PAGE, 1)).toEqual([500 & 0xff]);
    expect(show_smaps(k, p.mm!, vma(p, a + PAGE)).AnonHugePages).toBe(0);
    expect(do_munmap(k, p.mm!, a, 2 * HPAGE)).toBe(0);
    expect(nr_free_pages(k)).toBe(free + 512);
  });

  it('mprotect of a whole THP keeps the PMD; of part of it splits the PMD', () => {
    const { k, p, a } = thpTask();
    store(k, p, a, [1]);
    expect(do_mprotect(k, p.mm!, a, HPAGE, PROT_READ)).toBe(0);
    expect(pmd_trans_huge(pmdAt(k, p.mm!, a))).toBe(true);
    expect(pte_write(pmdAt(k, p.mm!, a))).toBe(false);
    expect(do_mprotect(k, p.mm!, a, PAGE, RW)).toBe(0);
    expect(pmd_huge(pmdAt(k, p.mm!, a))).toBe(false);
    expect(rss(p.mm!).anon).toBe(512);
    store(k, p, a, [2]);
    expect(storeSignal(k, p, a + PAGE)).toBe('SIGSEGV');
    expect(load(k, p, a + PAGE, 1)).toEqual([0]);
  });

  it('a THP shared by fork is split in both processes when one splits it, and every page is freed at exit', () => {
    const k = bootSmall();
    const free = nr_free_pages(k);
    const tables = k.pt.inUse;
    const p = spawn(k);
    const a = map(k, p, { len: HPAGE, align: HPAGE });
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_HUGEPAGE)).toBe(0);
    store(k, p, a, [1]);
    store(k, p, a + 7 * PAGE, [7]);
    const c = forkOf(k, p);
    expect(pmd_trans_huge(pmdAt(k, c.mm!, a))).toBe(true);
    // The child's write to the shared THP copies one base page.
    store(k, c, a + 7 * PAGE, [8]);
    expect(pmd_huge(pmdAt(k, c.mm!, a))).toBe(false);
    expect(pmd_huge(pmdAt(k, p.mm!, a))).toBe(false);
    expect(load(k, p, a + 7 * PAGE, 1)).toEqual([7]);
    expect(load(k, c, a + 7 * PAGE, 1)).toEqual([8]);
    expect(load(k, c, a, 1)).toEqual([1]);
    expect(rss(p.mm!).anon).toBe(512);
    expect(rss(c.mm!).anon).toBe(512);
    do_exit(k, c);
    do_exit(k, p);
    expect(nr_free_pages(k)).toBe(free);
    expect(k.pt.inUse).toBe(tables);
  });
});

describe('mm/hugetlb.c: MAP_HUGETLB', () => {
  it('huge pages are not rss, fork shares them and a write copies the whole huge page', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: HPAGE, flags: ANON | MAP_HUGETLB });
    const free = nr_free_pages(k);
    store(k, p, a + 3 * PAGE, [3]);
    expect(nr_free_pages(k)).toBe(free - 512);
    expect(p.mm!.hugetlb_usage).toBe(512);
    expect(rss(p.mm!)).toEqual({ file: 0, anon: 0, swapents: 0, shmem: 0 });
    let s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.Rss, s.Private_Hugetlb, s.Shared_Hugetlb, s.KernelPageSize]).toEqual([0, 2048, 0, 2048]);
    const c = forkOf(k, p);
    expect(c.mm!.hugetlb_usage).toBe(512);
    expect(pte_write(pmdAt(k, p.mm!, a))).toBe(false);
    s = show_smaps(k, c.mm!, vma(c, a));
    expect([s.Private_Hugetlb, s.Shared_Hugetlb]).toEqual([0, 2048]);
    store(k, c, a + 3 * PAGE, [4]);
    expect(nr_free_pages(k)).toBe(free - 1024);
    expect(load(k, p, a + 3 * PAGE, 1)).toEqual([3]);
    expect(load(k, c, a + 3 * PAGE, 1)).toEqual([4]);
    expect(rss(c.mm!).anon).toBe(0);
    do_exit(k, c);
    expect(nr_free_pages(k)).toBe(free - 512);
  });
});

describe('kernel/exit.c: exit_mmap', () => {
  it('exit frees every page and page table of parent and child, whatever the mappings held', () => {
    const k = bootSmall();
    const free = nr_free_pages(k);
    const tables = k.pt.inUse;
    const f = tmpfsFile(k, 'lib', 2, 1);
    const cached = nr_free_pages(k);
    const p = spawn(k);
    const anon = map(k, p, { len: 16 * PAGE });
    const thp = map(k, p, { len: HPAGE, align: HPAGE });
    expect(do_madvise(k, p.mm!, thp, HPAGE, MADV_HUGEPAGE)).toBe(0);
    const huge = map(k, p, { len: HPAGE, flags: ANON | MAP_HUGETLB });
    const priv = map(k, p, { len: 2 * PAGE, file: f, flags: MAP_PRIVATE });
    const shared = map(k, p, { len: 2 * PAGE, file: f, flags: MAP_SHARED });
    const shanon = map(k, p, { len: PAGE, flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(load(k, p, priv + PAGE, 1)).toEqual([2]);
    for (let i = 0; i < 16; i++) store(k, p, anon + i * PAGE, [i]);
    for (const addr of [thp, huge, priv, shared + PAGE, shanon]) store(k, p, addr, [1]);
    const c = forkOf(k, p);
    store(k, c, anon, [0xff]);
    store(k, c, priv, [0xff]);
    expect(nr_free_pages(k)).toBeLessThan(cached - 1024);
    do_exit(k, p);
    do_exit(k, c);
    expect(nr_free_pages(k)).toBe(cached);
    expect(k.pt.inUse).toBe(tables);
    expect(f.f_count).toBe(1);
    expect(cached).toBe(free - 2);
  });
});

// Keep the test names honest about what reading does not change.
describe('mm/mmap.c: reads of unmapped memory', () => {
  it('an access outside any vma is SIGSEGV', () => {
    const k = bootSmall();
    const p = spawn(k);
    expect(loadSignal(k, p, 0x40000000)).toBe('SIGSEGV');
    expect(storeSignal(k, p, 0x40000000)).toBe('SIGSEGV');
  });
});
