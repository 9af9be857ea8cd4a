// struct zone and struct pglist_data (include/linux/mmzone.h).
import { MAX_NR_ZONES, MAX_ORDER, ZONE_NAMES } from '../include/mmzone';

export class free_area {
  /** First page of the free list (-1: empty); the list links through page->lru. */
  head = -1;
  nr_free = 0;
}

export class zone {
  zone_start_pfn = 0;
  spanned_pages = 0;
  present_pages = 0;
  managed_pages = 0;
  /** Free pages in the buddy allocator, all orders. */
  nr_free_pages = 0;
  readonly free_area: free_area[] = Array.from({ length: MAX_ORDER }, () => new free_area());

  constructor(
    readonly idx: number,
    readonly name: (typeof ZONE_NAMES)[number],
  ) {}

  zone_end_pfn(): number {
    return this.zone_start_pfn + this.spanned_pages;
  }

  zone_is_empty(): boolean {
    return this.spanned_pages === 0;
  }
}

export class pglist_data {
  readonly node_zones: zone[];

  constructor(readonly node_id: number) {
    this.node_zones = Array.from({ length: MAX_NR_ZONES }, (_, i) => new zone(i, ZONE_NAMES[i]!));
  }
}

/** Grow a zone's span to cover [start_pfn, start_pfn + nr_pages). */
export function resize_zone_range(z: zone, start_pfn: number, nr_pages: number): void {
  const end = start_pfn + nr_pages;
  if (z.zone_is_empty() || start_pfn < z.zone_start_pfn) {
    const oldEnd = z.zone_is_empty() ? end : z.zone_end_pfn();
    z.zone_start_pfn = start_pfn;
    z.spanned_pages = Math.max(oldEnd, end) - start_pfn;
  } else {
    z.spanned_pages = Math.max(z.zone_end_pfn(), end) - z.zone_start_pfn;
  }
}
