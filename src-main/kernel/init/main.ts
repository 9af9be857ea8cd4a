// init/main.c + the e820/memblock part of setup_arch: boot a machine from its firmware
// memory map. RAM ranges become "System RAM", reserved ranges keep their names, the
// kernel image sits at 16 MiB, and every RAM page goes to its zone and the allocator.
import { Kernel } from '../kernel';
import { ALIGN, ALIGN_DOWN, type KernelConfig } from '../include/config';
import { IORESOURCE_BUSY, IORESOURCE_MEM, IORESOURCE_SYSTEM_RAM } from '../include/ioport';
import { ZONE_DMA, ZONE_DMA32, ZONE_NORMAL } from '../include/mmzone';
import { insert_resource_conflict, resource } from '../kernel/resource';
import { resize_zone_range } from '../mm/mmzone';
import { alloc_pages, free_pfn_range, GFP_KERNEL, memmap_init_zone } from '../mm/page_alloc';
import { PG_reserved } from '../include/page-flags';
import { MAX_MEMMAP_PAGES } from '../mm/sparse';

export interface MemRange {
  start: number;
  size: number;
}

export interface BootParams {
  config: KernelConfig;
  /** e820 usable ranges, ascending and disjoint. */
  ram: MemRange[];
  reserved: (MemRange & { name: string })[];
  /** Device memory the machine will hotplug, so the memmap is sized once at boot. */
  expectedDeviceBytes?: number;
}

/** Where x86-64 loads the kernel image, and its parts (all inside the first RAM above it). */
const KERNEL_IMAGE: [string, number, number][] = [
  ['Kernel code', 0x1000000, 0xe00000],
  ['Kernel rodata', 0x1e00000, 0x600000],
  ['Kernel data', 0x2400000, 0x400000],
  ['Kernel bss', 0x2800000, 0x800000],
];

/** Zone limits in bytes: DMA below 16 MiB, DMA32 below 4 GiB. */
const ZONE_LIMITS: [number, number][] = [
  [ZONE_DMA, 16 * 2 ** 20],
  [ZONE_DMA32, 4 * 2 ** 30],
  [ZONE_NORMAL, Infinity],
];

export class BootError extends Error {}

export function start_kernel(p: BootParams): Kernel {
  const sec = 2 ** p.config.sectionSizeBits;
  const sections = new Set<number>();
  for (const r of p.ram)
    for (let a = ALIGN_DOWN(r.start, sec); a < r.start + r.size; a += sec) sections.add(a / sec);
  const reserve = sections.size + Math.ceil((p.expectedDeviceBytes ?? 0) / sec) + 1;
  const k = new Kernel(p.config, reserve);
  if (sections.size * k.c.PAGES_PER_SECTION > MAX_MEMMAP_PAGES)
    throw new BootError(
      `${sections.size} sections of RAM exceed the lab's memmap limit of ${MAX_MEMMAP_PAGES} pages`,
    );

  e820_reserve_resources(k, p);
  for (const nr of [...sections].sort((a, b) => a - b)) k.mem.sparse_add_one_section(nr, false);

  const pageSize = k.c.PAGE_SIZE;
  const reservedPfns = boot_reserved_ranges(k, p).map((r) => [
    r.start / pageSize,
    (r.start + r.size) / pageSize,
  ]);
  for (const r of p.ram) {
    let lo = r.start;
    const end = r.start + r.size;
    for (const [zi, limit] of ZONE_LIMITS) {
      if (lo >= end) break;
      const hi = Math.min(end, limit);
      if (hi <= lo) continue;
      const z = k.node.node_zones[zi]!;
      const startPfn = lo / pageSize;
      const nr = (hi - lo) / pageSize;
      resize_zone_range(z, startPfn, nr);
      z.present_pages += nr;
      memmap_init_zone(k, z, startPfn, nr);
      for (const [a, b] of subtract([startPfn, startPfn + nr], reservedPfns)) free_pfn_range(k, a, b - a);
      lo = hi;
    }
  }
  alloc_zero_pages(k);
  k.printk('info', `Memory: ${Math.round((totalFree(k) * pageSize) / 1024)}K available`);
  return k;
}

/** empty_zero_page and the huge zero page: reserved, never freed, read as zeroes. */
function alloc_zero_pages(k: Kernel): void {
  const zero = alloc_pages(k, GFP_KERNEL, 0);
  const huge = alloc_pages(k, GFP_KERNEL, Math.log2(k.c.HPAGE_PMD_NR));
  if (zero < 0 || huge < 0) throw new BootError('not enough RAM for the zero pages');
  k.zero_pfn = k.mem.page_to_pfn(zero);
  k.huge_zero_pfn = k.mem.page_to_pfn(huge);
  for (const [page, n] of [
    [zero, 1],
    [huge, k.c.HPAGE_PMD_NR],
  ] as const)
    k.mem.flags.fill((k.mem.flags[page]! | PG_reserved) >>> 0, page, page + n);
}

function e820_reserve_resources(k: Kernel, p: BootParams): void {
  for (const r of p.ram) {
    const res = new resource(
      'System RAM',
      r.start,
      r.start + r.size - 1,
      (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0,
    );
    const conflict = insert_resource_conflict(k.iomem_resource, res);
    if (conflict) throw new BootError(`System RAM ${span(res)} overlaps ${conflict.name} ${span(conflict)}`);
  }
  for (const r of p.reserved) {
    const res = new resource(r.name, r.start, r.start + r.size - 1, IORESOURCE_MEM);
    const conflict = insert_resource_conflict(k.iomem_resource, res);
    if (conflict)
      throw new BootError(
        `reserved range "${r.name}" ${span(res)} partially overlaps ${conflict.name} ${span(conflict)}`,
      );
  }
  for (const [name, start, size] of KERNEL_IMAGE) {
    const host = p.ram.find((r) => r.start <= start && start + size <= r.start + r.size);
    if (!host) continue;
    insert_resource_conflict(
      k.iomem_resource,
      new resource(name, start, start + size - 1, (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0),
    );
  }
}

/** RAM the allocator never gets: the first MiB (BIOS, real mode) and the kernel image. */
function boot_reserved_ranges(k: Kernel, p: BootParams): MemRange[] {
  const out: MemRange[] = [{ start: 0, size: 2 ** 20 }];
  for (const [, start, size] of KERNEL_IMAGE)
    if (p.ram.some((r) => r.start <= start && start + size <= r.start + r.size)) out.push({ start, size });
  return out.map((r) => ({ start: r.start, size: ALIGN(r.size, k.c.PAGE_SIZE) }));
}

/** [a, b) minus every range in `holes`, as a list of disjoint intervals. */
function subtract(range: [number, number], holes: number[][]): [number, number][] {
  let parts: [number, number][] = [range];
  for (const [ha, hb] of holes) {
    parts = parts.flatMap(([a, b]): [number, number][] => {
      if (hb! <= a || ha! >= b) return [[a, b]];
      const out: [number, number][] = [];
      if (ha! > a) out.push([a, ha!]);
      if (hb! < b) out.push([hb!, b]);
      return out;
    });
  }
  return parts;
}

function totalFree(k: Kernel): number {
  return k.node.node_zones.reduce((n, z) => n + z.nr_free_pages, 0);
}

function span(r: resource): string {
  return `[mem 0x${r.start.toString(16)}-0x${r.end.toString(16)}]`;
}
