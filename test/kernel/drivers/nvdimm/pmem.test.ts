import { describe, it, expect } from 'vitest';
import type { Kernel } from '../../../../src-main/kernel/kernel';
import {
  G,
  M,
  PAGE,
  SECTION,
  bootSmall,
  findResource,
  iomemSnapshot,
  presentSections,
  recordLog,
  warnings,
} from '../../helpers';
import {
  probeDevice,
  removeDevice,
  type BoundDevice,
  type DeviceConfig,
} from '../../../../src-main/drivers/builtin';
import { PFN_DEV, PFN_MAP, type PmemMode } from '../../../../src-main/kernel/drivers/nvdimm/pmem';
import { EBUSY, ENOMEM } from '../../../../src-main/kernel/include/errno';
import {
  IORESOURCE_BUSY,
  IORES_DESC_PERSISTENT_MEMORY,
  resourceFlagNames,
} from '../../../../src-main/kernel/include/ioport';
import { MEMORY_DEVICE_HOST } from '../../../../src-main/kernel/include/memremap';
import { ZONE_DEVICE } from '../../../../src-main/kernel/include/mmzone';
import { get_page, page_zonenum, put_page } from '../../../../src-main/kernel/include/mm';
import { get_dev_pagemap, page_pgmap, put_dev_pagemap } from '../../../../src-main/kernel/kernel/memremap';

function pmemConfig(name: string, start: number, memory: number, mode?: PmemMode): DeviceConfig {
  return { name, kind: 'pmem', memory, start, driver: 'pmem', ...(mode ? { mode } : {}) };
}

function probe(k: Kernel, cfg: DeviceConfig): BoundDevice {
  const bound = probeDevice(k, cfg);
  if (typeof bound === 'number') throw new Error(`probe ${cfg.name}: ${bound}`);
  return bound;
}

describe('drivers/nvdimm/pmem.c: the queue usage counter as pagemap ref', () => {
  it('F-PGMAP-6: fsdax maps the namespace with the request queue q_usage_counter as the pgmap ref', () => {
    const k = bootSmall();
    const log = recordLog(k);
    const bound = probe(k, pmemConfig('pmem0', 8 * G, 256 * M));
    const pmem = bound.pmem!;
    expect(pmem.pmem_queue).not.toBeNull();
    expect(pmem.pgmap!.ref).toBe(pmem.pmem_queue!.q_usage_counter);
    expect(pmem.pgmap!.type).toBe(MEMORY_DEVICE_HOST);
    expect(pmem.pfn_flags).toBe(PFN_DEV | PFN_MAP);
    expect([pmem.phys_addr, pmem.size, pmem.virt_addr]).toEqual([8 * G, 256 * M, 8 * G]);
    expect(pmem.pmem_queue!.dying).toBe(false);
    expect(pmem.pmem_queue!.q_usage_counter.count).toBe(1);

    // The first (raw namespace) round found a pfn info block and dropped its queue.
    expect(pmem.dropped_queues).toHaveLength(1);
    const dropped = pmem.dropped_queues[0]!;
    expect(dropped).not.toBe(pmem.pmem_queue);
    expect(dropped.dying).toBe(true);
    expect(dropped.q_usage_counter.dead).toBe(true);
    expect(dropped.q_usage_counter.exited).toBe(true);
    expect(log.map((l) => [l.level, l.text])).toEqual([
      ['debug', 'pmem0: nd_pmem_probe: pfn info block found (-ENXIO), re-probing'],
    ]);

    // The namespace's range: the firmware's Persistent Memory, the driver's busy region inside.
    const platform = findResource(k, 'Persistent Memory')!;
    expect(platform.desc).toBe(IORES_DESC_PERSISTENT_MEMORY);
    expect(platform.child!.name).toBe('pmem0');
    expect(resourceFlagNames(platform.child!.flags)).toEqual(['MEM', 'BUSY']);
    expect(platform.child!.flags & IORESOURCE_BUSY).not.toBe(0);

    const page = k.mem.pfn_to_page((8 * G) / PAGE + 100);
    expect(page_zonenum(k, page)).toBe(ZONE_DEVICE);
    expect(page_pgmap(k, page)).toBe(pmem.pgmap);
  });

  it('F-PGMAP-6: a page in use pins the queue counter, and removal waits for it', () => {
    const k = bootSmall();
    const before = { sections: presentSections(k), iomem: iomemSnapshot(k) };
    const bound = probe(k, pmemConfig('pmem0', 8 * G, SECTION));
    const pmem = bound.pmem!;
    const q = pmem.pmem_queue!;
    const page = k.mem.pfn_to_page((8 * G) / PAGE + 1);
    get_page(k, page);
    expect(q.q_usage_counter.count).toBe(2);
    const pinned = get_dev_pagemap(k, (8 * G) / PAGE, null);
    expect(pinned).toBe(pmem.pgmap);
    expect(q.q_usage_counter.count).toBe(3);

    const done = removeDevice(k, bound);
    expect(warnings(k)).toEqual(['WARNING: pmem0: devm_memremap_pages_release: page mapping is still live!']);
    expect(done.done).toBe(false);
    expect(q.q_usage_counter.dead).toBe(true);
    expect(q.q_usage_counter.count).toBe(2);
    expect(k.mem.present_section_nr((8 * G) / SECTION)).toBe(true);
    // Dying: a lookup no longer pins it.
    expect(get_dev_pagemap(k, (8 * G) / PAGE, null)).toBeNull();

    put_page(k, page);
    expect(done.done).toBe(false);
    put_dev_pagemap(pinned);
    expect(done.done).toBe(true);
    expect(q.dying).toBe(true);
    expect(presentSections(k)).toEqual(before.sections);
    expect(iomemSnapshot(k)).toEqual(before.iomem);
    expect(k.pgmap_index.size).toBe(0);
    expect(bound.dev.devres).toEqual([]);
  });

  it('F-PGMAP-6: sector (BTT) mode keeps no queue of pmem and maps no pages', () => {
    const k = bootSmall();
    const sections = presentSections(k);
    const log = recordLog(k);
    const bound = probe(k, pmemConfig('pmem0', 8 * G, 256 * M, 'sector'));
    const pmem = bound.pmem!;
    expect(pmem.pmem_queue).toBeNull();
    expect(pmem.pgmap).toBeNull();
    expect(pmem.pfn_flags).toBe(PFN_DEV);
    expect(presentSections(k)).toEqual(sections);
    expect(k.pgmap_index.size).toBe(0);
    // Round one (namespace: btt info block found) and round two (the btt device, which
    // allocates its own queue) each drop the queue pmem_alloc made.
    expect(pmem.dropped_queues).toHaveLength(2);
    expect(pmem.dropped_queues.every((q) => q.dying && q.q_usage_counter.dead)).toBe(true);
    expect(pmem.dropped_queues[0]).not.toBe(pmem.dropped_queues[1]);
    expect(log.map((l) => l.text)).toEqual([
      'pmem0: nd_pmem_probe: btt info block found (-ENXIO), re-probing',
    ]);
    expect(removeDevice(k, bound).done).toBe(true);
    expect(findResource(k, 'Persistent Memory')).toBeUndefined();
  });

  it('F-PGMAP-6: raw mode keeps its queue and maps no pages', () => {
    const k = bootSmall();
    const sections = presentSections(k);
    const bound = probe(k, pmemConfig('pmem0', 8 * G, 256 * M, 'raw'));
    const pmem = bound.pmem!;
    expect(pmem.pmem_queue!.dying).toBe(false);
    expect(pmem.dropped_queues).toEqual([]);
    expect(pmem.pgmap).toBeNull();
    expect(pmem.pfn_flags).toBe(PFN_DEV);
    expect(presentSections(k)).toEqual(sections);
    const q = pmem.pmem_queue!;
    expect(removeDevice(k, bound).done).toBe(true);
    expect(q.dying).toBe(true);
    expect(q.q_usage_counter.exited).toBe(true);
  });

  it('F-PGMAP-6: a failing queue allocation is -ENOMEM and leaves nothing behind', () => {
    for (const [mode, skip] of [
      ['fsdax', 0],
      ['fsdax', 1],
      ['raw', 0],
      ['sector', 1],
    ] as const) {
      const k = bootSmall();
      const before = { sections: presentSections(k), iomem: iomemSnapshot(k) };
      k.fault.inject('blk_alloc_queue', { skip });
      expect(probeDevice(k, pmemConfig('pmem0', 8 * G, SECTION, mode))).toBe(-ENOMEM);
      expect(presentSections(k)).toEqual(before.sections);
      expect(iomemSnapshot(k)).toEqual(before.iomem);
    }
  });

  it('F-PGMAP-3: a second namespace in a section already mapped is -EBUSY and names the holder', () => {
    const k = bootSmall();
    const a = probe(k, pmemConfig('pmem0', 8 * G, 64 * M));
    const iomem = iomemSnapshot(k);
    const log = recordLog(k);
    expect(probeDevice(k, pmemConfig('pmem1', 8 * G + 64 * M, 64 * M))).toBe(-EBUSY);
    expect(log.filter((l) => l.level === 'err').map((l) => l.text)).toEqual([
      'pmem1: devm_memremap_pages: collides with mapping for pmem0',
    ]);
    // pmem1's region, queue and platform resource are gone; pmem0 is untouched.
    expect(iomemSnapshot(k)).toEqual(iomem);
    expect(k.pgmap_index.get((8 * G) / SECTION)).toBe(a.pmem!.pgmap);
    expect(a.pmem!.pmem_queue!.dying).toBe(false);
  });

  it('F-PGMAP-6: a namespace whose region is taken is -EBUSY', () => {
    const k = bootSmall();
    k.fault.inject('request_region');
    const log = recordLog(k);
    expect(probeDevice(k, pmemConfig('pmem0', 8 * G, SECTION))).toBe(-EBUSY);
    expect(log.map((l) => l.text)).toEqual(['pmem0: could not reserve region [mem 0x200000000-0x207ffffff]']);
    expect(findResource(k, 'Persistent Memory')).toBeUndefined();
  });
});
