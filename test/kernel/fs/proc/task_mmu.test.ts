import { describe, it, expect } from 'vitest';
import { bootSmall, M, PAGE } from '../../helpers';
import {
  ANON,
  deviceMemory,
  installDeviceEntry,
  installMigrationEntry,
  load,
  map,
  pageAt,
  pteAt,
  spawn,
  store,
  tmpfsFile,
  vma,
} from '../../mm/address_space';
import {
  clear_refs_write,
  CLEAR_REFS_SOFT_DIRTY,
  pagemap_read,
  PM_FILE,
  PM_MMAP_EXCLUSIVE,
  PM_PRESENT,
  PM_SOFT_DIRTY,
  PM_SWAP,
  show_smap_text,
  show_smaps,
} from '../../../../src-main/kernel/fs/proc/task_mmu';
import { EINVAL, IS_ERR } from '../../../../src-main/kernel/include/errno';
import { MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_READ } from '../../../../src-main/kernel/mm/mmap';
import { do_fork } from '../../../../src-main/kernel/kernel/fork';
import { do_madvise, MADV_HUGEPAGE } from '../../../../src-main/kernel/mm/madvise';
import { VM_SOFTDIRTY } from '../../../../src-main/kernel/include/mm_types';
import { pte_soft_dirty, pte_write } from '../../../../src-main/kernel/include/pgtable';
import { PG_dirty } from '../../../../src-main/kernel/include/page-flags';

const HPAGE = 2 * M;

describe('fs/proc/task_mmu.c: smaps', () => {
  it('anonymous pages written once: Rss, Pss and Private_Dirty of what was touched, Size of the vma', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 8 * PAGE });
    for (let i = 0; i < 3; i++) store(k, p, a + i * PAGE, [1]);
    expect(load(k, p, a + 5 * PAGE, 1)).toEqual([0]);
    expect(show_smaps(k, p.mm!, vma(p, a))).toEqual({
      Size: 32,
      KernelPageSize: 4,
      MMUPageSize: 4,
      Rss: 12,
      Pss: 12,
      Shared_Clean: 0,
      Shared_Dirty: 0,
      Private_Clean: 0,
      Private_Dirty: 12,
      Referenced: 12,
      Anonymous: 12,
      LazyFree: 0,
      AnonHugePages: 0,
      ShmemPmdMapped: 0,
      Shared_Hugetlb: 0,
      Private_Hugetlb: 0,
      Swap: 0,
      SwapPss: 0,
      Locked: 0,
    });
  });

  it('after fork the shared pages are Shared_Dirty with half their size in Pss; a COW copy is private again', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 3 * PAGE });
    for (let i = 0; i < 3; i++) store(k, p, a + i * PAGE, [1]);
    const c = do_fork(k, p, 'c');
    if (IS_ERR(c)) throw new Error('fork');
    let s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.Rss, s.Pss, s.Shared_Dirty, s.Private_Dirty]).toEqual([12, 6, 12, 0]);
    store(k, c, a, [2]);
    s = show_smaps(k, c.mm!, vma(c, a));
    expect([s.Rss, s.Pss, s.Shared_Dirty, s.Private_Dirty]).toEqual([12, 8, 8, 4]);
    s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.Rss, s.Pss, s.Shared_Dirty, s.Private_Dirty]).toEqual([12, 8, 8, 4]);
  });

  it('a clean file page mapped privately is Private_Clean and not Anonymous', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = tmpfsFile(k, 'f', 2, 0);
    const a = map(k, p, { len: 2 * PAGE, file: f, flags: MAP_PRIVATE, prot: PROT_READ });
    load(k, p, a, 1);
    const s = show_smaps(k, p.mm!, vma(p, a));
    expect([s.Rss, s.Pss, s.Private_Clean, s.Private_Dirty, s.Anonymous]).toEqual([4, 4, 4, 0, 0]);
    const page = f.f_mapping.pages.get(0)!;
    k.mem.flags[page] = k.mem.flags[page]! | PG_dirty;
    expect(show_smaps(k, p.mm!, vma(p, a)).Private_Dirty).toBe(4);
  });

  it('F-DEV-7: a device entry counts in the mapping’s Rss (and Anonymous), by its page', () => {
    const k = bootSmall();
    const devmem = deviceMemory(k);
    const p = spawn(k);
    const a = map(k, p, { len: 4 * PAGE });
    store(k, p, a, [1]);
    installDeviceEntry(k, p, a + PAGE, k.mem.pfn_to_page(devmem.pfn_first), true, true);
    installDeviceEntry(k, p, a + 2 * PAGE, k.mem.pfn_to_page(devmem.pfn_first + 1), false, false);
    const s = show_smaps(k, p.mm!, vma(p, a));
    // Swap PTEs have no dirty or young bit: the device pages are clean and unreferenced.
    expect([s.Rss, s.Pss, s.Anonymous, s.Private_Dirty, s.Private_Clean, s.Referenced, s.Swap]).toEqual([
      12, 12, 12, 4, 8, 4, 0,
    ]);
  });

  it('a migration entry counts by its page too', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    store(k, p, a, [1]);
    installMigrationEntry(k, p.mm!, a, true);
    expect(show_smaps(k, p.mm!, vma(p, a)).Rss).toBe(4);
  });

  it('the text form is what /proc/PID/smaps prints', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: HPAGE });
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_HUGEPAGE)).toBe(0);
    store(k, p, a, [1]);
    const lines = show_smap_text(k, p.mm!, vma(p, a)).split('\n');
    expect(lines[0]).toBe('40000000-40200000 rw-p 00000000 00:00 0 ');
    expect(lines).toContain('AnonHugePages:      2048 kB');
    expect(lines).toContain('Rss:                2048 kB');
    expect(lines.at(-2)).toBe('VmFlags: rd wr mr mw me sd hg ');
    const f = tmpfsFile(k, 'lib', 1, 0);
    const b = map(k, p, { addr: 0x50000000, len: PAGE, file: f, flags: MAP_SHARED, prot: PROT_READ });
    expect(show_smap_text(k, p.mm!, vma(p, b)).split('\n')[0]).toMatch(
      /^50000000-50001000 r--s 00000000 00:00 \d+ +\/lib$/,
    );
    const z = map(k, p, { addr: 0x60000000, len: PAGE, flags: MAP_SHARED | 0x20 });
    expect(show_smap_text(k, p.mm!, vma(p, z)).split('\n')[0]).toMatch(/ \/dev\/zero \(deleted\)$/);
  });
});

describe('fs/proc/task_mmu.c: pagemap', () => {
  it('a written anonymous page: PM_PRESENT, its pfn, PM_MMAP_EXCLUSIVE, soft-dirty; holes are 0', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: 2 * PAGE });
    store(k, p, a, [1]);
    const pfn = k.mem.page_to_pfn(pageAt(k, p.mm!, a));
    const [page, untouched, hole] = pagemap_read(k, p.mm!, a, a + 3 * PAGE);
    expect(page!.pme).toBe(PM_PRESENT | PM_MMAP_EXCLUSIVE | PM_SOFT_DIRTY | BigInt(pfn));
    expect(page).toMatchObject({
      present: true,
      swap: false,
      file: false,
      exclusive: true,
      soft_dirty: true,
      pfn,
    });
    // A new vma is VM_SOFTDIRTY: even its untouched pages read soft-dirty.
    expect(untouched!.pme).toBe(PM_SOFT_DIRTY);
    expect(hole!.pme).toBe(0n);
    expect(hole).toMatchObject({ addr: a + 2 * PAGE, present: false, pfn: null });
    // Without CAP_SYS_ADMIN the pfn reads as 0.
    expect(pagemap_read(k, p.mm!, a, a + PAGE, false)[0]!.pfn).toBe(0);
  });

  it('clear_refs 4 clears soft-dirty and write-protects; the next write marks the page again', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 2 * PAGE });
    store(k, p, a, [1]);
    store(k, p, a + PAGE, [1]);
    expect(clear_refs_write(k, p.mm!, CLEAR_REFS_SOFT_DIRTY)).toBe(0);
    expect(vma(p, a).vm_flags & VM_SOFTDIRTY).toBe(0);
    expect(pte_write(pteAt(k, p.mm!, a))).toBe(false);
    expect(pagemap_read(k, p.mm!, a, a + 2 * PAGE).map((e) => e.soft_dirty)).toEqual([false, false]);
    store(k, p, a + PAGE, [2]);
    expect(pte_soft_dirty(pteAt(k, p.mm!, a + PAGE))).toBe(true);
    expect(pagemap_read(k, p.mm!, a, a + 2 * PAGE).map((e) => e.soft_dirty)).toEqual([false, true]);
    expect(clear_refs_write(k, p.mm!, 6)).toBe(-EINVAL);
    expect(clear_refs_write(k, p.mm!, 0)).toBe(-EINVAL);
  });

  it('file pages carry PM_FILE; a page fork shares is not exclusive; the zero page is present but neither', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = tmpfsFile(k, 'f', 1, 0);
    const fa = map(k, p, { len: PAGE, file: f, flags: MAP_SHARED });
    const a = map(k, p, { len: 2 * PAGE });
    load(k, p, fa, 1);
    store(k, p, a, [1]);
    load(k, p, a + PAGE, 1);
    expect(pagemap_read(k, p.mm!, fa, fa + PAGE)[0]).toMatchObject({
      present: true,
      file: true,
      exclusive: true,
    });
    const c = do_fork(k, p, 'c');
    if (IS_ERR(c)) throw new Error('fork');
    const [shared, zero] = pagemap_read(k, p.mm!, a, a + 2 * PAGE);
    expect(shared).toMatchObject({ present: true, file: false, exclusive: false });
    expect(zero).toMatchObject({ present: true, file: false, exclusive: false, pfn: k.zero_pfn });
  });

  it('F-DEV-7: a device entry reads as PM_SWAP with its type and offset, and its page’s flags', () => {
    const k = bootSmall();
    const devmem = deviceMemory(k);
    const p = spawn(k);
    const a = map(k, p, { len: 3 * PAGE });
    expect(clear_refs_write(k, p.mm!, CLEAR_REFS_SOFT_DIRTY)).toBe(0);
    installDeviceEntry(k, p, a, k.mem.pfn_to_page(devmem.pfn_first), true, true);
    installDeviceEntry(k, p, a + PAGE, k.mem.pfn_to_page(devmem.pfn_first + 1), false, false);
    const [w, r, none] = pagemap_read(k, p.mm!, a, a + 3 * PAGE);
    const shift = 5n;
    expect(w!.pme).toBe(
      PM_SWAP |
        PM_MMAP_EXCLUSIVE |
        PM_SOFT_DIRTY |
        BigInt(k.swp.SWP_DEVICE_WRITE) |
        (BigInt(devmem.pfn_first) << shift),
    );
    expect(w).toMatchObject({
      present: false,
      swap: true,
      file: false,
      exclusive: true,
      soft_dirty: true,
      swap_type: k.swp.SWP_DEVICE_WRITE,
      swap_offset: devmem.pfn_first,
      pfn: null,
    });
    expect(r).toMatchObject({
      swap: true,
      soft_dirty: false,
      exclusive: true,
      swap_type: k.swp.SWP_DEVICE,
      swap_offset: devmem.pfn_first + 1,
    });
    expect(none!.pme).toBe(0n);
    // Mapped twice (fork) the device page is no longer exclusive: the page's flags decide.
    const c = do_fork(k, p, 'c');
    if (IS_ERR(c)) throw new Error('fork');
    expect(pagemap_read(k, c.mm!, a, a + PAGE)[0]).toMatchObject({ swap: true, exclusive: false });
  });

  it('a THP reads as consecutive pfns from the PMD; a hugetlb page likewise', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { addr: 0x40000000, len: HPAGE });
    expect(do_madvise(k, p.mm!, a, HPAGE, MADV_HUGEPAGE)).toBe(0);
    store(k, p, a, [1]);
    const thp = pagemap_read(k, p.mm!, a, a + HPAGE);
    expect(thp.length).toBe(512);
    expect(thp[0]!.pfn! % 512).toBe(0);
    expect(thp[511]!.pfn).toBe(thp[0]!.pfn! + 511);
    expect(thp.every((e) => e.present && e.exclusive && e.soft_dirty)).toBe(true);
    const h = map(k, p, { len: HPAGE, flags: ANON | MAP_HUGETLB });
    store(k, p, h, [1]);
    const huge = pagemap_read(k, p.mm!, h + 510 * PAGE, h + HPAGE);
    expect(huge.length).toBe(2);
    expect(huge[1]!.pfn).toBe(huge[0]!.pfn! + 1);
    expect(huge[0]).toMatchObject({ present: true, exclusive: true, file: false });
    expect(PM_FILE & huge[0]!.pme).toBe(0n);
  });
});
