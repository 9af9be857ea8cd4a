// mm/huge_memory.c: transparent huge pages. A vma marked VM_HUGEPAGE (madvise) gets a
// PMD-mapped 2 MiB page on its first write fault in an aligned, fully covered range, or
// the huge zero page on a read. Partial operations split the PMD into PTEs first.
import type { Kernel } from '../kernel';
import {
  is_cow_mapping,
  MM_ANONPAGES,
  VM_HUGEPAGE,
  VM_NOHUGEPAGE,
  FAULT_FLAG_WRITE,
  vma_is_anonymous,
  type mm_struct,
  type vm_area_struct,
} from '../include/mm_types';
import {
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_TABLE,
  pfn_pte,
  pmd_devmap,
  pmd_write,
  pte_flags,
  pte_mkdirty,
  pte_mkhuge,
  pte_mkspecial,
  pte_mkwrite,
  pte_pfn,
  pte_special,
  pte_wrprotect,
} from '../include/pgtable';
import { PG_anon, PG_head } from '../include/page-flags';
import { get_page, put_page } from '../include/mm';
import { alloc_pages, GFP_HIGHUSER_MOVABLE } from './page_alloc';
import { clear_highpage, copy_highpage } from './highmem';
import { linear_page_index, page_add_new_anon_rmap, page_dup_rmap, page_remove_rmap } from './rmap';
import { pmd_alloc } from './pgtable';
import { add_rss, mm_counter } from './memory';

export function PageTransHuge(k: Kernel, page: number): boolean {
  return (k.mem.flags[page]! & PG_head) !== 0;
}

export function compound_order(k: Kernel, page: number): number {
  return PageTransHuge(k, page) ? k.mem.priv[page]! : 0;
}

/** Whether a huge page may back addr's aligned 2 MiB block of vma. */
function thp_suitable(k: Kernel, vma: vm_area_struct, addr: number): boolean {
  if (!vma_is_anonymous(vma) || !(vma.vm_flags & VM_HUGEPAGE) || vma.vm_flags & VM_NOHUGEPAGE) return false;
  const start = Math.floor(addr / k.c.PMD_SIZE) * k.c.PMD_SIZE;
  return start >= vma.vm_start && start + k.c.PMD_SIZE <= vma.vm_end;
}

/** Returns VM_FAULT_* bits, or -1 to fall back to base pages. */
export function do_huge_pmd_anonymous_page(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  pmd: number,
  flags: number,
): number {
  if (!thp_suitable(k, vma, addr)) return -1;
  const haddr = Math.floor(addr / k.c.PMD_SIZE) * k.c.PMD_SIZE;
  const prot = vma.vm_page_prot & ~_PAGE_RW;
  if (!(flags & FAULT_FLAG_WRITE)) {
    k.pt.entries[pmd] = pte_mkspecial(pte_mkhuge(pfn_pte(k.huge_zero_pfn, prot)));
    return 0;
  }
  const order = Math.log2(k.c.HPAGE_PMD_NR);
  const page = alloc_pages(k, GFP_HIGHUSER_MOVABLE, order);
  if (page < 0) return -1;
  for (let i = 0; i < k.c.HPAGE_PMD_NR; i++) clear_highpage(k, page + i);
  prep_compound_page(k, page, order);
  page_add_new_anon_rmap(k, page, vma, haddr);
  add_rss(k, vma.vm_mm, MM_ANONPAGES, k.c.HPAGE_PMD_NR);
  k.pt.entries[pmd] = pte_mkdirty(
    pte_mkwrite(pte_mkhuge(pfn_pte(k.mem.page_to_pfn(page), vma.vm_page_prot))),
  );
  return 0;
}

export function prep_compound_page(k: Kernel, page: number, order: number): void {
  k.mem.flags[page] = (k.mem.flags[page]! | PG_head) >>> 0;
  k.mem.priv[page] = order;
}

/** A fault on a present huge PMD: a write to a read-only one reuses or splits it. */
export function huge_pmd_fault(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  pmd: number,
  flags: number,
): number {
  const entry = k.pt.entries[pmd]!;
  if (!(flags & FAULT_FLAG_WRITE) || pmd_write(entry)) return 0;
  if (pmd_devmap(entry)) return 0;
  const head = pte_special(entry) ? -1 : k.mem.pfn_to_page(pte_pfn(entry));
  if (head >= 0 && k.mem.mapcount[head] === 1 && k.mem.refcount[head] === 1) {
    k.pt.entries[pmd] = pte_mkdirty(pte_mkwrite(entry));
    return 0;
  }
  // do_huge_pmd_wp_page falls back: split and let the PTE path copy the one page.
  split_huge_pmd(k, vma, pmd, addr);
  return 0;
}

/**
 * split_huge_pmd: map the huge page with a table of PTEs instead, and split the compound
 * page into base pages that each carry their share of references and mappings.
 */
export function split_huge_pmd(k: Kernel, vma: vm_area_struct, pmd: number, addr: number): void {
  const entry = k.pt.entries[pmd]!;
  const haddr = Math.floor(addr / k.c.PMD_SIZE) * k.c.PMD_SIZE;
  const nr = k.c.HPAGE_PMD_NR;
  const flags = pte_flags(entry) & ~_PAGE_PSE;
  const pfn = pte_pfn(entry);
  const node = k.pt.alloc();
  vma.vm_mm.nr_ptes++;
  const base = node * k.c.PTRS_PER_TABLE;
  for (let i = 0; i < nr; i++) k.pt.entries[base + i] = pfn_pte(pfn + i, flags);
  k.pt.entries[pmd] = pfn_pte(node, _PAGE_TABLE);
  if (pte_special(entry) || pmd_devmap(entry)) return;
  split_huge_page(k, k.mem.pfn_to_page(pfn), vma, haddr);
}

/** split_huge_page: the head's references and mappings are given to every base page. */
function split_huge_page(k: Kernel, head: number, vma: vm_area_struct, haddr: number): void {
  const m = k.mem;
  const nr = 2 ** compound_order(k, head);
  const refs = m.refcount[head]!;
  const maps = m.mapcount[head]!;
  const anon = m.flags[head]! & PG_anon;
  const index = linear_page_index(k, vma, haddr);
  m.flags[head] = (m.flags[head]! & ~PG_head) >>> 0;
  m.priv[head] = 0;
  for (let i = 0; i < nr; i++) {
    m.refcount[head + i] = refs;
    m.mapcount[head + i] = maps;
    m.mapping[head + i] = m.mapping[head]!;
    m.index[head + i] = index + i;
    if (anon) m.flags[head + i] = (m.flags[head + i]! | PG_anon) >>> 0;
  }
}

/** fork: the child shares the huge page; a COW mapping write-protects both PMDs. */
export function copy_huge_pmd(
  k: Kernel,
  dst_mm: mm_struct,
  src_mm: mm_struct,
  src_pmd: number,
  addr: number,
  vma: vm_area_struct,
): number {
  void src_mm;
  const dst_pmd = pmd_alloc(k, dst_mm, addr);
  if (dst_pmd < 0) return -12;
  let entry = k.pt.entries[src_pmd]!;
  if (is_cow_mapping(vma.vm_flags) && pmd_write(entry)) {
    entry = pte_wrprotect(entry);
    k.pt.entries[src_pmd] = entry;
  }
  if (!pte_special(entry) && !pmd_devmap(entry)) {
    const head = k.mem.pfn_to_page(pte_pfn(entry));
    get_page(k, head);
    page_dup_rmap(k, head);
    add_rss(k, dst_mm, mm_counter(k, head), k.c.HPAGE_PMD_NR);
  }
  k.pt.entries[dst_pmd] = entry;
  return 0;
}

/** Zap a huge PMD: whole when [addr, end) covers it, else split and zap the PTEs. */
export function zap_huge_pmd(
  k: Kernel,
  vma: vm_area_struct,
  pmd: number,
  addr: number,
  end: number,
  rss: Float64Array,
): boolean {
  const haddr = Math.floor(addr / k.c.PMD_SIZE) * k.c.PMD_SIZE;
  if (addr !== haddr || end - addr < k.c.PMD_SIZE) {
    split_huge_pmd(k, vma, pmd, addr);
    return false;
  }
  const entry = k.pt.entries[pmd]!;
  k.pt.entries[pmd] = 0;
  if (pte_special(entry) || pmd_devmap(entry)) return true;
  const head = k.mem.pfn_to_page(pte_pfn(entry));
  rss[mm_counter(k, head)]! -= k.c.HPAGE_PMD_NR;
  page_remove_rmap(k, head);
  put_page(k, head);
  return true;
}

/** Copy a huge page's contents (COW of a whole huge page, migration). */
export function copy_huge_page(k: Kernel, dst: number, src: number): void {
  for (let i = 0; i < 2 ** compound_order(k, src); i++) copy_highpage(k, dst + i, src + i);
}
