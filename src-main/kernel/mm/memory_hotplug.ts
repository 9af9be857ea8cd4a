// mm/memory_hotplug.c: adding and removing memory sections at run time.
import type { Kernel } from '../kernel';
import { IS_ALIGNED } from '../include/config';
import { EEXIST, EINVAL, ENOMEM, type ErrPtr } from '../include/errno';
import { IORESOURCE_BUSY, IORESOURCE_SYSTEM_RAM, IORES_DESC_UNADDRESSABLE_MEMORY } from '../include/ioport';
import { ZONE_DEVICE, ZONE_NORMAL } from '../include/mmzone';
import { flags_zone } from '../include/page-flags';
import { release_resource, request_resource_conflict, resource } from '../kernel/resource';
import { resize_zone_range, type zone } from './mmzone';
import { free_pfn_range, memmap_init_zone } from './page_alloc';

export function mem_hotplug_begin(k: Kernel): void {
  k.mem_hotplug_depth++;
  k.trace.emit({ name: 'mem_hotplug_begin' });
}

export function mem_hotplug_done(k: Kernel): void {
  if (k.mem_hotplug_depth === 0) k.WARN('mem_hotplug_done() without mem_hotplug_begin()');
  else k.mem_hotplug_depth--;
  k.trace.emit({ name: 'mem_hotplug_done' });
}

function lockdep_assert_hotplug_held(k: Kernel, fn: string): void {
  if (k.mem_hotplug_depth === 0) k.WARN(`${fn} called without mem_hotplug_lock held`);
}

function check_section_range(k: Kernel, start_pfn: number, nr_pages: number): boolean {
  const pps = k.c.PAGES_PER_SECTION;
  return nr_pages > 0 && IS_ALIGNED(start_pfn, pps) && IS_ALIGNED(nr_pages, pps);
}

/**
 * F-HP-2: create struct pages for a section-aligned pfn range, offline and in no zone.
 * `linear` says whether the range also gets a direct mapping (arch_add_memory) or not
 * (add_pages for un-addressable memory). A failure removes the sections this call added.
 */
export function add_pages(
  k: Kernel,
  nid: number,
  start_pfn: number,
  nr_pages: number,
  linear: boolean,
): number {
  lockdep_assert_hotplug_held(k, 'add_pages');
  if (!check_section_range(k, start_pfn, nr_pages)) return -EINVAL;
  const pps = k.c.PAGES_PER_SECTION;
  const first = start_pfn / pps;
  const last = first + nr_pages / pps;
  for (let nr = first; nr < last; nr++) {
    if (nr >= k.c.NR_MEM_SECTIONS) {
      for (let undo = first; undo < nr; undo++) k.mem.sparse_remove_one_section(undo);
      return -EINVAL;
    }
    const err = k.mem.sparse_add_one_section(nr, k.fault.should_fail('add_pages'));
    if (err) {
      for (let undo = first; undo < nr; undo++) k.mem.sparse_remove_one_section(undo);
      return err;
    }
  }
  void nid;
  k.trace.emit({ name: 'add_pages', start_pfn, nr_pages, linear });
  return 0;
}

/** F-HP-2: put a range of present pages into a zone of the node, growing its span. */
export function move_pfn_range_to_zone(k: Kernel, z: zone, start_pfn: number, nr_pages: number): void {
  lockdep_assert_hotplug_held(k, 'move_pfn_range_to_zone');
  resize_zone_range(z, start_pfn, nr_pages);
  if (z.idx !== ZONE_DEVICE) z.present_pages += nr_pages;
  memmap_init_zone(k, z, start_pfn, nr_pages);
  k.trace.emit({ name: 'move_pfn_range_to_zone', zone: z.name, start_pfn, nr_pages });
}

/**
 * Recompute a zone's span from the sections still linked to it (shrink_zone_span).
 * A section whose first and last pages share a zone is that zone's throughout; only a
 * section split between zones (the first one, DMA/DMA32) is looked at page by page.
 */
function shrink_zone_span(k: Kernel, z: zone): void {
  const pps = k.c.PAGES_PER_SECTION;
  let lo = Infinity;
  let hi = -Infinity;
  const m = k.mem;
  for (const nr of m.present_sections()) {
    const page = m.pfn_to_page(nr * pps);
    const first = flags_zone(m.flags[page]!);
    const last = flags_zone(m.flags[page + pps - 1]!);
    if (first === last) {
      if (first !== z.idx) continue;
      lo = Math.min(lo, nr * pps);
      hi = Math.max(hi, (nr + 1) * pps);
      continue;
    }
    for (let i = 0; i < pps; i++) {
      if (flags_zone(m.flags[page + i]!) !== z.idx) continue;
      lo = Math.min(lo, nr * pps + i);
      hi = Math.max(hi, nr * pps + i + 1);
    }
  }
  z.zone_start_pfn = lo === Infinity ? 0 : lo;
  z.spanned_pages = lo === Infinity ? 0 : hi - lo;
}

/** F-HP-2: remove the struct pages of a section-aligned range and shrink its zone. */
export function __remove_pages(k: Kernel, z: zone | null, start_pfn: number, nr_pages: number): number {
  lockdep_assert_hotplug_held(k, '__remove_pages');
  if (!check_section_range(k, start_pfn, nr_pages)) {
    k.WARN(`__remove_pages: range pfn 0x${start_pfn.toString(16)}+${nr_pages} is not section aligned`);
    return -EINVAL;
  }
  const pps = k.c.PAGES_PER_SECTION;
  for (let nr = start_pfn / pps; nr < (start_pfn + nr_pages) / pps; nr++) k.mem.sparse_remove_one_section(nr);
  if (z) {
    if (z.idx !== ZONE_DEVICE) z.present_pages -= nr_pages;
    shrink_zone_span(k, z);
  }
  k.trace.emit({ name: 'remove_pages', start_pfn, nr_pages });
  return 0;
}

/**
 * Claim a range of iomem for hot-added System RAM. F-HP-1: a range already claimed
 * fails with -EEXIST, with a debug line when the claimant is un-addressable memory.
 */
export function register_memory_resource(k: Kernel, start: number, size: number): ErrPtr<resource> {
  if (k.fault.should_fail('kmalloc')) return -ENOMEM;
  const res = new resource(
    'System RAM',
    start,
    start + size - 1,
    (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0,
  );
  const conflict = request_resource_conflict(k.iomem_resource, res);
  if (conflict) {
    if (conflict.desc === IORES_DESC_UNADDRESSABLE_MEMORY)
      k.pr_debug(`Device un-addressable memory block memory hotplug at ${hex10(start)} !`);
    k.pr_debug(`System RAM resource [mem ${hex10(res.start)}-${hex10(res.end)}] cannot be added`);
    return -EEXIST;
  }
  return res;
}

/**
 * add_memory: hot-add a block of System RAM (offline until online_pages). The block
 * must be section-aligned (check_hotplug_memory_range).
 */
export function add_memory(k: Kernel, nid: number, start: number, size: number): ErrPtr<resource> {
  const sec = k.c.PA_SECTION_SIZE;
  if (size === 0 || !IS_ALIGNED(start, sec) || !IS_ALIGNED(size, sec)) {
    k.printk('err', `Section-unaligned hotplug range: start ${hex10(start)}, size ${hex10(size)}`);
    return -EINVAL;
  }
  const res = register_memory_resource(k, start, size);
  if (typeof res === 'number') return res;
  mem_hotplug_begin(k);
  const ret = add_pages(k, nid, start / k.c.PAGE_SIZE, size / k.c.PAGE_SIZE, true);
  mem_hotplug_done(k);
  if (ret) {
    release_resource(res);
    return ret;
  }
  return res;
}

/** online_pages: move hot-added pages into ZONE_NORMAL and give them to the allocator. */
export function online_pages(k: Kernel, start_pfn: number, nr_pages: number): number {
  const z = k.node.node_zones[ZONE_NORMAL]!;
  for (let pfn = start_pfn; pfn < start_pfn + nr_pages; pfn += k.c.PAGES_PER_SECTION)
    if (!k.mem.pfn_valid(pfn)) return -EINVAL;
  mem_hotplug_begin(k);
  move_pfn_range_to_zone(k, z, start_pfn, nr_pages);
  free_pfn_range(k, start_pfn, nr_pages);
  mem_hotplug_done(k);
  return 0;
}

export function hex10(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}
