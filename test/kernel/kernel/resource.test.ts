import { describe, it, expect } from 'vitest';
import { G, M, K, bootSmall, findResource, iomemSnapshot, recordLog, topLevel } from '../helpers';
import {
  children,
  insert_resource,
  insert_resource_conflict,
  region_intersects,
  release_mem_region,
  request_mem_region,
  request_resource,
  request_resource_conflict,
  resource,
  resource_size,
} from '../../../src-main/kernel/kernel/resource';
import { EBUSY } from '../../../src-main/kernel/include/errno';
import {
  IORESOURCE_BUSY,
  IORESOURCE_MEM,
  IORESOURCE_SYSRAM,
  IORESOURCE_SYSTEM_RAM,
  IORES_DESC_ACPI_NV_STORAGE,
  IORES_DESC_ACPI_TABLES,
  IORES_DESC_CRASH_KERNEL,
  IORES_DESC_DEVICE_PRIVATE_MEMORY,
  IORES_DESC_DEVICE_PUBLIC_MEMORY,
  IORES_DESC_NAMES,
  IORES_DESC_NONE,
  IORES_DESC_PERSISTENT_MEMORY,
  IORES_DESC_PERSISTENT_MEMORY_LEGACY,
  IORES_DESC_UNADDRESSABLE_MEMORY,
  REGION_DISJOINT,
  REGION_INTERSECTS,
  REGION_MIXED,
  resourceFlagNames,
} from '../../../src-main/kernel/include/ioport';
import { probeDevice, type BoundDevice } from '../../../src-main/drivers/builtin';

/** 1 GiB of RAM, a 64 MiB reserved hole right above it and the PCI window at 3 GiB. */
function machine() {
  return bootSmall({
    reserved: [
      { name: 'Reserved', start: G, size: 64 * M },
      { name: 'PCI Bus 0000:00', start: 3 * G, size: G },
    ],
  });
}

const SYSRAM_BUSY = (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0;

describe('kernel/resource.c: the iomem_resource tree', () => {
  it('F-RES-1: boot puts System RAM and reserved ranges at the top level and nests the kernel image in RAM', () => {
    const k = machine();
    expect(k.iomem_resource.start).toBe(0);
    expect(k.iomem_resource.end).toBe(2 ** 46 - 1);
    expect(topLevel(k).map((r) => [r.name, r.start, r.end])).toEqual([
      ['System RAM', 0, G - 1],
      ['Reserved', G, G + 64 * M - 1],
      ['PCI Bus 0000:00', 3 * G, 4 * G - 1],
    ]);
    const ram = topLevel(k)[0]!;
    expect(ram.flags >>> 0).toBe(SYSRAM_BUSY);
    expect([...children(ram)].map((r) => [r.name, r.start, r.end])).toEqual([
      ['Kernel code', 0x1000000, 0x1dfffff],
      ['Kernel rodata', 0x1e00000, 0x23fffff],
      ['Kernel data', 0x2400000, 0x27fffff],
      ['Kernel bss', 0x2800000, 0x2ffffff],
    ]);
    for (const c of children(ram)) expect(c.parent).toBe(ram);
  });

  it('F-RES-1: request_resource_conflict links a free range in address order and returns the resource it collides with', () => {
    const k = machine();
    const ram = findResource(k, 'System RAM')!;
    const free = new resource('free', 2 * G, 2 * G + M - 1);
    expect(request_resource_conflict(k.iomem_resource, free)).toBeNull();
    expect(free.parent).toBe(k.iomem_resource);
    expect(topLevel(k).map((r) => r.name)).toEqual(['System RAM', 'Reserved', 'free', 'PCI Bus 0000:00']);

    const straddle = new resource('straddle', G - 4 * K, G + 4 * K - 1);
    expect(request_resource_conflict(k.iomem_resource, straddle)).toBe(ram);
    expect(straddle.parent).toBeNull();
    expect(request_resource(k.iomem_resource, straddle)).toBe(-EBUSY);

    // Outside the root, or an empty (end < start) range: the root itself is the conflict.
    const beyond = new resource('beyond', 2 ** 46, 2 ** 46 + M - 1);
    expect(request_resource_conflict(k.iomem_resource, beyond)).toBe(k.iomem_resource);
    expect(request_resource_conflict(k.iomem_resource, new resource('empty', 5 * G, 5 * G - 1))).toBe(
      k.iomem_resource,
    );
    // A conflict never nests: the new range inside RAM still collides with RAM.
    expect(request_resource_conflict(k.iomem_resource, new resource('inside', 16 * M, 16 * M + 4095))).toBe(
      ram,
    );
  });

  it('F-RES-1: insert_resource adopts the resources it covers, nests inside the one covering it, refuses a partial overlap', () => {
    const k = machine();
    const a = new resource('a', 8 * G, 8 * G + M - 1);
    const b = new resource('b', 8 * G + 2 * M, 8 * G + 3 * M - 1);
    expect(insert_resource(k.iomem_resource, a)).toBe(0);
    expect(insert_resource(k.iomem_resource, b)).toBe(0);

    const c = new resource('c', 8 * G, 8 * G + 4 * M - 1);
    expect(insert_resource_conflict(k.iomem_resource, c)).toBeNull();
    expect(c.parent).toBe(k.iomem_resource);
    expect([...children(c)]).toEqual([a, b]);
    expect(a.parent).toBe(c);
    expect(b.parent).toBe(c);
    expect(topLevel(k).map((r) => r.name)).toEqual(['System RAM', 'Reserved', 'PCI Bus 0000:00', 'c']);

    const d = new resource('d', 8 * G + 2 * M + 4 * K, 8 * G + 2 * M + 8 * K - 1);
    expect(insert_resource(k.iomem_resource, d)).toBe(0);
    expect(d.parent).toBe(b);

    // Same span as an existing resource: it goes on top of it.
    const b2 = new resource('b2', b.start, b.end);
    expect(insert_resource(k.iomem_resource, b2)).toBe(0);
    expect(b2.parent).toBe(c);
    expect([...children(b2)]).toEqual([b]);

    const partial = new resource('partial', 8 * G + 3 * M, 8 * G + 5 * M - 1);
    expect(insert_resource_conflict(k.iomem_resource, partial)).toBe(c);
    expect(insert_resource(k.iomem_resource, partial)).toBe(-EBUSY);
    expect(partial.parent).toBeNull();
  });

  it('F-RES-1: request_mem_region nests a busy region into non-busy containers and fails on a busy one', () => {
    const k = machine();
    const pci = findResource(k, 'PCI Bus 0000:00')!;
    const bar = request_mem_region(k, 3 * G + 16 * M, M, 'bar0');
    expect(bar).not.toBeNull();
    expect(bar!.parent).toBe(pci);
    expect([bar!.start, bar!.end]).toEqual([3 * G + 16 * M, 3 * G + 17 * M - 1]);
    expect(resourceFlagNames(bar!.flags)).toEqual(['MEM', 'BUSY']);

    // Nested two levels: a non-busy window inside PCI, then a region inside it.
    const window = new resource('window', 3 * G + 64 * M, 3 * G + 128 * M - 1);
    expect(insert_resource(k.iomem_resource, window)).toBe(0);
    expect(window.parent).toBe(pci);
    const bar1 = request_mem_region(k, 3 * G + 64 * M, 4 * K, 'bar1');
    expect(bar1!.parent).toBe(window);

    // Busy ranges: the region just taken, System RAM, and a nested kernel image part.
    expect(request_mem_region(k, 3 * G + 16 * M, M, 'again')).toBeNull();
    expect(request_mem_region(k, 3 * G + 16 * M + 4 * K, 4 * K, 'inside-bar0')).toBeNull();
    expect(request_mem_region(k, 256 * M, M, 'in-ram')).toBeNull();
    // Partial overlap with a non-busy container: it is entered, and the region overflows it.
    expect(request_mem_region(k, 4 * G - M, 2 * M, 'overflow')).toBeNull();

    const top = request_mem_region(k, 8 * G, 128 * M, 'top');
    expect(top!.parent).toBe(k.iomem_resource);
    expect(top!.flags & IORESOURCE_SYSRAM).toBe(0);
    expect(resource_size(top!)).toBe(128 * M);
  });

  it('F-RES-1: release_mem_region frees an exact busy region and warns for one that does not exist', () => {
    const k = machine();
    const pci = findResource(k, 'PCI Bus 0000:00')!;
    request_mem_region(k, 3 * G + 16 * M, M, 'bar0');
    const log = recordLog(k);
    release_mem_region(k, 3 * G + 16 * M, M);
    expect([...children(pci)]).toEqual([]);
    expect(log).toEqual([]);

    release_mem_region(k, 3 * G + 16 * M, M);
    expect(log.map((l) => [l.level, l.text])).toEqual([
      ['warn', 'Trying to free nonexistent resource <00000000c1000000-00000000c10fffff>'],
    ]);

    // Not an exact match of a busy region: nothing is released.
    request_mem_region(k, 8 * G, 2 * M, 'two');
    const before = iomemSnapshot(k);
    release_mem_region(k, 8 * G, M);
    expect(iomemSnapshot(k)).toEqual(before);
    expect(log.at(-1)!.text).toBe('Trying to free nonexistent resource <0000000200000000-00000002000fffff>');
    // System RAM is busy but not a requested region of this size.
    release_mem_region(k, 0, M);
    expect(log.at(-1)!.text).toBe('Trying to free nonexistent resource <0000000000000000-00000000000fffff>');
    expect(findResource(k, 'System RAM')).toBeDefined();
  });
});

describe('kernel/resource.c: region_intersects', () => {
  it('F-RES-2: System RAM queries answer DISJOINT, INTERSECTS and MIXED as kernel/resource.c counts them', () => {
    const k = machine();
    const ram = (start: number, size: number) =>
      region_intersects(k, start, size, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE);
    expect(ram(256 * M, 128 * M)).toBe(REGION_INTERSECTS);
    expect(ram(0, G)).toBe(REGION_INTERSECTS);
    expect(ram(G - 4 * K, 4 * K)).toBe(REGION_INTERSECTS);
    // end is inclusive: a range starting right after RAM does not touch it.
    expect(ram(G, 4 * K)).toBe(REGION_DISJOINT);
    // RAM and the reserved hole above it.
    expect(ram(G - 4 * K, 8 * K)).toBe(REGION_MIXED);
    // Only a non-RAM resource: "other" alone is DISJOINT.
    expect(ram(3 * G, 128 * M)).toBe(REGION_DISJOINT);
    // Nothing there at all.
    expect(ram(2 * G, 128 * M)).toBe(REGION_DISJOINT);
    // RAM plus empty space (no other resource) is INTERSECTS, not MIXED.
    const k2 = bootSmall();
    expect(region_intersects(k2, G - 64 * M, 128 * M, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE)).toBe(
      REGION_INTERSECTS,
    );
  });

  it('F-RES-2: only top-level resources count; nested ones are invisible', () => {
    const k = machine();
    const acpi = new resource(
      'ACPI Tables',
      512 * M,
      512 * M + 64 * K - 1,
      IORESOURCE_MEM,
      IORES_DESC_ACPI_TABLES,
    );
    expect(insert_resource(k.iomem_resource, acpi)).toBe(0);
    expect(acpi.parent!.name).toBe('System RAM');
    // System RAM (desc NONE) is what overlaps: it is not of the ACPI type.
    expect(region_intersects(k, 512 * M, 64 * K, IORESOURCE_MEM, IORES_DESC_ACPI_TABLES)).toBe(
      REGION_DISJOINT,
    );
    expect(region_intersects(k, 512 * M, 64 * K, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE)).toBe(
      REGION_INTERSECTS,
    );
    // A busy region requested inside PCI does not make the PCI window "System RAM".
    request_mem_region(k, 3 * G, M, 'bar0');
    expect(region_intersects(k, 3 * G, M, IORESOURCE_MEM, IORES_DESC_NONE)).toBe(REGION_INTERSECTS);
    expect(region_intersects(k, 3 * G, M, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE)).toBe(REGION_DISJOINT);
  });

  it('F-RES-2: a resource is of the type when it has all the flags and, unless desc is NONE, that desc', () => {
    const k = machine();
    const pmem = new resource(
      'Persistent Memory',
      G + 64 * M,
      G + 128 * M - 1,
      IORESOURCE_MEM,
      IORES_DESC_PERSISTENT_MEMORY,
    );
    expect(insert_resource(k.iomem_resource, pmem)).toBe(0);
    // flags 0, desc NONE: every resource is of the type (hmm_devmem_add's free-range test).
    expect(region_intersects(k, G - 4 * K, 8 * K, 0, IORES_DESC_NONE)).toBe(REGION_INTERSECTS);
    expect(region_intersects(k, 2 * G, 4 * K, 0, IORES_DESC_NONE)).toBe(REGION_DISJOINT);
    // IORESOURCE_MEM: RAM and the reserved hole are both memory.
    expect(region_intersects(k, G - 4 * K, 8 * K, IORESOURCE_MEM, IORES_DESC_NONE)).toBe(REGION_INTERSECTS);
    // SYSRAM needs both bits: the reserved hole has MEM only.
    expect(region_intersects(k, G, 4 * K, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE)).toBe(REGION_DISJOINT);
    // desc must match when given.
    const pm = (start: number, size: number) =>
      region_intersects(k, start, size, IORESOURCE_MEM, IORES_DESC_PERSISTENT_MEMORY);
    expect(pm(G + 64 * M, 4 * K)).toBe(REGION_INTERSECTS);
    expect(pm(G + 60 * M, 8 * M)).toBe(REGION_MIXED);
    expect(pm(G - 4 * K, 8 * K)).toBe(REGION_DISJOINT);
    expect(region_intersects(k, G + 64 * M, 4 * K, IORESOURCE_MEM, IORES_DESC_DEVICE_PUBLIC_MEMORY)).toBe(
      REGION_DISJOINT,
    );
  });
});

describe('include/linux/ioport.h: resource descriptors', () => {
  it('F-RES-3: IORES_DESC_* carry the kernel values, UNADDRESSABLE_MEMORY (001) being DEVICE_PRIVATE_MEMORY', () => {
    expect([
      IORES_DESC_NONE,
      IORES_DESC_CRASH_KERNEL,
      IORES_DESC_ACPI_TABLES,
      IORES_DESC_ACPI_NV_STORAGE,
      IORES_DESC_PERSISTENT_MEMORY,
      IORES_DESC_PERSISTENT_MEMORY_LEGACY,
      IORES_DESC_DEVICE_PRIVATE_MEMORY,
      IORES_DESC_DEVICE_PUBLIC_MEMORY,
    ]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(IORES_DESC_UNADDRESSABLE_MEMORY).toBe(IORES_DESC_DEVICE_PRIVATE_MEMORY);
    expect(IORES_DESC_NAMES[IORES_DESC_DEVICE_PRIVATE_MEMORY]).toBe('DEVICE_PRIVATE_MEMORY');
    expect(IORES_DESC_NAMES[IORES_DESC_DEVICE_PUBLIC_MEMORY]).toBe('DEVICE_PUBLIC_MEMORY');
    expect(IORES_DESC_NAMES[IORES_DESC_PERSISTENT_MEMORY]).toBe('PERSISTENT_MEMORY');
    expect(IORES_DESC_NAMES[IORES_DESC_ACPI_NV_STORAGE]).toBe('ACPI_NV_STORAGE');
  });

  it('F-RES-3: probed devices describe their ranges: private, public and persistent memory', () => {
    const k = bootSmall();
    const gpu = probeDevice(k, {
      name: 'gpu0',
      kind: 'private',
      memory: 256 * M,
      driver: 'dmirror',
    }) as BoundDevice;
    const cdm = probeDevice(k, {
      name: 'cdm0',
      kind: 'public',
      memory: 128 * M,
      start: 8 * G,
      driver: 'dmirror',
    }) as BoundDevice;
    const pm = probeDevice(k, {
      name: 'pmem0',
      kind: 'pmem',
      memory: 128 * M,
      start: 16 * G,
      driver: 'pmem',
    });
    expect(typeof pm).toBe('object');
    expect(gpu.devmem!.resource!.desc).toBe(IORES_DESC_DEVICE_PRIVATE_MEMORY);
    expect(cdm.devmem!.resource!.desc).toBe(IORES_DESC_DEVICE_PUBLIC_MEMORY);
    expect(findResource(k, 'cdm0 memory')!.desc).toBe(IORES_DESC_DEVICE_PUBLIC_MEMORY);
    expect(findResource(k, 'Persistent Memory')!.desc).toBe(IORES_DESC_PERSISTENT_MEMORY);
    expect(topLevel(k).map((r) => [r.name, IORES_DESC_NAMES[r.desc]])).toEqual([
      ['System RAM', 'NONE'],
      ['cdm0 memory', 'DEVICE_PUBLIC_MEMORY'],
      ['Persistent Memory', 'PERSISTENT_MEMORY'],
      ['gpu0', 'DEVICE_PRIVATE_MEMORY'],
    ]);
    expect(
      region_intersects(k, 2 ** 46 - 256 * M, 4 * K, IORESOURCE_MEM, IORES_DESC_DEVICE_PRIVATE_MEMORY),
    ).toBe(REGION_INTERSECTS);
  });
});
