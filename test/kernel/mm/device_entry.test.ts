// Seed 001: un-addressable device memory in CPU page tables. Device entries are made the
// way the kernel makes them, by migrating process pages into a dmirror device.
import { describe, it, expect } from 'vitest';
import { G, M, PAGE, recordLog, recordTrace } from '../helpers';
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
import { probeDevice, type BoundDevice } from '../../../src-main/drivers/builtin';
import {
  copy_from_user,
  copy_to_user,
  load_stamp,
  store_stamp,
} from '../../../src-main/kernel/arch/x86/lib/usercopy';
import {
  device_entry_to_page,
  is_device_entry,
  is_swap_pte,
  is_write_device_entry,
  make_device_entry,
  make_device_entry_read,
  non_swap_entry,
  pte_swp_mksoft_dirty,
  pte_swp_soft_dirty,
  pte_to_swp_entry,
  swp_entry_to_pte,
  swp_offset,
  swp_type,
} from '../../../src-main/kernel/include/swapops';
import { pfn_pte, pte_flags, pte_present, pte_write } from '../../../src-main/kernel/include/pgtable';
import { page_count, page_mapcount, page_zonenum } from '../../../src-main/kernel/include/mm';
import { ZONE_DEVICE } from '../../../src-main/kernel/include/mmzone';
import { MM_ANONPAGES, VM_MAYSHARE, VM_SHARED } from '../../../src-main/kernel/include/mm_types';
import { is_addressable_page } from '../../../src-main/kernel/kernel/memremap';
import { do_fork } from '../../../src-main/kernel/kernel/fork';
import { do_munmap } from '../../../src-main/kernel/mm/mmap';
import { lookup_pte } from '../../../src-main/kernel/mm/pgtable';
import { unmap_page_range } from '../../../src-main/kernel/mm/memory';
import { PageAnon, page_rmapping } from '../../../src-main/kernel/mm/rmap';
import type { task_struct } from '../../../src-main/kernel/include/sched';
import type { Kernel } from '../../../src-main/kernel/kernel';

/** Set the soft-dirty bit of the swap PTE at addr. */
function markSoftDirty(k: Kernel, t: task_struct, addr: number): void {
  const ptep = lookup_pte(k, t.mm!, addr);
  k.pt.entries[ptep] = pte_swp_mksoft_dirty(k.pt.entries[ptep]!);
}

describe('include/linux/swapops.h: device entries', () => {
  it('F-DEV-1: SWP_DEVICE_WRITE (30) and SWP_DEVICE (31) end the 5-bit type space above migration and hwpoison; MAX_SWAPFILES is 27', () => {
    const { k } = bootDmirror();
    expect(k.swp).toEqual({
      MAX_SWAPFILES: 27,
      SWP_HWPOISON: 27,
      SWP_MIGRATION_READ: 28,
      SWP_MIGRATION_WRITE: 29,
      SWP_DEVICE_WRITE: 30,
      SWP_DEVICE: 31,
    });
    expect(k.swp.SWP_DEVICE).toBe(2 ** 5 - 1);
  });

  it('F-DEV-1: a device entry keeps the pfn as its offset and round-trips through swp_entry_to_pte/pte_to_swp_entry', () => {
    const { k, d } = bootDmirror();
    const pfn = d.devmem.pfn_first + 77;
    const page = k.mem.pfn_to_page(pfn);
    // Device memory sits near the top of the 46-bit physical space: pfns beyond 2^32.
    expect(pfn).toBeGreaterThan(2 ** 32);
    const w = make_device_entry(k, page, true);
    const r = make_device_entry(k, page, false);
    expect([swp_type(w), swp_offset(w)]).toEqual([30, pfn]);
    expect([swp_type(r), swp_offset(r)]).toEqual([31, pfn]);
    expect(make_device_entry_read(k, w)).toBe(r);
    for (const e of [w, r]) {
      const pte = swp_entry_to_pte(e);
      expect(pte_present(pte)).toBe(false);
      expect(is_swap_pte(pte)).toBe(true);
      expect(pte_to_swp_entry(pte)).toBe(e);
      // The PTE's own bits (soft-dirty) are not the entry's.
      expect(pte_to_swp_entry(pte_swp_mksoft_dirty(pte))).toBe(e);
      expect(non_swap_entry(k, e)).toBe(true);
      expect(is_device_entry(k, e)).toBe(true);
      expect(device_entry_to_page(k, e)).toBe(page);
    }
    expect([is_write_device_entry(k, w), is_write_device_entry(k, r)]).toEqual([true, false]);
  });

  it('F-DEV-1: a page migrated to the device is mapped by exactly make_device_entry(page, write)', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 1);
    storePattern(k, t, addr, 1, 5);
    expect(d.migrate(t, addr, 1)).toEqual({ ret: 0, cpages: 1 });
    const page = d.device_page(t.mm!, addr);
    expect(page_zonenum(k, page)).toBe(ZONE_DEVICE);
    expect(pteAt(k, t, addr)).toBe(swp_entry_to_pte(make_device_entry(k, page, true)));
  });
});

describe('mm/memory.c: CPU faults on device entries', () => {
  it('F-DEV-2: a CPU read of a migrated page goes do_swap_page -> device_entry_fault -> page_fault -> the driver, which brings it back to RAM with its data', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 4);
    const bytes = new Uint8Array(4 * PS).map((_, i) => (i * 7) % 251);
    expect(copy_to_user(k, t, addr, bytes)).toBeNull();
    const stamp1 = k.mem.stamp[presentPageAt(k, t, addr + PS)]!;
    expect(d.migrate(t, addr, 4)).toEqual({ ret: 0, cpages: 4 });
    const dpage = devicePageAt(k, t, addr + PS);
    const free = d.pool.nr_free;
    const trace = recordTrace(k);

    const out = new Uint8Array(PS);
    expect(copy_from_user(k, t, addr + PS, out)).toBeNull();
    expect(out).toEqual(bytes.subarray(PS, 2 * PS));

    // The fault went to the driver through the pagemap, which migrated one page back.
    const fault = trace.find((e) => e.name === 'devmem_fault');
    expect(fault).toEqual({
      name: 'devmem_fault',
      device: 'gpu0',
      pfn: k.mem.page_to_pfn(dpage),
      mm: t.mm!.id,
      addr: addr + PS,
      result: 0,
    });
    expect(trace.filter((e) => e.name === 'migrate_vma')).toEqual([
      { name: 'migrate_vma', mm: t.mm!.id, start: addr + PS, end: addr + 2 * PS, collected: 1, migrated: 1 },
    ]);
    expect(trace.map((e) => e.name).filter((n) => n === 'devmem_fault' || n === 'page_fault')).toEqual([
      'devmem_fault',
      'page_fault',
    ]);
    expect(d.faults).toBe(1);
    const page = presentPageAt(k, t, addr + PS);
    expect(page).toBeGreaterThanOrEqual(0);
    expect(is_addressable_page(k, page)).toBe(true);
    expect(k.mem.stamp[page]).toBe(stamp1);
    expect(pte_write(pteAt(k, t, addr + PS))).toBe(true);
    // The device page went back to the driver; the other pages stay on the device.
    expect(page_count(k, dpage)).toBe(1);
    expect(d.pool.nr_free).toBe(free + 1);
    expect([0, 2, 3].map((i) => devicePageAt(k, t, addr + i * PS) >= 0)).toEqual([true, true, true]);
    expect(t.signals).toEqual([]);
  });

  it('F-DEV-2: a CPU write to a migrated page faults it back and lands in RAM', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 2);
    storePattern(k, t, addr, 2, 40);
    expect(d.migrate(t, addr, 2).cpages).toBe(2);
    expect(store_stamp(k, t, addr, 99)).toBeTypeOf('number');
    expect(d.faults).toBe(1);
    expect(loadAll(k, t, addr, 2)).toEqual([99, 41]);
    expect(d.faults).toBe(2);
    expect(anonRss(t)).toBe(2);
  });

  it('F-DEV-2: when the driver fault fails with VM_FAULT_SIGBUS the process gets SIGBUS and the page stays on the device', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 1);
    storePattern(k, t, addr, 1, 7);
    d.migrate(t, addr, 1);
    const dpage = devicePageAt(k, t, addr);
    const entry = pteAt(k, t, addr);
    // hmm_vma_alloc_locked_page finds no memory: the driver answers VM_FAULT_SIGBUS.
    k.fault.inject('alloc_pages');
    expect(load_stamp(k, t, addr)).toBe('SIGBUS');
    expect(t.signals).toEqual([{ sig: 'SIGBUS', addr }]);
    expect(pteAt(k, t, addr)).toBe(entry);
    expect(page_count(k, dpage)).toBe(2);
    expect(page_mapcount(k, dpage)).toBe(1);
    // With memory again, the next access succeeds.
    expect(load_stamp(k, t, addr)).toBe(7);
  });
});

describe('mm/memory.c: copy_one_pte on device entries (fork)', () => {
  it('F-DEV-3: fork takes a page reference and a mapcount, counts the page in the child rss, and makes a write entry read in parent and child, soft-dirty kept', () => {
    const { k, d } = bootDmirror();
    const parent = task(k);
    const addr = mapAnon(k, parent, 1);
    storePattern(k, parent, addr, 1, 3);
    d.migrate(parent, addr, 1);
    const page = devicePageAt(k, parent, addr);
    markSoftDirty(k, parent, addr);
    expect([page_count(k, page), page_mapcount(k, page)]).toEqual([2, 1]);

    const child = do_fork(k, parent, 'child') as task_struct;
    const read = pte_swp_mksoft_dirty(swp_entry_to_pte(make_device_entry(k, page, false)));
    expect(pteAt(k, parent, addr)).toBe(read);
    expect(pteAt(k, child, addr)).toBe(read);
    expect(pte_swp_soft_dirty(pteAt(k, child, addr))).toBe(true);
    expect([page_count(k, page), page_mapcount(k, page)]).toEqual([3, 2]);
    expect(child.mm!.rss_stat[MM_ANONPAGES]).toBe(1);
    expect(parent.mm!.rss_stat[MM_ANONPAGES]).toBe(1);
  });

  it('F-DEV-3: in a shared mapping the write device entry stays write in parent and child', () => {
    const { k, d } = bootDmirror();
    const parent = task(k);
    const addr = mapAnon(k, parent, 1);
    storePattern(k, parent, addr, 1, 3);
    d.migrate(parent, addr, 1);
    const page = devicePageAt(k, parent, addr);
    // The lab puts only private anonymous pages in device memory (as the seeds do), so
    // the shared mapping is this one with its flags turned shared.
    vmaAt(parent, addr).vm_flags |= VM_SHARED | VM_MAYSHARE;
    const write = swp_entry_to_pte(make_device_entry(k, page, true));
    expect(pteAt(k, parent, addr)).toBe(write);

    const child = do_fork(k, parent, 'child') as task_struct;
    expect(pteAt(k, parent, addr)).toBe(write);
    expect(pteAt(k, child, addr)).toBe(write);
    expect([page_count(k, page), page_mapcount(k, page)]).toEqual([3, 2]);
    expect(child.mm!.rss_stat[MM_ANONPAGES]).toBe(1);
  });
});

describe('mm/memory.c: zap_pte_range on device entries', () => {
  it('F-DEV-4: munmap of device pages clears the entries, drops rss and runs the free callback for each page', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 8);
    storePattern(k, t, addr, 8, 0);
    d.migrate(t, addr, 8);
    const pages = pattern(8, 0).map((i) => devicePageAt(k, t, addr + i * PS));
    expect(anonRss(t)).toBe(8);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages - 8);
    const trace = recordTrace(k);

    expect(do_munmap(k, t.mm!, addr, 8 * PS)).toBe(0);
    expect(anonRss(t)).toBe(0);
    expect(pattern(8, 0).map((i) => pteAt(k, t, addr + i * PS))).toEqual(Array(8).fill(0));
    expect(trace.filter((e) => e.name === 'devmem_free').map((e) => (e as { pfn: number }).pfn)).toEqual(
      pages.map((p) => k.mem.page_to_pfn(p)),
    );
    expect(pages.map((p) => [page_count(k, p), page_mapcount(k, p), k.mem.mapping[p]])).toEqual(
      Array(8).fill([1, 0, 0]),
    );
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
  });

  it('F-DEV-4: with check_mapping, a device page of another mapping is skipped and one of the mapping is zapped', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 2);
    storePattern(k, t, addr, 2, 0);
    d.migrate(t, addr, 2);
    const vma = vmaAt(t, addr);
    const page = devicePageAt(k, t, addr);
    const entries = [pteAt(k, t, addr), pteAt(k, t, addr + PS)];

    unmap_page_range(k, vma, addr, addr + 2 * PS, { check_mapping: { another: 'mapping' } });
    expect([pteAt(k, t, addr), pteAt(k, t, addr + PS)]).toEqual(entries);
    expect(anonRss(t)).toBe(2);
    expect(page_count(k, page)).toBe(2);

    unmap_page_range(k, vma, addr, addr + 2 * PS, { check_mapping: page_rmapping(k, page) });
    expect([pteAt(k, t, addr), pteAt(k, t, addr + PS)]).toEqual([0, 0]);
    expect(anonRss(t)).toBe(0);
    expect(page_count(k, page)).toBe(1);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
  });
});

describe('mm/memory.c: handle_pte_fault and un-addressable pages', () => {
  it('F-DEV-6: a present PTE pointing at a device private pfn is a bad PTE: "BUG: Bad page map" and SIGBUS', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 1);
    storePattern(k, t, addr, 1, 1);
    const dpfn = d.devmem.pfn_first + 3;
    const ptep = lookup_pte(k, t.mm!, addr);
    k.pt.entries[ptep] = pfn_pte(dpfn, pte_flags(k.pt.entries[ptep]!));
    const log = recordLog(k);
    const trace = recordTrace(k);

    expect(load_stamp(k, t, addr)).toBe('SIGBUS');
    expect(store_stamp(k, t, addr, 2)).toBe('SIGBUS');
    expect(t.signals.map((s) => s.sig)).toEqual(['SIGBUS', 'SIGBUS']);
    expect(log).toHaveLength(2);
    expect(log[0]!.level).toBe('err');
    expect(log[0]!.text).toMatch(
      new RegExp(
        `^BUG: Bad page map in process mm${t.mm!.id} .*page:pfn 0x${dpfn.toString(16)} count:1 mapcount:0`,
      ),
    );
    expect(trace.filter((e) => e.name === 'bad_pte')).toHaveLength(2);
  });
});

describe('kernel/memremap.c: is_addressable_page', () => {
  it('F-DEV-8: only ZONE_DEVICE pages of private (un-addressable) memory are not addressable: RAM, public and pmem pages are', () => {
    const { k, d } = bootDmirror();
    const pub = probeDevice(k, {
      name: 'cdm0',
      kind: 'public',
      memory: 128 * M,
      start: 8 * G,
      driver: 'dmirror',
    }) as BoundDevice;
    const pmem = probeDevice(k, {
      name: 'pmem0',
      kind: 'pmem',
      memory: 128 * M,
      start: 16 * G,
      driver: 'pmem',
      mode: 'fsdax',
    }) as BoundDevice;
    const ram = k.mem.pfn_to_page((512 * M) / PAGE);
    const priv = k.mem.pfn_to_page(d.devmem.pfn_first);
    const pubPage = k.mem.pfn_to_page(pub.devmem!.pfn_first);
    const pmemPage = k.mem.pfn_to_page(pmem.pmem!.phys_addr / PAGE + 1);
    expect([priv, pubPage, pmemPage].map((p) => page_zonenum(k, p))).toEqual([
      ZONE_DEVICE,
      ZONE_DEVICE,
      ZONE_DEVICE,
    ]);
    expect([ram, priv, pubPage, pmemPage].map((p) => is_addressable_page(k, p))).toEqual([
      true,
      false,
      true,
      true,
    ]);
  });
});

describe('mm/hmm.c: dmirror pages through the device page callbacks', () => {
  it('F-DEVMEM-5: a CPU fault on a dmirror page runs its fault callback; the page dropping to refcount 1 runs free and clears page->mapping', () => {
    const { k, d } = bootDmirror();
    const t = task(k);
    const addr = mapAnon(k, t, 1);
    storePattern(k, t, addr, 1, 11);
    d.migrate(t, addr, 1);
    const page = devicePageAt(k, t, addr);
    expect(k.mem.mapping[page]).not.toBe(0);
    expect(PageAnon(k, page)).toBe(true);
    expect(page_count(k, page)).toBe(2);
    const trace = recordTrace(k);

    expect(load_stamp(k, t, addr)).toBe(11);
    expect(d.faults).toBe(1);
    expect(
      trace.filter((e) => e.name === 'devmem_fault' || e.name === 'devmem_free').map((e) => e.name),
    ).toEqual(['devmem_free', 'devmem_fault']);
    expect(page_count(k, page)).toBe(1);
    expect(k.mem.mapping[page]).toBe(0);
    expect(PageAnon(k, page)).toBe(false);
    expect(d.pool.nr_free).toBe(d.pool.nr_pages);
  });
});
