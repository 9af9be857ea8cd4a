import { describe, it, expect } from 'vitest';
import {
  G,
  M,
  PAGE,
  SECTION,
  bootSmall,
  presentSections,
  recordLog,
  recordTrace,
  topLevel,
  warnings,
} from '../helpers';
import {
  __remove_pages,
  add_memory,
  add_pages,
  mem_hotplug_begin,
  mem_hotplug_done,
  move_pfn_range_to_zone,
  online_pages,
  register_memory_resource,
} from '../../../src-main/kernel/mm/memory_hotplug';
import { device } from '../../../src-main/kernel/drivers/base/core';
import { hmm_devmem_add, hmm_devmem_remove, type hmm_devmem } from '../../../src-main/kernel/mm/hmm';
import { probeDevice, removeDevice, type BoundDevice } from '../../../src-main/drivers/builtin';
import { section_align } from '../../../src-main/kernel/kernel/memremap';
import { EEXIST, EINVAL } from '../../../src-main/kernel/include/errno';
import { IORESOURCE_BUSY, IORESOURCE_SYSTEM_RAM } from '../../../src-main/kernel/include/ioport';
import { ZONE_DEVICE, ZONE_NORMAL } from '../../../src-main/kernel/include/mmzone';
import { ZONE_NONE } from '../../../src-main/kernel/include/page-flags';
import { page_count, page_zonenum } from '../../../src-main/kernel/include/mm';
import { recordingOps } from '../helpers';

const PPS = SECTION / PAGE;
const TOP = 2 ** 46;

describe('mm/memory_hotplug.c: register_memory_resource', () => {
  it('F-HP-1: hot-adding System RAM over device-private memory is -EEXIST with the un-addressable debug line', () => {
    const k = bootSmall();
    const devmem = hmm_devmem_add(k, recordingOps(), new device('gpu0'), 256 * M) as hmm_devmem;
    expect(devmem.resource!.start).toBe(TOP - 256 * M);
    const log = recordLog(k);
    expect(register_memory_resource(k, TOP - 256 * M, SECTION)).toBe(-EEXIST);
    expect(log.map((l) => [l.level, l.text])).toEqual([
      ['debug', 'Device un-addressable memory block memory hotplug at 0x3ffff0000000 !'],
      ['debug', 'System RAM resource [mem 0x3ffff0000000-0x3ffff7ffffff] cannot be added'],
    ]);
    // add_memory goes through it and claims nothing.
    const sections = presentSections(k);
    expect(add_memory(k, 0, TOP - 128 * M, SECTION)).toBe(-EEXIST);
    expect(presentSections(k)).toEqual(sections);
    expect(topLevel(k).map((r) => r.name)).toEqual(['System RAM', 'gpu0']);
  });

  it('F-HP-1: a clash with System RAM or public device memory is -EEXIST without the un-addressable line', () => {
    const k = bootSmall();
    const cdm = probeDevice(k, {
      name: 'cdm0',
      kind: 'public',
      memory: SECTION,
      start: 8 * G,
      driver: 'dmirror',
    });
    expect(typeof cdm).toBe('object');
    const log = recordLog(k);
    expect(register_memory_resource(k, 512 * M, SECTION)).toBe(-EEXIST);
    expect(register_memory_resource(k, 8 * G, SECTION)).toBe(-EEXIST);
    expect(log.map((l) => l.text)).toEqual([
      'System RAM resource [mem 0x20000000-0x27ffffff] cannot be added',
      'System RAM resource [mem 0x200000000-0x207ffffff] cannot be added',
    ]);
  });

  it('F-HP-1: a free range becomes a busy top-level System RAM resource', () => {
    const k = bootSmall();
    const res = register_memory_resource(k, 2 * G, SECTION);
    expect(typeof res).toBe('object');
    if (typeof res === 'number') return;
    expect([res.name, res.start, res.end]).toEqual(['System RAM', 2 * G, 2 * G + SECTION - 1]);
    expect(res.flags >>> 0).toBe((IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0);
    expect(res.parent).toBe(k.iomem_resource);
  });
});

describe('mm/memory_hotplug.c: add_pages, move_pfn_range_to_zone, __remove_pages', () => {
  it('F-HP-2: add_pages creates offline struct pages, move_pfn_range_to_zone puts them in ZONE_DEVICE, __remove_pages undoes both', () => {
    const k = bootSmall();
    const trace = recordTrace(k);
    const dev = k.node.node_zones[ZONE_DEVICE]!;
    const start_pfn = (8 * G) / PAGE;
    const nr = (8 * G) / SECTION;

    mem_hotplug_begin(k);
    expect(add_pages(k, 0, start_pfn, 2 * PPS, false)).toBe(0);
    expect(k.mem.present_section_nr(nr)).toBe(true);
    expect(k.mem.present_section_nr(nr + 1)).toBe(true);
    const page = k.mem.pfn_to_page(start_pfn + 100);
    expect(page_zonenum(k, page)).toBe(ZONE_NONE);
    expect(dev.zone_is_empty()).toBe(true);

    move_pfn_range_to_zone(k, dev, start_pfn, 2 * PPS);
    mem_hotplug_done(k);
    expect(page_zonenum(k, page)).toBe(ZONE_DEVICE);
    expect(page_count(k, page)).toBe(1);
    expect([dev.zone_start_pfn, dev.spanned_pages, dev.present_pages]).toEqual([start_pfn, 2 * PPS, 0]);

    mem_hotplug_begin(k);
    expect(__remove_pages(k, dev, start_pfn, 2 * PPS)).toBe(0);
    mem_hotplug_done(k);
    expect(k.mem.present_section_nr(nr)).toBe(false);
    expect(k.mem.pfn_valid(start_pfn)).toBe(false);
    expect(dev.zone_is_empty()).toBe(true);

    expect(trace).toEqual([
      { name: 'mem_hotplug_begin' },
      { name: 'add_pages', start_pfn, nr_pages: 2 * PPS, linear: false },
      { name: 'move_pfn_range_to_zone', zone: 'Device', start_pfn, nr_pages: 2 * PPS },
      { name: 'mem_hotplug_done' },
      { name: 'mem_hotplug_begin' },
      { name: 'remove_pages', start_pfn, nr_pages: 2 * PPS },
      { name: 'mem_hotplug_done' },
    ]);
    expect(warnings(k)).toEqual([]);
    expect(k.mem_hotplug_depth).toBe(0);
  });

  it('F-HP-2: hmm_devmem_add and hmm_devmem_remove hotplug under mem_hotplug_begin/done', () => {
    const k = bootSmall();
    const trace = recordTrace(k);
    const devmem = hmm_devmem_add(k, recordingOps(), new device('gpu0'), 256 * M) as hmm_devmem;
    const start_pfn = (TOP - 256 * M) / PAGE;
    expect(trace).toEqual([
      { name: 'mem_hotplug_begin' },
      { name: 'add_pages', start_pfn, nr_pages: 2 * PPS, linear: false },
      { name: 'move_pfn_range_to_zone', zone: 'Device', start_pfn, nr_pages: 2 * PPS },
      { name: 'mem_hotplug_done' },
      { name: 'devmem_add', device: 'gpu0', start: TOP - 256 * M, end: TOP - 1, type: 'private' },
    ]);
    trace.length = 0;
    expect(hmm_devmem_remove(k, devmem).done).toBe(true);
    expect(trace).toEqual([
      { name: 'mem_hotplug_begin' },
      { name: 'remove_pages', start_pfn, nr_pages: 2 * PPS },
      { name: 'mem_hotplug_done' },
      { name: 'devmem_remove', device: 'gpu0', start: TOP - 256 * M, end: TOP - 1 },
    ]);
    expect(warnings(k)).toEqual([]);
  });

  it('F-HP-2: calling the hotplug primitives without mem_hotplug_begin WARNs', () => {
    const k = bootSmall();
    const start_pfn = (8 * G) / PAGE;
    const z = k.node.node_zones[ZONE_DEVICE]!;
    expect(add_pages(k, 0, start_pfn, PPS, false)).toBe(0);
    move_pfn_range_to_zone(k, z, start_pfn, PPS);
    __remove_pages(k, z, start_pfn, PPS);
    mem_hotplug_done(k);
    expect(warnings(k)).toEqual([
      'WARNING: add_pages called without mem_hotplug_lock held',
      'WARNING: move_pfn_range_to_zone called without mem_hotplug_lock held',
      'WARNING: __remove_pages called without mem_hotplug_lock held',
      'WARNING: mem_hotplug_done() without mem_hotplug_begin()',
    ]);
    expect(k.mem_hotplug_depth).toBe(0);
  });

  it('F-HP-2: the ZONE_DEVICE span grows over both devices and shrinks back as each is removed', () => {
    // shrink_zone_span reads every present section: keep RAM small.
    const k = bootSmall({ ram: [{ start: 0, size: 256 * M }] });
    const z = k.node.node_zones[ZONE_DEVICE]!;
    const a = hmm_devmem_add(k, recordingOps(), new device('gpu0'), 256 * M) as hmm_devmem;
    const b = hmm_devmem_add(k, recordingOps(), new device('gpu1'), 256 * M) as hmm_devmem;
    const top = TOP / PAGE;
    expect([z.zone_start_pfn, z.zone_end_pfn()]).toEqual([top - 4 * PPS, top]);
    expect(z.present_pages).toBe(0);
    hmm_devmem_remove(k, a);
    expect([z.zone_start_pfn, z.zone_end_pfn()]).toEqual([top - 4 * PPS, top - 2 * PPS]);
    const c = hmm_devmem_add(k, recordingOps(), new device('gpu2'), 128 * M) as hmm_devmem;
    expect(c.pfn_first).toBe(top - PPS);
    hmm_devmem_remove(k, b);
    expect([z.zone_start_pfn, z.spanned_pages]).toEqual([top - PPS, PPS]);
    hmm_devmem_remove(k, c);
    expect(z.zone_is_empty()).toBe(true);
    expect(z.zone_start_pfn).toBe(0);
  });

  it('F-HP-2: add_memory and online_pages grow ZONE_NORMAL and hand the pages to the allocator', () => {
    const k = bootSmall();
    const normal = k.node.node_zones[ZONE_NORMAL]!;
    expect(normal.zone_is_empty()).toBe(true);
    const res = add_memory(k, 0, 4 * G, SECTION);
    expect(typeof res).toBe('object');
    const start_pfn = (4 * G) / PAGE;
    expect(k.mem.pfn_valid(start_pfn)).toBe(true);
    expect(normal.zone_is_empty()).toBe(true);
    expect(online_pages(k, start_pfn, PPS)).toBe(0);
    expect([normal.zone_start_pfn, normal.spanned_pages, normal.present_pages]).toEqual([
      start_pfn,
      PPS,
      PPS,
    ]);
    expect(normal.nr_free_pages).toBe(PPS);
    expect(normal.free_area[10]!.nr_free).toBe(PPS / 1024);
    // Offline pfns: online_pages refuses a range with no struct pages.
    expect(online_pages(k, (6 * G) / PAGE, PPS)).toBe(-EINVAL);
  });

  it('F-HP-2: add_pages refuses unaligned ranges and present sections, undoing its partial work', () => {
    const k = bootSmall();
    const before = presentSections(k);
    mem_hotplug_begin(k);
    expect(add_pages(k, 0, (8 * G) / PAGE + 1, PPS, false)).toBe(-EINVAL);
    expect(add_pages(k, 0, (8 * G) / PAGE, PPS / 2, false)).toBe(-EINVAL);
    // RAM's last section is present.
    expect(add_pages(k, 0, G / PAGE - PPS, 2 * PPS, false)).toBe(-EEXIST);
    expect(presentSections(k)).toEqual(before);
    // A free section followed by a present one: the free one is taken back.
    expect(add_pages(k, 0, (8 * G + SECTION) / PAGE, PPS, false)).toBe(0);
    expect(add_pages(k, 0, (8 * G) / PAGE, 2 * PPS, false)).toBe(-EEXIST);
    expect(presentSections(k)).toEqual([...before, 65]);
    expect(__remove_pages(k, null, (8 * G + SECTION) / PAGE, PPS)).toBe(0);
    const log = recordLog(k);
    expect(__remove_pages(k, null, (8 * G) / PAGE, PPS + 1)).toBe(-EINVAL);
    mem_hotplug_done(k);
    expect(log.map((l) => l.text)).toEqual([
      'WARNING: __remove_pages: range pfn 0x200000+32769 is not section aligned',
    ]);
    expect(presentSections(k)).toEqual(before);
  });

  it('F-HP-2: add_pages beyond MAX_PHYSMEM_BITS is -EINVAL and removes what it added', () => {
    const k = bootSmall({ config: { maxPhysmemBits: 40, physAddrBits: 46 } });
    const before = presentSections(k);
    mem_hotplug_begin(k);
    expect(add_pages(k, 0, 2 ** 40 / PAGE - PPS, 2 * PPS, false)).toBe(-EINVAL);
    mem_hotplug_done(k);
    expect(presentSections(k)).toEqual(before);
  });
});

describe('mm/memory_hotplug.c: section alignment', () => {
  it('F-HP-3: an unaligned public range hotplugs the one section around it', () => {
    const k = bootSmall();
    const trace = recordTrace(k);
    const start = 8 * G + 32 * M;
    const bound = probeDevice(k, { name: 'cdm0', kind: 'public', memory: 64 * M, start, driver: 'dmirror' });
    expect(typeof bound).toBe('object');
    expect(trace.find((e) => e.name === 'add_pages')).toEqual({
      name: 'add_pages',
      start_pfn: (8 * G) / PAGE,
      nr_pages: PPS,
      linear: true,
    });
    expect(presentSections(k).filter((nr) => nr >= 64)).toEqual([64]);
    expect((bound as BoundDevice).devmem!.pfn_first).toBe(start / PAGE);
    expect((bound as BoundDevice).devmem!.pfn_last).toBe((start + 64 * M) / PAGE);
  });

  it('F-HP-3: an unaligned pmem range across a section boundary hotplugs both sections, and removal takes both', () => {
    const k = bootSmall();
    const before = presentSections(k);
    const trace = recordTrace(k);
    const start = 8 * G + 96 * M;
    const bound = probeDevice(k, { name: 'pmem0', kind: 'pmem', memory: 64 * M, start, driver: 'pmem' });
    expect(typeof bound).toBe('object');
    expect(section_align(k, { start, end: start + 64 * M - 1 })).toEqual({ start: 8 * G, size: 2 * SECTION });
    expect(trace.find((e) => e.name === 'add_pages')).toEqual({
      name: 'add_pages',
      start_pfn: (8 * G) / PAGE,
      nr_pages: 2 * PPS,
      linear: true,
    });
    expect(presentSections(k).filter((nr) => nr >= 64)).toEqual([64, 65]);
    expect(removeDevice(k, bound as BoundDevice).done).toBe(true);
    expect(trace.at(-2)).toEqual({ name: 'remove_pages', start_pfn: (8 * G) / PAGE, nr_pages: 2 * PPS });
    expect(presentSections(k)).toEqual(before);
  });

  it('F-HP-3: add_memory refuses a range that is not section-aligned', () => {
    const k = bootSmall();
    const log = recordLog(k);
    expect(add_memory(k, 0, 4 * G + 64 * M, SECTION)).toBe(-EINVAL);
    expect(add_memory(k, 0, 4 * G, 64 * M)).toBe(-EINVAL);
    expect(log.map((l) => l.text)).toEqual([
      'Section-unaligned hotplug range: start 0x104000000, size 0x08000000',
      'Section-unaligned hotplug range: start 0x100000000, size 0x04000000',
    ]);
    expect(topLevel(k).map((r) => r.name)).toEqual(['System RAM']);
  });

  it('F-HP-3: section_align rounds the start down and the end up to PA_SECTION_SIZE', () => {
    const k = bootSmall();
    expect(section_align(k, { start: 0x3ffff0000000, end: 0x3fffffffffff })).toEqual({
      start: 0x3ffff0000000,
      size: 2 * SECTION,
    });
    expect(section_align(k, { start: 8 * G + PAGE, end: 8 * G + 2 * PAGE - 1 })).toEqual({
      start: 8 * G,
      size: SECTION,
    });
    expect(section_align(k, { start: 8 * G - PAGE, end: 8 * G + PAGE - 1 })).toEqual({
      start: 8 * G - SECTION,
      size: 2 * SECTION,
    });
    const k21 = bootSmall({ config: { sectionSizeBits: 21, maxPhysmemBits: 40 } });
    expect(section_align(k21, { start: 8 * G + PAGE, end: 8 * G + 3 * M })).toEqual({
      start: 8 * G,
      size: 4 * M,
    });
  });
});
