// pmem-dax: the seed-003 persistent-memory driver (drivers/nvdimm/pmem.c) as a plugin, the
// same probe as the built-in one (src-main/kernel/drivers/nvdimm/pmem.ts). A namespace is a
// block device; in fsdax mode its pages get struct pages (devm_memremap_pages, ZONE_DEVICE,
// MEMORY_DEVICE_HOST) so files on it can be mapped directly (DAX). The pagemap's reference
// is the request queue's usage counter (F-PGMAP-6): the mapping lives as long as the queue.
//
// A namespace with an info block is probed twice, as the nvdimm bus does: the first, raw
// round finds the block, drops its queue and returns -ENXIO ("we'll come back"); the BTT
// (sector mode) then needs no queue of ours, the pfn device (fsdax) maps its pages with a
// new queue's counter.
import {
  EBUSY,
  ENOMEM,
  blk_alloc_queue,
  blk_cleanup_queue,
  blk_queue_dying,
  dev_dbg,
  dev_info,
  dev_warn,
  devm_add_action,
  devm_memremap_pages,
  devm_request_mem_region,
  type DeviceInfo,
  type Queue,
} from 'hmm-lab';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** pmem_release_queue, the devres action: the queue goes with the device. */
export function pmem_release_queue(q: Queue): void {
  if (!blk_queue_dying(q)) blk_cleanup_queue(q);
}

/** pmem_alloc: reserve the namespace's range and make its request queue. */
function pmem_alloc(dev: DeviceInfo): Queue {
  if (devm_request_mem_region(dev.start, dev.memory)) {
    dev_warn(`could not reserve region [mem ${hex(dev.start)}-${hex(dev.start + dev.memory - 1)}]`);
    return -EBUSY;
  }
  const q = blk_alloc_queue();
  return q < 0 ? -ENOMEM : q;
}

/** nd_pmem_probe as the namespace goes through it (see the header). */
export function probe(dev: DeviceInfo): number {
  const q = pmem_alloc(dev);
  if (q < 0) return q;
  if (dev.mode === 'raw') {
    if (devm_add_action('pmem_release_queue', q)) {
      blk_cleanup_queue(q);
      return -ENOMEM;
    }
    dev_info(`raw namespace, ${dev.memory / 2 ** 20} MiB, no struct pages`);
    return 0;
  }
  // nd_btt_probe()/nd_pfn_probe() found an info block: this round ends with -ENXIO.
  blk_cleanup_queue(q);
  dev_dbg(`nd_pmem_probe: ${dev.mode === 'sector' ? 'btt' : 'pfn'} info block found (-ENXIO), re-probing`);
  if (dev.mode === 'sector') {
    // is_nd_btt(): the btt round's pmem_alloc made a queue too; btt allocates its own.
    const q2 = blk_alloc_queue();
    if (q2 < 0) return -ENOMEM;
    blk_cleanup_queue(q2);
    return 0;
  }
  // is_nd_pfn(): nvdimm_namespace_attach_pfn with a fresh queue, its counter the pagemap's ref.
  const q3 = blk_alloc_queue();
  if (q3 < 0) return -ENOMEM;
  if (devm_add_action('pmem_release_queue', q3)) {
    blk_cleanup_queue(q3);
    return -ENOMEM;
  }
  const addr = devm_memremap_pages(dev.start, dev.memory, q3);
  if (addr < 0) return addr;
  dev_info(`fsdax namespace mapped at ${hex(addr)}, ${dev.memory / dev.pageSize} struct pages`);
  return 0;
}
