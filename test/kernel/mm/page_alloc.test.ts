import { describe, it, expect } from 'vitest';
import type { Kernel } from '../../../src-main/kernel/kernel';
import { G, M, PAGE, bootSmall } from '../helpers';
import {
  __GFP_DMA,
  __free_pages,
  alloc_page,
  alloc_pages,
  alloc_pages_bulk,
  GFP_KERNEL,
} from '../../../src-main/kernel/mm/page_alloc';
import { ZONE_DMA, ZONE_DMA32, ZONE_NORMAL } from '../../../src-main/kernel/include/mmzone';
import { PG_buddy, PG_reserved } from '../../../src-main/kernel/include/page-flags';
import {
  get_page,
  page_count,
  page_zonenum,
  put_page,
  release_pages,
} from '../../../src-main/kernel/include/mm';

/** nr_free of every order of a zone. */
function freeArea(k: Kernel, zi: number): number[] {
  return k.node.node_zones[zi]!.free_area.map((a) => a.nr_free);
}

describe('mm/page_alloc.c: boot', () => {
  it('boot frees RAM to the buddy allocator in the largest aligned blocks, minus the first MiB and the kernel image', () => {
    const k = bootSmall();
    const [dma, dma32, normal] = [ZONE_DMA, ZONE_DMA32, ZONE_NORMAL].map((z) => k.node.node_zones[z]!);
    expect([dma!.zone_start_pfn, dma!.spanned_pages, dma!.present_pages]).toEqual([0, 4096, 4096]);
    expect([dma32!.zone_start_pfn, dma32!.spanned_pages, dma32!.present_pages]).toEqual([
      4096, 258048, 258048,
    ]);
    expect(normal!.zone_is_empty()).toBe(true);
    // DMA: [1M, 16M) free: 256 pages at pfn 256, 512 at 512, then three 4 MiB blocks.
    expect(freeArea(k, ZONE_DMA)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3]);
    expect(dma!.nr_free_pages).toBe(3840);
    expect(dma!.managed_pages).toBe(3840);
    // DMA32: [48M, 1G) given to the allocator (the kernel image ends at 48M).
    expect(dma32!.managed_pages).toBe(244 * 1024);
    for (const z of [dma!, dma32!])
      expect(z.free_area.reduce((n, a, order) => n + a.nr_free * 2 ** order, 0)).toBe(z.nr_free_pages);
    const free = dma!.nr_free_pages + dma32!.nr_free_pages;
    expect(k.log.lines()[0]!.text).toBe(`Memory: ${(free * PAGE) / 1024}K available`);
    // The kernel image stays reserved.
    const kernelPage = k.mem.pfn_to_page((16 * M) / PAGE);
    expect(k.mem.flags[kernelPage]! & PG_reserved).not.toBe(0);
    expect(page_count(k, kernelPage)).toBe(1);
  });
});

describe('mm/page_alloc.c: the buddy allocator', () => {
  // ZONE_DMA is used by nothing else at boot: its free lists are known exactly.
  const DMA_BOOT = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3];

  it('an order-0 allocation splits the smallest free block, leaving one free buddy of every lower order', () => {
    const k = bootSmall();
    const page = alloc_page(k, __GFP_DMA);
    expect(page_zonenum(k, page)).toBe(ZONE_DMA);
    // The order-8 block at pfn 256 is split: 256 is handed out, 257, 258-259, ... 384-511 stay free.
    const pfn = k.mem.page_to_pfn(page);
    expect(pfn).toBe(256);
    expect(freeArea(k, ZONE_DMA)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 3]);
    expect(k.node.node_zones[ZONE_DMA]!.nr_free_pages).toBe(3839);
    expect(page_count(k, page)).toBe(1);
    expect(k.mem.flags[page]! & (PG_buddy | PG_reserved)).toBe(0);
    for (let o = 0; o < 8; o++) {
      const buddy = k.mem.pfn_to_page(pfn + 2 ** o);
      expect(k.mem.flags[buddy]! & PG_buddy).toBe(PG_buddy);
      expect(k.mem.priv[buddy]).toBe(o);
    }
  });

  it('freeing merges buddies back to the original free lists', () => {
    const k = bootSmall();
    for (const [zone, gfp] of [
      [ZONE_DMA, __GFP_DMA],
      [ZONE_DMA32, GFP_KERNEL],
    ] as const) {
      const before = freeArea(k, zone);
      const free = k.node.node_zones[zone]!.nr_free_pages;
      const page = alloc_page(k, gfp);
      expect(page_zonenum(k, page)).toBe(zone);
      expect(freeArea(k, zone)).not.toEqual(before);
      __free_pages(k, page, 0);
      expect(freeArea(k, zone)).toEqual(before);
      expect(k.node.node_zones[zone]!.nr_free_pages).toBe(free);
    }
  });

  it('an order-n block is naturally aligned and comes from splitting only what is needed', () => {
    const k = bootSmall();
    const p3 = alloc_pages(k, __GFP_DMA, 3);
    expect(k.mem.page_to_pfn(p3)).toBe(256);
    expect(freeArea(k, ZONE_DMA)).toEqual([0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 3]);
    expect(k.node.node_zones[ZONE_DMA]!.nr_free_pages).toBe(3840 - 8);
    // The next order-3 takes the free order-3 buddy, no new split.
    const q3 = alloc_pages(k, __GFP_DMA, 3);
    expect(k.mem.page_to_pfn(q3)).toBe(264);
    expect(freeArea(k, ZONE_DMA)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 3]);
    const p10 = alloc_pages(k, __GFP_DMA, 10);
    expect(k.mem.page_to_pfn(p10) % 1024).toBe(0);
    expect(freeArea(k, ZONE_DMA)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 2]);
    // The two other 4 MiB blocks, then none is left (nothing merges above MAX_ORDER - 1).
    expect(alloc_pages(k, __GFP_DMA, 10)).toBeGreaterThanOrEqual(0);
    expect(alloc_pages(k, __GFP_DMA, 10)).toBeGreaterThanOrEqual(0);
    expect(alloc_pages(k, __GFP_DMA, 10)).toBe(-1);
    __free_pages(k, q3, 3);
    __free_pages(k, p10, 10);
    __free_pages(k, p3, 3);
    expect(freeArea(k, ZONE_DMA)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  });

  it('many allocations freed in another order restore the free lists exactly', () => {
    const k = bootSmall();
    const before = freeArea(k, ZONE_DMA32);
    const blocks: [number, number][] = [];
    for (let i = 0; i < 300; i++) {
      const order = (i * 7) % 5;
      const page = alloc_pages(k, GFP_KERNEL, order);
      expect(page).toBeGreaterThanOrEqual(0);
      blocks.push([page, order]);
    }
    const pfns = new Set(blocks.map(([p]) => k.mem.page_to_pfn(p)));
    expect(pfns.size).toBe(300);
    // Free odd indices first, then even ones backwards.
    for (let i = 1; i < blocks.length; i += 2) __free_pages(k, blocks[i]![0], blocks[i]![1]);
    for (let i = blocks.length - 2; i >= 0; i -= 2) __free_pages(k, blocks[i]![0], blocks[i]![1]);
    expect(freeArea(k, ZONE_DMA32)).toEqual(before);
  });

  it('__GFP_DMA allocates from ZONE_DMA until it is exhausted, then NULL; freeing all restores it', () => {
    const k = bootSmall();
    const dma = k.node.node_zones[ZONE_DMA]!;
    const before = freeArea(k, ZONE_DMA);
    expect(before).toEqual(DMA_BOOT);
    const dma32 = freeArea(k, ZONE_DMA32);
    const pages: number[] = [];
    for (;;) {
      const p = alloc_page(k, __GFP_DMA);
      if (p < 0) break;
      pages.push(p);
    }
    expect(pages).toHaveLength(3840);
    expect(pages.every((p) => page_zonenum(k, p) === ZONE_DMA)).toBe(true);
    expect(dma.nr_free_pages).toBe(0);
    expect(Math.min(...pages.map((p) => k.mem.page_to_pfn(p)))).toBe(256);
    // DMA32 was never touched.
    expect(freeArea(k, ZONE_DMA32)).toEqual(dma32);
    for (const p of pages) __free_pages(k, p, 0);
    expect(freeArea(k, ZONE_DMA)).toEqual(before);
  });

  it('allocations fall back to a lower zone, and use ZONE_NORMAL first when there is one', () => {
    const k = bootSmall({
      ram: [
        { start: 0, size: 256 * M },
        { start: 4 * G, size: 256 * M },
      ],
    });
    const normal = k.node.node_zones[ZONE_NORMAL]!;
    expect([normal.zone_start_pfn, normal.spanned_pages]).toEqual([(4 * G) / PAGE, (256 * M) / PAGE]);
    expect(page_zonenum(k, alloc_page(k, GFP_KERNEL))).toBe(ZONE_NORMAL);
    expect(page_zonenum(k, alloc_page(k, __GFP_DMA))).toBe(ZONE_DMA);
  });

  it('put_page dropping a system page to zero frees it; the fault site makes alloc_pages fail', () => {
    const k = bootSmall();
    const before = freeArea(k, ZONE_DMA32);
    const page = alloc_page(k, GFP_KERNEL);
    get_page(k, page);
    put_page(k, page);
    expect(page_count(k, page)).toBe(1);
    expect(freeArea(k, ZONE_DMA32)).not.toEqual(before);
    put_page(k, page);
    expect(page_count(k, page)).toBe(0);
    expect(freeArea(k, ZONE_DMA32)).toEqual(before);

    k.fault.inject('alloc_pages');
    expect(alloc_pages(k, GFP_KERNEL, 0)).toBe(-1);
    expect(freeArea(k, ZONE_DMA32)).toEqual(before);
    expect(alloc_pages(k, GFP_KERNEL, 0)).toBeGreaterThanOrEqual(0);
  });

  it('alloc_pages_bulk hands out what as many alloc_page calls would, and leaves the same free lists', () => {
    // Two identical machines, fragmented alike; one allocates page by page, the other in batches.
    const [a, b] = [bootSmall(), bootSmall()];
    for (const k of [a, b]) for (let i = 0; i < 5; i++) alloc_pages(k, GFP_KERNEL, i % 3);
    const state = (k: Kernel): number[][] =>
      [ZONE_DMA, ZONE_DMA32].map((zi) => [...freeArea(k, zi), k.node.node_zones[zi]!.nr_free_pages]);
    const single = (n: number, dma = 0): number[] =>
      Array.from({ length: n }, () => alloc_page(a, dma ? __GFP_DMA : GFP_KERNEL));
    const bulk = (n: number, dma = 0): number[] => {
      const pages = new Int32Array(n);
      alloc_pages_bulk(b, dma ? __GFP_DMA : GFP_KERNEL, n, pages);
      return [...pages];
    };
    for (const n of [1, 3, 64, 1000, 5]) expect(bulk(n)).toEqual(single(n));
    expect(state(b)).toEqual(state(a));
    // Failures injected in the middle of a block: the block's rest goes back in pieces.
    for (const k of [a, b]) k.fault.inject('alloc_pages', { skip: 2, times: 3 });
    expect(bulk(6)).toEqual(single(6));
    expect(state(b)).toEqual(state(a));
    // Exhausting ZONE_DMA: -1 for each page that alloc_page would not get.
    expect(bulk(4000, 1)).toEqual(single(4000, 1));
    expect(state(b)).toEqual(state(a));
    const page = b.mem.pfn_to_page(b.mem.page_to_pfn(bulk(1)[0]!));
    expect([page_count(b, page), b.mem.flags[page]! & (PG_buddy | PG_reserved)]).toEqual([1, 0]);
  });

  it('release_pages frees the pages whose last reference goes as put_page one by one would', () => {
    const [a, b] = [bootSmall(), bootSmall()];
    // Every free list of both zones, in list order.
    const lists = (k: Kernel): number[][] =>
      [ZONE_DMA, ZONE_DMA32].flatMap((zi) =>
        k.node.node_zones[zi]!.free_area.map((area) => {
          const l: number[] = [];
          for (let p = area.head; p >= 0; p = k.mem.lruNext[p]!) l.push(p);
          return l;
        }),
      );
    const pagesA = Array.from({ length: 700 }, () => alloc_page(a, GFP_KERNEL));
    const pagesB = Array.from({ length: 700 }, () => alloc_page(b, GFP_KERNEL));
    expect(pagesB).toEqual(pagesA);
    // Aligned runs, pieces of runs and strays; some pages keep a reference.
    const order = [...pagesA.slice(3, 300), ...pagesA.slice(450, 700).reverse(), ...pagesA.slice(300, 450)];
    for (const k of [a, b]) for (const p of pagesA.slice(100, 110)) get_page(k, p);
    for (const p of order) put_page(a, p);
    release_pages(b, Int32Array.from(order), order.length);
    expect(lists(b)).toEqual(lists(a));
    expect(pagesA.map((p) => [b.mem.refcount[p], b.mem.flags[p]])).toEqual(
      pagesA.map((p) => [a.mem.refcount[p], a.mem.flags[p]]),
    );
  });
});
