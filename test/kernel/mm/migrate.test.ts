// mm/migrate.c, migrate_vma (seed era), driven as tools/testing/selftests/mm/hmm-tests.c
// drives it: through the dmirror device's migrate commands and CPU accesses.
import { describe, it, expect } from 'vitest';
import { M, recordTrace, warnings } from '../helpers';
import {
  PS,
  anonRss,
  bootDmirror,
  devicePageAt,
  loadAll,
  mapAnon,
  pattern,
  presentPageAt,
  pteAt,
  storePattern,
  task,
  vmaAt,
} from './dmirror-machine';
import {
  MIGRATE_PFN_DEVICE,
  MIGRATE_PFN_ERROR,
  MIGRATE_PFN_LOCKED,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_SHIFT,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  migrate_pfn,
  migrate_pfn_flags,
  migrate_pfn_to_page,
  migrate_vma,
  type migrate_vma_ops,
} from '../../../src-main/kernel/mm/migrate';
import {
  get_page,
  lock_page,
  PageLocked,
  page_count,
  page_mapcount,
  page_zonenum,
  put_page,
} from '../../../src-main/kernel/include/mm';
import { ZONE_DEVICE } from '../../../src-main/kernel/include/mmzone';
import { EINVAL } from '../../../src-main/kernel/include/errno';
import {
  is_device_entry,
  is_migration_entry,
  is_swap_pte,
  is_write_device_entry,
  migration_entry_to_page,
  pte_to_swp_entry,
} from '../../../src-main/kernel/include/swapops';
import { pte_mkclean, pte_mkold, pte_present, pte_write } from '../../../src-main/kernel/include/pgtable';
import { MAP_PRIVATE, PROT_READ, PROT_WRITE, do_mmap, do_munmap } from '../../../src-main/kernel/mm/mmap';
import { VM_HUGEPAGE, VM_HUGETLB, type vm_area_struct } from '../../../src-main/kernel/include/mm_types';
import { do_fork } from '../../../src-main/kernel/kernel/fork';
import { do_exit } from '../../../src-main/kernel/kernel/exit';
import { load_stamp, store_stamp } from '../../../src-main/kernel/arch/x86/lib/usercopy';
import { alloc_page, GFP_HIGHUSER_MOVABLE } from '../../../src-main/kernel/mm/page_alloc';
import { copy_highpage } from '../../../src-main/kernel/mm/highmem';
import { shmem_file_setup } from '../../../src-main/kernel/mm/filemap';
import type { task_struct } from '../../../src-main/kernel/include/sched';
import type { Kernel } from '../../../src-main/kernel/kernel';

function freePages(k: Kernel): number {
  return k.node.node_zones.reduce((n, z) => n + z.nr_free_pages, 0);
}

function isDeviceEntry(k: Kernel, pte: number): boolean {
  return is_swap_pte(pte) && is_device_entry(k, pte_to_swp_entry(pte));
}

describe('include/linux/migrate.h: MIGRATE_PFN entries', () => {
  it('migrate_pfn puts the pfn above MIGRATE_PFN_SHIFT with VALID; migrate_pfn_to_page reads it back', () => {
    const { k, d } = bootDmirror();
    expect([
      MIGRATE_PFN_VALID,
      MIGRATE_PFN_MIGRATE,
      MIGRATE_PFN_LOCKED,
      MIGRATE_PFN_WRITE,
      MIGRATE_PFN_DEVICE,
      MIGRATE_PFN_ERROR,
      MIGRATE_PFN_SHIFT,
    ]).toEqual([1, 2, 4, 8, 16, 32, 6]);
    const pfn = d.devmem.pfn_last - 1;
    const e = migrate_pfn(pfn) + MIGRATE_PFN_LOCKED + MIGRATE_PFN_WRITE;
    expect(e).toBe(pfn * 64 + 13);
    expect(migrate_pfn_flags(e)).toBe(MIGRATE_PFN_VALID | MIGRATE_PFN_LOCKED | MIGRATE_PFN_WRITE);
    expect(migrate_pfn_to_page(k, e)).toBe(k.mem.pfn_to_page(pfn));
    expect(migrate_pfn_to_page(k, MIGRATE_PFN_MIGRATE)).toBe(-1);
    expect(migrate_pfn_to_page(k, MIGRATE_PFN_ERROR)).toBe(-1);
  });
});

describe('mm/migrate.c: migrate_vma', () => {
  it('a round trip to device memory and back keeps every page, rss, and gives the device its pages back', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const n = 100;
    const addr = mapAnon(k, t, n);
    storePattern(k, t, addr, n, 1000);
    const free = freePages(k);
    expect(anonRss(t)).toBe(n);

    expect(d.migrate(t, addr, n)).toEqual({ ret: 0, cpages: n });
    // Every CPU PTE is a write device entry whose page the device maps at the same address.
    for (let i = 0; i < n; i++) {
      const pte = pteAt(k, t, addr + i * PS);
      expect(isDeviceEntry(k, pte) && is_write_device_entry(k, pte_to_swp_entry(pte))).toBe(true);
      const page = devicePageAt(k, t, addr + i * PS);
      expect(d.device_page(t.mm!, addr + i * PS)).toBe(page);
      expect(k.mem.stamp[page]).toBe(1000 + i);
      expect([page_count(k, page), page_mapcount(k, page), PageLocked(k, page)]).toEqual([2, 1, false]);
    }
    expect(anonRss(t)).toBe(n);
    expect(freePages(k)).toBe(free + n);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages - n);

    expect(d.migrate_to_sys(t, addr, n)).toEqual({ ret: 0, cpages: n });
    expect(loadAll(k, t, addr, n)).toEqual(pattern(n, 1000));
    expect(d.faults).toBe(0);
    expect(anonRss(t)).toBe(n);
    expect(freePages(k)).toBe(free);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
    expect(d.mirrors.get(t.mm!)!.pt.size).toBe(0);
    expect(warnings(k)).toEqual([]);
  });

  it('pages brought back by CPU faults (hmm-tests migrate_fault) read the pattern, and rss is unchanged', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const n = 16;
    const addr = mapAnon(k, t, n);
    storePattern(k, t, addr, n, 7);
    for (let round = 0; round < 2; round++) {
      expect(d.migrate(t, addr, n)).toEqual({ ret: 0, cpages: n });
      expect(loadAll(k, t, addr, n)).toEqual(pattern(n, 7));
    }
    expect(d.faults).toBe(2 * n);
    expect(anonRss(t)).toBe(n);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
  });

  it('collects the range under one mmu notifier invalidation with event "migrate"', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 4);
    storePattern(k, t, addr, 4, 0);
    const trace = recordTrace(k);
    d.migrate(t, addr, 4);
    expect(trace.filter((e) => e.name.startsWith('mmu_notifier'))).toEqual([
      {
        name: 'mmu_notifier_invalidate_range_start',
        mm: t.mm!.id,
        start: addr,
        end: addr + 4 * PS,
        event: 'migrate',
      },
      {
        name: 'mmu_notifier_invalidate_range_end',
        mm: t.mm!.id,
        start: addr,
        end: addr + 4 * PS,
        event: 'migrate',
      },
    ]);
  });

  it('holes and the zero page of an anonymous vma become zero-filled device pages; rss grows by the new pages', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 8);
    for (const i of [0, 1, 3]) store_stamp(k, t, addr + i * PS, 50 + i);
    expect(load_stamp(k, t, addr + 4 * PS)).toBe(0); // the zero page
    expect(anonRss(t)).toBe(3);

    expect(d.migrate(t, addr, 8)).toEqual({ ret: 0, cpages: 8 });
    expect(anonRss(t)).toBe(8);
    for (let i = 0; i < 8; i++) {
      const page = devicePageAt(k, t, addr + i * PS);
      expect(page_zonenum(k, page)).toBe(ZONE_DEVICE);
      expect(is_write_device_entry(k, pte_to_swp_entry(pteAt(k, t, addr + i * PS)))).toBe(true);
      expect([page_count(k, page), page_mapcount(k, page)]).toEqual([2, 1]);
    }
    expect(d.migrate_to_sys(t, addr, 8)).toEqual({ ret: 0, cpages: 8 });
    expect(loadAll(k, t, addr, 8)).toEqual([50, 51, 0, 53, 0, 0, 0, 0]);
    expect(anonRss(t)).toBe(8);
  });

  it('holes of a read-only anonymous vma become read device entries', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 2, PROT_READ);
    expect(d.migrate(t, addr, 2)).toEqual({ ret: 0, cpages: 2 });
    const pte = pteAt(k, t, addr);
    expect(isDeviceEntry(k, pte) && !is_write_device_entry(k, pte_to_swp_entry(pte))).toBe(true);
    expect(loadAll(k, t, addr, 2)).toEqual([0, 0]);
    expect(pte_write(pteAt(k, t, addr))).toBe(false);
  });

  it('a file mapping is not populated and its page-cache pages stay: device private memory takes anonymous pages only', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const f = shmem_file_setup(k, 'data', 4 * PS);
    const addr = do_mmap(k, t.mm!, {
      len: 4 * PS,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE,
      file: f,
    }) as number;
    expect(load_stamp(k, t, addr)).toBe(0);
    const cached = presentPageAt(k, t, addr);
    const count = page_count(k, cached);
    expect(d.migrate(t, addr, 4)).toEqual({ ret: 0, cpages: 0 });
    expect(presentPageAt(k, t, addr)).toBe(cached);
    expect(page_count(k, cached)).toBe(count);
    expect(pteAt(k, t, addr + PS)).toBe(0);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
  });

  it('a pinned page (an extra get_page) is not migrated: cpages is smaller and the page keeps its PTE', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 4);
    storePattern(k, t, addr, 4, 20);
    const pinned = presentPageAt(k, t, addr + PS);
    const pte = pteAt(k, t, addr + PS);
    get_page(k, pinned);

    expect(d.migrate(t, addr, 4)).toEqual({ ret: 0, cpages: 3 });
    // remove_migration_pte restores it old and clean, write and soft-dirty kept.
    expect(pteAt(k, t, addr + PS)).toBe(pte_mkold(pte_mkclean(pte)));
    expect([page_count(k, pinned), page_mapcount(k, pinned), PageLocked(k, pinned)]).toEqual([2, 1, false]);
    expect([0, 2, 3].every((i) => devicePageAt(k, t, addr + i * PS) >= 0)).toBe(true);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages - 3);

    put_page(k, pinned);
    expect(d.migrate(t, addr, 4)).toEqual({ ret: 0, cpages: 1 });
    expect(loadAll(k, t, addr, 4)).toEqual(pattern(4, 20));
    expect(anonRss(t)).toBe(4);
  });

  it('a page locked by someone else is skipped, not waited for', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 2);
    storePattern(k, t, addr, 2, 0);
    const page = presentPageAt(k, t, addr);
    lock_page(k, page);
    expect(d.migrate(t, addr, 2)).toEqual({ ret: 0, cpages: 1 });
    expect(presentPageAt(k, t, addr)).toBe(page);
    expect([page_count(k, page), page_mapcount(k, page), PageLocked(k, page)]).toEqual([1, 1, true]);
  });

  it('a page shared after fork migrates in both processes: try_to_unmap and remove_migration_ptes go through rmap', () => {
    const { k, d } = bootDmirror();
    const parent = task(k);
    const addr = mapAnon(k, parent, 4);
    storePattern(k, parent, addr, 4, 300);
    const child = do_fork(k, parent, 'child') as task_struct;
    const old = presentPageAt(k, child, addr);
    expect([page_count(k, old), page_mapcount(k, old)]).toEqual([2, 2]);
    const free = freePages(k);

    expect(d.migrate(parent, addr, 4)).toEqual({ ret: 0, cpages: 4 });
    for (let i = 0; i < 4; i++) {
      const page = devicePageAt(k, parent, addr + i * PS);
      expect(devicePageAt(k, child, addr + i * PS)).toBe(page);
      // Both entries are read: fork write-protected the COW mapping.
      expect(is_write_device_entry(k, pte_to_swp_entry(pteAt(k, child, addr + i * PS)))).toBe(false);
      expect([page_count(k, page), page_mapcount(k, page)]).toEqual([3, 2]);
    }
    expect(freePages(k)).toBe(free + 4);
    expect([anonRss(parent), anonRss(child)]).toEqual([4, 4]);

    // The child's read brings the page back for both; the parent's device mapping goes.
    expect(load_stamp(k, child, addr)).toBe(300);
    const back = presentPageAt(k, child, addr);
    expect(presentPageAt(k, parent, addr)).toBe(back);
    expect([page_count(k, back), page_mapcount(k, back)]).toEqual([2, 2]);
    expect(d.device_page(parent.mm!, addr)).toBe(-1);
    expect(d.device_page(parent.mm!, addr + PS)).toBeGreaterThanOrEqual(0);
    expect(loadAll(k, parent, addr, 4)).toEqual(pattern(4, 300));
    expect(loadAll(k, child, addr, 4)).toEqual(pattern(4, 300));
    expect([anonRss(parent), anonRss(child)]).toEqual([4, 4]);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
  });

  it('fork COW with device pages: the child writes after fork and the parent keeps its data', () => {
    const { k, d } = bootDmirror();
    const parent = task(k);
    const addr = mapAnon(k, parent, 2);
    storePattern(k, parent, addr, 2, 10);
    d.migrate(parent, addr, 2);
    const child = do_fork(k, parent, 'child') as task_struct;

    expect(store_stamp(k, child, addr, 777)).toBeTypeOf('number');
    expect(store_stamp(k, child, addr + PS, 778)).toBeTypeOf('number');
    expect(loadAll(k, child, addr, 2)).toEqual([777, 778]);
    expect(loadAll(k, parent, addr, 2)).toEqual([10, 11]);
    expect(presentPageAt(k, parent, addr)).not.toBe(presentPageAt(k, child, addr));
    expect([anonRss(parent), anonRss(child)]).toEqual([2, 2]);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
    do_exit(k, child);
    do_exit(k, parent);
    expect(warnings(k)).toEqual([]);
  });

  it('a transparent huge page is split and its base pages migrate', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const HPAGE = 512;
    const addr = do_mmap(k, t.mm!, {
      len: HPAGE * PS,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | 0x20,
      align: HPAGE * PS,
    }) as number;
    vmaAt(t, addr).vm_flags |= VM_HUGEPAGE;
    storePattern(k, t, addr, 1, 9);
    expect(anonRss(t)).toBe(HPAGE);
    expect(d.migrate(t, addr, HPAGE)).toEqual({ ret: 0, cpages: HPAGE });
    expect(anonRss(t)).toBe(HPAGE);
    expect(load_stamp(k, t, addr)).toBe(9);
    expect(load_stamp(k, t, addr + 5 * PS)).toBe(0);
  });

  it('a CPU access during the copy finds the migration entry, waits and is reported instead of reading a page in flight', () => {
    const { k } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 1);
    storePattern(k, t, addr, 1, 42);
    const old = presentPageAt(k, t, addr);
    const seen: { pte: number; load: number | string; waits: number }[] = [];
    // A system-to-system migration whose driver touches the page while copying.
    const ops: migrate_vma_ops = {
      alloc_and_copy(vma, src, dst) {
        const waits = k.migration_waits;
        const load = load_stamp(k, t, addr);
        seen.push({ pte: pteAt(k, t, addr), load, waits: k.migration_waits - waits });
        const page = alloc_page(k, GFP_HIGHUSER_MOVABLE);
        lock_page(k, page);
        copy_highpage(k, page, migrate_pfn_to_page(k, src[0]!));
        dst[0] = migrate_pfn(k.mem.page_to_pfn(page)) + MIGRATE_PFN_LOCKED;
        void vma;
      },
      finalize_and_map() {},
    };
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    expect(migrate_vma(k, ops, vmaAt(t, addr), addr, addr + PS, src, dst, null)).toBe(0);

    const entry = pte_to_swp_entry(seen[0]!.pte);
    expect(is_migration_entry(k, entry) && migration_entry_to_page(k, entry)).toBe(old);
    expect(seen[0]!.load).toBe('SIGBUS');
    expect(seen[0]!.waits).toBe(16);
    expect(warnings(k).some((w) => w.includes('still faults after 16 tries'))).toBe(true);
    // The migration itself completed: the new page has the data, the old one is free.
    const page = presentPageAt(k, t, addr);
    expect(page).not.toBe(old);
    expect(pte_present(pteAt(k, t, addr)) && pte_write(pteAt(k, t, addr))).toBe(true);
    expect(k.mem.stamp[page]).toBe(42);
    expect([page_count(k, page), page_mapcount(k, page), PageLocked(k, page)]).toEqual([1, 1, false]);
    expect(page_count(k, old)).toBe(0);
    expect(load_stamp(k, t, addr)).toBe(42);
  });

  it('refuses bad ranges and vmas with -EINVAL', () => {
    const { k } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 4);
    const vma = vmaAt(t, addr);
    const ops: migrate_vma_ops = { alloc_and_copy() {}, finalize_and_map() {} };
    const a = new Float64Array(8);
    const b = new Float64Array(8);
    expect(migrate_vma(k, ops, null, addr, addr + PS, a, b, null)).toBe(-EINVAL);
    expect(migrate_vma(k, null, vma, addr, addr + PS, a, b, null)).toBe(-EINVAL);
    expect(migrate_vma(k, ops, vma, addr - PS, addr + PS, a, b, null)).toBe(-EINVAL);
    expect(migrate_vma(k, ops, vma, addr, addr + 5 * PS, a, b, null)).toBe(-EINVAL);
    expect(migrate_vma(k, ops, vma, addr + PS, addr + PS, a, b, null)).toBe(-EINVAL);
    expect(migrate_vma(k, ops, vma, addr, addr + 4 * PS, new Float64Array(2), b, null)).toBe(-EINVAL);
    const huge = { ...vma, vm_flags: vma.vm_flags | VM_HUGETLB } as vm_area_struct;
    expect(migrate_vma(k, ops, huge, addr, addr + PS, a, b, null)).toBe(-EINVAL);
    expect(migrate_vma(k, ops, vma, addr, addr + 4 * PS, a, b, null)).toBe(0);
  });
});

describe('drivers/dmirror.ts: the device', () => {
  it('stops with -EINVAL at a gap in the range, after migrating what came before', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 4);
    storePattern(k, t, addr, 4, 0);
    expect(do_munmap(k, t.mm!, addr + 2 * PS, PS)).toBe(0);
    expect(d.migrate(t, addr, 4)).toEqual({ ret: -EINVAL, cpages: 2 });
    expect(d.migrate(t, addr + 1, 1)).toEqual({ ret: -EINVAL, cpages: 0 });
  });

  it('migrates what fits when its memory runs out; the rest stays in system memory', () => {
    const { k, d } = bootDmirror(128 * M);
    const t = task(k);
    const n = d.pool.nr_pages + 10;
    const addr = mapAnon(k, t, n);
    for (let i = 0; i < n; i += 1) store_stamp(k, t, addr + i * PS, i);
    expect(d.migrate(t, addr, n)).toEqual({ ret: 0, cpages: d.pool.nr_pages });
    expect(d.pool.nr_free).toBe(0);
    expect(presentPageAt(k, t, addr + (n - 1) * PS)).toBeGreaterThanOrEqual(0);
    expect(load_stamp(k, t, addr + 5 * PS)).toBe(5);
  });

  it('drops its device mappings when the CPU page table changes (munmap) and on exit', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 8);
    storePattern(k, t, addr, 8, 0);
    d.migrate(t, addr, 8);
    const mirror = d.mirrors.get(t.mm!)!;
    expect(mirror.pt.size).toBe(8);
    do_munmap(k, t.mm!, addr, 2 * PS);
    expect(mirror.pt.size).toBe(6);
    expect(d.device_page(t.mm!, addr)).toBe(-1);
    do_exit(k, t);
    expect(mirror.pt.size).toBe(0);
    expect(d.mirrors.size).toBe(0);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
    expect(warnings(k)).toEqual([]);
  });
});
