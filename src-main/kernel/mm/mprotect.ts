// mm/mprotect.c: changing the protection of a range. The vmas are split to the range and
// take the new flags; then every entry below them takes the vma's new page protection
// (change_protection). A private writable mapping keeps its PTEs read-only (vm_page_prot
// has no write bit for it), so the first write still goes through do_wp_page.
// Seed 001 adds device entries: removing write turns a write device entry into a read one.
import type { Kernel } from '../kernel';
import { ALIGN } from '../include/config';
import { EACCES, EINVAL, ENOMEM } from '../include/errno';
import {
  VM_EXEC,
  VM_GROWSDOWN,
  VM_HUGETLB,
  VM_READ,
  VM_WRITE,
  type vm_area_struct,
  type mm_struct,
} from '../include/mm_types';
import { pmd_huge, pte_modify, pte_none, pte_present } from '../include/pgtable';
import { swp_pte_mkread } from '../include/swapops';
import {
  find_vma,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_READ,
  PROT_SEM,
  PROT_WRITE,
  split_vma,
  vma_set_page_prot,
} from './mmap';
import { pmd_lookup, pud_lookup, split_huge_pud } from './memory';
import { change_huge_pmd, split_huge_pmd } from './huge_memory';
import { pte_offset_map } from './pgtable';
import { hugetlb_change_protection } from './hugetlb';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';

/** calc_vm_prot_bits: PROT_* to VM_READ/VM_WRITE/VM_EXEC. */
export function calc_vm_prot_bits(prot: number): number {
  return (
    (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0)
  );
}

/**
 * change_pte_range: the PTEs of [addr, end) under one pmd. Present entries take newprot
 * (pte_modify keeps the pfn, dirty, young and soft-dirty bits). A protection check on a
 * swap entry is hard, so the kernel simply drops write from write migration entries and,
 * F-DEV-5, from write device entries, keeping their soft-dirty bit.
 */
export function change_pte_range(k: Kernel, pmd: number, addr: number, end: number, newprot: number): number {
  const e = k.pt.entries;
  // [addr, end) lies under one pmd: its PTEs are consecutive entries of one table.
  const first = pte_offset_map(k, pmd, addr);
  const n = (end - addr) / k.c.PAGE_SIZE;
  let pages = 0;
  for (let ptep = first; ptep < first + n; ptep++) {
    const oldpte = e[ptep]!;
    if (pte_none(oldpte)) continue;
    if (pte_present(oldpte)) {
      e[ptep] = pte_modify(oldpte, newprot);
      pages++;
      continue;
    }
    const read = swp_pte_mkread(k, oldpte);
    if (read < 0) continue;
    e[ptep] = read;
    pages++;
  }
  return pages;
}

/**
 * change_protection: give [start, end) of vma the protection newprot, inside one mmu
 * notifier invalidation. A huge PMD fully inside the range changes whole, one partly
 * inside is split first; a huge DAX PUD partly inside is dropped (it refaults smaller).
 * Returns the base pages changed.
 */
export function change_protection(
  k: Kernel,
  vma: vm_area_struct,
  start: number,
  end: number,
  newprot: number,
): number {
  const mm = vma.vm_mm;
  const e = k.pt.entries;
  const { PMD_SIZE, PUD_SIZE } = k.c;
  const range = mmu_notifier_range_init(mm, start, end, 'protection');
  mmu_notifier_invalidate_range_start(k, range);
  let pages = 0;
  if (vma.vm_flags & VM_HUGETLB)
    pages = hugetlb_change_protection(k, vma, start, end, newprot, (m, a) => pmd_lookup(k, m, a));
  else
    for (let addr = start; addr < end;) {
      const pud = pud_lookup(k, mm, addr);
      if (pud >= 0 && pmd_huge(e[pud]!)) {
        const pnext = Math.min(end, (Math.floor(addr / PUD_SIZE) + 1) * PUD_SIZE);
        if (addr % PUD_SIZE === 0 && pnext - addr === PUD_SIZE) {
          e[pud] = pte_modify(e[pud]!, newprot);
          pages += PUD_SIZE / k.c.PAGE_SIZE;
          addr = pnext;
          continue;
        }
        split_huge_pud(k, vma, pud, addr);
      }
      const next = Math.min(end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
      const pmd = pmd_lookup(k, mm, addr);
      if (pmd >= 0 && !pte_none(e[pmd]!)) {
        if (pmd_huge(e[pmd]!)) {
          if (next - addr === PMD_SIZE) {
            pages += change_huge_pmd(k, pmd, newprot);
            addr = next;
            continue;
          }
          split_huge_pmd(k, vma, pmd, addr);
        }
        pages += change_pte_range(k, pmd, addr, next, newprot);
      }
      addr = next;
    }
  mmu_notifier_invalidate_range_end(k, range);
  return pages;
}

/** hugetlb_vm_op_split: a hugetlb vma is only cut at huge page boundaries. */
function vma_split_ok(k: Kernel, vma: vm_area_struct, addr: number): boolean {
  return !(vma.vm_flags & VM_HUGETLB) || addr % k.c.PMD_SIZE === 0;
}

/** mprotect_fixup: [start, end) of vma (inside it) gets newflags: split, set, re-protect. */
export function mprotect_fixup(
  k: Kernel,
  vma: vm_area_struct,
  start: number,
  end: number,
  newflags: number,
): number {
  const mm = vma.vm_mm;
  if (newflags === vma.vm_flags) return 0;
  if (start !== vma.vm_start) {
    if (!vma_split_ok(k, vma, start)) return -EINVAL;
    vma = split_vma(k, mm, vma, start);
  }
  if (end !== vma.vm_end) {
    if (!vma_split_ok(k, vma, end)) return -EINVAL;
    split_vma(k, mm, vma, end);
  }
  vma.vm_flags = newflags;
  vma_set_page_prot(vma);
  change_protection(k, vma, start, end, vma.vm_page_prot);
  return 0;
}

/**
 * do_mprotect_pkey: 0 or -errno. -EINVAL for an unaligned start or unknown prot bits,
 * -ENOMEM when [start, start + len) is not fully mapped (the vmas before the hole have
 * already changed, as in the kernel), -EACCES when a vma may not take the protection
 * (VM_MAY* lacks it).
 */
export function do_mprotect(k: Kernel, mm: mm_struct, start: number, len: number, prot: number): number {
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  if (start % k.c.PAGE_SIZE) return -EINVAL;
  if (!len) return 0;
  len = ALIGN(len, k.c.PAGE_SIZE);
  const end = start + len;
  if (end <= start) return -ENOMEM;
  // arch_validate_prot
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) return -EINVAL;
  let vma = find_vma(mm, start);
  if (!vma) return -ENOMEM;
  if (grows & PROT_GROWSDOWN) {
    if (vma.vm_start >= end) return -ENOMEM;
    if (!(vma.vm_flags & VM_GROWSDOWN)) return -EINVAL;
    start = vma.vm_start;
  } else {
    if (vma.vm_start > start) return -ENOMEM;
    // x86 has no VM_GROWSUP.
    if (grows & PROT_GROWSUP) return -EINVAL;
  }
  const vm_prot = calc_vm_prot_bits(prot);
  for (let nstart = start; ;) {
    const newflags = vm_prot | (vma.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC));
    // Each VM_MAY* bit sits 4 above its VM_* bit: asking for what the area may never have.
    if (newflags & ~(newflags >> 4) & (VM_READ | VM_WRITE | VM_EXEC)) return -EACCES;
    const tmp = Math.min(vma.vm_end, end);
    const error = mprotect_fixup(k, vma, nstart, tmp, newflags);
    if (error) return error;
    nstart = tmp;
    if (nstart >= end) return 0;
    const next = find_vma(mm, nstart);
    if (!next || next.vm_start !== nstart) return -ENOMEM;
    vma = next;
  }
}
