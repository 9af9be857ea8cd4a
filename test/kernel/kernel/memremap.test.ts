import { describe, it, expect } from 'vitest';
import type { Kernel } from '../../../src-main/kernel/kernel';
import {
  G,
  M,
  PAGE,
  SECTION,
  bootSmall,
  presentSections,
  recordLog,
  recordTrace,
  warnings,
} from '../helpers';
import { device } from '../../../src-main/kernel/drivers/base/core';
import { devres_release_all } from '../../../src-main/kernel/drivers/base/devres';
import {
  __get_dev_pagemap,
  devm_memremap_pages,
  get_dev_pagemap,
  new_dev_pagemap,
  page_pgmap,
  put_dev_pagemap,
  section_align,
} from '../../../src-main/kernel/kernel/memremap';
import { EBUSY, EINVAL, ENXIO } from '../../../src-main/kernel/include/errno';
import { MEMORY_DEVICE_HOST } from '../../../src-main/kernel/include/memremap';
import { ZONE_DEVICE } from '../../../src-main/kernel/include/mmzone';
import { PG_lru, PG_reserved } from '../../../src-main/kernel/include/page-flags';
import { get_page, page_count, page_zonenum, put_page } from '../../../src-main/kernel/include/mm';
import { percpu_ref, percpu_ref_init, percpu_ref_kill } from '../../../src-main/kernel/lib/percpu-refcount';

/** A host (pmem-like) mapping of [start, start+size) owned by `name`, with its own live ref. */
function hostMap(k: Kernel, name: string, start: number, size: number, withRef = true) {
  const dev = new device(name);
  const ref = new percpu_ref();
  const released: percpu_ref[] = [];
  if (withRef) expect(percpu_ref_init(k, ref, (r) => released.push(r))).toBe(0);
  const pgmap = new_dev_pagemap(
    dev,
    MEMORY_DEVICE_HOST,
    { start, end: start + size - 1 },
    withRef ? ref : null,
  );
  return { dev, ref, pgmap, released };
}

const pfn = (phys: number) => phys / PAGE;

/** Pages of [start, end) as page indices. */
function pages(k: Kernel, startPfn: number, endPfn: number): number[] {
  const out: number[] = [];
  for (let p = startPfn; p < endPfn; p++) out.push(k.mem.pfn_to_page(p));
  return out;
}

describe('kernel/memremap.c: devm_memremap_pages', () => {
  it('F-PGMAP-1: a missing ref is -EINVAL and nothing is hotplugged', () => {
    const k = bootSmall();
    const before = presentSections(k);
    const { dev, pgmap } = hostMap(k, 'pmem0', 8 * G, 256 * M, false);
    expect(devm_memremap_pages(k, dev, pgmap)).toBe(-EINVAL);
    expect(presentSections(k)).toEqual(before);
    expect(k.pgmap_index.size).toBe(0);
    expect(dev.devres).toEqual([]);
    expect(k.pgmaps).toEqual([undefined]);
  });

  it('F-PGMAP-1: a range inside System RAM returns its direct-map address without hotplug', () => {
    const k = bootSmall();
    const before = presentSections(k);
    const trace = recordTrace(k);
    const { dev, pgmap } = hostMap(k, 'ram-alias', 256 * M + 64 * M, 32 * M);
    expect(devm_memremap_pages(k, dev, pgmap)).toBe(256 * M + 64 * M);
    expect(presentSections(k)).toEqual(before);
    expect(trace).toEqual([]);
    expect(k.pgmap_index.size).toBe(0);
    expect(dev.devres).toEqual([]);
    expect(page_pgmap(k, k.mem.pfn_to_page(pfn(256 * M + 64 * M)))).toBeUndefined();
    // Even without a ref: the RAM test comes first, as in the seed.
    const noRef = hostMap(k, 'ram-alias2', 128 * M, SECTION, false);
    expect(devm_memremap_pages(k, noRef.dev, noRef.pgmap)).toBe(128 * M);
  });

  it('F-PGMAP-1: a range mixing System RAM with another resource fails with -ENXIO, warning once per boot', () => {
    const k = bootSmall({ reserved: [{ name: 'Reserved', start: G, size: 64 * M }] });
    const before = presentSections(k);
    const { dev, pgmap } = hostMap(k, 'pmem0', G - 64 * M, 128 * M);
    expect(devm_memremap_pages(k, dev, pgmap)).toBe(-ENXIO);
    expect(warnings(k)).toEqual([
      'WARNING: devm_memremap_pages attempted on mixed region [mem 0x3c000000-0x43ffffff]',
    ]);
    expect(devm_memremap_pages(k, dev, pgmap)).toBe(-ENXIO);
    // WARN_ONCE: once per call site, not once per device.
    const other = hostMap(k, 'pmem1', G - 4096, 8192);
    expect(devm_memremap_pages(k, other.dev, other.pgmap)).toBe(-ENXIO);
    expect(warnings(k)).toHaveLength(1);
    expect(presentSections(k)).toEqual(before);
    expect(k.pgmap_index.size).toBe(0);
  });

  it('F-PGMAP-2: every pfn of the range points at its pgmap, in ZONE_DEVICE, and none is ever on an LRU', () => {
    const k = bootSmall();
    const { dev, pgmap } = hostMap(k, 'pmem0', 8 * G, 2 * SECTION);
    expect(devm_memremap_pages(k, dev, pgmap)).toBe(8 * G);
    expect(pgmap.id).toBe(1);
    expect(k.pgmaps[1]).toBe(pgmap);
    const all = pages(k, pfn(8 * G), pfn(8 * G + 2 * SECTION));
    expect(all).toHaveLength(65536);
    expect(all.every((p) => p >= 0 && k.mem.pgmap[p] === pgmap.id)).toBe(true);
    expect(all.every((p) => page_zonenum(k, p) === ZONE_DEVICE)).toBe(true);
    expect(all.every((p) => (k.mem.flags[p]! & PG_lru) === 0)).toBe(true);
    expect(all.every((p) => (k.mem.flags[p]! & PG_reserved) !== 0 && page_count(k, p) === 1)).toBe(true);
    expect(page_pgmap(k, all[12345]!)).toBe(pgmap);
    // Using a page does not put it on an LRU either.
    get_page(k, all[0]!);
    put_page(k, all[0]!);
    expect(k.mem.flags[all[0]!]! & PG_lru).toBe(0);
  });

  it('F-PGMAP-2: an unaligned range hotplugs whole sections, but only its own pfns get the pgmap', () => {
    const k = bootSmall();
    const start = 8 * G + 32 * M;
    const { dev, pgmap } = hostMap(k, 'pmem0', start, 64 * M);
    expect(section_align(k, pgmap.res)).toEqual({ start: 8 * G, size: SECTION });
    expect(devm_memremap_pages(k, dev, pgmap)).toBe(start);
    const section = pages(k, pfn(8 * G), pfn(8 * G + SECTION));
    const inRange = (p: number) => {
      const f = k.mem.page_to_pfn(p);
      return f >= pfn(start) && f < pfn(start + 64 * M);
    };
    expect(section.every((p) => page_zonenum(k, p) === ZONE_DEVICE)).toBe(true);
    expect(section.filter((p) => k.mem.pgmap[p] === pgmap.id)).toEqual(section.filter(inRange));
    expect(section.filter(inRange)).toHaveLength(16384);
    // Lookup by address answers only inside the range.
    expect(__get_dev_pagemap(k, start)).toBe(pgmap);
    expect(__get_dev_pagemap(k, start + 64 * M - 1)).toBe(pgmap);
    expect(__get_dev_pagemap(k, start - 1)).toBeNull();
    expect(__get_dev_pagemap(k, start + 64 * M)).toBeNull();
  });

  it('F-PGMAP-3: the per-section index finds the pgmap; a second mapping on a held section is -EBUSY and names the holder', () => {
    const k = bootSmall();
    const a = hostMap(k, 'pmemA', 8 * G + SECTION, 64 * M);
    expect(devm_memremap_pages(k, a.dev, a.pgmap)).toBe(8 * G + SECTION);
    const secA = (8 * G + SECTION) / SECTION;
    expect([...k.pgmap_index.entries()]).toEqual([[secA, a.pgmap]]);
    expect(__get_dev_pagemap(k, 8 * G + SECTION + 4096)).toBe(a.pgmap);

    // B spans the free section below A's and A's own: the first is claimed, the second collides.
    const sectionsBefore = presentSections(k);
    const log = recordLog(k);
    const b = hostMap(k, 'pmemB', 8 * G + 64 * M, 128 * M);
    expect(devm_memremap_pages(k, b.dev, b.pgmap)).toBe(-EBUSY);
    expect(log.map((l) => [l.level, l.text])).toEqual([
      ['err', 'pmemB: devm_memremap_pages: collides with mapping for pmemA'],
    ]);
    // B's partial claim is undone and A's is intact.
    expect([...k.pgmap_index.entries()]).toEqual([[secA, a.pgmap]]);
    expect(presentSections(k)).toEqual(sectionsBefore);
    expect(b.dev.devres).toEqual([]);
    expect(k.pgmaps).toEqual([undefined, a.pgmap]);
  });

  it('F-PGMAP-3: an index insertion failure unwinds the sections already claimed', () => {
    const k = bootSmall();
    const { dev, pgmap } = hostMap(k, 'pmem0', 8 * G, 3 * SECTION);
    k.fault.inject('pgmap_index_insert', { skip: 2 });
    const log = recordLog(k);
    expect(devm_memremap_pages(k, dev, pgmap)).toBe(-12);
    expect(log.map((l) => l.text)).toEqual(['pmem0: devm_memremap_pages: failed: -12']);
    expect(k.pgmap_index.size).toBe(0);
  });
});

describe('kernel/memremap.c: get_dev_pagemap / put_dev_pagemap', () => {
  function twoMaps() {
    const k = bootSmall();
    const a = hostMap(k, 'pmemA', 8 * G, SECTION);
    const b = hostMap(k, 'pmemB', 9 * G, SECTION);
    expect(devm_memremap_pages(k, a.dev, a.pgmap)).toBe(8 * G);
    expect(devm_memremap_pages(k, b.dev, b.pgmap)).toBe(9 * G);
    return { k, a, b };
  }

  it('F-PGMAP-4: the slow path looks the pfn up by section and takes a live reference', () => {
    const { k, a, b } = twoMaps();
    expect(get_dev_pagemap(k, pfn(8 * G) + 5, null)).toBe(a.pgmap);
    expect(a.ref.count).toBe(2);
    // A cached pgmap that does not cover the pfn falls back to the lookup.
    expect(get_dev_pagemap(k, pfn(9 * G), a.pgmap)).toBe(b.pgmap);
    expect(b.ref.count).toBe(2);
    expect(a.ref.count).toBe(2);
    // No mapping there: NULL, no reference taken anywhere.
    expect(get_dev_pagemap(k, pfn(10 * G), null)).toBeNull();
    expect(get_dev_pagemap(k, pfn(16 * M), null)).toBeNull();
    put_dev_pagemap(a.pgmap);
    put_dev_pagemap(b.pgmap);
    expect([a.ref.count, b.ref.count]).toEqual([1, 1]);
  });

  it('F-PGMAP-4: a cached pgmap covering the pfn gets a blind reference, even while dying', () => {
    const { k, a } = twoMaps();
    expect(get_dev_pagemap(k, pfn(8 * G + SECTION) - 1, a.pgmap)).toBe(a.pgmap);
    expect(a.ref.count).toBe(2);
    percpu_ref_kill(k, a.ref);
    expect(a.ref.dead).toBe(true);
    expect(a.ref.count).toBe(1);
    expect(get_dev_pagemap(k, pfn(8 * G), a.pgmap)).toBe(a.pgmap);
    expect(a.ref.count).toBe(2);
    put_dev_pagemap(a.pgmap);
    put_dev_pagemap(a.pgmap);
    expect(a.ref.count).toBe(0);
    expect(a.released).toEqual([a.ref]);
  });

  it('F-PGMAP-4: a dying map gives NULL on the slow path; put_dev_pagemap(NULL) is a no-op', () => {
    const { k, a, b } = twoMaps();
    get_page(k, k.mem.pfn_to_page(pfn(8 * G)));
    expect(a.ref.count).toBe(2);
    percpu_ref_kill(k, a.ref);
    expect(get_dev_pagemap(k, pfn(8 * G), null)).toBeNull();
    expect(get_dev_pagemap(k, pfn(8 * G), b.pgmap)).toBeNull();
    expect(a.ref.count).toBe(1);
    expect(() => put_dev_pagemap(null)).not.toThrow();
    expect([a.ref.count, b.ref.count]).toEqual([1, 1]);
  });
});

describe('kernel/memremap.c: devm_memremap_pages_release', () => {
  it('F-PGMAP-5: releasing an idle mapping kills the ref and removes sections and index at once', () => {
    const k = bootSmall();
    const before = presentSections(k);
    const { dev, ref, pgmap, released } = hostMap(k, 'pmem0', 8 * G, SECTION);
    devm_memremap_pages(k, dev, pgmap);
    const done = devres_release_all(k, dev);
    expect(done.done).toBe(true);
    expect(pgmap.released.done).toBe(true);
    expect(ref.dead).toBe(true);
    expect(released).toEqual([ref]);
    expect(warnings(k)).toEqual([]);
    expect(presentSections(k)).toEqual(before);
    expect(k.pgmap_index.size).toBe(0);
    expect(k.pgmaps[pgmap.id]).toBeUndefined();
    expect(k.node.node_zones[ZONE_DEVICE]!.spanned_pages).toBe(0);
  });

  it('F-PGMAP-5: releasing a mapping with a page in use warns "page mapping is still live" and waits for the page', () => {
    const k = bootSmall();
    const { dev, ref, pgmap, released } = hostMap(k, 'pmem0', 8 * G, SECTION);
    devm_memremap_pages(k, dev, pgmap);
    const page = k.mem.pfn_to_page(pfn(8 * G) + 7);
    get_page(k, page);
    expect(ref.count).toBe(2);

    const done = devres_release_all(k, dev);
    expect(warnings(k)).toEqual(['WARNING: pmem0: devm_memremap_pages_release: page mapping is still live!']);
    expect(done.done).toBe(false);
    expect(ref.dead).toBe(true);
    expect(ref.count).toBe(1);
    expect(released).toEqual([]);
    expect(k.mem.present_section_nr((8 * G) / SECTION)).toBe(true);
    expect(k.pgmap_index.get((8 * G) / SECTION)).toBe(pgmap);

    put_page(k, page);
    expect(ref.count).toBe(0);
    expect(released).toEqual([ref]);
    expect(done.done).toBe(true);
    expect(k.mem.present_section_nr((8 * G) / SECTION)).toBe(false);
    expect(k.pgmap_index.size).toBe(0);
  });
});
