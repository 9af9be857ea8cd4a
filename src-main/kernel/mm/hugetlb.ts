// mm/hugetlb.c: MAP_HUGETLB mappings, backed by 2 MiB pages mapped at PMD level. Huge
// pages count in the mm's hugetlb usage, not its rss; a private mapping copies on write
// after fork like base pages do.
import type { Kernel } from '../kernel';
import {
  FAULT_FLAG_WRITE,
  is_cow_mapping,
  VM_FAULT_OOM,
  VM_SHARED,
  type mm_struct,
  type vm_area_struct,
} from '../include/mm_types';
import {
  pfn_pte,
  pmd_write,
  pte_mkdirty,
  pte_mkhuge,
  pte_mkwrite,
  pte_modify,
  pte_none,
  pte_pfn,
  pte_present,
  pte_wrprotect,
} from '../include/pgtable';
import { swp_pte_mkread } from '../include/swapops';
import { get_page, put_page } from '../include/mm';
import { alloc_pages, GFP_HIGHUSER_MOVABLE } from './page_alloc';
import { clear_highpage } from './highmem';
import { copy_huge_page, prep_compound_page } from './huge_memory';
import { page_add_new_anon_rmap, page_dup_rmap, page_remove_rmap } from './rmap';
import { pmd_alloc } from './pgtable';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';

function huge_addr(k: Kernel, addr: number): number {
  return Math.floor(addr / k.c.PMD_SIZE) * k.c.PMD_SIZE;
}

function alloc_huge_page(k: Kernel, vma: vm_area_struct, haddr: number): number {
  const order = Math.log2(k.c.HPAGE_PMD_NR);
  const page = alloc_pages(k, GFP_HIGHUSER_MOVABLE, order);
  if (page < 0) return -1;
  for (let i = 0; i < k.c.HPAGE_PMD_NR; i++) clear_highpage(k, page + i);
  prep_compound_page(k, page, order);
  page_add_new_anon_rmap(k, page, vma, haddr);
  vma.vm_mm.hugetlb_usage += k.c.HPAGE_PMD_NR;
  return page;
}

export function hugetlb_fault(k: Kernel, vma: vm_area_struct, addr: number, flags: number): number {
  const haddr = huge_addr(k, addr);
  const pmd = pmd_alloc(k, vma.vm_mm, haddr);
  if (pmd < 0) return VM_FAULT_OOM;
  const entry = k.pt.entries[pmd]!;
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (pte_none(entry)) {
    const page = alloc_huge_page(k, vma, haddr);
    if (page < 0) return VM_FAULT_OOM;
    let pmdval = pte_mkhuge(pfn_pte(k.mem.page_to_pfn(page), vma.vm_page_prot));
    if (write || vma.vm_flags & VM_SHARED) pmdval = pte_mkdirty(pte_mkwrite(pmdval));
    k.pt.entries[pmd] = pmdval;
    return 0;
  }
  if (write && !pmd_write(entry)) return hugetlb_cow(k, vma, haddr, pmd);
  return 0;
}

/** A write to a huge page fork shares: reuse it when alone, else copy it. */
function hugetlb_cow(k: Kernel, vma: vm_area_struct, haddr: number, pmd: number): number {
  const entry = k.pt.entries[pmd]!;
  const old = k.mem.pfn_to_page(pte_pfn(entry));
  if (k.mem.mapcount[old] === 1 && k.mem.refcount[old] === 1) {
    k.pt.entries[pmd] = pte_mkdirty(pte_mkwrite(entry));
    return 0;
  }
  const range = mmu_notifier_range_init(vma.vm_mm, haddr, haddr + k.c.PMD_SIZE, 'cow');
  mmu_notifier_invalidate_range_start(k, range);
  const page = alloc_huge_page(k, vma, haddr);
  if (page < 0) {
    mmu_notifier_invalidate_range_end(k, range);
    return VM_FAULT_OOM;
  }
  copy_huge_page(k, page, old);
  page_remove_rmap(k, old);
  put_page(k, old);
  vma.vm_mm.hugetlb_usage -= k.c.HPAGE_PMD_NR;
  k.pt.entries[pmd] = pte_mkdirty(
    pte_mkwrite(pte_mkhuge(pfn_pte(k.mem.page_to_pfn(page), vma.vm_page_prot))),
  );
  mmu_notifier_invalidate_range_end(k, range);
  return 0;
}

/** copy_hugetlb_page_range: fork shares every huge page; private ones become COW. */
export function copy_hugetlb_page_range(
  k: Kernel,
  dst: mm_struct,
  src: mm_struct,
  vma: vm_area_struct,
  lookup: (mm: mm_struct, addr: number) => number,
): number {
  const cow = is_cow_mapping(vma.vm_flags);
  for (let addr = vma.vm_start; addr < vma.vm_end; addr += k.c.PMD_SIZE) {
    const spmd = lookup(src, addr);
    if (spmd < 0 || pte_none(k.pt.entries[spmd]!)) continue;
    const dpmd = pmd_alloc(k, dst, addr);
    if (dpmd < 0) return -12;
    let entry = k.pt.entries[spmd]!;
    if (cow) {
      entry = pte_wrprotect(entry);
      k.pt.entries[spmd] = entry;
    }
    const page = k.mem.pfn_to_page(pte_pfn(entry));
    get_page(k, page);
    page_dup_rmap(k, page);
    dst.hugetlb_usage += k.c.HPAGE_PMD_NR;
    k.pt.entries[dpmd] = entry;
  }
  return 0;
}

/** __unmap_hugepage_range: drop the huge pages of [start, end) (huge-page aligned). */
export function unmap_hugepage_range(
  k: Kernel,
  vma: vm_area_struct,
  start: number,
  end: number,
  lookup: (mm: mm_struct, addr: number) => number,
): void {
  for (let addr = huge_addr(k, start); addr < end; addr += k.c.PMD_SIZE) {
    const pmd = lookup(vma.vm_mm, addr);
    if (pmd < 0 || pte_none(k.pt.entries[pmd]!)) continue;
    const page = k.mem.pfn_to_page(pte_pfn(k.pt.entries[pmd]!));
    k.pt.entries[pmd] = 0;
    vma.vm_mm.hugetlb_usage -= k.c.HPAGE_PMD_NR;
    page_remove_rmap(k, page);
    put_page(k, page);
  }
}

/**
 * hugetlb_change_protection (mprotect of a hugetlb vma): every huge entry of [start, end)
 * takes the new protection; a write migration entry becomes a read one. Returns the base
 * pages changed.
 */
export function hugetlb_change_protection(
  k: Kernel,
  vma: vm_area_struct,
  start: number,
  end: number,
  newprot: number,
  lookup: (mm: mm_struct, addr: number) => number,
): number {
  let pages = 0;
  for (let addr = huge_addr(k, start); addr < end; addr += k.c.PMD_SIZE) {
    const pmd = lookup(vma.vm_mm, addr);
    if (pmd < 0) continue;
    const entry = k.pt.entries[pmd]!;
    if (pte_none(entry)) continue;
    if (pte_present(entry)) {
      k.pt.entries[pmd] = pte_modify(entry, newprot);
      pages += k.c.HPAGE_PMD_NR;
      continue;
    }
    // A hugetlb PMD holds migration entries only, never a device entry.
    const read = swp_pte_mkread(k, entry);
    if (read >= 0) {
      k.pt.entries[pmd] = read;
      pages += k.c.HPAGE_PMD_NR;
    }
  }
  return pages;
}
