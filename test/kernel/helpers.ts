// Small machines and probes for the kernel unit tests: boot through start_kernel as
// the lab does, then read the kernel's own state back.
import { start_kernel, type MemRange } from '../../src-main/kernel/init/main';
import { DEFAULT_CONFIG, type KernelConfig } from '../../src-main/kernel/include/config';
import type { Kernel } from '../../src-main/kernel/kernel';
import type { dev_pagemap } from '../../src-main/kernel/kernel/memremap';
import type { LogRecord } from '../../src-main/kernel/kernel/printk';
import { children, type resource } from '../../src-main/kernel/kernel/resource';
import type { hmm_devmem, hmm_devmem_ops } from '../../src-main/kernel/mm/hmm';
import type { vm_area_struct } from '../../src-main/kernel/include/mm_types';
import type { TraceEvent } from '../../src-main/kernel/trace/events';

export const K = 2 ** 10;
export const M = 2 ** 20;
export const G = 2 ** 30;
export const T = 2 ** 40;
export const PAGE = 4 * K;
export const SECTION = 128 * M;

export interface SmallMachine {
  config?: Partial<KernelConfig>;
  ram?: MemRange[];
  reserved?: (MemRange & { name: string })[];
  expectedDeviceBytes?: number;
}

/** Boot a small machine: 1 GiB of RAM at 0, no reserved ranges, default (x86-64) config. */
export function bootSmall(opts: SmallMachine = {}): Kernel {
  return start_kernel({
    config: { ...DEFAULT_CONFIG, ...opts.config },
    ram: opts.ram ?? [{ start: 0, size: G }],
    reserved: opts.reserved ?? [],
    expectedDeviceBytes: opts.expectedDeviceBytes ?? G,
  });
}

/** Every trace event emitted from now on. */
export function recordTrace(k: Kernel): TraceEvent[] {
  const events: TraceEvent[] = [];
  k.trace.subscribe((e) => events.push(e));
  return events;
}

/** Log lines written from now on. */
export function recordLog(k: Kernel): LogRecord[] {
  const lines: LogRecord[] = [];
  k.log.subscribe((r) => lines.push(r));
  return lines;
}

export function warnings(k: Kernel): string[] {
  return k.log
    .lines()
    .filter((l) => l.text.startsWith('WARNING:'))
    .map((l) => l.text);
}

export function topLevel(k: Kernel): resource[] {
  return [...children(k.iomem_resource)];
}

/** Depth-first search of iomem_resource by name. */
export function findResource(
  k: Kernel,
  name: string,
  root: resource = k.iomem_resource,
): resource | undefined {
  for (const c of children(root)) {
    if (c.name === name) return c;
    const hit = findResource(k, name, c);
    if (hit) return hit;
  }
  return undefined;
}

/** All resources of the tree, depth first, as [name, start, end]. */
export function iomemSnapshot(k: Kernel, root: resource = k.iomem_resource): [string, number, number][] {
  return [...children(root)].flatMap((c): [string, number, number][] => [
    [c.name, c.start, c.end],
    ...iomemSnapshot(k, c),
  ]);
}

export function presentSections(k: Kernel): number[] {
  return [...k.mem.present_sections()];
}

/** hmm_devmem_ops that record what the kernel asked of the driver. */
export interface RecordingOps extends hmm_devmem_ops {
  freed: { devmem: hmm_devmem; page: number }[];
  faults: { devmem: hmm_devmem; vma: vm_area_struct; addr: number; page: number; flags: number }[];
}

export function recordingOps(faultResult = 0): RecordingOps {
  const ops: RecordingOps = {
    freed: [],
    faults: [],
    fault(devmem, vma, addr, page, flags) {
      ops.faults.push({ devmem, vma, addr, page, flags });
      return faultResult;
    },
    free(devmem, page) {
      ops.freed.push({ devmem, page });
    },
  };
  return ops;
}

/**
 * The pages of a device mapping in use (refcount above the idle 1), counted page by page: what
 * dev_pagemap.nr_busy, kept by get_page and put_page, must always equal.
 */
export function pagesInUseScanned(k: Kernel, pgmap: dev_pagemap): number {
  let n = 0;
  const first = Math.floor(pgmap.res.start / k.c.PAGE_SIZE);
  const end = Math.floor((pgmap.res.end + 1) / k.c.PAGE_SIZE);
  for (let pfn = first; pfn < end; pfn++) {
    const page = k.mem.pfn_to_page(pfn);
    if (page >= 0 && k.mem.refcount[page]! > 1) n++;
  }
  return n;
}
