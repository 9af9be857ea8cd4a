// mm/mremap.c: resizing and moving a mapping. Shrinking unmaps the tail; growing extends
// the vma when the space after it is free; otherwise (MREMAP_MAYMOVE) a new vma is made
// elsewhere and the page-table entries move to it (move_page_tables): the pages stay
// where they are, rss does not change, and anonymous page->index stays valid because
// the new vma keeps the old vm_pgoff. Device and migration entries move like any other.
import type { Kernel } from '../kernel';
import { ALIGN } from '../include/config';
import { EFAULT, EINVAL, ENOMEM, EPERM, IS_ERR, type ErrPtr } from '../include/errno';
import {
  VM_DONTEXPAND,
  VM_HUGETLB,
  VM_MAYSHARE,
  VM_PFNMAP,
  VM_SHARED,
  vm_area_struct,
  type mm_struct,
} from '../include/mm_types';
import { pmd_huge, pte_mksoft_dirty, pte_none, pte_present, pte_pfn } from '../include/pgtable';
import { is_swap_pte, pte_swp_mksoft_dirty } from '../include/swapops';
import { get_file } from '../fs/file_table';
import { do_munmap, find_vma, get_unmapped_area, mmap_min_addr, vma_link } from './mmap';
import { pmd_lookup, pud_lookup, split_huge_pud } from './memory';
import { pmd_alloc, pte_alloc_map } from './pgtable';
import { move_huge_pmd, split_huge_pmd } from './huge_memory';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;

/** Moved entries are marked soft-dirty: for a tracker the data at the new address is new. */
function move_soft_dirty_pte(pte: number): number {
  if (pte_present(pte)) return pte_mksoft_dirty(pte);
  return is_swap_pte(pte) ? pte_swp_mksoft_dirty(pte) : pte;
}

/** move_ptes: the entries of [old_addr, old_end) under old_pmd go to new_addr's table. */
function move_ptes(
  k: Kernel,
  old_pmd: number,
  old_addr: number,
  old_end: number,
  new_pmd: number,
  new_addr: number,
): void {
  const e = k.pt.entries;
  const { PAGE_SIZE, PTRS_PER_TABLE } = k.c;
  let src = pte_pfn(e[old_pmd]!) * PTRS_PER_TABLE + (Math.floor(old_addr / PAGE_SIZE) % PTRS_PER_TABLE);
  let dst = pte_pfn(e[new_pmd]!) * PTRS_PER_TABLE + (Math.floor(new_addr / PAGE_SIZE) % PTRS_PER_TABLE);
  for (; old_addr < old_end; old_addr += PAGE_SIZE, src++, dst++) {
    const pte = e[src]!;
    if (pte_none(pte)) continue;
    e[src] = 0;
    e[dst] = move_soft_dirty_pte(pte);
  }
}

/**
 * move_page_tables: move len bytes of entries from old_addr in vma to new_addr in
 * new_vma, a PMD at a time. A huge PMD moves whole when both ends are PMD-aligned and it
 * is fully covered; otherwise it is split and its PTEs move. Returns the bytes moved.
 */
export function move_page_tables(
  k: Kernel,
  vma: vm_area_struct,
  old_addr: number,
  new_vma: vm_area_struct,
  new_addr: number,
  len: number,
): number {
  const mm = vma.vm_mm;
  const e = k.pt.entries;
  const { PMD_SIZE } = k.c;
  const old_end = old_addr + len;
  const start = old_addr;
  const range = mmu_notifier_range_init(mm, old_addr, old_end, 'unmap');
  mmu_notifier_invalidate_range_start(k, range);
  for (let extent = 0; old_addr < old_end; old_addr += extent, new_addr += extent) {
    extent = Math.min((Math.floor(old_addr / PMD_SIZE) + 1) * PMD_SIZE - old_addr, old_end - old_addr);
    // A huge DAX PUD holds no page references: it is dropped and refaults at the new address.
    const old_pud = pud_lookup(k, mm, old_addr);
    if (old_pud >= 0 && pmd_huge(e[old_pud]!)) split_huge_pud(k, vma, old_pud, old_addr);
    const old_pmd = pmd_lookup(k, mm, old_addr);
    if (old_pmd < 0 || pte_none(e[old_pmd]!)) continue;
    const new_pmd = pmd_alloc(k, new_vma.vm_mm, new_addr);
    if (new_pmd < 0) break;
    if (pmd_huge(e[old_pmd]!)) {
      if (extent === PMD_SIZE && move_huge_pmd(k, old_addr, new_addr, old_end, old_pmd, new_pmd)) continue;
      split_huge_pmd(k, vma, old_pmd, old_addr);
    }
    if (pte_alloc_map(k, new_vma.vm_mm, new_pmd, new_addr) < 0) break;
    extent = Math.min(extent, (Math.floor(new_addr / PMD_SIZE) + 1) * PMD_SIZE - new_addr);
    move_ptes(k, old_pmd, old_addr, old_addr + extent, new_pmd, new_addr);
  }
  mmu_notifier_invalidate_range_end(k, range);
  return old_addr - start;
}

/**
 * move_vma: a copy of the vma at new_addr (copy_vma: same flags, file, anon_vma, and the
 * vm_pgoff of old_addr), the entries moved into it, then the old range unmapped.
 */
function move_vma(
  k: Kernel,
  vma: vm_area_struct,
  old_addr: number,
  old_len: number,
  new_len: number,
  new_addr: number,
): number {
  const mm = vma.vm_mm;
  const new_vma = new vm_area_struct(mm, new_addr, new_addr + new_len, vma.vm_flags);
  new_vma.vm_page_prot = vma.vm_page_prot;
  new_vma.vm_file = vma.vm_file ? get_file(vma.vm_file) : null;
  new_vma.vm_pgoff = vma.vm_pgoff + (old_addr - vma.vm_start) / k.c.PAGE_SIZE;
  new_vma.anon_vma = vma.anon_vma;
  new_vma.name = vma.name;
  vma_link(k, mm, new_vma);
  move_page_tables(k, vma, old_addr, new_vma, new_addr, old_len);
  // old_len 0 duplicates a shared mapping: nothing to unmap.
  if (old_len) do_munmap(k, mm, old_addr, old_len);
  return new_addr;
}

/** vma_to_resize: the vma holding [addr, addr + old_len), checked for a resize to new_len. */
function vma_to_resize(
  k: Kernel,
  mm: mm_struct,
  addr: number,
  old_len: number,
  new_len: number,
): ErrPtr<vm_area_struct> {
  const vma = find_vma(mm, addr);
  if (!vma || vma.vm_start > addr) return -EFAULT;
  if (!old_len && !(vma.vm_flags & (VM_SHARED | VM_MAYSHARE))) {
    k.printk(
      'warn',
      `mm${mm.id}: attempted to duplicate a private mapping with mremap.  This is not supported.`,
    );
    return -EINVAL;
  }
  if (vma.vm_flags & VM_HUGETLB) return -EINVAL;
  // No remapping across vma boundaries.
  if (old_len > vma.vm_end - addr) return -EFAULT;
  if (new_len > old_len && vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP)) return -EFAULT;
  return vma;
}

/** vma_expandable: nothing is mapped in the delta bytes after vma, and it stays in user space. */
function vma_expandable(k: Kernel, mm: mm_struct, vma: vm_area_struct, delta: number): boolean {
  const end = vma.vm_end + delta;
  const next = find_vma(mm, vma.vm_end);
  if (next && next.vm_start < end) return false;
  return end <= k.c.TASK_SIZE;
}

/** mremap_to (MREMAP_FIXED): move to exactly new_addr, unmapping whatever is there. */
function mremap_to(
  k: Kernel,
  mm: mm_struct,
  addr: number,
  old_len: number,
  new_addr: number,
  new_len: number,
): number {
  if (new_addr % k.c.PAGE_SIZE) return -EINVAL;
  if (new_len > k.c.TASK_SIZE || new_addr > k.c.TASK_SIZE - new_len) return -EINVAL;
  // The old and new ranges may not overlap.
  if (addr + old_len > new_addr && new_addr + new_len > addr) return -EINVAL;
  let ret = do_munmap(k, mm, new_addr, new_len);
  if (ret) return ret;
  if (old_len >= new_len) {
    ret = do_munmap(k, mm, addr + new_len, old_len - new_len);
    if (ret && old_len !== new_len) return ret;
    old_len = new_len;
  }
  const vma = vma_to_resize(k, mm, addr, old_len, new_len);
  if (IS_ERR(vma)) return vma;
  // get_unmapped_area(MAP_FIXED) → security_mmap_addr
  if (new_addr < mmap_min_addr(k)) return -EPERM;
  return move_vma(k, vma, addr, old_len, new_len, new_addr);
}

/**
 * mremap(addr, old_len, new_len, flags, new_addr): the mapping's (possibly new) address,
 * or -EINVAL (bad flags, unaligned addr, zero new_len, hugetlb, overlapping FIXED
 * ranges), -EFAULT (addr unmapped, old range across vmas), -ENOMEM (cannot grow in place
 * without MREMAP_MAYMOVE, or no room to move).
 */
export function do_mremap(
  k: Kernel,
  mm: mm_struct,
  addr: number,
  old_len: number,
  new_len: number,
  flags: number,
  new_addr = 0,
): number {
  const { PAGE_SIZE } = k.c;
  if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE)) return -EINVAL;
  if (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) return -EINVAL;
  if (addr % PAGE_SIZE) return -EINVAL;
  old_len = ALIGN(old_len, PAGE_SIZE);
  new_len = ALIGN(new_len, PAGE_SIZE);
  if (!new_len) return -EINVAL;
  if (flags & MREMAP_FIXED) return mremap_to(k, mm, addr, old_len, new_addr, new_len);
  // Shrinking always succeeds in place (do_munmap of an equal length is a no-op).
  if (old_len >= new_len) {
    const ret = do_munmap(k, mm, addr + new_len, old_len - new_len);
    if (ret && old_len !== new_len) return ret;
    return addr;
  }
  const vma = vma_to_resize(k, mm, addr, old_len, new_len);
  if (IS_ERR(vma)) return vma;
  if (old_len === vma.vm_end - addr && vma_expandable(k, mm, vma, new_len - old_len)) {
    vma.vm_end = addr + new_len;
    return addr;
  }
  if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
  const to = get_unmapped_area(k, mm, new_len, PAGE_SIZE);
  if (to < 0) return to;
  return move_vma(k, vma, addr, old_len, new_len, to);
}
