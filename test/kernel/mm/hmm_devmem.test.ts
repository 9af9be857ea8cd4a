import { describe, it, expect } from 'vitest';
import type { Kernel } from '../../../src-main/kernel/kernel';
import {
  G,
  M,
  PAGE,
  SECTION,
  T,
  bootSmall,
  iomemSnapshot,
  presentSections,
  recordTrace,
  recordingOps,
  topLevel,
  warnings,
} from '../helpers';
import {
  HMM_DEVICE_MAX,
  hmm_device,
  hmm_device_new,
  hmm_device_put,
  hmm_devmem,
  hmm_devmem_add,
  hmm_devmem_add_resource,
  hmm_devmem_remove,
  hmm_vma_alloc_locked_page,
} from '../../../src-main/kernel/mm/hmm';
import { device } from '../../../src-main/kernel/drivers/base/core';
import {
  get_dev_pagemap,
  is_addressable_page,
  is_device_private_page,
  page_pgmap,
} from '../../../src-main/kernel/kernel/memremap';
import { insert_resource, resource, resource_size } from '../../../src-main/kernel/kernel/resource';
import { EBUSY, EINVAL, ENOMEM, ERANGE, IS_ERR } from '../../../src-main/kernel/include/errno';
import {
  IORESOURCE_BUSY,
  IORESOURCE_MEM,
  IORES_DESC_DEVICE_PRIVATE_MEMORY,
  IORES_DESC_DEVICE_PUBLIC_MEMORY,
  IORES_DESC_NONE,
  IORES_DESC_PERSISTENT_MEMORY,
} from '../../../src-main/kernel/include/ioport';
import { MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC } from '../../../src-main/kernel/include/memremap';
import { ZONE_DEVICE, ZONE_DMA32 } from '../../../src-main/kernel/include/mmzone';
import { PG_lru } from '../../../src-main/kernel/include/page-flags';
import {
  PageLocked,
  get_page,
  page_count,
  page_zonenum,
  put_page,
} from '../../../src-main/kernel/include/mm';
import {
  mm_struct,
  vm_area_struct,
  VM_FAULT_MAJOR,
  VM_READ,
  VM_WRITE,
} from '../../../src-main/kernel/include/mm_types';
import type { FaultSite } from '../../../src-main/kernel/lib/fault-inject';

const TOP = 2 ** 46;
const PPS = SECTION / PAGE;

function anonVma(start: number, end: number): vm_area_struct {
  return new vm_area_struct(new mm_struct(1), start, end, VM_READ | VM_WRITE);
}

function add(k: Kernel, name: string, size: number, ops = recordingOps()): hmm_devmem {
  const devmem = hmm_devmem_add(k, ops, new device(name), size);
  if (IS_ERR(devmem)) throw new Error(`hmm_devmem_add(${name}) failed: ${devmem}`);
  return devmem;
}

/** A firmware-described public range at `start`, as the platform inserts it before the driver binds. */
function publicResource(
  k: Kernel,
  start: number,
  size: number,
  desc = IORES_DESC_DEVICE_PUBLIC_MEMORY,
): resource {
  const res = new resource('cdm0 memory', start, start + size - 1, IORESOURCE_MEM, desc);
  expect(insert_resource(k.iomem_resource, res)).toBe(0);
  return res;
}

function state(k: Kernel) {
  return { sections: presentSections(k), iomem: iomemSnapshot(k) };
}

/** Nothing of a failed or removed hmm_devmem is left in the kernel. */
function expectNothingLeft(k: Kernel, before: ReturnType<typeof state>, dev: device): void {
  expect(presentSections(k)).toEqual(before.sections);
  expect(iomemSnapshot(k)).toEqual(before.iomem);
  expect(k.pgmap_index.size).toBe(0);
  expect(k.pgmaps.filter(Boolean)).toEqual([]);
  expect(dev.devres).toEqual([]);
  expect(k.mem_hotplug_depth).toBe(0);
  expect(k.node.node_zones[ZONE_DEVICE]!.zone_is_empty()).toBe(true);
}

describe('mm/hmm.c: hmm_devmem_add finds a free physical range', () => {
  it('F-DEVMEM-1: the first device lands at min(iomem end, 2^MAX_PHYSMEM_BITS - 1) - size + 1', () => {
    const k = bootSmall();
    const devmem = add(k, 'gpu0', 256 * M);
    expect([devmem.resource!.start, devmem.resource!.end]).toEqual([0x3ffff0000000, 0x3fffffffffff]);
    expect(devmem.resource!.parent).toBe(k.iomem_resource);
    expect(devmem.resource!.name).toBe('gpu0');
    expect(devmem.resource!.flags >>> 0).toBe((IORESOURCE_MEM | IORESOURCE_BUSY) >>> 0);

    // iomem_resource ends lower than MAX_PHYSMEM_BITS allows.
    const k40 = bootSmall({ config: { physAddrBits: 40 } });
    expect(add(k40, 'gpu0', 256 * M).resource!.start).toBe(0xfff0000000);
    // MAX_PHYSMEM_BITS caps a larger iomem_resource.
    const kcap = bootSmall({ config: { physAddrBits: 46, maxPhysmemBits: 40 } });
    expect(kcap.iomem_resource.end).toBe(TOP - 1);
    expect(add(kcap, 'gpu0', 256 * M).resource!.start).toBe(0xfff0000000);
  });

  it('F-DEVMEM-1: the size is rounded up to PA_SECTION_SIZE', () => {
    const k = bootSmall();
    const a = add(k, 'gpu0', 100 * M);
    expect([a.resource!.start, resource_size(a.resource!)]).toEqual([TOP - SECTION, SECTION]);
    // 256 MiB steps: [TOP - 256M, TOP) holds gpu0, so one step further down.
    const b = add(k, 'gpu1', 129 * M);
    expect([b.resource!.start, resource_size(b.resource!)]).toEqual([TOP - 4 * SECTION, 2 * SECTION]);
    // 128 MiB steps find the hole between gpu0 and gpu1.
    const c = add(k, 'gpu2', 1);
    expect([c.resource!.start, resource_size(c.resource!)]).toEqual([TOP - 2 * SECTION, SECTION]);
  });

  it('F-DEVMEM-1: second device lands one aligned step below the first that is free', () => {
    const k = bootSmall();
    const a = add(k, 'gpu0', 256 * M);
    const b = add(k, 'gpu1', 256 * M);
    expect(b.resource!.start).toBe(TOP - 512 * M);
    // Steps of the new size: 128 MiB candidates from the top, the first four are taken.
    const c = add(k, 'gpu2', 128 * M);
    expect(c.resource!.start).toBe(TOP - 640 * M);
    // A freed range is found again.
    hmm_devmem_remove(k, a);
    expect(add(k, 'gpu3', 256 * M).resource!.start).toBe(TOP - 256 * M);
    expect(topLevel(k).map((r) => r.name)).toEqual(['System RAM', 'gpu2', 'gpu1', 'gpu3']);
  });

  it('F-DEVMEM-1: a candidate touching any resource is skipped, whatever its flags', () => {
    const k = bootSmall({ reserved: [{ name: 'Reserved', start: TOP - 64 * M, size: 64 * M }] });
    expect(add(k, 'gpu0', 256 * M).resource!.start).toBe(TOP - 512 * M);
    // Down to a hole between RAM-like ranges: 1 GiB candidates skip three taken ones.
    const k2 = bootSmall({
      reserved: [
        { name: 'a', start: TOP - G, size: 4096 },
        { name: 'b', start: TOP - 2 * G + 4096, size: 4096 },
        { name: 'c', start: TOP - 2 * G - 4096, size: 4096 },
      ],
    });
    expect(add(k2, 'gpu0', G).resource!.start).toBe(TOP - 4 * G);
  });

  it('F-DEVMEM-1: no free range is -ERANGE', () => {
    // 31-bit physical space: RAM below 1 GiB, a reserved window above it.
    const k = bootSmall({
      config: { physAddrBits: 31 },
      reserved: [{ name: 'PCI Bus 0000:00', start: G, size: G }],
    });
    const before = state(k);
    const dev = new device('gpu0');
    expect(hmm_devmem_add(k, recordingOps(), dev, 256 * M)).toBe(-ERANGE);
    expectNothingLeft(k, before, dev);

    // The search stops once addr is no longer above size, even with [1G, 2G) free.
    const k2 = bootSmall({ config: { physAddrBits: 31 } });
    expect(hmm_devmem_add(k2, recordingOps(), new device('gpu0'), G)).toBe(-ERANGE);
    expect(add(k2, 'gpu1', 512 * M).resource!.start).toBe(1536 * M);

    // Larger than the address space below MAX_PHYSMEM_BITS.
    const k3 = bootSmall();
    expect(hmm_devmem_add(k3, recordingOps(), new device('huge'), 40 * T)).toBe(-ERANGE);
    expect(hmm_devmem_add(k3, recordingOps(), new device('huge2'), 64 * T)).toBe(-ERANGE);
  });

  it('F-DEVMEM-1: a failing region request is -ENOMEM', () => {
    const k = bootSmall();
    const before = state(k);
    const dev = new device('gpu0');
    k.fault.inject('request_region');
    expect(hmm_devmem_add(k, recordingOps(), dev, 256 * M)).toBe(-ENOMEM);
    expectNothingLeft(k, before, dev);
  });
});

describe('mm/hmm.c: the hotplugged device memory', () => {
  it('F-DEVMEM-2: the resource is DEVICE_PRIVATE, pfn_first/pfn_last span it, pages are MEMORY_DEVICE_PRIVATE with the devmem as data', () => {
    const k = bootSmall();
    const trace = recordTrace(k);
    const devmem = add(k, 'gpu0', 256 * M);
    const res = devmem.resource!;
    expect(res.desc).toBe(IORES_DESC_DEVICE_PRIVATE_MEMORY);
    expect(devmem.pfn_first).toBe(0x3ffff0000);
    expect(devmem.pfn_last).toBe(0x3ffff0000 + 65536);
    expect(devmem.pfn_last * PAGE - 1).toBe(res.end);

    const pgmap = devmem.pagemap;
    expect(pgmap.type).toBe(MEMORY_DEVICE_PRIVATE);
    expect(pgmap.data).toBe(devmem);
    expect(pgmap.ref).toBe(devmem.ref);
    expect(pgmap.res).toEqual({ start: res.start, end: res.end });
    expect(pgmap.linear).toBe(false);
    expect(trace.find((e) => e.name === 'add_pages')).toMatchObject({ linear: false });
    expect(k.pgmap_index.get(res.start / SECTION)).toBe(pgmap);
    expect(k.pgmap_index.get(res.start / SECTION + 1)).toBe(pgmap);

    let bad = 0;
    for (let pfn = devmem.pfn_first; pfn < devmem.pfn_last; pfn++) {
      const page = k.mem.pfn_to_page(pfn);
      if (
        page < 0 ||
        page_zonenum(k, page) !== ZONE_DEVICE ||
        page_pgmap(k, page) !== pgmap ||
        !is_device_private_page(k, page) ||
        is_addressable_page(k, page) ||
        page_count(k, page) !== 1 ||
        k.mem.flags[page]! & PG_lru
      )
        bad++;
    }
    expect(bad).toBe(0);
    const z = k.node.node_zones[ZONE_DEVICE]!;
    expect([z.zone_start_pfn, z.spanned_pages]).toEqual([devmem.pfn_first, 65536]);
  });

  it('F-DEVMEM-3: hmm_devmem_add_resource accepts only a DEVICE_PUBLIC_MEMORY resource', () => {
    const k = bootSmall();
    for (const desc of [IORES_DESC_NONE, IORES_DESC_PERSISTENT_MEMORY, IORES_DESC_DEVICE_PRIVATE_MEMORY]) {
      const res = new resource('not public', 8 * G, 8 * G + SECTION - 1, IORESOURCE_MEM, desc);
      const dev = new device('cdm0');
      expect(hmm_devmem_add_resource(k, recordingOps(), dev, res)).toBe(-EINVAL);
      expect(dev.devres).toEqual([]);
    }
    expect(k.pgmap_index.size).toBe(0);
  });

  it('F-DEVMEM-3: a public resource is mapped MEMORY_DEVICE_PUBLIC, CPU-addressable, without claiming a new region', () => {
    const k = bootSmall();
    const trace = recordTrace(k);
    const res = publicResource(k, 8 * G, 256 * M);
    const dev = new device('cdm0');
    const devmem = hmm_devmem_add_resource(k, recordingOps(), dev, res) as hmm_devmem;
    expect(devmem).toBeInstanceOf(hmm_devmem);
    expect(devmem.resource).toBe(res);
    expect(res.child).toBeNull();
    expect([devmem.pfn_first, devmem.pfn_last]).toEqual([(8 * G) / PAGE, (8 * G + 256 * M) / PAGE]);
    expect(devmem.pagemap.type).toBe(MEMORY_DEVICE_PUBLIC);
    expect(devmem.pagemap.data).toBe(devmem);
    expect(trace.find((e) => e.name === 'add_pages')).toEqual({
      name: 'add_pages',
      start_pfn: (8 * G) / PAGE,
      nr_pages: 2 * PPS,
      linear: true,
    });
    expect(trace.at(-1)).toEqual({
      name: 'devmem_add',
      device: 'cdm0',
      start: 8 * G,
      end: 8 * G + 256 * M - 1,
      type: 'public',
    });
    const page = k.mem.pfn_to_page(devmem.pfn_first + 3);
    expect(page_zonenum(k, page)).toBe(ZONE_DEVICE);
    expect(is_device_private_page(k, page)).toBe(false);
    expect(is_addressable_page(k, page)).toBe(true);

    // Removal leaves the platform's resource where it was.
    expect(hmm_devmem_remove(k, devmem).done).toBe(true);
    expect(topLevel(k).map((r) => [r.name, r.start])).toEqual([
      ['System RAM', 0],
      ['cdm0 memory', 8 * G],
    ]);
    expect(k.mem.present_section_nr((8 * G) / SECTION)).toBe(false);
    expect(dev.devres).toEqual([]);
  });
});

describe('mm/hmm.c: hmm_devmem_remove and the unwinding of hmm_devmem_add', () => {
  it('F-DEVMEM-4: removing idle device memory kills and exits the ref, removes the pages and releases the region', () => {
    const k = bootSmall();
    const before = state(k);
    const dev = new device('gpu0');
    const devmem = hmm_devmem_add(k, recordingOps(), dev, 256 * M) as hmm_devmem;
    expect(presentSections(k)).toEqual([...before.sections, 524286, 524287]);
    const done = hmm_devmem_remove(k, devmem);
    expect(done.done).toBe(true);
    expect(devmem.ref.dead).toBe(true);
    expect(devmem.ref.count).toBe(0);
    expect(devmem.ref.exited).toBe(true);
    expect(devmem.completion.done).toBe(true);
    expect(warnings(k)).toEqual([]);
    expectNothingLeft(k, before, dev);
    // A second remove is the same removal; remove(NULL) is a no-op.
    expect(hmm_devmem_remove(k, devmem)).toBe(done);
    expect(hmm_devmem_remove(k, null).done).toBe(true);
  });

  it('F-DEVMEM-4: removing with a page in use warns "page mapping is still live" and finishes when the last page is freed', () => {
    const k = bootSmall();
    const before = state(k);
    const ops = recordingOps();
    const dev = new device('gpu0');
    const devmem = hmm_devmem_add(k, ops, dev, 256 * M) as hmm_devmem;
    const page = k.mem.pfn_to_page(devmem.pfn_first + 42);
    get_page(k, page);
    expect(devmem.ref.count).toBe(2);

    const done = hmm_devmem_remove(k, devmem);
    expect(warnings(k)).toEqual(['WARNING: gpu0: devm_memremap_pages_release: page mapping is still live!']);
    expect(done.done).toBe(false);
    expect(devmem.completion.done).toBe(false);
    expect(devmem.ref.dead).toBe(true);
    expect(devmem.ref.exited).toBe(false);
    expect(k.mem.present_section_nr(0x3ffff0000000 / SECTION)).toBe(true);
    expect(topLevel(k).map((r) => r.name)).toEqual(['System RAM', 'gpu0']);
    // Dying: no new live reference.
    expect(get_dev_pagemap(k, devmem.pfn_first, null)).toBeNull();

    put_page(k, page);
    expect(ops.freed).toEqual([{ devmem, page }]);
    expect(devmem.completion.done).toBe(true);
    expect(done.done).toBe(true);
    expect(devmem.ref.exited).toBe(true);
    expect(warnings(k)).toHaveLength(1);
    expectNothingLeft(k, before, dev);
  });

  it('F-DEVMEM-4: removal waits for every page in use, not just the first', () => {
    const k = bootSmall();
    const devmem = add(k, 'gpu0', 128 * M);
    const pages = [0, 1, 32767].map((i) => k.mem.pfn_to_page(devmem.pfn_first + i));
    for (const p of pages) get_page(k, p);
    get_page(k, pages[0]!);
    expect(devmem.ref.count).toBe(4);
    const done = hmm_devmem_remove(k, devmem);
    put_page(k, pages[0]!);
    put_page(k, pages[1]!);
    put_page(k, pages[2]!);
    expect(done.done).toBe(false);
    put_page(k, pages[0]!);
    expect(done.done).toBe(true);
    expect(k.pgmap_index.size).toBe(0);
  });

  const sites: [FaultSite, { skip?: number }][] = [
    ['kmalloc', {}],
    ['percpu_ref_init', {}],
    ['devm_add_action', {}],
    ['request_region', {}],
    ['pgmap_index_insert', { skip: 1 }],
    ['add_pages', { skip: 1 }],
  ];
  it.each(sites)(
    'F-DEVMEM-4: hmm_devmem_add failing at %s returns -ENOMEM and leaves nothing behind',
    (site, opts) => {
      const k = bootSmall();
      const before = state(k);
      const dev = new device('gpu0');
      k.fault.inject(site, opts);
      expect(hmm_devmem_add(k, recordingOps(), dev, 256 * M)).toBe(-ENOMEM);
      expectNothingLeft(k, before, dev);
      expect(warnings(k)).toEqual([]);
      // The same range is free for the next try.
      const again = hmm_devmem_add(k, recordingOps(), dev, 256 * M) as hmm_devmem;
      expect(again.resource!.start).toBe(TOP - 256 * M);
    },
  );

  it.each(sites.filter(([s]) => s !== 'request_region'))(
    'F-DEVMEM-4: hmm_devmem_add_resource failing at %s unwinds and keeps the platform resource',
    (site, opts) => {
      const k = bootSmall();
      const res = publicResource(k, 8 * G, 256 * M);
      const before = state(k);
      const dev = new device('cdm0');
      k.fault.inject(site, opts);
      expect(hmm_devmem_add_resource(k, recordingOps(), dev, res)).toBe(-ENOMEM);
      expectNothingLeft(k, before, dev);
    },
  );
});

describe('mm/hmm.c: device page callbacks', () => {
  it('F-DEVMEM-5: a device page dropping to refcount 1 runs ops.free and clears page->mapping', () => {
    const k = bootSmall();
    const trace = recordTrace(k);
    const ops = recordingOps();
    const devmem = add(k, 'gpu0', 128 * M, ops);
    const page = k.mem.pfn_to_page(devmem.pfn_first + 9);
    get_page(k, page);
    get_page(k, page);
    k.mem.mapping[page] = 77;
    expect(page_count(k, page)).toBe(3);
    expect(devmem.ref.count).toBe(2);

    put_page(k, page);
    expect(ops.freed).toEqual([]);
    expect(k.mem.mapping[page]).toBe(77);

    put_page(k, page);
    expect(page_count(k, page)).toBe(1);
    expect(ops.freed).toEqual([{ devmem, page }]);
    expect(k.mem.mapping[page]).toBe(0);
    expect(devmem.ref.count).toBe(1);
    expect(trace.at(-1)).toEqual({ name: 'devmem_free', device: 'gpu0', pfn: devmem.pfn_first + 9 });
  });

  it('F-DEVMEM-5: public device pages are freed through ops.free too', () => {
    const k = bootSmall();
    const ops = recordingOps();
    const devmem = hmm_devmem_add_resource(
      k,
      ops,
      new device('cdm0'),
      publicResource(k, 8 * G, SECTION),
    ) as hmm_devmem;
    const page = k.mem.pfn_to_page(devmem.pfn_first);
    get_page(k, page);
    k.mem.mapping[page] = 5;
    put_page(k, page);
    expect(ops.freed).toEqual([{ devmem, page }]);
    expect(k.mem.mapping[page]).toBe(0);
  });

  it('F-DEVMEM-5: a CPU fault on a device page dispatches to ops.fault with the page', () => {
    const k = bootSmall();
    const ops = recordingOps(VM_FAULT_MAJOR);
    const devmem = add(k, 'gpu0', 128 * M, ops);
    const page = k.mem.pfn_to_page(devmem.pfn_first + 1);
    const pgmap = page_pgmap(k, page)!;
    const vma = anonVma(0x7f0000000000, 0x7f0000200000);
    expect(pgmap.page_fault!(vma, 0x7f0000001000, page, 0x1, null)).toBe(VM_FAULT_MAJOR);
    expect(ops.faults).toEqual([{ devmem, vma, addr: 0x7f0000001000, page, flags: 0x1 }]);
  });

  it('F-DEVMEM-6: hmm_vma_alloc_locked_page returns a locked system page with refcount 1', () => {
    const k = bootSmall();
    const dma32 = k.node.node_zones[ZONE_DMA32]!;
    const free = dma32.nr_free_pages;
    const vma = anonVma(0x400000, 0x600000);
    const page = hmm_vma_alloc_locked_page(k, vma, 0x401000);
    expect(page).toBeGreaterThanOrEqual(0);
    expect(PageLocked(k, page)).toBe(true);
    expect(page_count(k, page)).toBe(1);
    expect(page_zonenum(k, page)).toBe(ZONE_DMA32);
    expect(dma32.nr_free_pages).toBe(free - 1);
  });

  it('F-DEVMEM-6: hmm_vma_alloc_locked_page returns NULL (-1) when the allocator fails', () => {
    const k = bootSmall();
    const free = k.node.node_zones[ZONE_DMA32]!.nr_free_pages;
    k.fault.inject('alloc_pages');
    expect(hmm_vma_alloc_locked_page(k, anonVma(0x400000, 0x401000), 0x400000)).toBe(-1);
    expect(k.node.node_zones[ZONE_DMA32]!.nr_free_pages).toBe(free);
  });
});

describe('mm/hmm.c: hmm_device', () => {
  it('F-DEVICE-1: hmm_device_new hands out minors 0..255 as hmm_device%d; the 257th is -EBUSY; put frees the minor', () => {
    const k = bootSmall();
    const devs: hmm_device[] = [];
    for (let i = 0; i < HMM_DEVICE_MAX; i++) {
      const d = hmm_device_new(k, { i });
      if (IS_ERR(d)) throw new Error(`hmm_device_new #${i}: ${d}`);
      devs.push(d);
    }
    expect(HMM_DEVICE_MAX).toBe(256);
    expect(devs.map((d) => d.minor)).toEqual([...Array(256).keys()]);
    expect(devs[0]!.name).toBe('hmm_device0');
    expect(devs[255]!.name).toBe('hmm_device255');
    expect(devs[7]!.drvdata).toEqual({ i: 7 });
    expect(hmm_device_new(k, null)).toBe(-EBUSY);

    hmm_device_put(k, devs[17]!);
    hmm_device_put(k, devs[3]!);
    const again = hmm_device_new(k, 'again') as hmm_device;
    expect([again.minor, again.name]).toEqual([3, 'hmm_device3']);
    const again2 = hmm_device_new(k, 'again') as hmm_device;
    expect(again2.name).toBe('hmm_device17');
    expect(hmm_device_new(k, null)).toBe(-EBUSY);
  });

  it('F-DEVICE-1: an allocation failure is -ENOMEM and takes no minor', () => {
    const k = bootSmall();
    k.fault.inject('kmalloc');
    expect(hmm_device_new(k, null)).toBe(-ENOMEM);
    expect((hmm_device_new(k, null) as hmm_device).name).toBe('hmm_device0');
  });
});
