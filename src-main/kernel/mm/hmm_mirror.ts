// mm/hmm.c, the mirror half (seeds 002 and 004): a device mirrors a process's address
// space. One struct hmm per mm tracks the mirrors and the ranges being snapshotted;
// every CPU page-table invalidation marks overlapping ranges invalid and asks each
// mirror to drop its device mappings. Snapshot and fault walk the CPU page table into a
// driver-encoded pfns[] array (range->flags[] / range->values[]).
import type { Kernel } from '../kernel';
import { EAGAIN, EBUSY, EFAULT, EINVAL, ENOMEM, EPERM } from '../include/errno';
import {
  FAULT_FLAG_ALLOW_RETRY,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_WRITE,
  VM_FAULT_ERROR,
  VM_FAULT_RETRY,
  VM_HUGETLB,
  VM_IO,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_READ,
  VM_SPECIAL,
  VM_WRITE,
  type mm_struct,
  type mmu_notifier,
  type mmu_notifier_range,
  type vm_area_struct,
} from '../include/mm_types';
import {
  _PAGE_PROTNONE,
  _PAGE_TABLE,
  _PAGE_USER,
  pmd_devmap,
  pmd_huge,
  pmd_trans_huge,
  pte_devmap,
  pte_flags,
  pte_none,
  pte_pfn,
  pte_present,
  pte_special,
  pte_write,
  pud_devmap,
} from '../include/pgtable';
import {
  is_device_private_entry,
  is_migration_entry,
  is_write_device_private_entry,
  non_swap_entry,
  pte_to_swp_entry,
  swp_offset,
} from '../include/swapops';
import { get_dev_pagemap, put_dev_pagemap, type dev_pagemap } from '../kernel/memremap';
import { handle_mm_fault, is_zero_pfn, migration_entry_wait, split_huge_pud } from './memory';
import { find_vma } from './mmap';
import { mmu_notifier_register, mmu_notifier_unregister } from './mmu_notifier';
import { pgd_offset, pmd_offset, pte_offset_map, pud_offset } from './pgtable';
import { vma_is_dax } from '../fs/dax';

// range->flags[] and range->values[] indices (include/linux/hmm.h).
export const HMM_PFN_VALID = 0;
export const HMM_PFN_WRITE = 1;
export const HMM_PFN_DEVICE_PRIVATE = 2;
export const HMM_PFN_FLAG_MAX = 3;
export const HMM_PFN_ERROR = 0;
export const HMM_PFN_NONE = 1;
export const HMM_PFN_SPECIAL = 2;
export const HMM_PFN_VALUE_MAX = 3;

export const HMM_UPDATE_INVALIDATE = 0;

export interface hmm_update {
  start: number;
  end: number;
  event: number;
  blockable: boolean;
}

export interface hmm_mirror_ops {
  /** Drop device mappings of [update.start, update.end); -EAGAIN if it must sleep and may not. */
  sync_cpu_device_pagetables(mirror: hmm_mirror, update: hmm_update): number;
  /** The mm is going away: stop using it. */
  release?(mirror: hmm_mirror): void;
}

export class hmm_mirror {
  hmm: hmm | null = null;
  constructor(public ops: hmm_mirror_ops | null) {}
}

export class hmm {
  readonly ranges = new Set<hmm_range>();
  readonly mirrors: hmm_mirror[] = [];
  /** Invalidations between range_start and range_end (hmm->notifiers). */
  notifiers = 0;
  readonly mmu_notifier: mmu_notifier;
  /** The notifier is registered (hmm->mmu_notifier.ops set). */
  registered = false;

  constructor(
    readonly k: Kernel,
    public mm: mm_struct | null,
  ) {
    this.mmu_notifier = {
      ops: {
        release: () => hmm_release(this),
        invalidate_range_start: (_mn, range) => hmm_invalidate_range_start(this, range),
        invalidate_range_end: (_mn, range) => hmm_invalidate_range_end(this, range),
      },
    };
  }
}

export class hmm_range {
  /** 2017 API: the vma the range lies in. 2019 API: set per vma during a walk. */
  vma: vm_area_struct | null = null;
  /** 2019 API: the hmm the range was registered with. */
  hmm: hmm | null = null;
  start = 0;
  end = 0;
  valid = false;
  page_shift = 0;
  /** Registered with hmm_range_register: revalidated when invalidations finish. */
  registered = false;
  /** 2^pfn_shift, computed once: `2 ** shift` with a variable shift is a slow pow call. */
  readonly pfn_unit: number;

  constructor(
    public pfns: Float64Array,
    /** The driver's bit for each HMM_PFN_* flag, below 2^pfn_shift. */
    readonly flags: readonly number[],
    /** The driver's encoding of ERROR, NONE and SPECIAL. */
    readonly values: readonly number[],
    /** Where the pfn starts in an entry: entry = pfn * 2^pfn_shift + flags. */
    readonly pfn_shift: number,
  ) {
    this.pfn_unit = 2 ** pfn_shift;
  }
}

/** The flag bits of an entry (entries are doubles: no bitwise ops on the whole word). */
function entry_flags(range: hmm_range, v: number): number {
  // Not `v % unit`: on a double that is a slow fmod call.
  const unit = range.pfn_unit;
  return v - Math.floor(v / unit) * unit;
}

function has(range: hmm_range, v: number, flag: number): boolean {
  const bit = range.flags[flag]!;
  return bit !== 0 && (entry_flags(range, v) & bit) !== 0;
}

export function hmm_pfn_from_pfn(range: hmm_range, pfn: number): number {
  return pfn * range.pfn_unit + range.flags[HMM_PFN_VALID]!;
}

/** hmm_pfn_to_pfn: the pfn of a valid entry, -1 for NONE, ERROR, SPECIAL or invalid. */
export function hmm_pfn_to_pfn(range: hmm_range, v: number): number {
  if (
    v === range.values[HMM_PFN_NONE] ||
    v === range.values[HMM_PFN_ERROR] ||
    v === range.values[HMM_PFN_SPECIAL]
  )
    return -1;
  if (!has(range, v, HMM_PFN_VALID)) return -1;
  return Math.floor(v / range.pfn_unit);
}

export function hmm_pfn_to_page(k: Kernel, range: hmm_range, v: number): number {
  const pfn = hmm_pfn_to_pfn(range, v);
  return pfn < 0 ? -1 : k.mem.pfn_to_page(pfn);
}

/**
 * hmm_register: the mm's struct hmm, created with its mmu notifier on first use
 * (F-MIR-1). null when allocation fails.
 */
function hmm_register(k: Kernel, mm: mm_struct): hmm | null {
  const existing = mm.hmm as hmm | null;
  if (existing) return existing;
  if (k.fault.should_fail('kmalloc')) return null;
  const h = new hmm(k, mm);
  mm.hmm = h;
  h.registered = true;
  if (mmu_notifier_register(h.mmu_notifier, mm)) {
    mm.hmm = null;
    return null;
  }
  return h;
}

/** F-MIR-1: register a mirror of mm; -EINVAL without mm, mirror or ops; -ENOMEM. */
export function hmm_mirror_register(k: Kernel, mirror: hmm_mirror | null, mm: mm_struct | null): number {
  if (!mm || !mirror || !mirror.ops) return -EINVAL;
  for (;;) {
    const h = hmm_register(k, mm);
    if (!h) return -ENOMEM;
    if (h.mm === null) {
      // F-MIR-2: a racing unregister is destroying this hmm; once it has let go of the
      // mm, try again with a fresh one.
      if (mm.hmm === h) mm.hmm = null;
      continue;
    }
    mirror.hmm = h;
    h.mirrors.unshift(mirror);
    k.trace.emit({ name: 'hmm_mirror_register', mm: mm.id, mirrors: h.mirrors.length });
    return 0;
  }
}

/** F-MIR-2: the last mirror to go unregisters the notifier and frees the hmm. */
export function hmm_mirror_unregister(k: Kernel, mirror: hmm_mirror): void {
  const h = mirror.hmm;
  if (!h) return;
  const i = h.mirrors.indexOf(mirror);
  if (i >= 0) h.mirrors.splice(i, 1);
  mirror.hmm = null;
  if (h.mirrors.length) return;
  const mm = h.mm;
  h.mm = null;
  if (!mm) return;
  mmu_notifier_unregister(h.mmu_notifier, mm);
  h.registered = false;
  if (mm.hmm === h) mm.hmm = null;
  k.trace.emit({ name: 'hmm_mirror_unregister', mm: mm.id, mirrors: 0 });
}

/**
 * F-MIR-3: mark every tracked range overlapping the update invalid and clear its
 * overlapping pfns; on range start also ask each mirror to sync. A non-blockable update
 * a mirror answers with -EAGAIN fails as a whole.
 */
function hmm_invalidate_range(h: hmm, device: boolean, update: hmm_update): number {
  const ps = h.k.c.PAGE_SIZE;
  for (const range of h.ranges) {
    if (update.end < range.start || update.start >= range.end) continue;
    range.valid = false;
    // The 2019 API only marks a registered range invalid: the driver waits for it to be
    // valid again and walks anew (mm/hmm: improve driver API to work and wait over a range).
    if (range.registered) continue;
    const addr = Math.max(update.start, range.start);
    const idx = (addr - range.start) / ps;
    const npages = (Math.min(range.end, update.end) - addr) / ps;
    range.pfns.fill(0, idx, idx + npages);
  }
  if (!device) return 0;
  for (const mirror of [...h.mirrors]) {
    const ret = mirror.ops!.sync_cpu_device_pagetables(mirror, update);
    if (h.k.trace.on('hmm_sync_cpu_device_pagetables'))
      h.k.trace.emit({
        name: 'hmm_sync_cpu_device_pagetables',
        mm: h.mm?.id ?? -1,
        start: update.start,
        end: update.end,
        ret,
      });
    if (!update.blockable && ret === -EAGAIN) return -EAGAIN;
  }
  return 0;
}

function hmm_invalidate_range_start(h: hmm, range: mmu_notifier_range): number {
  h.notifiers++;
  const ret = hmm_invalidate_range(h, true, {
    start: range.start,
    end: range.end,
    event: HMM_UPDATE_INVALIDATE,
    blockable: range.blockable,
  });
  if (ret) h.notifiers--;
  return ret;
}

function hmm_invalidate_range_end(h: hmm, range: mmu_notifier_range): void {
  hmm_invalidate_range(h, false, {
    start: range.start,
    end: range.end,
    event: HMM_UPDATE_INVALIDATE,
    blockable: true,
  });
  if (h.notifiers > 0) h.notifiers--;
  // Ranges registered with hmm_range_register become valid again once no invalidation runs.
  if (h.notifiers === 0) for (const r of h.ranges) if (r.registered) r.valid = true;
}

/** F-MIR-4: the mm is exiting; each mirror's release runs with the lock dropped. */
function hmm_release(h: hmm): void {
  for (let mirror = h.mirrors.shift(); mirror; mirror = h.mirrors.shift()) mirror.ops?.release?.(mirror);
}

interface hmm_vma_walk {
  range: hmm_range;
  vma: vm_area_struct;
  pgmap: dev_pagemap | null;
  last: number;
  fault: boolean;
  block: boolean;
  /**
   * What a walk returns to be restarted after a fault or a migration wait: -EAGAIN in the
   * 2017 API (seed 002), -EBUSY in the 2019 one, where -EAGAIN means VM_FAULT_RETRY
   * dropped mmap_sem.
   */
  again: number;
}

function hmm_vma_do_fault(k: Kernel, w: hmm_vma_walk, addr: number, write_fault: boolean, i: number): number {
  let flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_REMOTE;
  if (write_fault) flags |= FAULT_FLAG_WRITE;
  const ret = handle_mm_fault(k, w.vma, addr, flags);
  if (ret & VM_FAULT_RETRY) return w.again === -EAGAIN ? -EBUSY : -EAGAIN;
  if (ret & VM_FAULT_ERROR) {
    w.range.pfns[i] = w.range.values[HMM_PFN_ERROR]!;
    return -EFAULT;
  }
  return w.again;
}

function index_of(k: Kernel, range: hmm_range, addr: number): number {
  return (addr - range.start) / k.c.PAGE_SIZE;
}

function hmm_pfns_bad(k: Kernel, w: hmm_vma_walk, addr: number, end: number): number {
  for (let i = index_of(k, w.range, addr); addr < end; addr += k.c.PAGE_SIZE, i++)
    w.range.pfns[i] = w.range.values[HMM_PFN_ERROR]!;
  return 0;
}

/** What hmm_pte_need_fault answers: bits, so that asking allocates nothing. */
const NEED_FAULT = 1;
const NEED_WRITE_FAULT = 2;

/** F-RANGE-2: holes read as NONE, and are faulted when asked (`need`: NEED_* bits). */
function hmm_vma_walk_hole_(k: Kernel, w: hmm_vma_walk, addr: number, end: number, need: number): number {
  const fault = (need & NEED_FAULT) !== 0;
  const write_fault = (need & NEED_WRITE_FAULT) !== 0;
  w.last = addr;
  // A device may not write where the CPU may not (the check later kernels added;
  // without it the fault never gives write access and the walk would retry forever).
  if (write_fault && !(w.vma.vm_flags & VM_WRITE)) return -EPERM;
  for (let i = index_of(k, w.range, addr); addr < end; addr += k.c.PAGE_SIZE, i++) {
    w.range.pfns[i] = w.range.values[HMM_PFN_NONE]!;
    if (fault || write_fault) {
      const ret = hmm_vma_do_fault(k, w, addr, write_fault, i);
      if (ret !== w.again) return ret;
    }
  }
  return fault || write_fault ? w.again : 0;
}

/**
 * Whether the request in `pfns` needs a fault given what the CPU has (`cpu_flags`):
 * NEED_FAULT, plus NEED_WRITE_FAULT for a write fault, or 0.
 */
function hmm_pte_need_fault(w: hmm_vma_walk, pfns: number, cpu_flags: number): number {
  const range = w.range;
  if (!w.fault || !has(range, pfns, HMM_PFN_VALID)) return 0;
  // Device memory is faulted (migrated back) only when the request says so.
  if (cpu_flags & range.flags[HMM_PFN_DEVICE_PRIVATE]!) {
    if (!has(range, pfns, HMM_PFN_DEVICE_PRIVATE)) return 0;
    return has(range, pfns, HMM_PFN_WRITE) ? NEED_FAULT | NEED_WRITE_FAULT : NEED_FAULT;
  }
  if (has(range, pfns, HMM_PFN_WRITE) && !(cpu_flags & range.flags[HMM_PFN_WRITE]!))
    return NEED_FAULT | NEED_WRITE_FAULT;
  return cpu_flags & range.flags[HMM_PFN_VALID]! ? 0 : NEED_FAULT;
}

function hmm_range_need_fault(w: hmm_vma_walk, i: number, npages: number, cpu_flags: number): number {
  for (let j = 0; w.fault && j < npages; j++) {
    const need = hmm_pte_need_fault(w, w.range.pfns[i + j]!, cpu_flags);
    if (need) return need;
  }
  return 0;
}

function hmm_vma_walk_hole(k: Kernel, w: hmm_vma_walk, addr: number, end: number): number {
  const i = index_of(k, w.range, addr);
  const need = hmm_range_need_fault(w, i, (end - addr) / k.c.PAGE_SIZE, 0);
  return hmm_vma_walk_hole_(k, w, addr, end, need);
}

function entry_cpu_flags(range: hmm_range, entry: number): number {
  if (!pte_present(entry) || pte_flags(entry) & _PAGE_PROTNONE) return 0;
  return pte_write(entry)
    ? range.flags[HMM_PFN_VALID]! | range.flags[HMM_PFN_WRITE]!
    : range.flags[HMM_PFN_VALID]!;
}

/**
 * F-DAX-1: hold a reference on the pgmap of a devmap pfn for the rest of the table. Seed
 * 004's walk expects the later get_dev_pagemap(), which keeps the caller's cached
 * reference when it covers the pfn (seed 003's takes one more each time): so the walk
 * asks only when the pfn leaves the cached map, and drops one reference per table.
 */
function walk_get_pgmap(k: Kernel, w: hmm_vma_walk, pfn: number): boolean {
  const phys = pfn * k.c.PAGE_SIZE;
  if (w.pgmap && phys >= w.pgmap.res.start && phys <= w.pgmap.res.end) return true;
  walk_put_pgmap(w);
  w.pgmap = get_dev_pagemap(k, pfn, null);
  return w.pgmap !== null;
}

function walk_put_pgmap(w: hmm_vma_walk): void {
  if (w.pgmap) {
    put_dev_pagemap(w.pgmap);
    w.pgmap = null;
  }
}

/** F-RANGE-5: a THP or devmap PMD gives every sub-page from the huge pfn. */
function hmm_vma_handle_pmd(k: Kernel, w: hmm_vma_walk, addr: number, end: number, pmd: number): number {
  const range = w.range;
  const i0 = index_of(k, range, addr);
  const npages = (end - addr) / k.c.PAGE_SIZE;
  const cpu_flags = entry_cpu_flags(range, pmd);
  const need = hmm_range_need_fault(w, i0, npages, cpu_flags);
  if (pte_flags(pmd) & _PAGE_PROTNONE || need) return hmm_vma_walk_hole_(k, w, addr, end, need);
  let pfn = pte_pfn(pmd) + (Math.floor(addr / k.c.PAGE_SIZE) % k.c.PTRS_PER_TABLE);
  for (let i = i0; addr < end; addr += k.c.PAGE_SIZE, i++, pfn++) {
    if (pmd_devmap(pmd) && !walk_get_pgmap(k, w, pfn)) return -EBUSY;
    range.pfns[i] = hmm_pfn_from_pfn(range, pfn) + cpu_flags - range.flags[HMM_PFN_VALID]!;
  }
  walk_put_pgmap(w);
  w.last = end;
  return 0;
}

/** A PTE that needs a fault: the walk lets go of its pgmap and faults from addr on. */
function hmm_vma_handle_pte_fault(
  k: Kernel,
  w: hmm_vma_walk,
  addr: number,
  end: number,
  need: number,
): number {
  walk_put_pgmap(w);
  return hmm_vma_walk_hole_(k, w, addr, end, need);
}

/** One PTE into one pfns[] entry (F-RANGE-1, F-RANGE-2, F-DAX-1, F-DAX-2). */
function hmm_vma_handle_pte(
  k: Kernel,
  w: hmm_vma_walk,
  addr: number,
  end: number,
  ptep: number,
  i: number,
  modern: boolean,
): number {
  const range = w.range;
  const pte = k.pt.entries[ptep]!;
  const orig = range.pfns[i]!;
  range.pfns[i] = range.values[HMM_PFN_NONE]!;
  let cpu_flags = pte_none(pte) ? 0 : entry_cpu_flags(range, pte);
  let need = hmm_pte_need_fault(w, orig, cpu_flags);
  if (pte_none(pte)) return need ? hmm_vma_handle_pte_fault(k, w, addr, end, need) : 0;
  if (!pte_present(pte)) {
    const entry = pte_to_swp_entry(pte);
    if (!non_swap_entry(k, entry)) return need ? hmm_vma_handle_pte_fault(k, w, addr, end, need) : 0;
    if (is_device_private_entry(k, entry)) {
      cpu_flags = range.flags[HMM_PFN_VALID]! | range.flags[HMM_PFN_DEVICE_PRIVATE]!;
      if (is_write_device_private_entry(k, entry)) cpu_flags |= range.flags[HMM_PFN_WRITE]!;
      need = hmm_pte_need_fault(w, orig, cpu_flags);
      if (need) return hmm_vma_handle_pte_fault(k, w, addr, end, need);
      range.pfns[i] = hmm_pfn_from_pfn(range, swp_offset(entry)) + cpu_flags - range.flags[HMM_PFN_VALID]!;
      return 0;
    }
    if (is_migration_entry(k, entry)) {
      if (need) {
        w.last = addr;
        migration_entry_wait(k, w.vma.vm_mm, addr, entry);
        return w.again;
      }
      return 0;
    }
    range.pfns[i] = range.values[HMM_PFN_ERROR]!;
    return -EFAULT;
  }
  if (need) return hmm_vma_handle_pte_fault(k, w, addr, end, need);
  if (modern) {
    if (pte_devmap(pte)) {
      if (!walk_get_pgmap(k, w, pte_pfn(pte))) return -EBUSY;
    } else if (pte_special(pte) && !is_zero_pfn(k, pte_pfn(pte))) {
      range.pfns[i] = range.values[HMM_PFN_SPECIAL]!;
      return -EFAULT;
    }
  }
  range.pfns[i] = hmm_pfn_from_pfn(range, pte_pfn(pte)) + cpu_flags - range.flags[HMM_PFN_VALID]!;
  return 0;
}

/** x86 pmd_bad: present, not huge, and not a table pointer. */
function pmd_bad(pmd: number): boolean {
  return pte_present(pmd) && !pmd_huge(pmd) && (pte_flags(pmd) & ~_PAGE_USER) !== (_PAGE_TABLE & ~_PAGE_USER);
}

/** F-RANGE-5: walk one PMD's worth of [start, end). */
function hmm_vma_walk_pmd(
  k: Kernel,
  w: hmm_vma_walk,
  pmdp: number,
  start: number,
  end: number,
  modern: boolean,
): number {
  const pmd = k.pt.entries[pmdp]!;
  if (pte_none(pmd)) return hmm_vma_walk_hole(k, w, start, end);
  if (pmd_huge(pmd) && w.vma.vm_flags & VM_HUGETLB) return hmm_pfns_bad(k, w, start, end);
  if (!pte_present(pmd)) return hmm_pfns_bad(k, w, start, end);
  if (pmd_devmap(pmd) || pmd_trans_huge(pmd)) return hmm_vma_handle_pmd(k, w, start, end, pmd);
  if (pmd_bad(pmd)) return hmm_pfns_bad(k, w, start, end);
  let addr = start;
  let ptep = pte_offset_map(k, pmdp, addr);
  for (let i = index_of(k, w.range, addr); addr < end; addr += k.c.PAGE_SIZE, i++, ptep++) {
    const r = hmm_vma_handle_pte(k, w, addr, end, ptep, i, modern);
    if (r) {
      w.last = addr;
      return r;
    }
  }
  walk_put_pgmap(w);
  w.last = addr;
  return 0;
}

/** F-DAX-1: a devmap PUD reports its 1 GiB of pfns; any other huge PUD is split (F-DAX-2). */
function hmm_vma_walk_pud(k: Kernel, w: hmm_vma_walk, pudp: number, start: number, end: number): number {
  const range = w.range;
  let pud = k.pt.entries[pudp]!;
  if (pte_none(pud)) return hmm_vma_walk_hole(k, w, start, end);
  if (pmd_huge(pud) && pud_devmap(pud)) {
    const i0 = index_of(k, range, start);
    const npages = (end - start) / k.c.PAGE_SIZE;
    const cpu_flags = entry_cpu_flags(range, pud);
    const need = hmm_range_need_fault(w, i0, npages, cpu_flags);
    if (need) return hmm_vma_walk_hole_(k, w, start, end, need);
    let pfn = pte_pfn(pud) + Math.floor((start % k.c.PUD_SIZE) / k.c.PAGE_SIZE);
    for (let i = 0; i < npages; i++, pfn++) {
      if (!walk_get_pgmap(k, w, pfn)) return -EBUSY;
      range.pfns[i0 + i] = hmm_pfn_from_pfn(range, pfn) + cpu_flags - range.flags[HMM_PFN_VALID]!;
    }
    walk_put_pgmap(w);
    w.last = end;
    return 0;
  }
  if (pmd_huge(pud)) {
    split_huge_pud(k, w.vma, pudp, start);
    pud = k.pt.entries[pudp]!;
    if (pte_none(pud)) return hmm_vma_walk_hole(k, w, start, end);
  }
  return walk_pmds(k, w, pudp, start, end, true);
}

function walk_pmds(
  k: Kernel,
  w: hmm_vma_walk,
  pudp: number,
  start: number,
  end: number,
  modern: boolean,
): number {
  for (let addr = start; addr < end;) {
    const next = Math.min(end, (Math.floor(addr / k.c.PMD_SIZE) + 1) * k.c.PMD_SIZE);
    const ret = hmm_vma_walk_pmd(k, w, pmd_offset(k, pudp, addr), addr, next, modern);
    if (ret) return ret;
    addr = next;
  }
  return 0;
}

/** 2019 hugetlb walk: entries at the vma's huge page size, or per base page (F-RANGE-4). */
function hmm_vma_walk_hugetlb_entry(
  k: Kernel,
  w: hmm_vma_walk,
  pmdp: number,
  start: number,
  end: number,
): number {
  const range = w.range;
  const size = k.c.PMD_SIZE;
  const big = range.page_shift !== k.c.PAGE_SHIFT;
  if (big && (start % size || end < start + size)) return -EINVAL;
  const step = big ? size : k.c.PAGE_SIZE;
  const pfn_inc = big ? size / k.c.PAGE_SIZE : 1;
  const entry = k.pt.entries[pmdp]!;
  const i0 = (start - range.start) / 2 ** range.page_shift;
  const orig = range.pfns[i0]!;
  range.pfns[i0] = range.values[HMM_PFN_NONE]!;
  const cpu_flags = pte_none(entry) ? 0 : entry_cpu_flags(range, entry);
  const need = hmm_pte_need_fault(w, orig, cpu_flags);
  if (need) return hmm_vma_walk_hole_(k, w, start, end, need);
  if (pte_none(entry)) return 0;
  let pfn = pte_pfn(entry) + Math.floor((start % size) / 2 ** range.page_shift);
  for (let a = start, i = i0; a < end; a += step, i++, pfn += pfn_inc)
    range.pfns[i] = hmm_pfn_from_pfn(range, pfn) + cpu_flags - range.flags[HMM_PFN_VALID]!;
  w.last = end;
  return 0;
}

/** walk_page_range over one vma's [start, end), with the hmm callbacks. */
function walk_page_range(k: Kernel, w: hmm_vma_walk, start: number, end: number, modern: boolean): number {
  const mm = w.vma.vm_mm;
  const e = k.pt.entries;
  for (let addr = start; addr < end;) {
    const next = Math.min(end, (Math.floor(addr / k.c.PUD_SIZE) + 1) * k.c.PUD_SIZE);
    const pgd = pgd_offset(k, mm, addr);
    let ret: number;
    if (pte_none(e[pgd]!)) ret = hmm_vma_walk_hole(k, w, addr, next);
    else {
      const pudp = pud_offset(k, pgd, addr);
      if (w.vma.vm_flags & VM_HUGETLB && modern) ret = walk_hugetlb(k, w, pudp, addr, next);
      else if (modern) ret = hmm_vma_walk_pud(k, w, pudp, addr, next);
      else
        ret = pte_none(e[pudp]!)
          ? hmm_vma_walk_hole(k, w, addr, next)
          : walk_pmds(k, w, pudp, addr, next, false);
    }
    if (ret) return ret;
    addr = next;
  }
  return 0;
}

function walk_hugetlb(k: Kernel, w: hmm_vma_walk, pudp: number, start: number, end: number): number {
  if (pte_none(k.pt.entries[pudp]!)) return hmm_vma_walk_hole(k, w, start, end);
  for (let addr = start; addr < end;) {
    const next = Math.min(end, (Math.floor(addr / k.c.PMD_SIZE) + 1) * k.c.PMD_SIZE);
    const ret = hmm_vma_walk_hugetlb_entry(k, w, pmd_offset(k, pudp, addr), addr, next);
    if (ret) return ret;
    addr = next;
  }
  return 0;
}

function hmm_pfns_clear(range: hmm_range, from: number, to: number): void {
  range.pfns.fill(range.values[HMM_PFN_NONE]!, from, to);
}

function hmm_pfns_special(range: hmm_range): void {
  range.pfns.fill(range.values[HMM_PFN_SPECIAL]!);
}

/** Faults one walk may restart before the lab calls it a livelock. */
const MAX_WALK_RETRIES = 64;

/** Checks shared by the 2017 snapshot and fault (F-RANGE-4). 0, or the error to return. */
function hmm_vma_range_check(k: Kernel, range: hmm_range, fault: boolean): number {
  const vma = range.vma!;
  const npages = (range.end - range.start) / k.c.PAGE_SIZE;
  if (range.start < vma.vm_start || range.start >= vma.vm_end) return -EINVAL;
  if (range.end < vma.vm_start || range.end > vma.vm_end) return -EINVAL;
  const h = hmm_register(k, vma.vm_mm);
  if (!h) {
    if (fault) hmm_pfns_clear(range, 0, npages);
    return -ENOMEM;
  }
  // The caller must have registered a mirror.
  if (!h.registered || !h.mirrors.length) return -EINVAL;
  if (vma.vm_flags & (VM_HUGETLB | VM_SPECIAL) || vma_is_dax(vma)) {
    hmm_pfns_special(range);
    return -EINVAL;
  }
  if (!(vma.vm_flags & VM_READ)) {
    hmm_pfns_clear(range, 0, npages);
    return -EPERM;
  }
  range.valid = true;
  h.ranges.add(range);
  return 0;
}

/** 2017: F-RANGE-1 snapshot the CPU page table of range.vma without faulting. */
export function hmm_vma_get_pfns(k: Kernel, range: hmm_range): number {
  const err = hmm_vma_range_check(k, range, false);
  if (err) return err;
  const w: hmm_vma_walk = {
    range,
    vma: range.vma!,
    pgmap: null,
    last: range.start,
    fault: false,
    block: false,
    again: -EAGAIN,
  };
  walk_page_range(k, w, range.start, range.end, false);
  k.trace.emit({ name: 'hmm_snapshot', mm: range.vma!.vm_mm.id, start: range.start, end: range.end, ret: 0 });
  return 0;
}

/** 2017: F-RANGE-3 stop tracking the range; false when it was invalidated meanwhile. */
export function hmm_vma_range_done(k: Kernel, range: hmm_range): boolean {
  if (range.end <= range.start) {
    k.printk('emerg', 'kernel BUG at mm/hmm.c: hmm_vma_range_done on an empty range');
    return false;
  }
  const h = range.vma ? (range.vma.vm_mm.hmm as hmm | null) : null;
  if (!h) {
    range.pfns.fill(0);
    return false;
  }
  h.ranges.delete(range);
  return range.valid;
}

/** 2017: F-RANGE-2 fault what the request asks for, restarting after each fault (-EAGAIN). */
export function hmm_vma_fault(k: Kernel, range: hmm_range, block: boolean): number {
  const err = hmm_vma_range_check(k, range, true);
  if (err) return err;
  const w: hmm_vma_walk = {
    range,
    vma: range.vma!,
    pgmap: null,
    last: range.start,
    fault: true,
    block,
    again: -EAGAIN,
  };
  const ret = retry_walk(k, w, range.start, range.end, false, (r) => r === -EAGAIN);
  if (ret) {
    hmm_pfns_clear(range, index_of(k, range, w.last), (range.end - range.start) / k.c.PAGE_SIZE);
    hmm_vma_range_done(k, range);
  }
  k.trace.emit({ name: 'hmm_fault', mm: range.vma!.vm_mm.id, start: range.start, end: range.end, ret });
  return ret;
}

function retry_walk(
  k: Kernel,
  w: hmm_vma_walk,
  start: number,
  end: number,
  modern: boolean,
  again: (r: number) => boolean,
): number {
  let ret = 0;
  for (let tries = 0; ; tries++) {
    ret = walk_page_range(k, w, start, end, modern);
    start = w.last;
    if (!again(ret)) return ret;
    if (tries >= MAX_WALK_RETRIES) {
      k.WARN(`hmm: fault at 0x${w.last.toString(16)} keeps retrying (migration in progress?)`);
      return -EBUSY;
    }
  }
}

/**
 * 2019: start tracking [start, end) of the mirror's mm (F-RANGE-3). -EINVAL when unaligned
 * to 2^page_shift or empty, -EFAULT when the mm is gone.
 */
export function hmm_range_register(
  k: Kernel,
  range: hmm_range,
  mirror: hmm_mirror,
  start: number,
  end: number,
  page_shift: number,
): number {
  range.valid = false;
  range.hmm = null;
  const size = 2 ** page_shift;
  if (start % size || end % size || start >= end) return -EINVAL;
  range.page_shift = page_shift;
  range.start = start;
  range.end = end;
  const h = mirror.hmm;
  if (!h || !h.mm || h.mm.dying) return -EFAULT;
  range.hmm = h;
  range.registered = true;
  h.ranges.add(range);
  range.valid = h.notifiers === 0;
  return 0;
}

export function hmm_range_unregister(range: hmm_range): void {
  range.hmm?.ranges.delete(range);
  range.registered = false;
  range.valid = false;
  range.hmm = null;
}

/** Whether the range is still valid: no invalidation has touched it since registration. */
export function hmm_range_valid(range: hmm_range): boolean {
  return range.valid;
}

/** The simulator cannot sleep: the range is valid now or not at all. */
export function hmm_range_wait_until_valid(range: hmm_range): boolean {
  return range.valid;
}

const DEVICE_VMA = VM_IO | VM_PFNMAP | VM_MIXEDMAP;

/** The per-vma loop shared by the 2019 snapshot and fault. Returns pages done or -errno. */
function hmm_range_walk(k: Kernel, range: hmm_range, fault: boolean, block: boolean): number {
  const h = range.hmm;
  if (!h || !h.mm) return -EFAULT;
  let start = range.start;
  let last = range.start;
  do {
    if (!range.valid) return -EAGAIN;
    const vma = find_vma(h.mm, start);
    if (!vma || vma.vm_start > start || vma.vm_flags & DEVICE_VMA) return -EFAULT;
    if (vma.vm_flags & VM_HUGETLB) {
      if (range.page_shift !== k.c.PMD_SHIFT && range.page_shift !== k.c.PAGE_SHIFT) return -EINVAL;
    } else if (range.page_shift !== k.c.PAGE_SHIFT) return -EINVAL;
    if (!(vma.vm_flags & VM_READ)) {
      hmm_pfns_clear(range, 0, range.pfns.length);
      return -EPERM;
    }
    range.vma = vma;
    const end = Math.min(range.end, vma.vm_end);
    const w: hmm_vma_walk = { range, vma, pgmap: null, last: start, fault, block, again: -EBUSY };
    if (fault) {
      const ret = retry_walk(k, w, start, end, true, (r) => r === -EBUSY && range.valid);
      if (ret) {
        hmm_pfns_clear(range, (w.last - range.start) / 2 ** range.page_shift, range.pfns.length);
        return ret;
      }
    } else {
      const ret = walk_page_range(k, w, start, end, true);
      if (ret === -EBUSY) return ret;
    }
    last = w.last;
    start = end;
  } while (start < range.end);
  return (last - range.start) / k.c.PAGE_SIZE;
}

/** 2019: F-RANGE-1 snapshot; returns the number of valid pages from range.start, or -errno. */
export function hmm_range_snapshot(k: Kernel, range: hmm_range): number {
  const ret = hmm_range_walk(k, range, false, false);
  k.trace.emit({
    name: 'hmm_snapshot',
    mm: range.hmm?.mm?.id ?? -1,
    start: range.start,
    end: range.end,
    ret,
  });
  return ret;
}

/** 2019: F-RANGE-2 fault; returns the number of valid pages from range.start, or -errno. */
export function hmm_range_fault(k: Kernel, range: hmm_range, block: boolean): number {
  const ret = hmm_range_walk(k, range, true, block);
  k.trace.emit({ name: 'hmm_fault', mm: range.hmm?.mm?.id ?? -1, start: range.start, end: range.end, ret });
  return ret;
}
