// mm/memory.c: page faults, copying page tables at fork, and zapping them at unmap.
// Seed 001 adds device entries to each: fork duplicates them (F-DEV-3), unmap always
// zaps them (F-DEV-4), a CPU access faults them back through the pagemap (F-DEV-2),
// and a present PTE of an un-addressable page is a bad PTE (F-DEV-6).
import type { Kernel } from '../kernel';
import { ENOMEM } from '../include/errno';
import {
  add_mm_counter,
  FAULT_FLAG_WRITE,
  is_cow_mapping,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  MM_SWAPENTS,
  NR_MM_COUNTERS,
  VM_FAULT_HWPOISON,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_WRITE,
  VM_HUGETLB,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_SHARED,
  VM_WRITE,
  vma_is_anonymous,
  type mm_struct,
  type vm_area_struct,
} from '../include/mm_types';
import {
  _PAGE_PROTNONE,
  _PAGE_RW,
  pfn_pte,
  pmd_huge,
  pte_devmap,
  pte_dirty,
  pte_mkclean,
  pte_mkdirty,
  pte_mkspecial,
  pte_mkwrite,
  pte_mkyoung,
  pte_none,
  pte_pfn,
  pte_present,
  pte_special,
  pte_write,
  pte_wrprotect,
} from '../include/pgtable';
import {
  device_entry_to_page,
  is_device_entry,
  is_hwpoison_entry,
  is_migration_entry,
  migration_entry_to_page,
  non_swap_entry,
  pte_to_swp_entry,
  type swp_entry_t,
  swp_pte_mkread,
} from '../include/swapops';
import { PG_swapbacked } from '../include/page-flags';
import { get_page, put_page } from '../include/mm';
import { is_addressable_page, page_pgmap } from '../kernel/memremap';
import { alloc_page, GFP_HIGHUSER_MOVABLE } from './page_alloc';
import { clear_highpage, copy_highpage } from './highmem';
import {
  PageAnon,
  page_add_file_rmap,
  page_add_new_anon_rmap,
  page_dup_rmap,
  page_remove_rmap,
  page_rmapping,
} from './rmap';
import {
  pmd_alloc,
  pte_alloc_map,
  pte_offset_map,
  pud_offset,
  pgd_offset,
  pmd_offset,
  pud_alloc,
} from './pgtable';
import { dax_file_page, dax_huge_entry, dax_pte_entry, vma_is_dax } from '../fs/dax';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';
import { filemap_fault, set_page_dirty } from './filemap';
import { copy_huge_pmd, do_huge_pmd_anonymous_page, huge_pmd_fault, zap_huge_pmd } from './huge_memory';
import { copy_hugetlb_page_range, hugetlb_fault, unmap_hugepage_range } from './hugetlb';

/** Which rss counter a page counts in (mm_counter()). */
export function mm_counter(k: Kernel, page: number): number {
  if (PageAnon(k, page)) return MM_ANONPAGES;
  return k.mem.flags[page]! & PG_swapbacked ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/** Change an rss counter and announce it (rss_stat tracepoint). */
export function add_rss(k: Kernel, mm: mm_struct, member: number, value: number): void {
  if (value === 0) return;
  add_mm_counter(mm, member, value);
  if (k.trace.on('rss_stat'))
    k.trace.emit({ name: 'rss_stat', mm: mm.id, member, size: mm.rss_stat[member]! });
}

/** The page a present PTE maps, or -1 for special mappings and the zero page. */
export function vm_normal_page(k: Kernel, vma: vm_area_struct, pte: number): number {
  if (pte_special(pte)) return -1;
  const pfn = pte_pfn(pte);
  if (pfn === k.zero_pfn) return -1;
  if (vma.vm_flags & VM_PFNMAP) return -1;
  return k.mem.pfn_to_page(pfn);
}

export function is_zero_pfn(k: Kernel, pfn: number): boolean {
  return pfn === k.zero_pfn;
}

/** F-DEV-6: report a page-table entry that must not exist. */
export function print_bad_pte(k: Kernel, vma: vm_area_struct, addr: number, pte: number, page: number): void {
  const what =
    page >= 0
      ? ` page:pfn 0x${k.mem.page_to_pfn(page).toString(16)} count:${k.mem.refcount[page]} mapcount:${k.mem.mapcount[page]}`
      : '';
  k.printk(
    'err',
    `BUG: Bad page map in process mm${vma.vm_mm.id}  pte:${pte.toString(16).padStart(16, '0')}${what} addr:0x${addr.toString(16)}`,
  );
  k.trace.emit({ name: 'bad_pte', mm: vma.vm_mm.id, addr, pte });
}

export function maybe_mkwrite(pte: number, vma: vm_area_struct): number {
  return vma.vm_flags & VM_WRITE ? pte_mkwrite(pte) : pte;
}

/** A mapping of a fresh page in `vma` with the vma's protection. */
export function mk_pte(k: Kernel, page: number, vma: vm_area_struct): number {
  return pfn_pte(k.mem.page_to_pfn(page), vma.vm_page_prot);
}

/** Fault on a none PTE of an anonymous vma: the zero page for a read, a new page for a write. */
function do_anonymous_page(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  ptep: number,
  flags: number,
): number {
  const mm = vma.vm_mm;
  if (!(flags & FAULT_FLAG_WRITE)) {
    k.pt.entries[ptep] = pte_mkspecial(pfn_pte(k.zero_pfn, vma.vm_page_prot & ~_PAGE_RW));
    return 0;
  }
  const page = alloc_page(k, GFP_HIGHUSER_MOVABLE);
  if (page < 0) return VM_FAULT_OOM;
  clear_highpage(k, page);
  page_add_new_anon_rmap(k, page, vma, addr);
  add_rss(k, mm, MM_ANONPAGES, 1);
  k.pt.entries[ptep] = pte_mkdirty(maybe_mkwrite(mk_pte(k, page, vma), vma));
  return 0;
}

/** Fault on a none PTE of a file vma: map the page cache page, or copy it for a private write. */
function do_fault(k: Kernel, vma: vm_area_struct, addr: number, ptep: number, flags: number): number {
  const mm = vma.vm_mm;
  if (vma_is_dax(vma)) return do_dax_fault(k, vma, addr, ptep, flags);
  const pgoff = (addr - vma.vm_start) / k.c.PAGE_SIZE + vma.vm_pgoff;
  const cached = filemap_fault(k, vma, pgoff);
  if (cached < 0) return -cached;
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (write && !(vma.vm_flags & VM_SHARED)) {
    // do_cow_fault: the process gets its own anonymous copy of the file page.
    const page = alloc_page(k, GFP_HIGHUSER_MOVABLE);
    if (page < 0) return VM_FAULT_OOM;
    copy_highpage(k, page, cached);
    page_add_new_anon_rmap(k, page, vma, addr);
    add_rss(k, mm, MM_ANONPAGES, 1);
    k.pt.entries[ptep] = pte_mkdirty(maybe_mkwrite(mk_pte(k, page, vma), vma));
    return 0;
  }
  get_page(k, cached);
  page_add_file_rmap(k, cached);
  add_rss(k, mm, mm_counter(k, cached), 1);
  let pte = mk_pte(k, cached, vma);
  if (write) {
    pte = pte_mkdirty(maybe_mkwrite(pte, vma));
    // fault_dirty_shared_page: a write fault dirties the shared page, not only the PTE.
    set_page_dirty(k, cached);
  }
  k.pt.entries[ptep] = pte;
  return 0;
}

/** A PTE fault in a DAX file: map the pmem pfn, or copy it for a private write. */
function do_dax_fault(k: Kernel, vma: vm_area_struct, addr: number, ptep: number, flags: number): number {
  if (flags & FAULT_FLAG_WRITE && !(vma.vm_flags & VM_SHARED)) {
    const src = dax_file_page(k, vma, addr);
    if (src < 0) return VM_FAULT_SIGBUS;
    return wp_page_copy(k, vma, addr, ptep, -1, src);
  }
  const entry = dax_pte_entry(k, vma, addr, flags);
  if (entry < 0) return -entry;
  k.pt.entries[ptep] = entry;
  return 0;
}

/** A CPU fault on a migration entry waits for the migration; the access then retries. */
export function migration_entry_wait(k: Kernel, mm: mm_struct, addr: number, entry: swp_entry_t): number {
  k.pr_debug(
    `mm${mm.id}: fault at 0x${addr.toString(16)} waits on migration of pfn 0x${migration_entry_to_page(k, entry) >= 0 ? k.mem.page_to_pfn(migration_entry_to_page(k, entry)).toString(16) : '?'}`,
  );
  k.migration_waits++;
  return 0;
}

/** F-DEV-2: the device entry's page faults back through its pagemap to the driver. */
export function device_entry_fault(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  entry: swp_entry_t,
  flags: number,
  pmd: number,
): number {
  const page = device_entry_to_page(k, entry);
  const pgmap = page_pgmap(k, page);
  if (!pgmap?.page_fault) {
    k.printk(
      'emerg',
      `kernel BUG at kernel/memremap.c: device entry of pfn 0x${k.mem.page_to_pfn(page).toString(16)} has no page_fault`,
    );
    return VM_FAULT_SIGBUS;
  }
  return pgmap.page_fault(vma, addr, page, flags, pmd);
}

/** Fault on a non-present, non-none PTE. */
function do_swap_page(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  ptep: number,
  flags: number,
  pmd: number,
): number {
  const entry = pte_to_swp_entry(k.pt.entries[ptep]!);
  if (non_swap_entry(k, entry)) {
    if (is_migration_entry(k, entry)) return migration_entry_wait(k, vma.vm_mm, addr, entry);
    if (is_device_entry(k, entry)) return device_entry_fault(k, vma, addr, entry, flags, pmd);
    if (is_hwpoison_entry(k, entry)) return VM_FAULT_HWPOISON;
  }
  // The lab has no swap device: any other swap entry is corruption.
  print_bad_pte(k, vma, addr, k.pt.entries[ptep]!, -1);
  return VM_FAULT_SIGBUS;
}

/**
 * Write fault on a present read-only PTE of a writable vma (do_wp_page): a shared
 * mapping becomes writable; an anonymous page only this PTE uses is reused; anything
 * else (zero page, file page, a page fork shares) is copied.
 */
function do_wp_page(k: Kernel, vma: vm_area_struct, addr: number, ptep: number): number {
  const orig = k.pt.entries[ptep]!;
  const old = vm_normal_page(k, vma, orig);
  if (vma.vm_flags & VM_SHARED) {
    k.pt.entries[ptep] = pte_mkdirty(maybe_mkwrite(pte_mkyoung(orig), vma));
    if (old >= 0) set_page_dirty(k, old);
    return 0;
  }
  if (old >= 0 && PageAnon(k, old) && k.mem.mapcount[old] === 1 && k.mem.refcount[old] === 1) {
    k.pt.entries[ptep] = pte_mkdirty(maybe_mkwrite(pte_mkyoung(orig), vma));
    return VM_FAULT_WRITE;
  }
  // A devmap page (DAX) is copied from, though the mapping held no reference on it.
  const src = old >= 0 ? old : pte_devmap(orig) ? k.mem.pfn_to_page(pte_pfn(orig)) : -1;
  return wp_page_copy(k, vma, addr, ptep, old, src);
}

/** Give the PTE a private copy of `src` (zeroes when -1), dropping the mapped page `old`. */
function wp_page_copy(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  ptep: number,
  old: number,
  src: number,
): number {
  const mm = vma.vm_mm;
  const page = alloc_page(k, GFP_HIGHUSER_MOVABLE);
  if (page < 0) return VM_FAULT_OOM;
  if (src >= 0) copy_highpage(k, page, src);
  else clear_highpage(k, page);
  const range = mmu_notifier_range_init(mm, addr, addr + k.c.PAGE_SIZE, 'cow');
  mmu_notifier_invalidate_range_start(k, range);
  if (old >= 0) {
    if (!PageAnon(k, old)) {
      add_rss(k, mm, mm_counter(k, old), -1);
      add_rss(k, mm, MM_ANONPAGES, 1);
    }
    page_remove_rmap(k, old);
    put_page(k, old);
  } else add_rss(k, mm, MM_ANONPAGES, 1);
  page_add_new_anon_rmap(k, page, vma, addr);
  k.pt.entries[ptep] = pte_mkdirty(maybe_mkwrite(mk_pte(k, page, vma), vma));
  mmu_notifier_invalidate_range_end(k, range);
  return VM_FAULT_WRITE;
}

/** handle_pte_fault: dispatch on what the PTE holds. */
function handle_pte_fault(k: Kernel, vma: vm_area_struct, addr: number, pmd: number, flags: number): number {
  const ptep = pte_alloc_map(k, vma.vm_mm, pmd, addr);
  if (ptep < 0) return VM_FAULT_OOM;
  const entry = k.pt.entries[ptep]!;
  if (pte_none(entry)) {
    return vma_is_anonymous(vma)
      ? do_anonymous_page(k, vma, addr, ptep, flags)
      : do_fault(k, vma, addr, ptep, flags);
  }
  if (!pte_present(entry)) return do_swap_page(k, vma, addr, ptep, flags, pmd);
  // F-DEV-6: un-addressable memory is never mapped by a present PTE.
  const page = is_zero_pfn(k, pte_pfn(entry)) ? -1 : k.mem.pfn_to_page(pte_pfn(entry));
  if (page >= 0 && !is_addressable_page(k, page)) {
    print_bad_pte(k, vma, addr, entry, page);
    return VM_FAULT_SIGBUS;
  }
  if (flags & FAULT_FLAG_WRITE) {
    if (!pte_write(entry)) return do_wp_page(k, vma, addr, ptep);
    k.pt.entries[ptep] = pte_mkdirty(entry);
  }
  k.pt.entries[ptep] = pte_mkyoung(k.pt.entries[ptep]!);
  return 0;
}

/** handle_mm_fault: resolve a fault at addr in vma. Returns VM_FAULT_* bits (0: retry the access). */
export function handle_mm_fault(k: Kernel, vma: vm_area_struct, address: number, flags: number): number {
  const mm = vma.vm_mm;
  // __handle_mm_fault: vmf.address = address & PAGE_MASK (rmap indexes, file offsets and
  // the COW invalidation range are per page).
  const addr = Math.floor(address / k.c.PAGE_SIZE) * k.c.PAGE_SIZE;
  let ret: number;
  if (vma.vm_flags & VM_HUGETLB) ret = hugetlb_fault(k, vma, addr, flags);
  else if (vma_is_dax(vma) && dax_huge_fault(k, vma, addr, flags)) ret = 0;
  else {
    const pmd = pmd_alloc(k, mm, addr);
    if (pmd < 0) ret = VM_FAULT_OOM;
    else if (pte_none(k.pt.entries[pmd]!) || !pmd_huge(k.pt.entries[pmd]!)) {
      const huge = pte_none(k.pt.entries[pmd]!) ? do_huge_pmd_anonymous_page(k, vma, addr, pmd, flags) : -1;
      ret = huge >= 0 ? huge : handle_pte_fault(k, vma, addr, pmd, flags);
    } else {
      ret = huge_pmd_fault(k, vma, addr, pmd, flags);
      // VM_FAULT_FALLBACK: the huge PMD was split, and the PTE path resolves the same fault.
      if (!ret && !pmd_huge(k.pt.entries[pmd]!)) ret = handle_pte_fault(k, vma, addr, pmd, flags);
    }
  }
  if (k.trace.on('page_fault'))
    k.trace.emit({
      name: 'page_fault',
      mm: mm.id,
      addr: address,
      write: (flags & FAULT_FLAG_WRITE) !== 0,
      result: ret,
    });
  return ret;
}

/**
 * DAX huge faults (create_huge_pud / create_huge_pmd): true when a 1 GiB or 2 MiB devmap
 * entry now maps addr, or one already did.
 */
function dax_huge_fault(k: Kernel, vma: vm_area_struct, addr: number, flags: number): boolean {
  const mm = vma.vm_mm;
  const e = k.pt.entries;
  const pud = pud_alloc(k, mm, addr);
  if (pte_none(e[pud]!)) {
    const entry = dax_huge_entry(k, vma, addr, k.c.PUD_SIZE, flags);
    if (entry) e[pud] = entry;
  }
  if (pmd_huge(e[pud]!)) return dax_huge_write(vma, pud, flags, e);
  const pmd = pmd_alloc(k, mm, addr);
  if (pmd < 0) return false;
  if (pte_none(e[pmd]!)) {
    const entry = dax_huge_entry(k, vma, addr, k.c.PMD_SIZE, flags);
    if (entry) e[pmd] = entry;
  }
  return pmd_huge(e[pmd]!) && dax_huge_write(vma, pmd, flags, e);
}

/** A write to a read-only huge DAX entry of a shared writable mapping makes it writable. */
function dax_huge_write(vma: vm_area_struct, slot: number, flags: number, e: Float64Array): boolean {
  if (!(flags & FAULT_FLAG_WRITE) || pte_write(e[slot]!)) return true;
  if (!(vma.vm_flags & VM_SHARED)) {
    // A private write copies per page: drop the huge entry and take the PTE path.
    e[slot] = 0;
    return false;
  }
  e[slot] = pte_mkdirty(pte_mkwrite(e[slot]!));
  return true;
}

/**
 * split_huge_pud: a huge PUD can only be dropped here (a DAX one refaults at a smaller
 * size), inside an invalidation of its range.
 */
export function split_huge_pud(k: Kernel, vma: vm_area_struct, pudp: number, addr: number): void {
  const start = Math.floor(addr / k.c.PUD_SIZE) * k.c.PUD_SIZE;
  const range = mmu_notifier_range_init(vma.vm_mm, start, start + k.c.PUD_SIZE, 'split');
  mmu_notifier_invalidate_range_start(k, range);
  k.pt.entries[pudp] = 0;
  mmu_notifier_invalidate_range_end(k, range);
}

/**
 * copy_nonpresent_pte (fork): a swap-format entry.
 * F-DEV-3: a device entry takes a page reference, counts in the child's rss, dups the
 * rmap; a write device entry in a COW mapping becomes a read entry in parent and child,
 * keeping soft-dirty. A migration entry's page counts in the child's rss too.
 */
function copy_nonpresent_pte(
  k: Kernel,
  dst_pte: number,
  src_pte: number,
  vma: vm_area_struct,
  rss: Float64Array,
): void {
  const e = k.pt.entries;
  let pte = e[src_pte]!;
  const entry = pte_to_swp_entry(pte);
  if (is_migration_entry(k, entry)) {
    rss[mm_counter(k, migration_entry_to_page(k, entry))]!++;
  } else if (is_device_entry(k, entry)) {
    const page = device_entry_to_page(k, entry);
    get_page(k, page);
    rss[mm_counter(k, page)]!++;
    page_dup_rmap(k, page);
  } else rss[MM_SWAPENTS]!++;
  const read = is_cow_mapping(vma.vm_flags) ? swp_pte_mkread(k, pte) : -1;
  if (read >= 0) {
    pte = read;
    e[src_pte] = read;
  }
  e[dst_pte] = pte;
}

/**
 * copy_one_pte (fork): the child gets the parent's entry. Private writable memory is
 * write-protected in both so the first write copies it; a shared mapping's child starts
 * clean. Swap-format entries go to copy_nonpresent_pte.
 */
export function copy_one_pte(
  k: Kernel,
  dst_pte: number,
  src_pte: number,
  vma: vm_area_struct,
  rss: Float64Array,
): void {
  const e = k.pt.entries;
  let pte = e[src_pte]!;
  if (!pte_present(pte)) return copy_nonpresent_pte(k, dst_pte, src_pte, vma, rss);
  if (pte_write(pte) && is_cow_mapping(vma.vm_flags)) {
    pte = pte_wrprotect(pte);
    e[src_pte] = pte;
  }
  if (vma.vm_flags & VM_SHARED) pte = pte_mkclean(pte);
  const page = vm_normal_page(k, vma, pte);
  if (page >= 0) {
    get_page(k, page);
    page_dup_rmap(k, page);
    rss[mm_counter(k, page)]!++;
  }
  e[dst_pte] = pte;
}

/** copy_pte_range: the n entries of one PTE table, src_pte's into the child's dst_pte. */
function copy_pte_range(
  k: Kernel,
  dst_pte: number,
  src_pte: number,
  n: number,
  vma: vm_area_struct,
  rss: Float64Array,
): void {
  const e = k.pt.entries;
  for (let i = 0; i < n; i++) if (e[src_pte + i] !== 0) copy_one_pte(k, dst_pte + i, src_pte + i, vma, rss);
}

/**
 * copy_page_range: duplicate a vma's page tables into the child at fork, one PTE table
 * at a time, inside one mmu notifier invalidation; the child's rss is added once at the end.
 */
export function copy_page_range(
  k: Kernel,
  dst_mm: mm_struct,
  src_mm: mm_struct,
  vma: vm_area_struct,
): number {
  // Areas without anonymous pages refill from their file on fault.
  if (!(vma.vm_flags & (VM_HUGETLB | VM_PFNMAP | VM_MIXEDMAP)) && !vma.anon_vma) return 0;
  if (vma.vm_flags & VM_HUGETLB)
    return copy_hugetlb_page_range(k, dst_mm, src_mm, vma, (m, a) => pmd_lookup(k, m, a));
  const cow = is_cow_mapping(vma.vm_flags);
  const range = mmu_notifier_range_init(src_mm, vma.vm_start, vma.vm_end, 'fork');
  if (cow) mmu_notifier_invalidate_range_start(k, range);
  const rss = new Float64Array(NR_MM_COUNTERS);
  const { PMD_SIZE, PAGE_SIZE } = k.c;
  let ret = 0;
  for (let addr = vma.vm_start; addr < vma.vm_end;) {
    const next = Math.min(vma.vm_end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
    const src_pmd = pmd_lookup(k, src_mm, addr);
    if (src_pmd >= 0 && !pte_none(k.pt.entries[src_pmd]!)) {
      if (pmd_huge(k.pt.entries[src_pmd]!)) {
        ret = copy_huge_pmd(k, dst_mm, src_mm, src_pmd, addr, vma);
        if (ret) break;
      } else {
        const dst_pmd = pmd_alloc(k, dst_mm, addr);
        const dst_pte = dst_pmd < 0 ? -1 : pte_alloc_map(k, dst_mm, dst_pmd, addr);
        if (dst_pte < 0) {
          ret = -ENOMEM;
          break;
        }
        copy_pte_range(k, dst_pte, pte_offset_map(k, src_pmd, addr), (next - addr) / PAGE_SIZE, vma, rss);
      }
    }
    addr = next;
  }
  for (let i = 0; i < NR_MM_COUNTERS; i++) add_rss(k, dst_mm, i, rss[i]!);
  if (cow) mmu_notifier_invalidate_range_end(k, range);
  return ret;
}

/** The pud entry for addr without allocating, -1 when absent. */
export function pud_lookup(k: Kernel, mm: mm_struct, addr: number): number {
  if (mm.pgd < 0) return -1;
  return pud_offset(k, pgd_offset(k, mm, addr), addr);
}

/** The pmd entry for addr without allocating, -1 when absent or under a huge pud. */
export function pmd_lookup(k: Kernel, mm: mm_struct, addr: number): number {
  if (mm.pgd < 0) return -1;
  const pud = pud_offset(k, pgd_offset(k, mm, addr), addr);
  if (pud < 0 || pmd_huge(k.pt.entries[pud]!)) return -1;
  return pmd_offset(k, pud, addr);
}

/** Which pages an unmap may leave (unmap_mapping_range keeps private COW copies). */
export interface zap_details {
  check_mapping: unknown;
}

/**
 * zap_pte_range: clear the PTEs of [addr, end) under one pmd, dropping rss, rmap and
 * page references.
 * F-DEV-4: device entries are always zapped, whatever is asked of other swap entries;
 * with check_mapping, a page of another mapping is left alone.
 */
export function zap_pte_range(
  k: Kernel,
  vma: vm_area_struct,
  pmd: number,
  addr: number,
  end: number,
  details: zap_details | null,
  rss: Float64Array,
): void {
  const e = k.pt.entries;
  const check_mapping = details?.check_mapping;
  // [addr, end) lies under one pmd: its PTEs are consecutive entries of one table.
  const first = pte_offset_map(k, pmd, addr);
  const n = (end - addr) / k.c.PAGE_SIZE;
  for (let i = 0; i < n; i++) {
    const ptep = first + i;
    const ptent = e[ptep]!;
    if (pte_none(ptent)) continue;
    if (pte_present(ptent)) {
      const page = vm_normal_page(k, vma, ptent);
      if (check_mapping && page >= 0 && check_mapping !== page_rmapping(k, page)) continue;
      e[ptep] = 0;
      if (page < 0) continue;
      if (!is_addressable_page(k, page)) print_bad_pte(k, vma, addr + i * k.c.PAGE_SIZE, ptent, page);
      const anon = PageAnon(k, page);
      if (!anon && pte_dirty(ptent)) set_page_dirty(k, page);
      rss[anon ? MM_ANONPAGES : mm_counter(k, page)]!--;
      page_remove_rmap(k, page);
      put_page(k, page);
      continue;
    }
    zap_nonpresent_pte(k, ptep, details, rss);
  }
}

/** zap_nonpresent_ptes: a swap-format entry (F-DEV-4 above). */
function zap_nonpresent_pte(k: Kernel, ptep: number, details: zap_details | null, rss: Float64Array): void {
  const entry = pte_to_swp_entry(k.pt.entries[ptep]!);
  if (non_swap_entry(k, entry) && is_device_entry(k, entry)) {
    const page = device_entry_to_page(k, entry);
    if (details?.check_mapping && details.check_mapping !== page_rmapping(k, page)) return;
    k.pt.entries[ptep] = 0;
    rss[mm_counter(k, page)]!--;
    page_remove_rmap(k, page);
    put_page(k, page);
    return;
  }
  // If details->check_mapping, swap entries stay.
  if (details) return;
  if (!non_swap_entry(k, entry)) rss[MM_SWAPENTS]!--;
  else if (is_migration_entry(k, entry)) rss[mm_counter(k, migration_entry_to_page(k, entry))]!--;
  k.pt.entries[ptep] = 0;
}

/** unmap_page_range: zap [start, end) of one vma, huge entries included. */
export function unmap_page_range(
  k: Kernel,
  vma: vm_area_struct,
  start: number,
  end: number,
  details: zap_details | null,
): void {
  const mm = vma.vm_mm;
  if (vma.vm_flags & VM_HUGETLB)
    return unmap_hugepage_range(k, vma, start, end, (m, a) => pmd_lookup(k, m, a));
  const rss = new Float64Array(NR_MM_COUNTERS);
  const { PMD_SIZE, PUD_SIZE } = k.c;
  for (let addr = start; addr < end;) {
    const pud = pud_lookup(k, mm, addr);
    if (pud >= 0 && pmd_huge(k.pt.entries[pud]!)) {
      // A huge PUD (DAX) holds no page references: clearing it is the whole zap.
      k.pt.entries[pud] = 0;
      addr = Math.min(end, (Math.floor(addr / PUD_SIZE) + 1) * PUD_SIZE);
      continue;
    }
    const next = Math.min(end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
    const pmd = pud < 0 ? -1 : pmd_offset(k, pud, addr);
    if (pmd >= 0 && !pte_none(k.pt.entries[pmd]!)) {
      if (!pmd_huge(k.pt.entries[pmd]!) || !zap_huge_pmd(k, vma, pmd, addr, next, rss))
        zap_pte_range(k, vma, pmd, addr, next, details, rss);
    }
    addr = next;
  }
  for (let i = 0; i < NR_MM_COUNTERS; i++) add_rss(k, mm, i, rss[i]!);
}

/** unmap_vmas: zap a range across vmas, inside one mmu notifier invalidation. */
export function unmap_vmas(
  k: Kernel,
  mm: mm_struct,
  vmas: vm_area_struct[],
  start: number,
  end: number,
  event = 'unmap',
): void {
  const range = mmu_notifier_range_init(mm, start, end, event);
  mmu_notifier_invalidate_range_start(k, range);
  for (const vma of vmas) {
    const s = Math.max(start, vma.vm_start);
    const t = Math.min(end, vma.vm_end);
    if (s < t) unmap_page_range(k, vma, s, t, null);
  }
  mmu_notifier_invalidate_range_end(k, range);
}
