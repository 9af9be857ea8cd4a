// mm/migrate.c, the seed-era migrate_vma() (4.14): move the pages of a range of one vma
// between system memory and device memory. The kernel collects the range (migration
// entries replace the PTEs), checks each page is not pinned, unmaps its other mappings,
// lets the driver allocate and copy (MIGRATE_SYNC_NO_COPY: the device's DMA copies),
// moves the struct page state, lets the driver map, and puts the new pages in place.
// src[] and dst[] hold one entry per page: pfn * 2^MIGRATE_PFN_SHIFT + MIGRATE_PFN_* flags.
import type { Kernel } from '../kernel';
import { ALIGN_DOWN } from '../include/config';
import { EINVAL } from '../include/errno';
import {
  anon_vma,
  MM_ANONPAGES,
  VM_HUGETLB,
  VM_SPECIAL,
  VM_WRITE,
  vma_is_anonymous,
  type mm_struct,
  type vm_area_struct,
} from '../include/mm_types';
import {
  get_page,
  is_zone_device_page,
  page_count,
  page_mapcount,
  put_page,
  release_pages,
  trylock_page,
  unlock_page,
} from '../include/mm';
import { MEMORY_DEVICE_PUBLIC } from '../include/memremap';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_referenced,
  PG_swapbacked,
  PG_uptodate,
} from '../include/page-flags';
import {
  _PAGE_RW,
  pfn_pte,
  pmd_huge,
  pte_mkdirty,
  pte_mkold,
  pte_mksoft_dirty,
  pte_mkwrite,
  pte_none,
  pte_pfn,
  pte_present,
  pte_soft_dirty,
  pte_write,
} from '../include/pgtable';
import {
  is_device_private_entry,
  is_swap_pte,
  is_write_device_private_entry,
  make_device_entry,
  pte_swp_mksoft_dirty,
  pte_swp_soft_dirty,
  pte_to_swp_entry,
  swp_entry,
  swp_entry_to_pte,
  swp_offset,
  swp_type,
} from '../include/swapops';
import { is_device_private_page, page_pgmap } from '../kernel/memremap';
import { vma_is_dax } from '../fs/dax';
import type { address_space } from '../fs/file';
import { add_rss, is_zero_pfn, mk_pte, pmd_lookup, vm_normal_page } from './memory';
import { PageTransHuge, split_huge_pmd } from './huge_memory';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from './mmu_notifier';
import { vma_lookup } from './mmap';
import { lookup_pte, pmd_alloc, pte_alloc_map, pte_offset_map } from './pgtable';
import {
  page_add_anon_rmap,
  page_add_file_rmap,
  page_add_new_anon_rmap,
  page_mapped,
  page_mapping,
  page_remove_rmap,
  page_rmapping,
  PageAnon,
  try_to_unmap,
  TTU_MIGRATION,
  vma_address,
} from './rmap';

// include/linux/migrate.h
export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_LOCKED = 1 << 2;
export const MIGRATE_PFN_WRITE = 1 << 3;
export const MIGRATE_PFN_DEVICE = 1 << 4;
export const MIGRATE_PFN_ERROR = 1 << 5;
export const MIGRATE_PFN_SHIFT = 6;
const MIGRATE_PFN_UNIT = 2 ** MIGRATE_PFN_SHIFT;

/** migrate_pfn: a valid entry for pfn (pfn << MIGRATE_PFN_SHIFT | MIGRATE_PFN_VALID). */
export function migrate_pfn(pfn: number): number {
  return pfn * MIGRATE_PFN_UNIT + MIGRATE_PFN_VALID;
}

/** The MIGRATE_PFN_* bits of an entry (entries exceed 2^32: no bitwise ops on the whole). */
export function migrate_pfn_flags(mpfn: number): number {
  // Not `mpfn % MIGRATE_PFN_UNIT` (a slow fmod call on a double): the flag bits are below
  // bit 32 of an integer under 2^53, which ToInt32 keeps exact.
  return mpfn & (MIGRATE_PFN_UNIT - 1);
}

export function migrate_pfn_has(mpfn: number, flag: number): boolean {
  return (migrate_pfn_flags(mpfn) & flag) !== 0;
}

/** The entry with `flag` set. */
export function migrate_pfn_set(mpfn: number, flag: number): number {
  return migrate_pfn_has(mpfn, flag) ? mpfn : mpfn + flag;
}

/** The entry with `flag` cleared. */
export function migrate_pfn_clear(mpfn: number, flag: number): number {
  return migrate_pfn_has(mpfn, flag) ? mpfn - flag : mpfn;
}

/** The pfn of a valid entry. */
export function migrate_pfn_pfn(mpfn: number): number {
  return Math.floor(mpfn / MIGRATE_PFN_UNIT);
}

/** migrate_pfn_to_page: the page of a valid entry, -1 (NULL) otherwise. */
export function migrate_pfn_to_page(k: Kernel, mpfn: number): number {
  if (!migrate_pfn_has(mpfn, MIGRATE_PFN_VALID)) return -1;
  return k.mem.pfn_to_page(migrate_pfn_pfn(mpfn));
}

/** struct migrate_vma_ops: the driver's two steps, called with every page locked and unmapped. */
export interface migrate_vma_ops {
  /** Allocate destination pages for src entries with MIGRATE and copy into them; fill dst. */
  alloc_and_copy(
    vma: vm_area_struct,
    src: Float64Array,
    dst: Float64Array,
    start: number,
    end: number,
    priv: unknown,
  ): void;
  /** After the struct pages moved: map what migrated (src still has MIGRATE) in the device. */
  finalize_and_map(
    vma: vm_area_struct,
    src: Float64Array,
    dst: Float64Array,
    start: number,
    end: number,
    priv: unknown,
  ): void;
}

/**
 * A PTE lookup that walks from the pgd once per page table instead of once per page: each
 * step goes through its range in address order. Reset before a step, since a driver
 * callback in between may have changed the tables.
 */
interface pte_cursor {
  mm: mm_struct | null;
  /** First address the cached table maps. */
  base: number;
  /** Pool index of that table's first entry, -1 when no table is there. */
  table: number;
}

function pte_cursor_reset(cur: pte_cursor): void {
  cur.mm = null;
}

/** The pte entry for addr of mm, or -1 when no pte table covers it (or it is mapped huge). */
function pte_cursor_lookup(k: Kernel, cur: pte_cursor, mm: mm_struct, addr: number): number {
  const { PMD_SIZE, PAGE_SIZE } = k.c;
  if (mm !== cur.mm || addr < cur.base || addr >= cur.base + PMD_SIZE) {
    cur.mm = mm;
    cur.base = ALIGN_DOWN(addr, PMD_SIZE);
    cur.table = lookup_pte(k, mm, cur.base);
  }
  return cur.table < 0 ? -1 : cur.table + (addr - cur.base) / PAGE_SIZE;
}

/** struct migrate_vma: one call's state. */
interface migrate_vma_state {
  vma: vm_area_struct;
  src: Float64Array;
  dst: Float64Array;
  /** The struct page of src[i] and dst[i] (-1: none), each converted from its pfn once. */
  pages: Int32Array;
  newpages: Int32Array;
  start: number;
  end: number;
  npages: number;
  cpages: number;
  /**
   * Some page was unmapped through rmap (try_to_unmap): its migration entries may be in
   * other vmas, so finalize walks rmap. Otherwise each page's one migration entry is the
   * one collect put at its address, and finalize replaces it there directly.
   */
  rmapped: boolean;
  cursor: pte_cursor;
  /** The pages whose references finalize drops (up to two an entry), for release_pages. */
  release: Int32Array;
}

/** What a call needs per page besides src and dst, kept between calls (which may nest). */
interface migrate_vma_scratch {
  pages: Int32Array;
  newpages: Int32Array;
  cursor: pte_cursor;
  release: Int32Array;
}

const migrate_vma_scratches: migrate_vma_scratch[] = [];

/** A call's state, on arrays a finished call left: a call allocates nothing per page. */
function migrate_vma_state_get(
  vma: vm_area_struct,
  src: Float64Array,
  dst: Float64Array,
  start: number,
  end: number,
  npages: number,
): migrate_vma_state {
  let scratch = migrate_vma_scratches.pop();
  if (!scratch || scratch.pages.length < npages)
    scratch = {
      pages: new Int32Array(npages),
      newpages: new Int32Array(npages),
      cursor: { mm: null, base: 0, table: -1 },
      release: new Int32Array(2 * npages),
    };
  const { pages, newpages, cursor, release } = scratch;
  return {
    vma,
    src,
    dst,
    pages,
    newpages,
    start,
    end,
    npages: 0,
    cpages: 0,
    rmapped: false,
    cursor,
    release,
  };
}

function migrate_vma_state_put(m: migrate_vma_state): void {
  pte_cursor_reset(m.cursor);
  migrate_vma_scratches.push({ pages: m.pages, newpages: m.newpages, cursor: m.cursor, release: m.release });
}

function is_device_public_page(k: Kernel, page: number): boolean {
  return is_zone_device_page(k, page) && page_pgmap(k, page)?.type === MEMORY_DEVICE_PUBLIC;
}

/** A base page of the huge zero page: split_huge_pmd leaves them where the kernel maps the zero page. */
function is_huge_zero_subpfn(k: Kernel, pfn: number): boolean {
  return k.huge_zero_pfn >= 0 && pfn >= k.huge_zero_pfn && pfn < k.huge_zero_pfn + k.c.HPAGE_PMD_NR;
}

function migrate_vma_collect_hole(k: Kernel, m: migrate_vma_state, start: number, end: number): void {
  const n = (end - start) / k.c.PAGE_SIZE;
  m.src.fill(MIGRATE_PFN_MIGRATE, m.npages, m.npages + n);
  m.dst.fill(0, m.npages, m.npages + n);
  m.pages.fill(-1, m.npages, m.npages + n);
  m.npages += n;
  m.cpages += n;
}

function migrate_vma_collect_skip(k: Kernel, m: migrate_vma_state, start: number, end: number): void {
  const n = (end - start) / k.c.PAGE_SIZE;
  m.src.fill(0, m.npages, m.npages + n);
  m.dst.fill(0, m.npages, m.npages + n);
  m.pages.fill(-1, m.npages, m.npages + n);
  m.npages += n;
}

/**
 * migrate_vma_collect_pmd: one entry per page of [start, end) under one pmd. Holes and
 * the zero page may be populated (MIGRATE without a page); a normal page or a device
 * entry is pinned and, if its lock is free, replaced by a migration entry at once.
 */
function migrate_vma_collect_pmd(k: Kernel, m: migrate_vma_state, start: number, end: number): void {
  const vma = m.vma;
  const pmd = pmd_lookup(k, vma.vm_mm, start);
  if (pmd < 0 || pte_none(k.pt.entries[pmd]!)) return migrate_vma_collect_hole(k, m, start, end);
  if (pmd_huge(k.pt.entries[pmd]!)) {
    // THP is not migrated whole (the seed's FIXME): split it, then take base pages.
    split_huge_pmd(k, vma, pmd, start);
    if (pmd_huge(k.pt.entries[pmd]!)) return migrate_vma_collect_skip(k, m, start, end);
  }
  const PAGE_SIZE = k.c.PAGE_SIZE;
  const { src, dst, pages } = m;
  const mem = k.mem;
  const e = k.pt.entries;
  const { SWP_MIGRATION_READ, SWP_MIGRATION_WRITE } = k.swp;
  let i = m.npages;
  let cpages = m.cpages;
  let ptep = pte_offset_map(k, pmd, start);
  // Counted by entry, not by address: V8 kept an address that only the loop test read as a
  // boxed number, a heap allocation per page.
  const last = i + (end - start) / PAGE_SIZE;
  for (; i < last; ptep++, i++) {
    const pte = e[ptep]!;
    let mpfn = 0;
    let page = -1;
    let pfn = 0;
    if (pte_none(pte)) {
      mpfn = MIGRATE_PFN_MIGRATE;
      cpages++;
    } else if (!pte_present(pte)) {
      // Only device entries migrate; swap and migration entries (another migration) stay.
      const entry = pte_to_swp_entry(pte);
      if (is_device_private_entry(k, entry)) {
        pfn = swp_offset(entry);
        page = mem.pfn_to_page(pfn);
        mpfn = migrate_pfn(pfn) + MIGRATE_PFN_DEVICE + MIGRATE_PFN_MIGRATE;
        if (is_write_device_private_entry(k, entry)) mpfn += MIGRATE_PFN_WRITE;
      }
    } else {
      pfn = pte_pfn(pte);
      if (is_zero_pfn(k, pfn) || is_huge_zero_subpfn(k, pfn)) {
        mpfn = MIGRATE_PFN_MIGRATE;
        cpages++;
      } else {
        page = vm_normal_page(k, vma, pte);
        mpfn = migrate_pfn(pfn) + MIGRATE_PFN_MIGRATE;
        if (pte_write(pte)) mpfn += MIGRATE_PFN_WRITE;
      }
    }
    if (page >= 0 && (mem.mapping[page] === 0 || PageTransHuge(k, page))) {
      mpfn = 0;
      page = -1;
    }
    if (page >= 0) {
      cpages++;
      if (trylock_page(k, page)) {
        mpfn += MIGRATE_PFN_LOCKED;
        // make_migration_entry(page, write), from the pfn in hand. The write bit comes from
        // the entry (4.14 read pte_write() of a device entry).
        let swp_pte = swp_entry_to_pte(
          swp_entry(migrate_pfn_has(mpfn, MIGRATE_PFN_WRITE) ? SWP_MIGRATION_WRITE : SWP_MIGRATION_READ, pfn),
        );
        if (pte_present(pte) ? pte_soft_dirty(pte) : pte_swp_soft_dirty(pte))
          swp_pte = pte_swp_mksoft_dirty(swp_pte);
        e[ptep] = swp_pte;
        // Like an unmap, the PTE's rmap goes; its reference becomes the migration's pin (the
        // kernel takes a pin and drops the PTE's).
        page_remove_rmap(k, page);
      } else {
        // The pin keeps the page (no other migration takes it) and freezes the PTE.
        get_page(k, page);
      }
    }
    dst[i] = 0;
    src[i] = mpfn;
    pages[i] = page;
  }
  m.npages = i;
  m.cpages = cpages;
}

/** migrate_vma_collect: walk the range inside one invalidation of the secondary MMUs. */
function migrate_vma_collect(k: Kernel, m: migrate_vma_state): void {
  const mm = m.vma.vm_mm;
  const range = mmu_notifier_range_init(mm, m.start, m.end, 'migrate');
  mmu_notifier_invalidate_range_start(k, range);
  const PMD_SIZE = k.c.PMD_SIZE;
  for (let addr = m.start; addr < m.end;) {
    const next = Math.min(m.end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
    migrate_vma_collect_pmd(k, m, addr, next);
    addr = next;
  }
  mmu_notifier_invalidate_range_end(k, range);
  m.end = m.start + m.npages * k.c.PAGE_SIZE;
}

/**
 * migrate_vma_check_page: whether only the mappings and our pin hold the page. A page
 * with more references (pinned by get_user_pages, a driver's get_page) is not migrated.
 */
function migrate_vma_check_page(k: Kernel, page: number): boolean {
  // One reference is ours: the isolation from the LRU for a system page, collect's for a device page.
  let extra = 1;
  if (PageTransHuge(k, page)) return false;
  if (is_zone_device_page(k, page)) {
    // A private page cannot be pinned (no valid PTE, GUP fails on it).
    if (is_device_private_page(k, page)) return true;
    if (!is_device_public_page(k, page)) return false;
    // ZONE_DEVICE pages idle at refcount 1.
    extra++;
  }
  // A file page: the page cache's reference.
  if (page_mapping(k, page)) extra += 1;
  return page_count(k, page) - extra <= page_mapcount(k, page);
}

/** Drop entry i from the migration: no page, nothing to do. */
function migrate_vma_drop(m: migrate_vma_state, i: number): void {
  m.src[i] = 0;
  m.pages[i] = -1;
}

/**
 * migrate_vma_prepare: lock what collect could not, isolate, and drop the pages that are
 * pinned; those whose PTE already became a migration entry get it back.
 */
function migrate_vma_prepare(k: Kernel, m: migrate_vma_state): void {
  const { src, pages, npages, start, cursor: cur } = m;
  let restore = 0;
  for (let i = 0; i < npages && m.cpages; i++) {
    const page = pages[i]!;
    if (page < 0) continue;
    let remap = true;
    if (!migrate_pfn_has(src[i]!, MIGRATE_PFN_LOCKED)) {
      // Best effort: a page whose lock is taken is left alone rather than waited for.
      if (!trylock_page(k, page)) {
        migrate_vma_drop(m, i);
        m.cpages--;
        put_page(k, page);
        continue;
      }
      remap = false;
      src[i] = migrate_pfn_set(src[i]!, MIGRATE_PFN_LOCKED);
    }
    // isolate_lru_page: the lab keeps no LRU lists; collect's reference stands for the isolation's.
    if (!migrate_vma_check_page(k, page)) {
      if (remap) {
        src[i] = migrate_pfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
        m.cpages--;
        restore++;
      } else {
        migrate_vma_drop(m, i);
        unlock_page(k, page);
        m.cpages--;
        put_page(k, page);
      }
    }
  }
  // Inside `if` only: V8 compiles the loop above while it runs (OSR), and code after it that
  // had never run would leave the compiled loop at every call.
  if (restore) {
    pte_cursor_reset(cur);
    for (let i = 0, addr = start; restore; i++, addr += k.c.PAGE_SIZE) {
      const page = pages[i]!;
      if (page < 0 || migrate_pfn_has(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      const pfn = migrate_pfn_pfn(src[i]!);
      const mapped = remove_migration_pte(k, cur, page, pfn, m.vma, addr, pfn);
      migrate_vma_drop(m, i);
      unlock_page(k, page);
      // Collect's pin became the mapping's reference, unless the entry was gone.
      if (!mapped) put_page(k, page);
      restore--;
    }
  }
}

/**
 * migrate_vma_unmap: every other mapping of each page (another process after fork, a
 * PTE collect could not replace) becomes a migration entry through rmap. A page still
 * mapped or pinned afterwards is restored.
 */
function migrate_vma_unmap(k: Kernel, m: migrate_vma_state): void {
  const { src, pages, npages, cursor: cur } = m;
  let restore = 0;
  for (let i = 0; i < npages; i++) {
    const page = pages[i]!;
    // A page no longer mapped passed prepare's check, and nothing has run since.
    if (page < 0 || !migrate_pfn_has(src[i]!, MIGRATE_PFN_MIGRATE) || !page_mapped(k, page)) continue;
    m.rmapped = true;
    if (try_to_unmap(k, page, TTU_MIGRATION) && migrate_vma_check_page(k, page)) continue;
    src[i] = migrate_pfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
    m.cpages--;
    restore++;
  }
  // Inside `if` only, as in prepare.
  if (restore) {
    pte_cursor_reset(cur);
    for (let i = 0; restore; i++) {
      const page = pages[i]!;
      if (page < 0 || migrate_pfn_has(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      remove_migration_ptes(k, cur, page, page);
      migrate_vma_drop(m, i);
      unlock_page(k, page);
      restore--;
      // putback_lru_page for a system page, put_page for a device page: our reference goes.
      put_page(k, page);
    }
  }
}

/**
 * migrate_vma_insert_page: a hole (or the zero page) of an anonymous vma gets the new
 * page directly: a device entry for device private memory, a PTE otherwise. Returns the
 * new src entry (MIGRATE on success).
 */
function migrate_vma_insert_page(
  k: Kernel,
  m: migrate_vma_state,
  addr: number,
  page: number,
  src: number,
): number {
  const vma = m.vma;
  const mm = vma.vm_mm;
  const abort = migrate_pfn_clear(src, MIGRATE_PFN_MIGRATE);
  // Only anonymous memory is populated this way.
  if (!vma_is_anonymous(vma)) return abort;
  let ptep = pte_cursor_lookup(k, m.cursor, mm, addr);
  if (ptep < 0) {
    const pmd = pmd_alloc(k, mm, addr);
    if (pmd < 0 || pmd_huge(k.pt.entries[pmd]!)) return abort;
    ptep = pte_alloc_map(k, mm, pmd, addr);
    if (ptep < 0) return abort;
    // The table is there now: the next lookup walks to it.
    pte_cursor_reset(m.cursor);
  }
  k.mem.flags[page] = (k.mem.flags[page]! | PG_uptodate) >>> 0;
  const write = (vma.vm_flags & VM_WRITE) !== 0;
  let entry: number;
  if (is_device_private_page(k, page)) entry = swp_entry_to_pte(make_device_entry(k, page, write));
  else {
    // System and public device pages get a PTE (the lab maps public pages as normal
    // pages so vm_normal_page() counts their references).
    entry = mk_pte(k, page, vma);
    if (is_zone_device_page(k, page)) entry = pte_mkold(entry);
    if (write) entry = pte_mkwrite(pte_mkdirty(entry));
  }
  const e = k.pt.entries;
  const cur = e[ptep]!;
  // Someone faulted the hole in meanwhile: only the zero page may be replaced.
  if (
    pte_present(cur) ? !is_zero_pfn(k, pte_pfn(cur)) && !is_huge_zero_subpfn(k, pte_pfn(cur)) : !pte_none(cur)
  )
    return abort;
  add_rss(k, mm, MM_ANONPAGES, 1);
  page_add_new_anon_rmap(k, page, vma, addr);
  get_page(k, page);
  e[ptep] = entry;
  return MIGRATE_PFN_MIGRATE;
}

/**
 * migrate_page_move_mapping for an anonymous page (the lab migrates no page cache):
 * refused unless only the mappings' migration entries and our pin hold the page.
 */
function migrate_page_move_mapping(
  k: Kernel,
  mapping: address_space | null,
  newpage: number,
  page: number,
): boolean {
  if (mapping) return false;
  let expected_count = 1;
  // ZONE_DEVICE pages idle at 1.
  if (is_zone_device_page(k, page)) expected_count++;
  if (page_count(k, page) !== expected_count) return false;
  const m = k.mem;
  m.index[newpage] = m.index[page]!;
  m.mapping[newpage] = m.mapping[page]!;
  m.flags[newpage] = (m.flags[newpage]! | (m.flags[page]! & (PG_anon | PG_swapbacked))) >>> 0;
  return true;
}

/** migrate_page_states: the page flags that travel (the contents were the driver's to copy). */
function migrate_page_states(k: Kernel, newpage: number, page: number): void {
  const moved = PG_uptodate | PG_dirty | PG_referenced | PG_active;
  k.mem.flags[newpage] = (k.mem.flags[newpage]! | (k.mem.flags[page]! & moved)) >>> 0;
}

/** migrate_vma_pages: move each struct page's state to its new page; holes get theirs. */
function migrate_vma_pages(k: Kernel, m: migrate_vma_state): void {
  const { src, dst, pages, newpages, npages, start } = m;
  const mm = m.vma.vm_mm;
  const PAGE_SIZE = k.c.PAGE_SIZE;
  let range = null;
  pte_cursor_reset(m.cursor);
  for (let i = 0; i < npages; i++) {
    const newpage = migrate_pfn_to_page(k, dst[i]!);
    const page = pages[i]!;
    newpages[i] = newpage;
    if (newpage < 0) {
      src[i] = migrate_pfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
      continue;
    }
    if (!migrate_pfn_has(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
    if (page < 0) {
      const addr = start + i * PAGE_SIZE;
      if (!range) {
        range = mmu_notifier_range_init(mm, addr, m.end, 'migrate');
        mmu_notifier_invalidate_range_start(k, range);
      }
      src[i] = migrate_vma_insert_page(k, m, addr, newpage, src[i]!);
      continue;
    }
    const mapping = page_mapping(k, page);
    if (is_zone_device_page(k, newpage)) {
      // Un-addressable memory takes only private anonymous pages; other ZONE_DEVICE kinds none.
      const ok = is_device_private_page(k, newpage) ? !mapping : is_device_public_page(k, newpage);
      if (!ok) {
        src[i] = migrate_pfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
        continue;
      }
    }
    // migrate_page(..., MIGRATE_SYNC_NO_COPY)
    if (migrate_page_move_mapping(k, mapping, newpage, page)) migrate_page_states(k, newpage, page);
    else src[i] = migrate_pfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
  }
  if (range) mmu_notifier_invalidate_range_end(k, range);
}

/**
 * remove_migration_pte: the migration entry for pfn `old` at addr in vma maps `page` (pfn
 * `pfn`) instead: a device entry for a device private page (write if the entry was write and
 * the vma still allows it), else a PTE. The mapping's reference is the caller's own on
 * `page`, handed over: returns whether it was (false: no such entry there any more).
 */
function remove_migration_pte(
  k: Kernel,
  cur: pte_cursor,
  page: number,
  pfn: number,
  vma: vm_area_struct,
  addr: number,
  old: number,
): boolean {
  const ptep = pte_cursor_lookup(k, cur, vma.vm_mm, addr);
  if (ptep < 0) return false;
  const orig = k.pt.entries[ptep]!;
  if (!is_swap_pte(orig)) return false;
  const entry = pte_to_swp_entry(orig);
  // is_migration_entry, is_write_migration_entry: the type read once. And
  // migration_entry_to_page(entry) === old, compared as pfns: no memmap section lookup.
  const type = swp_type(entry);
  const swp = k.swp;
  if ((type !== swp.SWP_MIGRATION_READ && type !== swp.SWP_MIGRATION_WRITE) || swp_offset(entry) !== old)
    return false;
  // The vma may have lost write since the migration started.
  const write = type === swp.SWP_MIGRATION_WRITE && (vma.vm_flags & VM_WRITE) !== 0;
  // Read with the zone below, before the PTE store (after it, V8 would read the flags again).
  const anon = PageAnon(k, page);
  let pte: number;
  // A device entry keeps no soft-dirty bit here (as the seed-era kernel).
  if (is_device_private_page(k, page))
    pte = swp_entry_to_pte(
      swp_entry(write || (vma.vm_page_prot & _PAGE_RW) !== 0 ? swp.SWP_DEVICE_WRITE : swp.SWP_DEVICE, pfn),
    );
  else {
    pte = pte_mkold(pfn_pte(pfn, vma.vm_page_prot));
    if (pte_swp_soft_dirty(orig)) pte = pte_mksoft_dirty(pte);
    if (write) pte = pte_mkwrite(pte);
  }
  k.pt.entries[ptep] = pte;
  if (anon) page_add_anon_rmap(k, page);
  else page_add_file_rmap(k, page);
  return true;
}

/**
 * remove_migration_ptes: through the new page's rmap (it has the old one's mapping and
 * index by now), every migration entry for `old` maps `page`, in every process. Each
 * mapping takes a reference of its own; the caller keeps its.
 */
function remove_migration_ptes(k: Kernel, cur: pte_cursor, old: number, page: number): void {
  const owner = page_rmapping(k, page);
  if (!owner) return;
  const vmas = owner instanceof anon_vma ? owner.vmas : owner.i_mmap;
  const pfn = k.mem.page_to_pfn(page);
  const old_pfn = k.mem.page_to_pfn(old);
  for (const vma of vmas) {
    const addr = vma_address(k, page, vma);
    if (addr >= 0 && remove_migration_pte(k, cur, page, pfn, vma, addr, old_pfn)) get_page(k, page);
  }
}

/**
 * migrate_vma_finalize: migration entries map the new page where migration succeeded,
 * the old one where it failed; unlock both and drop the migration's references, so an
 * old device page returns to its driver (refcount 1) and an old system page is freed.
 * Where the vma is intact each entry is replaced in place, and the migration's reference
 * on the page now mapped becomes the mapping's (the kernel takes one and drops the other).
 * The references go at the end, in order, so that the freed system pages reach the buddy
 * allocator as one list (the kernel's putback_lru_page frees them through per-cpu lists).
 */
function migrate_vma_finalize(k: Kernel, m: migrate_vma_state): number {
  const { src, dst, pages, newpages, npages, start, release, vma } = m;
  const PAGE_SIZE = k.c.PAGE_SIZE;
  const cur = m.cursor;
  pte_cursor_reset(cur);
  // A driver callback may have split or unmapped the vma (the simulator holds no
  // mmap_sem): then only rmap knows where the entries are.
  const direct = !m.rmapped && vma_lookup(vma.vm_mm, start) === vma && vma.vm_end >= m.end;
  let migrated = 0;
  let n = 0;
  let cpages = m.cpages;
  // The address from the index: as a second loop variable, V8 would box it at every page.
  for (let i = 0; i < npages; i++) {
    let newpage = newpages[i]!;
    const page = pages[i]!;
    const moved = migrate_pfn_has(src[i]!, MIGRATE_PFN_MIGRATE) && newpage >= 0;
    if (moved) migrated++;
    if (page < 0 || !moved) {
      if (newpage >= 0) {
        unlock_page(k, newpage);
        release[n++] = newpage;
      }
      if (page < 0) continue;
      newpage = page;
    }
    const pfn = migrate_pfn_pfn(src[i]!);
    const addr = start + i * PAGE_SIZE;
    let handed = false;
    if (direct)
      handed = remove_migration_pte(k, cur, newpage, moved ? migrate_pfn_pfn(dst[i]!) : pfn, vma, addr, pfn);
    else remove_migration_ptes(k, cur, page, newpage);
    unlock_page(k, page);
    cpages--;
    if (newpage !== page) {
      release[n++] = page;
      unlock_page(k, newpage);
    }
    if (!handed) release[n++] = newpage;
  }
  m.cpages = cpages;
  release_pages(k, release, n);
  return migrated;
}

/**
 * migrate_vma: migrate [start, end) of vma with the driver's ops. src and dst need an
 * entry per page. Returns 0 (what migrated is in src/dst: MIGRATE still set and a valid
 * dst), or -EINVAL for a bad range, a hugetlb, special or DAX vma.
 */
export function migrate_vma(
  k: Kernel,
  ops: migrate_vma_ops | null,
  vma: vm_area_struct | null,
  start: number,
  end: number,
  src: Float64Array | null,
  dst: Float64Array | null,
  priv: unknown,
): number {
  const PAGE_SIZE = k.c.PAGE_SIZE;
  start = ALIGN_DOWN(start, PAGE_SIZE);
  end = ALIGN_DOWN(end, PAGE_SIZE);
  if (!vma || vma.vm_flags & VM_HUGETLB || vma.vm_flags & VM_SPECIAL || vma_is_dax(vma)) return -EINVAL;
  if (start < vma.vm_start || start >= vma.vm_end) return -EINVAL;
  if (end <= vma.vm_start || end > vma.vm_end) return -EINVAL;
  if (!ops || !src || !dst || start >= end) return -EINVAL;
  const npages = (end - start) / PAGE_SIZE;
  if (src.length < npages || dst.length < npages) return -EINVAL;
  // Collect writes every src and dst entry of the range.
  const m = migrate_vma_state_get(vma, src, dst, start, end, npages);

  migrate_vma_collect(k, m);
  const collected = m.cpages;
  let migrated = 0;
  if (m.cpages) migrate_vma_prepare(k, m);
  if (m.cpages) migrate_vma_unmap(k, m);
  if (m.cpages) {
    // Pages are locked and unmapped: their contents are stable for the driver to copy.
    ops.alloc_and_copy(vma, src, dst, start, end, priv);
    migrate_vma_pages(k, m);
    ops.finalize_and_map(vma, src, dst, start, end, priv);
    migrated = migrate_vma_finalize(k, m);
  }
  migrate_vma_state_put(m);
  if (k.trace.on('migrate_vma'))
    k.trace.emit({ name: 'migrate_vma', mm: vma.vm_mm.id, start, end, collected, migrated });
  return 0;
}
