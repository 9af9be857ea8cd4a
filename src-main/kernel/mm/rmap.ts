// mm/rmap.c: from a page back to the page-table entries that map it. An anonymous page's
// mapping is its anon_vma (every vma of the process family that may map it), a file
// page's its address_space; page->index places it within a vma.
import type { Kernel } from '../kernel';
import { anon_vma, type vm_area_struct } from '../include/mm_types';
import { PG_anon, PG_swapbacked } from '../include/page-flags';
import { pte_pfn, pte_present, pte_soft_dirty, pte_write } from '../include/pgtable';
import {
  device_entry_to_page,
  is_device_entry,
  is_swap_pte,
  is_write_device_entry,
  make_migration_entry,
  pte_swp_mksoft_dirty,
  pte_swp_soft_dirty,
  pte_to_swp_entry,
  swp_entry_to_pte,
} from '../include/swapops';
import { put_page } from '../include/mm';
import type { address_space } from '../fs/file';
import { lookup_pte } from './pgtable';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';

export function PageAnon(k: Kernel, page: number): boolean {
  return (k.mem.flags[page]! & PG_anon) !== 0;
}

/** The page's anon_vma or address_space, or null. */
export function page_rmapping(k: Kernel, page: number): anon_vma | address_space | null {
  return (k.mappings[k.mem.mapping[page]!] as anon_vma | address_space | undefined) ?? null;
}

/** The anon_vma of a vma, created on its first anonymous page. */
export function anon_vma_prepare(k: Kernel, vma: vm_area_struct): anon_vma {
  if (!vma.anon_vma) {
    vma.anon_vma = new anon_vma(k.mappings.length);
    k.mappings.push(vma.anon_vma);
    vma.anon_vma.vmas.add(vma);
  }
  return vma.anon_vma;
}

/** linear_page_index: page->index of the page at `addr` in `vma`. */
export function linear_page_index(k: Kernel, vma: vm_area_struct, addr: number): number {
  return (addr - vma.vm_start) / k.c.PAGE_SIZE + vma.vm_pgoff;
}

/** A fresh anonymous page becomes mapped once, at addr. */
export function page_add_new_anon_rmap(k: Kernel, page: number, vma: vm_area_struct, addr: number): void {
  const av = anon_vma_prepare(k, vma);
  const m = k.mem;
  // Anonymous memory is swap-backed until MADV_FREE makes it lazily freeable.
  m.flags[page] = (m.flags[page]! | PG_anon | PG_swapbacked) >>> 0;
  m.mapping[page] = av.id;
  m.index[page] = linear_page_index(k, vma, addr);
  m.mapcount[page] = 1;
}

export function page_add_file_rmap(k: Kernel, page: number): void {
  k.mem.mapcount[page]!++;
}

/** page_add_anon_rmap: one more PTE maps an anonymous page that already has its anon_vma. */
export function page_add_anon_rmap(k: Kernel, page: number): void {
  k.mem.mapcount[page]!++;
}

export function page_mapped(k: Kernel, page: number): boolean {
  return k.mem.mapcount[page]! > 0;
}

/** page_mapping: the address_space of a file page; null for anonymous (and unowned) pages. */
export function page_mapping(k: Kernel, page: number): address_space | null {
  if (PageAnon(k, page)) return null;
  return page_rmapping(k, page) as address_space | null;
}

/** One more page-table entry maps the page (fork). */
export function page_dup_rmap(k: Kernel, page: number): void {
  k.mem.mapcount[page]!++;
}

export function page_remove_rmap(k: Kernel, page: number): void {
  if (--k.mem.mapcount[page]! < 0) mapcount_underflow(k, page);
}

/** Out of line: page_remove_rmap stays small enough to inline into hot loops. */
function mapcount_underflow(k: Kernel, page: number): void {
  k.mem.mapcount[page] = 0;
  k.WARN(`page_remove_rmap: pfn 0x${k.mem.page_to_pfn(page).toString(16)} mapcount underflow`);
}

/** vma_address: where `page` would be mapped in `vma`, or -1 outside it. */
export function vma_address(k: Kernel, page: number, vma: vm_area_struct): number {
  const addr = vma.vm_start + (k.mem.index[page]! - vma.vm_pgoff) * k.c.PAGE_SIZE;
  return addr >= vma.vm_start && addr < vma.vm_end ? addr : -1;
}

/** Call fn(vma, addr) for every vma that may map the page; stop when fn returns false. */
export function rmap_walk(k: Kernel, page: number, fn: (vma: vm_area_struct, addr: number) => boolean): void {
  const owner = page_rmapping(k, page);
  if (!owner) return;
  const vmas = owner instanceof anon_vma ? owner.vmas : owner.i_mmap;
  for (const vma of [...vmas]) {
    const addr = vma_address(k, page, vma);
    if (addr >= 0 && !fn(vma, addr)) return;
  }
}

/** try_to_unmap flags (enum ttu_flags). */
export const TTU_MIGRATION = 0x1;

/**
 * try_to_unmap_one for TTU_MIGRATION: the PTE of `vma` at addr that maps the page (a
 * present PTE, or the device entry of an un-addressable page) becomes a migration entry
 * keeping write and soft-dirty, and the mapping's reference goes. rss is unchanged: zap
 * and fork count a migration entry as its page.
 */
function try_to_unmap_one(k: Kernel, page: number, vma: vm_area_struct, addr: number): void {
  const mm = vma.vm_mm;
  const ptep = lookup_pte(k, mm, addr);
  if (ptep < 0) return;
  const pte = k.pt.entries[ptep]!;
  let write: boolean;
  let soft_dirty: boolean;
  if (pte_present(pte)) {
    if (pte_pfn(pte) !== k.mem.page_to_pfn(page)) return;
    write = pte_write(pte);
    soft_dirty = pte_soft_dirty(pte);
  } else if (is_swap_pte(pte)) {
    const entry = pte_to_swp_entry(pte);
    if (!is_device_entry(k, entry) || device_entry_to_page(k, entry) !== page) return;
    write = is_write_device_entry(k, entry);
    soft_dirty = pte_swp_soft_dirty(pte);
  } else return;
  const range = mmu_notifier_range_init(mm, addr, addr + k.c.PAGE_SIZE, 'migrate');
  mmu_notifier_invalidate_range_start(k, range);
  let swp_pte = swp_entry_to_pte(make_migration_entry(k, page, write));
  if (soft_dirty) swp_pte = pte_swp_mksoft_dirty(swp_pte);
  k.pt.entries[ptep] = swp_pte;
  page_remove_rmap(k, page);
  put_page(k, page);
  mmu_notifier_invalidate_range_end(k, range);
}

/**
 * try_to_unmap: take a locked page out of every page table rmap finds it in. The lab
 * unmaps only for migration (TTU_MIGRATION), installing migration entries. Returns
 * whether the page is no longer mapped.
 */
export function try_to_unmap(k: Kernel, page: number, flags: number): boolean {
  const owner = page_rmapping(k, page);
  if (!(flags & TTU_MIGRATION) || !owner) return !page_mapped(k, page);
  const vmas = owner instanceof anon_vma ? owner.vmas : owner.i_mmap;
  for (const vma of vmas) {
    if (!page_mapped(k, page)) break;
    const addr = vma_address(k, page, vma);
    if (addr >= 0) try_to_unmap_one(k, page, vma, addr);
  }
  return !page_mapped(k, page);
}
