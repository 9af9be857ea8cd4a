// include/linux/page-flags.h: page->flags bits. The zone number is packed into the
// same word (bits ZONES_PGSHIFT..), as the kernel does with its page links.

export const PG_locked = 1 << 0;
export const PG_referenced = 1 << 1;
export const PG_uptodate = 1 << 2;
export const PG_dirty = 1 << 3;
export const PG_lru = 1 << 4;
export const PG_active = 1 << 5;
export const PG_reserved = 1 << 7;
export const PG_private = 1 << 8;
export const PG_writeback = 1 << 9;
export const PG_head = 1 << 10;
export const PG_swapbacked = 1 << 11;
/** PageBuddy: the first page of a free block in the buddy allocator. */
export const PG_buddy = 1 << 12;
export const PG_anon = 1 << 13;

export const ZONES_PGSHIFT = 24;
export const ZONES_MASK = 0x7;
/**
 * page_zonenum() of a page whose section is present but in no zone yet. The flags word
 * stores zone + 1, so a fresh (zeroed) memmap needs no initialisation.
 */
export const ZONE_NONE = -1;

export function zone_flags(zone: number): number {
  return ((zone + 1) << ZONES_PGSHIFT) >>> 0;
}

export function flags_zone(flags: number): number {
  return ((flags >>> ZONES_PGSHIFT) & ZONES_MASK) - 1;
}
