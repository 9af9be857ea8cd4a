// mm/page_alloc.c: the buddy allocator. Free blocks of 2^order pages sit on per-zone,
// per-order lists linked through page->lru; the head page carries PG_buddy and its
// order in page_private. Freeing merges a block with its buddy while the buddy is free.
import type { Kernel } from '../kernel';
import { MAX_ORDER, ZONE_DMA, ZONE_DMA32, ZONE_NORMAL } from '../include/mmzone';
import { flags_zone, PG_buddy, PG_reserved, zone_flags } from '../include/page-flags';
import { page_zonenum } from '../include/mm';
import type { zone } from './mmzone';

export const __GFP_DMA = 0x1;
export const __GFP_DMA32 = 0x4;
export const __GFP_MOVABLE = 0x8;
export const __GFP_ZERO = 0x100;
export const GFP_KERNEL = 0;
export const GFP_HIGHUSER = 0;
export const GFP_HIGHUSER_MOVABLE = __GFP_MOVABLE;

/** The highest zone an allocation may use; lower zones are its fallbacks. */
function gfp_zone(gfp: number): number {
  if (gfp & __GFP_DMA) return ZONE_DMA;
  if (gfp & __GFP_DMA32) return ZONE_DMA32;
  return ZONE_NORMAL;
}

function list_add(k: Kernel, z: zone, page: number, order: number): void {
  const m = k.mem;
  const area = z.free_area[order]!;
  m.lruPrev[page] = -1;
  m.lruNext[page] = area.head;
  if (area.head >= 0) m.lruPrev[area.head] = page;
  area.head = page;
  area.nr_free++;
  m.flags[page] = (m.flags[page]! | PG_buddy) >>> 0;
  m.priv[page] = order;
}

function list_del(k: Kernel, z: zone, page: number, order: number): void {
  const m = k.mem;
  const area = z.free_area[order]!;
  const next = m.lruNext[page]!;
  const prev = m.lruPrev[page]!;
  if (prev >= 0) m.lruNext[prev] = next;
  else area.head = next;
  if (next >= 0) m.lruPrev[next] = prev;
  m.lruNext[page] = -1;
  m.lruPrev[page] = -1;
  area.nr_free--;
  m.flags[page] = (m.flags[page]! & ~PG_buddy) >>> 0;
  m.priv[page] = 0;
}

/** Free a block of 2^order pages starting at `page`, merging buddies. */
export function __free_pages(k: Kernel, page: number, order: number): void {
  const m = k.mem;
  const { flags, priv } = m;
  const z = k.node.node_zones[page_zonenum(k, page)]!;
  const pps = k.c.PAGES_PER_SECTION;
  // Orders are small: `1 << order` (`2 ** order` compiles to a slow pow call).
  z.nr_free_pages += 1 << order;
  while (order < MAX_ORDER - 1) {
    const size = 1 << order;
    let buddy: number;
    if (2 * size <= pps) {
      // The pair lies in one section, so in one memmap slot whose start is as aligned as
      // the section's: the buddy is found from the page index as from the pfn. Indices
      // stay below MAX_MEMMAP_PAGES (2^27), so the xor is exact.
      buddy = page ^ size;
    } else {
      // A pair across sections needs the buddy's section present and next in the memmap.
      const pfn = m.page_to_pfn(page);
      const buddyPfn = Math.floor(pfn / (2 * size)) * (2 * size) === pfn ? pfn + size : pfn - size;
      buddy = page + (buddyPfn - pfn);
      if (m.pfn_to_page(buddyPfn) !== buddy) break;
    }
    const bflags = flags[buddy]!;
    if (!(bflags & PG_buddy) || priv[buddy] !== order || flags_zone(bflags) !== z.idx) break;
    list_del(k, z, buddy, order);
    if (buddy < page) page = buddy;
    order++;
  }
  list_add(k, z, page, order);
}

/**
 * free_unref_page_list: free the order-0 pages pages[0..n), each with no reference left,
 * as n calls of __free_pages(page, 0) in that order would. Consecutive pages that make up
 * an aligned block (within one section and zone) go as that block: freed one by one they
 * would merge into it, every list update on the way undone by the next.
 */
export function free_unref_page_list(k: Kernel, pages: Int32Array, n: number): void {
  const flags = k.mem.flags;
  const pps = k.c.PAGES_PER_SECTION;
  for (let i = 0; i < n;) {
    const page = pages[i]!;
    const zone = flags_zone(flags[page]!);
    let order = 0;
    grow: while (order < MAX_ORDER - 1) {
      const size = 2 << order;
      if (page & (size - 1) || size > pps || i + size > n) break;
      // Page indices in one section are as aligned as its pfns (see __free_pages).
      for (let j = size >> 1; j < size; j++)
        if (pages[i + j] !== page + j || flags_zone(flags[page + j]!) !== zone) break grow;
      order++;
    }
    __free_pages(k, page, order);
    i += 1 << order;
  }
}

/** Take a block of 2^order pages from `z`, splitting a larger one if needed; -1 if none. */
function rmqueue(k: Kernel, z: zone, order: number): number {
  for (let cur = order; cur < MAX_ORDER; cur++) {
    const page = z.free_area[cur]!.head;
    if (page < 0) continue;
    list_del(k, z, page, cur);
    // Give back the upper halves we do not need.
    for (let o = cur; o > order; o--) list_add(k, z, page + (1 << (o - 1)), o - 1);
    z.nr_free_pages -= 1 << order;
    return page;
  }
  return -1;
}

/** prep_new_page: a page leaving the buddy allocator, referenced once. */
function prep_new_page(k: Kernel, page: number): void {
  const m = k.mem;
  m.refcount[page] = 1;
  m.mapcount[page] = 0;
  m.mapping[page] = 0;
  m.flags[page] = (m.flags[page]! & ~PG_reserved) >>> 0;
}

/** alloc_pages: a block of 2^order pages with refcount 1, or -1 (NULL). */
export function alloc_pages(k: Kernel, gfp: number, order: number): number {
  if (k.fault.should_fail('alloc_pages')) return -1;
  for (let zi = gfp_zone(gfp); zi >= 0; zi--) {
    const z = k.node.node_zones[zi]!;
    // A zone without that many free pages is passed over (an empty one, e.g. Normal on a
    // small machine, is not on the kernel's zonelist at all) without scanning its lists.
    if (z.nr_free_pages < 1 << order) continue;
    const page = rmqueue(k, z, order);
    if (page < 0) continue;
    prep_new_page(k, page);
    return page;
  }
  return -1;
}

/**
 * alloc_pages_bulk (a later kernel's batch allocator): pages[0..n) get what n calls of
 * alloc_page(gfp) would return, in order, -1 where one would fail. A free block that the
 * calls would split page by page (each taking the lowest page, the upper halves going to the
 * lists' heads and being taken next) is taken whole and handed out in address order, so
 * the free lists end as the single calls leave them without each page's list updates.
 */
export function alloc_pages_bulk(k: Kernel, gfp: number, n: number, pages: Int32Array): void {
  // Pages [next, end) of the block at base taken from zone z are not handed out yet.
  let base = 0;
  let next = 0;
  let end = 0;
  let z: zone | null = null;
  for (let i = 0; i < n; i++) {
    if (k.fault.should_fail('alloc_pages')) {
      pages[i] = -1;
      continue;
    }
    if (next === end) {
      // The first zone alloc_pages would take a page from: any with a free page.
      z = null;
      for (let zi = gfp_zone(gfp); zi >= 0 && !z; zi--)
        if (k.node.node_zones[zi]!.nr_free_pages > 0) z = k.node.node_zones[zi]!;
      let order = 0;
      while (z && order < MAX_ORDER && z.free_area[order]!.head < 0) order++;
      if (!z || order === MAX_ORDER) {
        pages[i] = -1;
        continue;
      }
      if (1 << order <= n - i) {
        base = next = z.free_area[order]!.head;
        list_del(k, z, base, order);
        z.nr_free_pages -= 1 << order;
        end = next + (1 << order);
      } else {
        base = next = rmqueue(k, z, 0);
        end = next + 1;
      }
    }
    prep_new_page(k, next);
    pages[i] = next++;
  }
  // Failures left part of the last block: back as the single calls would have left it,
  // its aligned pieces on the lists' heads.
  for (let order = 0; next < end; order++) {
    if ((next - base) & (1 << order)) {
      list_add(k, z!, next, order);
      z!.nr_free_pages += 1 << order;
      next += 1 << order;
    }
  }
}

export function alloc_page(k: Kernel, gfp: number): number {
  return alloc_pages(k, gfp, 0);
}

/**
 * Hand a pfn range of a zone to the buddy allocator in the largest aligned blocks,
 * as memblock_free_all() does at boot and online_pages() at hotplug.
 */
export function free_pfn_range(k: Kernel, start_pfn: number, nr_pages: number): void {
  const m = k.mem;
  const end = start_pfn + nr_pages;
  m.for_each_run(start_pfn, nr_pages, (page, n) => {
    m.flags.fill(zone_flags(page_zonenum(k, page)), page, page + n);
    m.refcount.fill(0, page, page + n);
  });
  let pfn = start_pfn;
  while (pfn < end) {
    let order = MAX_ORDER - 1;
    while (order > 0 && (pfn % 2 ** order !== 0 || pfn + 2 ** order > end)) order--;
    const page = m.pfn_to_page(pfn);
    const n = 2 ** order;
    k.node.node_zones[page_zonenum(k, page)]!.managed_pages += n;
    __free_pages(k, page, order);
    pfn += n;
  }
}

/**
 * memmap_init_zone: link every page of a freshly added range (zeroed memmap) to the
 * zone, reserved, refcount 1.
 */
export function memmap_init_zone(k: Kernel, z: zone, start_pfn: number, nr_pages: number): void {
  const m = k.mem;
  const flags = (PG_reserved | zone_flags(z.idx)) >>> 0;
  m.for_each_run(start_pfn, nr_pages, (page, n) => {
    m.flags.fill(flags, page, page + n);
    m.refcount.fill(1, page, page + n);
  });
}
