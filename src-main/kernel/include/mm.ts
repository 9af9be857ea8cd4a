// include/linux/mm.h: struct page accessors and page references. A page is its index
// in the memmap arrays (see mm/sparse.ts).
import type { Kernel } from '../kernel';
import { MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC } from './memremap';
import { ZONE_DEVICE } from './mmzone';
import { flags_zone, PG_anon, PG_dirty, PG_head, PG_locked, PG_swapbacked, PG_uptodate } from './page-flags';
import { percpu_ref_get, percpu_ref_put } from '../lib/percpu-refcount';
import { __free_pages, free_unref_page_list } from '../mm/page_alloc';

export function page_zonenum(k: Kernel, page: number): number {
  return flags_zone(k.mem.flags[page]!);
}

export function is_zone_device_page(k: Kernel, page: number): boolean {
  return page_zonenum(k, page) === ZONE_DEVICE;
}

export function page_count(k: Kernel, page: number): number {
  return k.mem.refcount[page]!;
}

export function page_mapcount(k: Kernel, page: number): number {
  return k.mem.mapcount[page]!;
}

export function PageLocked(k: Kernel, page: number): boolean {
  return (k.mem.flags[page]! & PG_locked) !== 0;
}

export function lock_page(k: Kernel, page: number): void {
  if (PageLocked(k, page)) page_lock_warn(k, 'lock_page', page, 'already locked');
  k.mem.flags[page] = (k.mem.flags[page]! | PG_locked) >>> 0;
}

/** trylock_page: take the page lock unless someone holds it. */
export function trylock_page(k: Kernel, page: number): boolean {
  if (PageLocked(k, page)) return false;
  k.mem.flags[page] = (k.mem.flags[page]! | PG_locked) >>> 0;
  return true;
}

export function unlock_page(k: Kernel, page: number): void {
  if (!PageLocked(k, page)) page_lock_warn(k, 'unlock_page', page, 'not locked');
  k.mem.flags[page] = (k.mem.flags[page]! & ~PG_locked) >>> 0;
}

/** Out of line: lock_page and unlock_page stay small enough to inline into hot loops. */
function page_lock_warn(k: Kernel, fn: string, page: number, why: string): void {
  k.WARN(`${fn}: page ${page_to_pfn_hex(k, page)} ${why}`);
}

function page_to_pfn_hex(k: Kernel, page: number): string {
  return `pfn:0x${k.mem.page_to_pfn(page).toString(16)}`;
}

/**
 * get_page. A ZONE_DEVICE page idles at refcount 1; leaving idle pins its dev_pagemap,
 * so a dying map waits for every page in use to come back.
 */
export function get_page(k: Kernel, page: number): void {
  const count = ++k.mem.refcount[page]!;
  if (count === 2 && is_zone_device_page(k, page)) {
    const pgmap = k.pgmaps[k.mem.pgmap[page]!];
    if (!pgmap) return;
    pgmap.nr_busy++;
    if (pgmap.ref) percpu_ref_get(pgmap.ref);
  }
}

/**
 * put_page. F-DEVMEM-5: a device private/public page whose count drops to 1 is free
 * again: page->mapping is cleared and the pagemap's page_free callback runs.
 */
export function put_page(k: Kernel, page: number): void {
  const count = --k.mem.refcount[page]!;
  // Most puts leave the page in use; the rest go out of line so this inlines into hot loops.
  if (count > 1 || (count === 1 && !is_zone_device_page(k, page))) return;
  __put_page(k, page, count);
}

/** The last reference of a page went, or a device page went idle (1). */
function __put_page(k: Kernel, page: number, count: number): void {
  if (count < 0) {
    k.mem.refcount[page] = 0;
    k.WARN(`put_page: ${page_to_pfn_hex(k, page)} refcount underflow`);
    return;
  }
  if (count === 1 && is_zone_device_page(k, page)) {
    const pgmap = k.pgmaps[k.mem.pgmap[page]!];
    if (!pgmap) return;
    pgmap.nr_busy--;
    if (pgmap.type === MEMORY_DEVICE_PRIVATE || pgmap.type === MEMORY_DEVICE_PUBLIC) {
      // page->mapping = NULL also drops PAGE_MAPPING_ANON: the free page is no longer PageAnon.
      k.mem.mapping[page] = 0;
      k.mem.flags[page] = (k.mem.flags[page]! & ~PG_anon) >>> 0;
      pgmap.page_free?.(page, pgmap.data);
    }
    if (pgmap.ref) percpu_ref_put(pgmap.ref);
  } else if (count === 0 && !is_zone_device_page(k, page)) {
    // A compound page goes back whole; its order is in the head's page_private.
    const order = k.mem.flags[page]! & PG_head ? k.mem.priv[page]! : 0;
    free_pages_prepare(k, page);
    __free_pages(k, page, order);
  }
}

/** free_pages_prepare: a system page losing its last reference forgets its use. */
function free_pages_prepare(k: Kernel, page: number): void {
  const flags = k.mem.flags[page]!;
  k.mem.flags[page] = (flags & ~(PG_head | PG_anon | PG_swapbacked | PG_dirty | PG_uptodate)) >>> 0;
  k.mem.mapping[page] = 0;
}

/**
 * release_pages: put_page on pages[0..n) in order, except that the order-0 system pages
 * whose last reference goes reach the buddy allocator together at the end
 * (free_unref_page_list), as the kernel's per-cpu lists batch them. Reuses `pages`.
 */
export function release_pages(k: Kernel, pages: Int32Array, n: number): void {
  let nfree = 0;
  for (let i = 0; i < n; i++) {
    const page = pages[i]!;
    if (k.mem.refcount[page] === 1 && !is_zone_device_page(k, page) && !(k.mem.flags[page]! & PG_head)) {
      k.mem.refcount[page] = 0;
      free_pages_prepare(k, page);
      // nfree <= i: the list of pages to free overwrites entries already put.
      pages[nfree++] = page;
    } else put_page(k, page);
  }
  free_unref_page_list(k, pages, nfree);
}
