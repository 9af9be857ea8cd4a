// The layout snapshot a front end draws: read from the kernel, never recomputed there.
import type { DeviceInfo, LayoutSnapshot, ResourceNode, SectionInfo, ZoneInfo } from '../api';
import { errname } from '../kernel/include/errno';
import { IORES_DESC_NAMES, resourceFlagNames } from '../kernel/include/ioport';
import { MEMORY_TYPE_NAMES } from '../kernel/include/memremap';
import { ZONE_NAMES } from '../kernel/include/mmzone';
import { ZONE_NONE } from '../kernel/include/page-flags';
import { page_zonenum } from '../kernel/include/mm';
import { children, type resource } from '../kernel/kernel/resource';
import type { dev_pagemap } from '../kernel/kernel/memremap';
import type { Machine } from './machine';
import { hex } from './numbers';

function resourceNode(r: resource): ResourceNode {
  return {
    name: r.name,
    start: hex(r.start),
    end: hex(r.end),
    desc: IORES_DESC_NAMES[r.desc] ?? 'NONE',
    flags: resourceFlagNames(r.flags),
    children: [...children(r)].map(resourceNode),
  };
}

function deviceInfo(m: Machine, d: Machine['devices'] extends Map<string, infer V> ? V : never): DeviceInfo {
  const cfg = d.config;
  const base = { name: cfg.name, kind: cfg.kind, driver: cfg.driver };
  if ('error' in d) return { ...base, pages: 0, pagesInUse: 0, error: errname(d.error) };
  const pgmap: dev_pagemap | null | undefined = d.devmem?.pagemap ?? d.pmem?.pgmap;
  const k = m.kernel;
  const range = d.devmem?.resource ?? d.pmem?.pgmap?.res ?? d.platformRes;
  return {
    ...base,
    ...(range ? { start: hex(range.start), end: hex(range.end) } : {}),
    ...(pgmap ? { pgmapType: MEMORY_TYPE_NAMES[pgmap.type] } : {}),
    pages: range ? (range.end - range.start + 1) / k.c.PAGE_SIZE : 0,
    pagesInUse: pgmap && k.pgmaps[pgmap.id] === pgmap ? pgmap.nr_busy : 0,
    ...(d.removing && !d.removing.done ? { error: 'removing: waiting for pages in use' } : {}),
  };
}

function sections(m: Machine): SectionInfo[] {
  const k = m.kernel;
  const sec = k.c.PA_SECTION_SIZE;
  const out: SectionInfo[] = [];
  for (const nr of k.mem.present_sections()) {
    const page = k.mem.pfn_to_page(nr * k.c.PAGES_PER_SECTION);
    // Section 0 holds DMA and DMA32; name the zone of its last page, the one that spans it.
    const last = page + k.c.PAGES_PER_SECTION - 1;
    const zi = page_zonenum(k, last);
    const holder = k.pgmap_index.get(nr);
    out.push({
      nr,
      start: hex(nr * sec),
      end: hex((nr + 1) * sec - 1),
      zone: zi === ZONE_NONE ? 'none' : ZONE_NAMES[zi]!,
      ...(holder ? { device: holder.dev.name } : {}),
    });
  }
  return out;
}

function zones(m: Machine): ZoneInfo[] {
  return m.kernel.node.node_zones
    .filter((z) => !z.zone_is_empty())
    .map((z) => ({
      name: z.name,
      startPfn: z.zone_start_pfn,
      spannedPages: z.spanned_pages,
      presentPages: z.present_pages,
      freePages: z.nr_free_pages,
    }));
}

export function layoutSnapshot(m: Machine): LayoutSnapshot {
  const k = m.kernel;
  return {
    machine: m.spec.name,
    physAddrBits: k.config.physAddrBits,
    pageSize: k.c.PAGE_SIZE,
    sectionSize: hex(k.c.PA_SECTION_SIZE),
    resources: [...children(k.iomem_resource)].map(resourceNode),
    devices: [...m.devices.values()].map((d) => deviceInfo(m, d)),
    sections: sections(m),
    zones: zones(m),
  };
}
