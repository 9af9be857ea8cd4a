// drivers/nvdimm/pmem.c (seed 003): a persistent-memory namespace as a block device
// whose pages are mapped by devm_memremap_pages() for DAX. The pagemap's reference is
// the request queue's usage counter.
import type { Kernel } from '../../kernel';
import { dev_name, type device } from '../base/core';
import { devm_add_action } from '../base/devres';
import { EBUSY, ENOMEM, IS_ERR, type ErrPtr } from '../../include/errno';
import { MEMORY_DEVICE_HOST } from '../../include/memremap';
import { blk_alloc_queue_node, blk_cleanup_queue, type request_queue } from '../../block/blk-core';
import { devm_memremap_pages, new_dev_pagemap, type dev_pagemap } from '../../kernel/memremap';
import { devm_request_mem_region, resource_size, type resource } from '../../kernel/resource';

export const PFN_DEV = 1;
export const PFN_MAP = 2;

/** How the namespace is set up: fsdax (pfn device, struct pages), sector (BTT) or raw. */
export type PmemMode = 'fsdax' | 'sector' | 'raw';

export interface nd_namespace_io {
  res: resource;
  mode: PmemMode;
}

export class pmem_device {
  pfn_flags = PFN_DEV;
  virt_addr = 0;
  pmem_queue: request_queue | null = null;
  pgmap: dev_pagemap | null = null;
  /** Queues allocated by earlier probe rounds and then dropped (F-PGMAP-6). */
  readonly dropped_queues: request_queue[] = [];

  constructor(
    readonly phys_addr: number,
    readonly size: number,
  ) {}
}

function pmem_release_queue(k: Kernel, _dev: device, data: unknown): void {
  const pmem = data as pmem_device;
  if (pmem.pmem_queue) blk_cleanup_queue(k, pmem.pmem_queue);
}

/** Map the namespace's pages with the queue's usage counter as their pagemap ref. */
function pmem_map_pages(k: Kernel, dev: device, pmem: pmem_device, nsio: nd_namespace_io): number {
  const q = pmem.pmem_queue!;
  const pgmap = new_dev_pagemap(dev, MEMORY_DEVICE_HOST, nsio.res, q.q_usage_counter);
  const addr = devm_memremap_pages(k, dev, pgmap);
  if (IS_ERR(addr)) return addr;
  pmem.virt_addr = addr;
  pmem.pgmap = pgmap;
  pmem.pfn_flags |= PFN_MAP;
  return 0;
}

function pmem_alloc(k: Kernel, dev: device, nsio: nd_namespace_io): ErrPtr<pmem_device> {
  const res = nsio.res;
  const pmem = new pmem_device(res.start, resource_size(res));
  if (!devm_request_mem_region(k, dev, pmem.phys_addr, pmem.size, dev_name(dev))) {
    k.printk(
      'warn',
      `${dev_name(dev)}: could not reserve region [mem 0x${res.start.toString(16)}-0x${res.end.toString(16)}]`,
    );
    return -EBUSY;
  }
  const q = blk_alloc_queue_node(k);
  if (!q) return -ENOMEM;
  pmem.pmem_queue = q;
  pmem.virt_addr = pmem.phys_addr;
  return pmem;
}

/** Drop the queue of a probe round that will come back as another device. */
function pmem_drop_queue(k: Kernel, pmem: pmem_device): void {
  const q = pmem.pmem_queue!;
  blk_cleanup_queue(k, q);
  pmem.dropped_queues.push(q);
  pmem.pmem_queue = null;
}

/**
 * nd_pmem_probe as the namespace goes through it. A namespace with a BTT or pfn info
 * block is first probed raw, drops its queue and returns -ENXIO ("we'll come back");
 * the BTT device then needs no queue of ours, the pfn device maps its pages with a new
 * queue's counter.
 */
export function nd_pmem_probe(k: Kernel, dev: device, nsio: nd_namespace_io): ErrPtr<pmem_device> {
  const first = pmem_alloc(k, dev, nsio);
  if (IS_ERR(first)) return first;
  if (nsio.mode === 'raw') {
    if (devm_add_action(k, dev, pmem_release_queue, first)) return pmem_fail(k, first, -ENOMEM);
    return first;
  }
  // nd_btt_probe()/nd_pfn_probe() found an info block: this round ends with -ENXIO.
  pmem_drop_queue(k, first);
  k.pr_debug(
    `${dev_name(dev)}: nd_pmem_probe: ${nsio.mode === 'sector' ? 'btt' : 'pfn'} info block found (-ENXIO), re-probing`,
  );

  if (nsio.mode === 'sector') {
    // is_nd_btt(): the btt round's pmem_alloc made a queue too; btt allocates its own, so drop it.
    const q = blk_alloc_queue_node(k);
    if (!q) return -ENOMEM;
    first.pmem_queue = q;
    pmem_drop_queue(k, first);
    return first;
  }
  // is_nd_pfn(): nvdimm_namespace_attach_pfn with a fresh queue.
  const q = blk_alloc_queue_node(k);
  if (!q) return -ENOMEM;
  first.pmem_queue = q;
  if (devm_add_action(k, dev, pmem_release_queue, first)) return pmem_fail(k, first, -ENOMEM);
  const err = pmem_map_pages(k, dev, first, nsio);
  if (err) return err;
  return first;
}

function pmem_fail(k: Kernel, pmem: pmem_device, err: number): number {
  if (pmem.pmem_queue) blk_cleanup_queue(k, pmem.pmem_queue);
  return err;
}
