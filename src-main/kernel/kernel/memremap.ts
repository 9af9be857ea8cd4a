// kernel/memremap.c: ZONE_DEVICE mappings. devm_memremap_pages() gives a device's
// physical range struct pages and a dev_pagemap, indexed per section for lookup by
// physical address; get_dev_pagemap() pins a mapping while its pages are in use.
import type { Kernel } from '../kernel';
import type { device } from '../drivers/base/core';
import { dev_name, dev_to_node } from '../drivers/base/core';
import { devres_add_action } from '../drivers/base/devres';
import { ALIGN, ALIGN_DOWN } from '../include/config';
import { EBUSY, EINVAL, ENXIO, type ErrPtr } from '../include/errno';
import { IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE, REGION_INTERSECTS, REGION_MIXED } from '../include/ioport';
import { MEMORY_DEVICE_PRIVATE, MEMORY_TYPE_NAMES, type MemoryType } from '../include/memremap';
import { page_zonenum } from '../include/mm';
import { ZONE_DEVICE } from '../include/mmzone';
import {
  percpu_ref,
  percpu_ref_get,
  percpu_ref_kill,
  percpu_ref_put,
  percpu_ref_tryget_live,
} from '../lib/percpu-refcount';
import {
  add_pages,
  __remove_pages,
  mem_hotplug_begin,
  mem_hotplug_done,
  move_pfn_range_to_zone,
} from '../mm/memory_hotplug';
import { Completion, complete } from './sched/completion';
import { region_intersects } from './resource';

/** Called when the CPU touches an un-addressable page (F-DEV-2); returns VM_FAULT_* bits. */
export type dev_page_fault_t = (
  vma: unknown,
  addr: number,
  page: number,
  flags: number,
  pmdp: unknown,
) => number;
/** Called when a device page's refcount drops back to 1 (F-DEVMEM-5). */
export type dev_page_free_t = (page: number, data: unknown) => void;

export interface dev_pagemap {
  /** Index in Kernel.pgmaps, stored in page->pgmap. */
  id: number;
  type: MemoryType;
  /** The physical range covered by `ref` (a copy: the resource may go first). */
  res: { start: number; end: number };
  ref: percpu_ref | null;
  dev: device;
  data: unknown;
  page_fault: dev_page_fault_t | null;
  page_free: dev_page_free_t | null;
  /** The owner's kill of `ref`; when absent the release warns if the ref is still live. */
  kill: ((ref: percpu_ref) => void) | null;
  /** Whether the range got a linear (direct) mapping: not for un-addressable memory. */
  linear: boolean;
  /** Completes when the mapping is torn down. */
  released: Completion;
  /**
   * Pages of the mapping in use (refcount above the idle 1): get_page and put_page count the
   * 1 <-> 2 steps, so a busy device is not rescanned page by page each time it is asked.
   */
  nr_busy: number;
}

export function new_dev_pagemap(
  dev: device,
  type: MemoryType,
  res: { start: number; end: number },
  ref: percpu_ref | null,
): dev_pagemap {
  return {
    id: 0,
    type,
    res: { start: res.start, end: res.end },
    ref,
    dev,
    data: null,
    page_fault: null,
    page_free: null,
    kill: null,
    linear: type !== MEMORY_DEVICE_PRIVATE,
    released: new Completion(),
    nr_busy: 0,
  };
}

/** F-HP-3: hotplug works on whole sections: start rounded down, end rounded up. */
export function section_align(
  k: Kernel,
  res: { start: number; end: number },
): { start: number; size: number } {
  const sec = k.c.PA_SECTION_SIZE;
  const start = ALIGN_DOWN(res.start, sec);
  return { start, size: ALIGN(res.end + 1, sec) - start };
}

function pgmap_index_delete(k: Kernel, pgmap: dev_pagemap, first: number, last: number): void {
  for (let nr = first; nr < last; nr++) if (k.pgmap_index.get(nr) === pgmap) k.pgmap_index.delete(nr);
}

function pfn_first(k: Kernel, pgmap: dev_pagemap): number {
  return Math.floor(pgmap.res.start / k.c.PAGE_SIZE);
}

function pfn_end(k: Kernel, pgmap: dev_pagemap): number {
  return Math.floor((pgmap.res.end + 1) / k.c.PAGE_SIZE);
}

/**
 * devm_memremap_pages: hotplug the pgmap's range into ZONE_DEVICE. Returns the range's
 * address in the direct map, or an error.
 * F-PGMAP-1: a MIXED range warns and fails with -ENXIO; a range inside System RAM is
 * already mapped and returned as is; a missing ref is -EINVAL.
 * F-PGMAP-3: each section is claimed in the pgmap index; a held section is -EBUSY.
 */
export function devm_memremap_pages(k: Kernel, dev: device, pgmap: dev_pagemap): ErrPtr<number> {
  const { start: align_start, size: align_size } = section_align(k, pgmap.res);
  const is_ram = region_intersects(k, align_start, align_size, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE);
  if (is_ram === REGION_MIXED) {
    // WARN_ONCE is once per call site, whichever device gets there first.
    k.WARN_ONCE(
      'devm_memremap_pages-mixed',
      `devm_memremap_pages attempted on mixed region [mem 0x${pgmap.res.start.toString(16)}-0x${pgmap.res.end.toString(16)}]`,
    );
    return -ENXIO;
  }
  if (is_ram === REGION_INTERSECTS) return pgmap.res.start;
  if (!pgmap.ref) return -EINVAL;

  const sec = k.c.PA_SECTION_SIZE;
  const first = align_start / sec;
  const last = first + align_size / sec;
  for (let nr = first; nr < last; nr++) {
    const dup = k.pgmap_index.get(nr);
    if (dup) {
      k.dev_err(dev_name(dev), `devm_memremap_pages: collides with mapping for ${dev_name(dup.dev)}`);
      pgmap_index_delete(k, pgmap, first, nr);
      return -EBUSY;
    }
    if (k.fault.should_fail('pgmap_index_insert')) {
      k.dev_err(dev_name(dev), `devm_memremap_pages: failed: -12`);
      pgmap_index_delete(k, pgmap, first, nr);
      return -12;
    }
    k.pgmap_index.set(nr, pgmap);
  }

  const nid = dev_to_node(dev) < 0 ? 0 : dev_to_node(dev);
  const pageSize = k.c.PAGE_SIZE;
  mem_hotplug_begin(k);
  const err = add_pages(k, nid, align_start / pageSize, align_size / pageSize, pgmap.linear);
  if (err) {
    mem_hotplug_done(k);
    pgmap_index_delete(k, pgmap, first, last);
    return err;
  }
  move_pfn_range_to_zone(k, k.node.node_zones[ZONE_DEVICE]!, align_start / pageSize, align_size / pageSize);
  mem_hotplug_done(k);

  pgmap.id = k.pgmaps.length;
  k.pgmaps.push(pgmap);
  // F-PGMAP-2: every pfn of the range points at its pgmap. The pages never get PG_lru:
  // nothing but their owner ever lists them.
  const m = k.mem;
  m.for_each_run(pfn_first(k, pgmap), pfn_end(k, pgmap) - pfn_first(k, pgmap), (page, n) => {
    m.pgmap.fill(pgmap.id, page, page + n);
  });
  devres_add_action(dev, devm_memremap_pages_release, pgmap);
  return pgmap.res.start;
}

/**
 * The devres release of a mapping. F-PGMAP-5: a mapping torn down while pages are still
 * in use warns, then waits (the ref drains as the last pages are freed) before the
 * struct pages go.
 */
export function devm_memremap_pages_release(k: Kernel, dev: device, data: unknown): Completion {
  const pgmap = data as dev_pagemap;
  const ref = pgmap.ref!;
  if (percpu_ref_tryget_live(ref)) {
    if (ref.count > 2) k.WARN(`${dev_name(dev)}: devm_memremap_pages_release: page mapping is still live!`);
    percpu_ref_put(ref);
  }
  if (!ref.dead) {
    if (pgmap.kill) pgmap.kill(ref);
    else percpu_ref_kill(k, ref);
  }
  const teardown = (): void => {
    const { start, size } = section_align(k, pgmap.res);
    const pageSize = k.c.PAGE_SIZE;
    mem_hotplug_begin(k);
    __remove_pages(k, k.node.node_zones[ZONE_DEVICE]!, start / pageSize, size / pageSize);
    mem_hotplug_done(k);
    const sec = k.c.PA_SECTION_SIZE;
    pgmap_index_delete(k, pgmap, start / sec, (start + size) / sec);
    k.pgmaps[pgmap.id] = undefined;
    complete(pgmap.released);
  };
  if (ref.count === 0) teardown();
  else {
    const ownerRelease = ref.release;
    ref.release = (r) => {
      ownerRelease?.(r);
      teardown();
    };
  }
  return pgmap.released;
}

/** The pgmap whose section holds `phys`, without a reference. */
export function __get_dev_pagemap(k: Kernel, phys: number): dev_pagemap | null {
  const pgmap = k.pgmap_index.get(Math.floor(phys / k.c.PA_SECTION_SIZE));
  return pgmap && phys >= pgmap.res.start && phys <= pgmap.res.end ? pgmap : null;
}

/**
 * F-PGMAP-4: a live reference on the pgmap hosting `pfn`. A `cached` pgmap that covers
 * the pfn is already pinned by the caller: take a reference blindly. Otherwise look it
 * up and pin it only while live; a dying map gives null.
 */
export function get_dev_pagemap(k: Kernel, pfn: number, cached: dev_pagemap | null): dev_pagemap | null {
  const phys = pfn * k.c.PAGE_SIZE;
  if (cached && phys >= cached.res.start && phys <= cached.res.end) {
    percpu_ref_get(cached.ref!);
    return cached;
  }
  const pgmap = __get_dev_pagemap(k, phys);
  if (pgmap && !percpu_ref_tryget_live(pgmap.ref!)) return null;
  return pgmap;
}

export function put_dev_pagemap(pgmap: dev_pagemap | null): void {
  if (pgmap) percpu_ref_put(pgmap.ref!);
}

export function page_pgmap(k: Kernel, page: number): dev_pagemap | undefined {
  return k.pgmaps[k.mem.pgmap[page]!];
}

export function is_device_private_page(k: Kernel, page: number): boolean {
  return page_zonenum(k, page) === ZONE_DEVICE && page_pgmap(k, page)?.type === MEMORY_DEVICE_PRIVATE;
}

/** F-DEV-8: only ZONE_DEVICE pages of an un-addressable (private) map are not addressable. */
export function is_addressable_page(k: Kernel, page: number): boolean {
  return !is_device_private_page(k, page);
}

export function pgmap_type_name(pgmap: dev_pagemap): string {
  return MEMORY_TYPE_NAMES[pgmap.type];
}
