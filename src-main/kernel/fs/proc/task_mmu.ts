// fs/proc/task_mmu.c: /proc/PID/smaps, /proc/PID/pagemap and /proc/PID/clear_refs.
// smaps walks a vma's entries and accounts each mapped page; pagemap reports one 64-bit
// word per virtual page (Documentation/admin-guide/mm/pagemap.rst).
// F-DEV-7: a device entry's page counts in the mapping's rss in smaps, and pagemap
// reports it as swap (PM_SWAP, its type and offset) with the page's flags.
import type { Kernel } from '../../kernel';
import { ALIGN, ALIGN_DOWN } from '../../include/config';
import { EINVAL } from '../../include/errno';
import {
  VM_ACCOUNT,
  VM_DONTCOPY,
  VM_DONTEXPAND,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_NOHUGEPAGE,
  VM_NORESERVE,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_SOFTDIRTY,
  VM_WRITE,
  type mm_struct,
  type vm_area_struct,
} from '../../include/mm_types';
import {
  pmd_devmap,
  pmd_huge,
  pte_clear_soft_dirty,
  pte_dirty,
  pte_mkold,
  pte_none,
  pte_pfn,
  pte_present,
  pte_soft_dirty,
  pte_special,
  pte_wrprotect,
  pte_young,
} from '../../include/pgtable';
import {
  device_entry_to_page,
  is_device_entry,
  is_migration_entry,
  is_swap_pte,
  migration_entry_to_page,
  non_swap_entry,
  pte_swp_clear_soft_dirty,
  pte_swp_soft_dirty,
  pte_to_swp_entry,
  swp_offset,
  swp_type,
} from '../../include/swapops';
import { PG_dirty, PG_referenced, PG_swapbacked } from '../../include/page-flags';
import { page_count, page_mapcount } from '../../include/mm';
import { PageAnon } from '../../mm/rmap';
import { compound_order } from '../../mm/huge_memory';
import { pmd_lookup, pud_lookup, split_huge_pud, vm_normal_page } from '../../mm/memory';
import { find_vma, vma_set_page_prot } from '../../mm/mmap';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from '../../mm/mmu_notifier';

/** The fields of one /proc/PID/smaps entry, in kB, named as the kernel prints them. */
export type smaps = {
  Size: number;
  KernelPageSize: number;
  MMUPageSize: number;
  Rss: number;
  Pss: number;
  Shared_Clean: number;
  Shared_Dirty: number;
  Private_Clean: number;
  Private_Dirty: number;
  Referenced: number;
  Anonymous: number;
  LazyFree: number;
  AnonHugePages: number;
  ShmemPmdMapped: number;
  Shared_Hugetlb: number;
  Private_Hugetlb: number;
  Swap: number;
  SwapPss: number;
  Locked: number;
};

/** Pss is summed in 1/2^PSS_SHIFT bytes so that shares of a page add up exactly. */
const PSS_SHIFT = 12;

class mem_size_stats {
  resident = 0;
  shared_clean = 0;
  shared_dirty = 0;
  private_clean = 0;
  private_dirty = 0;
  referenced = 0;
  anonymous = 0;
  lazyfree = 0;
  anonymous_thp = 0;
  shmem_thp = 0;
  swap = 0;
  shared_hugetlb = 0;
  private_hugetlb = 0;
  pss = 0;
  swap_pss = 0;
}

/**
 * smaps_account: one mapped page (a whole THP when compound). A page with a single
 * reference is mapped exactly once; otherwise each base page is shared or private by its
 * mapcount, and Pss gives it 1/mapcount of its size.
 */
function smaps_account(
  k: Kernel,
  mss: mem_size_stats,
  page: number,
  compound: boolean,
  young: boolean,
  dirty: boolean,
): void {
  const { PAGE_SIZE } = k.c;
  const nr = compound ? 2 ** compound_order(k, page) : 1;
  const size = nr * PAGE_SIZE;
  const flags = k.mem.flags[page]!;
  const page_dirty = dirty || (flags & PG_dirty) !== 0;
  if (PageAnon(k, page)) {
    mss.anonymous += size;
    if (!(flags & PG_swapbacked) && !page_dirty) mss.lazyfree += size;
  }
  mss.resident += size;
  if (young || flags & PG_referenced) mss.referenced += size;
  if (page_count(k, page) === 1) {
    if (page_dirty) mss.private_dirty += size;
    else mss.private_clean += size;
    mss.pss += size * 2 ** PSS_SHIFT;
    return;
  }
  // The lab keeps a THP's mapcount and flags in its head page.
  const mapcount = page_mapcount(k, page);
  for (let i = 0; i < nr; i++) {
    if (mapcount >= 2) {
      if (page_dirty) mss.shared_dirty += PAGE_SIZE;
      else mss.shared_clean += PAGE_SIZE;
      mss.pss += Math.floor((PAGE_SIZE * 2 ** PSS_SHIFT) / mapcount);
    } else {
      if (page_dirty) mss.private_dirty += PAGE_SIZE;
      else mss.private_clean += PAGE_SIZE;
      mss.pss += PAGE_SIZE * 2 ** PSS_SHIFT;
    }
  }
}

/** The page behind a swap PTE that has one: migration entries and, F-DEV-7, device entries. */
function swap_pte_page(k: Kernel, pte: number): number {
  const entry = pte_to_swp_entry(pte);
  if (is_migration_entry(k, entry)) return migration_entry_to_page(k, entry);
  if (is_device_entry(k, entry)) return device_entry_to_page(k, entry);
  return -1;
}

function smaps_pte_entry(k: Kernel, mss: mem_size_stats, vma: vm_area_struct, pte: number): void {
  let page = -1;
  if (pte_present(pte)) page = vm_normal_page(k, vma, pte);
  else if (is_swap_pte(pte)) {
    if (!non_swap_entry(k, pte_to_swp_entry(pte))) {
      mss.swap += k.c.PAGE_SIZE;
      mss.swap_pss += k.c.PAGE_SIZE * 2 ** PSS_SHIFT;
    } else page = swap_pte_page(k, pte);
  }
  if (page < 0) return;
  smaps_account(k, mss, page, false, pte_young(pte), pte_dirty(pte));
}

/** A huge PMD: a THP counts whole (AnonHugePages); the huge zero page and DAX pages do not. */
function smaps_pmd_entry(k: Kernel, mss: mem_size_stats, pmd: number): void {
  if (pte_special(pmd) || pmd_devmap(pmd)) return;
  const page = k.mem.pfn_to_page(pte_pfn(pmd));
  if (PageAnon(k, page)) mss.anonymous_thp += k.c.PMD_SIZE;
  else if (k.mem.flags[page]! & PG_swapbacked) mss.shmem_thp += k.c.PMD_SIZE;
  smaps_account(k, mss, page, true, pte_young(pmd), pte_dirty(pmd));
}

/** Hugetlb pages are not rss: they count as Shared_Hugetlb or Private_Hugetlb by mapcount. */
function smaps_hugetlb_range(k: Kernel, mss: mem_size_stats, vma: vm_area_struct): void {
  for (let addr = vma.vm_start; addr < vma.vm_end; addr += k.c.PMD_SIZE) {
    const pmd = pmd_lookup(k, vma.vm_mm, addr);
    if (pmd < 0) continue;
    const entry = k.pt.entries[pmd]!;
    let page = -1;
    if (pte_present(entry)) page = k.mem.pfn_to_page(pte_pfn(entry));
    else if (is_swap_pte(entry)) page = swap_pte_page(k, entry);
    if (page < 0) continue;
    if (page_mapcount(k, page) >= 2) mss.shared_hugetlb += k.c.PMD_SIZE;
    else mss.private_hugetlb += k.c.PMD_SIZE;
  }
}

/**
 * walk_page_range's pud step: a page walk without a PUD callback splits a huge PUD, and
 * a DAX one is simply dropped (it refaults). Returns true when addr's PMDs can be walked.
 */
function walk_pud(k: Kernel, vma: vm_area_struct, addr: number): void {
  const pud = pud_lookup(k, vma.vm_mm, addr);
  if (pud >= 0 && pmd_huge(k.pt.entries[pud]!)) split_huge_pud(k, vma, pud, addr);
}

/**
 * Visit the entries of [start, end) of a non-hugetlb vma: onPmd for a huge PMD (with the
 * sub-range it covers), onPte for every PTE slot under a table, onHole for a range with
 * no table.
 */
function walk_vma_range(
  k: Kernel,
  vma: vm_area_struct,
  start: number,
  end: number,
  onPmd: (pmd: number, addr: number, next: number) => void,
  onPte: (ptep: number, addr: number) => void,
  onHole: (addr: number, next: number) => void,
): void {
  const e = k.pt.entries;
  const { PAGE_SIZE, PMD_SIZE, PTRS_PER_TABLE } = k.c;
  for (let addr = start; addr < end;) {
    const next = Math.min(end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
    walk_pud(k, vma, addr);
    const pmd = pmd_lookup(k, vma.vm_mm, addr);
    if (pmd < 0 || pte_none(e[pmd]!)) onHole(addr, next);
    else if (pmd_huge(e[pmd]!)) onPmd(pmd, addr, next);
    else {
      const base = pte_pfn(e[pmd]!) * PTRS_PER_TABLE;
      for (let a = addr; a < next; a += PAGE_SIZE)
        onPte(base + (Math.floor(a / PAGE_SIZE) % PTRS_PER_TABLE), a);
    }
    addr = next;
  }
}

function kB(bytes: number): number {
  return Math.floor(bytes / 1024);
}

/** show_smap: the smaps fields of one vma of mm. */
export function show_smaps(k: Kernel, mm: mm_struct, vma: vm_area_struct): smaps {
  void mm;
  const mss = new mem_size_stats();
  const e = k.pt.entries;
  const hugetlb = (vma.vm_flags & VM_HUGETLB) !== 0;
  if (hugetlb) smaps_hugetlb_range(k, mss, vma);
  else
    walk_vma_range(
      k,
      vma,
      vma.vm_start,
      vma.vm_end,
      (pmd) => smaps_pmd_entry(k, mss, e[pmd]!),
      (ptep) => smaps_pte_entry(k, mss, vma, e[ptep]!),
      () => {},
    );
  const pageSize = hugetlb ? k.c.PMD_SIZE : k.c.PAGE_SIZE;
  const pss = Math.floor(mss.pss / 2 ** (10 + PSS_SHIFT));
  return {
    Size: kB(vma.vm_end - vma.vm_start),
    KernelPageSize: kB(pageSize),
    MMUPageSize: kB(pageSize),
    Rss: kB(mss.resident),
    Pss: pss,
    Shared_Clean: kB(mss.shared_clean),
    Shared_Dirty: kB(mss.shared_dirty),
    Private_Clean: kB(mss.private_clean),
    Private_Dirty: kB(mss.private_dirty),
    Referenced: kB(mss.referenced),
    Anonymous: kB(mss.anonymous),
    LazyFree: kB(mss.lazyfree),
    AnonHugePages: kB(mss.anonymous_thp),
    ShmemPmdMapped: kB(mss.shmem_thp),
    Shared_Hugetlb: kB(mss.shared_hugetlb),
    Private_Hugetlb: kB(mss.private_hugetlb),
    Swap: kB(mss.swap),
    SwapPss: Math.floor(mss.swap_pss / 2 ** (10 + PSS_SHIFT)),
    Locked: vma.vm_flags & VM_LOCKED ? pss : 0,
  };
}

/** show_smap_vma_flags: the VmFlags mnemonics. */
const VM_FLAG_NAMES: [number, string][] = [
  [VM_READ, 'rd'],
  [VM_WRITE, 'wr'],
  [VM_EXEC, 'ex'],
  [VM_SHARED, 'sh'],
  [VM_MAYREAD, 'mr'],
  [VM_MAYWRITE, 'mw'],
  [VM_MAYEXEC, 'me'],
  [VM_MAYSHARE, 'ms'],
  [VM_GROWSDOWN, 'gd'],
  [VM_PFNMAP, 'pf'],
  [VM_LOCKED, 'lo'],
  [VM_IO, 'io'],
  [VM_DONTCOPY, 'dc'],
  [VM_DONTEXPAND, 'de'],
  [VM_ACCOUNT, 'ac'],
  [VM_NORESERVE, 'nr'],
  [VM_HUGETLB, 'ht'],
  [VM_SOFTDIRTY, 'sd'],
  [VM_MIXEDMAP, 'mm'],
  [VM_HUGEPAGE, 'hg'],
  [VM_NOHUGEPAGE, 'nh'],
];

/** One smaps entry as /proc/PID/smaps prints it: the maps line, the fields, VmFlags. */
export function show_smap_text(k: Kernel, mm: mm_struct, vma: vm_area_struct): string {
  const f = vma.vm_flags;
  const perms =
    (f & VM_READ ? 'r' : '-') +
    (f & VM_WRITE ? 'w' : '-') +
    (f & VM_EXEC ? 'x' : '-') +
    (f & VM_MAYSHARE ? 's' : 'p');
  const file = vma.vm_file;
  const pgoff = file ? vma.vm_pgoff * k.c.PAGE_SIZE : 0;
  // A named anonymous area shows as [anon:name] (PR_SET_VMA_ANON_NAME).
  const name = file
    ? `/${file.f_inode.name}${file.f_inode.i_nlink === 0 ? ' (deleted)' : ''}`
    : vma.name && `[anon:${vma.name}]`;
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const ino = file ? file.f_mapping.id : 0;
  const header = `${hex(vma.vm_start)}-${hex(vma.vm_end)} ${perms} ${hex(pgoff)} 00:00 ${ino} `;
  // seq_pad: the name starts in column 73.
  const lines = [name ? `${header.padEnd(72)} ${name}` : header];
  for (const [field, value] of Object.entries(show_smaps(k, mm, vma)))
    lines.push(`${`${field}:`.padEnd(16)}${String(value).padStart(8)} kB`);
  lines.push(
    `VmFlags: ${VM_FLAG_NAMES.filter(([bit]) => f & bit)
      .map(([, n]) => `${n} `)
      .join('')}`,
  );
  return lines.join('\n') + '\n';
}

// pagemap: bits 0-54 the pfn (present) or the swap type (bits 0-4) and offset (5-54).
export const PM_PFRAME_BITS = 55n;
export const PM_PFRAME_MASK = (1n << PM_PFRAME_BITS) - 1n;
export const PM_SOFT_DIRTY = 1n << 55n;
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
export const PM_FILE = 1n << 61n;
export const PM_SWAP = 1n << 62n;
export const PM_PRESENT = 1n << 63n;

/** One pagemap word and what it says. */
export interface pagemap_entry {
  addr: number;
  pme: bigint;
  present: boolean;
  swap: boolean;
  /** PM_FILE: a file page or a shared anonymous one (not PageAnon). */
  file: boolean;
  exclusive: boolean;
  soft_dirty: boolean;
  /** The page frame of a present page (0 when the reader may not see pfns), else null. */
  pfn: number | null;
  swap_type: number | null;
  swap_offset: number | null;
}

/** Decode a pagemap word as user space does. */
export function pagemap_decode(k: Kernel, addr: number, pme: bigint): pagemap_entry {
  const shift = BigInt(k.config.maxSwapfilesShift);
  const present = (pme & PM_PRESENT) !== 0n;
  const swap = (pme & PM_SWAP) !== 0n;
  const frame = pme & PM_PFRAME_MASK;
  return {
    addr,
    pme,
    present,
    swap,
    file: (pme & PM_FILE) !== 0n,
    exclusive: (pme & PM_MMAP_EXCLUSIVE) !== 0n,
    soft_dirty: (pme & PM_SOFT_DIRTY) !== 0n,
    pfn: present ? Number(frame) : null,
    swap_type: swap ? Number(frame & ((1n << shift) - 1n)) : null,
    swap_offset: swap ? Number(frame >> shift) : null,
  };
}

function make_pme(frame: bigint, flags: bigint): bigint {
  return (frame & PM_PFRAME_MASK) | flags;
}

/** pte_to_pagemap_entry. */
function pte_to_pagemap_entry(
  k: Kernel,
  vma: vm_area_struct,
  pte: number,
  show_pfn: boolean,
  vmflags: bigint,
): bigint {
  let frame = 0n;
  let flags = vmflags;
  let page = -1;
  if (pte_present(pte)) {
    if (show_pfn) frame = BigInt(pte_pfn(pte));
    flags |= PM_PRESENT;
    page = vm_normal_page(k, vma, pte);
    if (pte_soft_dirty(pte)) flags |= PM_SOFT_DIRTY;
  } else if (is_swap_pte(pte)) {
    if (pte_swp_soft_dirty(pte)) flags |= PM_SOFT_DIRTY;
    const entry = pte_to_swp_entry(pte);
    frame = BigInt(swp_type(entry)) | (BigInt(swp_offset(entry)) << BigInt(k.config.maxSwapfilesShift));
    flags |= PM_SWAP;
    // F-DEV-7: a device entry reports its page's flags, as a migration entry does.
    page = swap_pte_page(k, pte);
  }
  if (page >= 0 && !PageAnon(k, page)) flags |= PM_FILE;
  if (page >= 0 && page_mapcount(k, page) === 1) flags |= PM_MMAP_EXCLUSIVE;
  return make_pme(frame, flags);
}

/**
 * pagemap_read: the pagemap words of the pages of [start, end) (rounded out to pages,
 * clamped to user space), decoded. show_pfn is whether the reader has CAP_SYS_ADMIN.
 */
export function pagemap_read(
  k: Kernel,
  mm: mm_struct,
  start: number,
  end: number,
  show_pfn = true,
): pagemap_entry[] {
  const { PAGE_SIZE, PMD_SIZE } = k.c;
  start = ALIGN_DOWN(start, PAGE_SIZE);
  end = Math.min(ALIGN(end, PAGE_SIZE), k.c.TASK_SIZE);
  const out: pagemap_entry[] = [];
  const e = k.pt.entries;
  const push = (addr: number, pme: bigint): void => {
    out.push(pagemap_decode(k, addr, pme));
  };
  const holes = (from: number, to: number, pme: bigint): void => {
    for (let a = from; a < to; a += PAGE_SIZE) push(a, pme);
  };
  for (let addr = start; addr < end;) {
    const vma = find_vma(mm, addr);
    if (!vma || vma.vm_start >= end) {
      holes(addr, end, 0n);
      break;
    }
    if (vma.vm_start > addr) {
      holes(addr, vma.vm_start, 0n);
      addr = vma.vm_start;
    }
    const vend = Math.min(vma.vm_end, end);
    const vmflags = vma.vm_flags & VM_SOFTDIRTY ? PM_SOFT_DIRTY : 0n;
    if (vma.vm_flags & VM_HUGETLB) {
      for (; addr < vend; addr += PAGE_SIZE) {
        const pmd = pmd_lookup(k, mm, addr);
        const entry = pmd >= 0 ? e[pmd]! : 0;
        let flags = vmflags;
        let frame = 0n;
        if (pte_present(entry)) {
          const page = k.mem.pfn_to_page(pte_pfn(entry));
          if (!PageAnon(k, page)) flags |= PM_FILE;
          if (page_mapcount(k, page) === 1) flags |= PM_MMAP_EXCLUSIVE;
          flags |= PM_PRESENT;
          if (show_pfn) frame = BigInt(pte_pfn(entry) + Math.floor((addr % PMD_SIZE) / PAGE_SIZE));
        }
        push(addr, make_pme(frame, flags));
      }
      continue;
    }
    walk_vma_range(
      k,
      vma,
      addr,
      vend,
      (pmd, a, next) => {
        // pagemap_pmd_range: PM_FILE is not looked at for a huge PMD.
        const entry = e[pmd]!;
        const page = k.mem.pfn_to_page(pte_pfn(entry));
        let flags = vmflags | PM_PRESENT;
        if (pte_soft_dirty(entry)) flags |= PM_SOFT_DIRTY;
        if (page >= 0 && page_mapcount(k, page) === 1) flags |= PM_MMAP_EXCLUSIVE;
        for (; a < next; a += PAGE_SIZE) {
          const frame = show_pfn ? BigInt(pte_pfn(entry) + Math.floor((a % PMD_SIZE) / PAGE_SIZE)) : 0n;
          push(a, make_pme(frame, flags));
        }
      },
      (ptep, a) => push(a, pte_to_pagemap_entry(k, vma, e[ptep]!, show_pfn, vmflags)),
      (a, next) => holes(a, next, vmflags),
    );
    addr = vend;
  }
  return out;
}

// clear_refs types (echo N > /proc/PID/clear_refs).
export const CLEAR_REFS_ALL = 1;
export const CLEAR_REFS_ANON = 2;
export const CLEAR_REFS_MAPPED = 3;
export const CLEAR_REFS_SOFT_DIRTY = 4;
export const CLEAR_REFS_MM_HIWATER_RSS = 5;

/**
 * clear_refs_write: 1-3 age the PTEs (all, anonymous, file vmas) and clear PG_referenced;
 * 4 clears soft-dirty: the vmas lose VM_SOFTDIRTY and every entry its soft-dirty bit,
 * present PTEs being write-protected so the next write faults and marks them again.
 * 5 resets the rss high-water mark, which the lab does not keep. 0 or -EINVAL.
 */
export function clear_refs_write(k: Kernel, mm: mm_struct, type: number): number {
  if (!Number.isInteger(type) || type < CLEAR_REFS_ALL || type > CLEAR_REFS_MM_HIWATER_RSS) return -EINVAL;
  if (type === CLEAR_REFS_MM_HIWATER_RSS) return 0;
  const e = k.pt.entries;
  const soft_dirty = type === CLEAR_REFS_SOFT_DIRTY;
  if (soft_dirty)
    for (const vma of mm.mmap)
      if (vma.vm_flags & VM_SOFTDIRTY) {
        vma.vm_flags &= ~VM_SOFTDIRTY;
        vma_set_page_prot(vma);
      }
  const range = mmu_notifier_range_init(mm, 0, k.c.TASK_SIZE, soft_dirty ? 'soft-dirty' : 'clear-refs');
  mmu_notifier_invalidate_range_start(k, range);
  const clear_referenced = (page: number): void => {
    k.mem.flags[page] = (k.mem.flags[page]! & ~PG_referenced) >>> 0;
  };
  for (const vma of [...mm.mmap]) {
    if (vma.vm_flags & (VM_HUGETLB | VM_PFNMAP)) continue;
    if (type === CLEAR_REFS_ANON && vma.vm_file) continue;
    if (type === CLEAR_REFS_MAPPED && !vma.vm_file) continue;
    walk_vma_range(
      k,
      vma,
      vma.vm_start,
      vma.vm_end,
      (pmd) => {
        const entry = e[pmd]!;
        if (soft_dirty) e[pmd] = pte_clear_soft_dirty(pte_wrprotect(entry));
        else {
          e[pmd] = pte_mkold(entry);
          if (!pte_special(entry) && !pmd_devmap(entry)) clear_referenced(k.mem.pfn_to_page(pte_pfn(entry)));
        }
      },
      (ptep) => {
        const pte = e[ptep]!;
        if (soft_dirty) {
          if (pte_present(pte)) e[ptep] = pte_clear_soft_dirty(pte_wrprotect(pte));
          else if (is_swap_pte(pte)) e[ptep] = pte_swp_clear_soft_dirty(pte);
          return;
        }
        if (!pte_present(pte)) return;
        e[ptep] = pte_mkold(pte);
        const page = vm_normal_page(k, vma, pte);
        if (page >= 0) clear_referenced(page);
      },
      () => {},
    );
  }
  mmu_notifier_invalidate_range_end(k, range);
  return 0;
}
