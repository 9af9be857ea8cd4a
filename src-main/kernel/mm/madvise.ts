// mm/madvise.c: advice about a range. The lab models the advice that changes memory:
// MADV_HUGEPAGE / MADV_NOHUGEPAGE (vm_flags, splitting the vmas to the range),
// MADV_DONTNEED (zap_page_range: anonymous memory reads zeroes again, file mappings
// re-read the page cache) and MADV_FREE. Advice it does not model is -EINVAL.
//
// MADV_FREE: clean private anonymous pages become lazily freeable. Reclaim would discard
// them (a later read then finds zeroes) unless they were written again first; the lab has
// no reclaim, so they stay mapped and readable with their data: what the kernel shows
// until memory pressure. What is observable is modelled: the PTEs turn clean and old, the
// page loses PG_dirty and PG_swapbacked (mark_page_lazyfree), and smaps counts it under
// LazyFree until it is dirtied again.
import type { Kernel } from '../kernel';
import { ALIGN } from '../include/config';
import { EAGAIN, EINVAL, ENOMEM } from '../include/errno';
import {
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_LOCKED,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
  vma_is_anonymous,
  type mm_struct,
  type vm_area_struct,
} from '../include/mm_types';
import {
  pmd_huge,
  pte_dirty,
  pte_mkclean,
  pte_mkold,
  pte_none,
  pte_pfn,
  pte_present,
  pte_young,
} from '../include/pgtable';
import { PG_active, PG_dirty, PG_referenced, PG_swapbacked } from '../include/page-flags';
import { find_vma, split_vma } from './mmap';
import { pmd_lookup, unmap_vmas, vm_normal_page } from './memory';
import { PageAnon } from './rmap';
import { madvise_free_huge_pmd } from './huge_memory';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';

// include/uapi/asm-generic/mman-common.h
export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;

function madvise_behavior_valid(behavior: number): boolean {
  return (
    behavior === MADV_DONTNEED ||
    behavior === MADV_FREE ||
    behavior === MADV_HUGEPAGE ||
    behavior === MADV_NOHUGEPAGE
  );
}

/**
 * mark_page_lazyfree (mm/swap.c): an anonymous page that reclaim may drop without
 * writing it to swap, unless it is dirtied again first.
 */
export function mark_page_lazyfree(k: Kernel, page: number): void {
  const f = k.mem.flags[page]!;
  if (!PageAnon(k, page) || !(f & PG_swapbacked)) return;
  k.mem.flags[page] = (f & ~(PG_active | PG_swapbacked | PG_referenced)) >>> 0;
}

/** hugepage_madvise: the vm_flags MADV_HUGEPAGE / MADV_NOHUGEPAGE ask for. */
function hugepage_madvise(vm_flags: number, advice: number): number {
  if (advice === MADV_HUGEPAGE) return (vm_flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
  return (vm_flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
}

/** madvise_behavior: advice that only changes vm_flags, splitting the vma to [start, end). */
function madvise_behavior(
  k: Kernel,
  vma: vm_area_struct,
  start: number,
  end: number,
  behavior: number,
): number {
  const new_flags = hugepage_madvise(vma.vm_flags, behavior);
  if (new_flags === vma.vm_flags) return 0;
  const huge_ok = (a: number): boolean => !(vma.vm_flags & VM_HUGETLB) || a % k.c.PMD_SIZE === 0;
  if (start !== vma.vm_start) {
    if (!huge_ok(start)) return -EINVAL;
    vma = split_vma(k, vma.vm_mm, vma, start);
  }
  if (end !== vma.vm_end) {
    if (!huge_ok(end)) return -EINVAL;
    split_vma(k, vma.vm_mm, vma, end);
  }
  vma.vm_flags = new_flags;
  return 0;
}

/** can_madv_dontneed_vma: locked, hugetlb and pfn-mapped areas cannot drop their pages. */
function can_madv_dontneed_vma(vma: vm_area_struct): boolean {
  return !(vma.vm_flags & (VM_LOCKED | VM_HUGETLB | VM_PFNMAP));
}

/** zap_page_range: drop the entries of [start, end) of one vma; the vma stays. */
export function zap_page_range(k: Kernel, vma: vm_area_struct, start: number, end: number): void {
  unmap_vmas(k, vma.vm_mm, [vma], start, end, 'clear');
}

/** madvise_free_pte_range: the PTE half of MADV_FREE, under one pmd. */
function madvise_free_pte_range(
  k: Kernel,
  vma: vm_area_struct,
  pmd: number,
  addr: number,
  end: number,
): void {
  const e = k.pt.entries;
  const { PAGE_SIZE, PTRS_PER_TABLE } = k.c;
  const m = k.mem;
  let ptep = pte_pfn(e[pmd]!) * PTRS_PER_TABLE + (Math.floor(addr / PAGE_SIZE) % PTRS_PER_TABLE);
  for (; addr < end; addr += PAGE_SIZE, ptep++) {
    const ptent = e[ptep]!;
    if (pte_none(ptent)) continue;
    // Real swap would be freed here; the lab has none. Migration and device entries stay.
    if (!pte_present(ptent)) continue;
    const page = vm_normal_page(k, vma, ptent);
    if (page < 0) continue;
    if (m.flags[page]! & PG_dirty) {
      // A page others map keeps PG_dirty: it cannot be discarded for them.
      if (m.mapcount[page] !== 1) continue;
      m.flags[page] = (m.flags[page]! & ~PG_dirty) >>> 0;
    }
    if (pte_young(ptent) || pte_dirty(ptent)) e[ptep] = pte_mkold(pte_mkclean(ptent));
    mark_page_lazyfree(k, page);
  }
}

/** madvise_free_single_vma: MADV_FREE of [start, end) in one private anonymous vma. */
function madvise_free_single_vma(k: Kernel, vma: vm_area_struct, start: number, end: number): number {
  if (!vma_is_anonymous(vma)) return -EINVAL;
  const mm = vma.vm_mm;
  const e = k.pt.entries;
  const { PMD_SIZE } = k.c;
  const range = mmu_notifier_range_init(mm, start, end, 'clear');
  mmu_notifier_invalidate_range_start(k, range);
  for (let addr = start; addr < end;) {
    const next = Math.min(end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
    const pmd = pmd_lookup(k, mm, addr);
    if (pmd >= 0 && !pte_none(e[pmd]!)) {
      const whole =
        pmd_huge(e[pmd]!) &&
        madvise_free_huge_pmd(k, vma, pmd, addr, next, (page) => mark_page_lazyfree(k, page));
      if (!whole) madvise_free_pte_range(k, vma, pmd, addr, next);
    }
    addr = next;
  }
  mmu_notifier_invalidate_range_end(k, range);
  return 0;
}

/** madvise_vma: apply one advice to [start, end) of one vma. */
function madvise_vma(k: Kernel, vma: vm_area_struct, start: number, end: number, behavior: number): number {
  switch (behavior) {
    case MADV_DONTNEED:
      if (!can_madv_dontneed_vma(vma)) return -EINVAL;
      zap_page_range(k, vma, start, end);
      return 0;
    case MADV_FREE:
      if (!can_madv_dontneed_vma(vma)) return -EINVAL;
      return madvise_free_single_vma(k, vma, start, end);
    default:
      return madvise_behavior(k, vma, start, end, behavior);
  }
}

/**
 * madvise(start, len, behavior): 0 or -errno. -EINVAL for advice the lab does not model,
 * an unaligned start, or a vma the advice does not apply to; -ENOMEM when part of the
 * range is unmapped (the mapped parts are still advised, as in the kernel).
 */
export function do_madvise(
  k: Kernel,
  mm: mm_struct,
  start: number,
  len_in: number,
  behavior: number,
): number {
  if (!madvise_behavior_valid(behavior)) return -EINVAL;
  if (start % k.c.PAGE_SIZE) return -EINVAL;
  if (len_in < 0) return -EINVAL;
  const end = start + ALIGN(len_in, k.c.PAGE_SIZE);
  if (end === start) return 0;
  let unmapped_error = 0;
  for (let vma = find_vma(mm, start); ;) {
    if (!vma) return -ENOMEM;
    if (start < vma.vm_start) {
      unmapped_error = -ENOMEM;
      start = vma.vm_start;
      if (start >= end) return unmapped_error;
    }
    const tmp = Math.min(vma.vm_end, end);
    const error = madvise_vma(k, vma, start, tmp, behavior);
    // A vma split that runs out of memory is -EAGAIN to the caller.
    if (error) return error === -ENOMEM ? -EAGAIN : error;
    start = tmp;
    if (start >= end) return unmapped_error;
    vma = find_vma(mm, start);
  }
}
