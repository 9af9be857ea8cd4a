// mm/huge_memory.c: transparent huge pages. A vma marked VM_HUGEPAGE (madvise) gets a
// PMD-mapped 2 MiB page on its first write fault in an aligned, fully covered range, or
// the huge zero page on a read. Partial operations split the PMD into PTEs first.
import type { Kernel } from '../kernel';
import {
  is_cow_mapping,
  MM_ANONPAGES,
  VM_HUGEPAGE,
  VM_HUGETLB,
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
  pmd_huge,
  pmd_trans_huge,
  pmd_write,
  pte_flags,
  pte_mkclean,
  pte_mkdirty,
  pte_mkhuge,
  pte_mkold,
  pte_mksoft_dirty,
  pte_modify,
  pte_none,
  pte_mkspecial,
  pte_mkwrite,
  pte_pfn,
  pte_special,
  pte_wrprotect,
} from '../include/pgtable';
import { PG_anon, PG_dirty, PG_head, PG_swapbacked } from '../include/page-flags';
import { get_page, put_page } from '../include/mm';
import { alloc_pages, GFP_HIGHUSER_MOVABLE } from './page_alloc';
import { clear_highpage, copy_highpage } from './highmem';
import {
  linear_page_index,
  page_add_new_anon_rmap,
  page_dup_rmap,
  page_remove_rmap,
  rmap_walk,
} from './rmap';
import { pmd_alloc } from './pgtable';
import { add_rss, mm_counter, pmd_lookup, pud_lookup, split_huge_pud } from './memory';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';

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

/** __split_huge_pmd_locked: the same pages, mapped by a table of PTEs instead of the PMD. */
function __split_huge_pmd_locked(k: Kernel, mm: mm_struct, pmd: number): void {
  const entry = k.pt.entries[pmd]!;
  const flags = pte_flags(entry) & ~_PAGE_PSE;
  const pfn = pte_pfn(entry);
  const node = k.pt.alloc();
  mm.nr_ptes++;
  const base = node * k.c.PTRS_PER_TABLE;
  for (let i = 0; i < k.c.HPAGE_PMD_NR; i++) k.pt.entries[base + i] = pfn_pte(pfn + i, flags);
  k.pt.entries[pmd] = pfn_pte(node, _PAGE_TABLE);
}

/**
 * split_huge_pmd: map the huge page with a table of PTEs instead, and split the compound
 * page into base pages that each carry their share of references and mappings. The lab
 * keeps no compound page mapped by PTEs, so a THP that fork shares is split in every
 * address space mapping it (what split_huge_page's unmap and remap achieve).
 */
export function split_huge_pmd(k: Kernel, vma: vm_area_struct, pmd: number, addr: number): void {
  const entry = k.pt.entries[pmd]!;
  const haddr = Math.floor(addr / k.c.PMD_SIZE) * k.c.PMD_SIZE;
  const pfn = pte_pfn(entry);
  __split_huge_pmd_locked(k, vma.vm_mm, pmd);
  if (pte_special(entry) || pmd_devmap(entry)) return;
  const head = k.mem.pfn_to_page(pfn);
  if (k.mem.mapcount[head]! > 1)
    rmap_walk(k, head, (other, a) => {
      const opmd = other === vma ? -1 : pmd_lookup(k, other.vm_mm, a);
      const oentry = opmd >= 0 ? k.pt.entries[opmd]! : 0;
      if (!pmd_trans_huge(oentry) || pte_pfn(oentry) !== pfn) return true;
      const range = mmu_notifier_range_init(other.vm_mm, a, a + k.c.PMD_SIZE, 'split');
      mmu_notifier_invalidate_range_start(k, range);
      __split_huge_pmd_locked(k, other.vm_mm, opmd);
      mmu_notifier_invalidate_range_end(k, range);
      return true;
    });
  split_huge_page(k, head, vma, haddr);
}

/** split_huge_page: the head's references and mappings are given to every base page. */
function split_huge_page(k: Kernel, head: number, vma: vm_area_struct, haddr: number): void {
  const m = k.mem;
  const nr = 2 ** compound_order(k, head);
  const refs = m.refcount[head]!;
  const maps = m.mapcount[head]!;
  const anon = m.flags[head]! & (PG_anon | PG_swapbacked);
  const index = linear_page_index(k, vma, haddr);
  m.flags[head] = (m.flags[head]! & ~PG_head) >>> 0;
  m.priv[head] = 0;
  for (let i = 0; i < nr; i++) {
    m.refcount[head + i] = refs;
    m.mapcount[head + i] = maps;
    m.mapping[head + i] = m.mapping[head]!;
    m.index[head + i] = index + i;
    if (anon) m.flags[head + i] = (m.flags[head + i]! | anon) >>> 0;
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

/** change_huge_pmd (mprotect): a PMD fully inside the range takes the new protection whole. */
export function change_huge_pmd(k: Kernel, pmd: number, newprot: number): number {
  k.pt.entries[pmd] = pte_modify(k.pt.entries[pmd]!, newprot);
  return k.c.HPAGE_PMD_NR;
}

/**
 * move_huge_pmd (mremap): a PMD-aligned, PMD-sized move takes the huge entry as is, marked
 * soft-dirty. False when the PMD must be split and moved by PTEs instead.
 */
export function move_huge_pmd(
  k: Kernel,
  old_addr: number,
  new_addr: number,
  old_end: number,
  old_pmd: number,
  new_pmd: number,
): boolean {
  const { PMD_SIZE } = k.c;
  if (old_addr % PMD_SIZE || new_addr % PMD_SIZE || old_end - old_addr < PMD_SIZE) return false;
  if (!pte_none(k.pt.entries[new_pmd]!)) return false;
  k.pt.entries[new_pmd] = pte_mksoft_dirty(k.pt.entries[old_pmd]!);
  k.pt.entries[old_pmd] = 0;
  return true;
}

/**
 * madvise_free_huge_pmd: a THP only this PMD maps becomes lazily freeable whole when the
 * range covers it, and is split for a part. True when the PMD was handled whole.
 */
export function madvise_free_huge_pmd(
  k: Kernel,
  vma: vm_area_struct,
  pmd: number,
  addr: number,
  next: number,
  mark_page_lazyfree: (page: number) => void,
): boolean {
  const entry = k.pt.entries[pmd]!;
  if (pte_special(entry) || pmd_devmap(entry)) return true;
  const head = k.mem.pfn_to_page(pte_pfn(entry));
  if (k.mem.mapcount[head] !== 1) return true;
  if (next - addr !== k.c.PMD_SIZE) {
    split_huge_pmd(k, vma, pmd, addr);
    return false;
  }
  k.mem.flags[head] = (k.mem.flags[head]! & ~PG_dirty) >>> 0;
  k.pt.entries[pmd] = pte_mkold(pte_mkclean(entry));
  mark_page_lazyfree(head);
  return true;
}

/**
 * vma_adjust_trans_huge: a vma boundary moving to addr may not cut through a huge PMD
 * (or a DAX PUD): it is split first, so each vma maps only its own part.
 */
export function vma_adjust_trans_huge(k: Kernel, vma: vm_area_struct, addr: number): void {
  if (vma.vm_flags & VM_HUGETLB) return;
  if (addr % k.c.PUD_SIZE) {
    const pud = pud_lookup(k, vma.vm_mm, addr);
    if (pud >= 0 && pmd_huge(k.pt.entries[pud]!)) split_huge_pud(k, vma, pud, addr);
  }
  if (addr % k.c.PMD_SIZE === 0) return;
  const pmd = pmd_lookup(k, vma.vm_mm, addr);
  if (pmd >= 0 && pmd_huge(k.pt.entries[pmd]!)) split_huge_pmd(k, vma, pmd, addr);
}
