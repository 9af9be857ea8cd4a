// mm/hmm.c: device memory (hmm_devmem) and the hmm_device helper. The mirror half of
// this file arrives with address spaces.
import type { Kernel } from '../kernel';
import { dev_name, device } from '../drivers/base/core';
import { devm_add_action, devm_remove_action, devres_release } from '../drivers/base/devres';
import { ALIGN } from '../include/config';
import { EBUSY, EINVAL, ENOMEM, ERANGE, IS_ERR, type ErrPtr } from '../include/errno';
import {
  IORES_DESC_DEVICE_PRIVATE_MEMORY,
  IORES_DESC_DEVICE_PUBLIC_MEMORY,
  REGION_DISJOINT,
} from '../include/ioport';
import { MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC } from '../include/memremap';
import type { vm_area_struct } from '../include/mm_types';
import { lock_page } from '../include/mm';
import { percpu_ref, percpu_ref_exit, percpu_ref_init, percpu_ref_kill } from '../lib/percpu-refcount';
import {
  devm_memremap_pages,
  devm_memremap_pages_release,
  new_dev_pagemap,
  type dev_pagemap,
} from '../kernel/memremap';
import {
  Completion,
  complete,
  completed,
  init_completion,
  wait_for_completion,
} from '../kernel/sched/completion';
import {
  devm_release_mem_region,
  devm_request_mem_region,
  region_intersects,
  resource,
  resource_size,
} from '../kernel/resource';
import { alloc_page, GFP_HIGHUSER } from './page_alloc';

export interface hmm_devmem_ops {
  /** CPU fault on an un-addressable page: migrate it back to system memory. Returns VM_FAULT_*. */
  fault(
    devmem: hmm_devmem,
    vma: vm_area_struct,
    addr: number,
    page: number,
    flags: number,
    pmdp: unknown,
  ): number;
  /** The page's refcount dropped to 1: it is free device memory again. */
  free(devmem: hmm_devmem, page: number): void;
}

export class hmm_devmem {
  completion: Completion = init_completion();
  pfn_first = -1;
  pfn_last = -1;
  resource: resource | null = null;
  readonly ref = new percpu_ref();
  pagemap!: dev_pagemap;
  /** Set once hmm_devmem_remove() has finished. */
  removed: Completion | null = null;

  constructor(
    readonly ops: hmm_devmem_ops,
    readonly device: device,
  ) {}
}

/** F-DEVMEM-6: a locked system page for a migration back from the device, or -1 (NULL). */
export function hmm_vma_alloc_locked_page(k: Kernel, vma: vm_area_struct, addr: number): number {
  void vma;
  void addr;
  const page = alloc_page(k, GFP_HIGHUSER);
  if (page < 0) return -1;
  lock_page(k, page);
  return page;
}

function hmm_devmem_ref_release(devmem: hmm_devmem): void {
  complete(devmem.completion);
}

function hmm_devmem_ref_exit(_k: Kernel, _dev: device, data: unknown): void {
  percpu_ref_exit((data as hmm_devmem).ref);
}

function hmm_devmem_ref_kill(k: Kernel, devmem: hmm_devmem): void {
  percpu_ref_kill(k, devmem.ref);
}

/** Wire the pagemap's callbacks to the driver's ops (hmm_devmem_fault/hmm_devmem_free). */
function hmm_devmem_pagemap(
  k: Kernel,
  devmem: hmm_devmem,
  type: typeof MEMORY_DEVICE_PRIVATE | typeof MEMORY_DEVICE_PUBLIC,
) {
  const res = devmem.resource!;
  const pgmap = new_dev_pagemap(devmem.device, type, res, devmem.ref);
  pgmap.data = devmem;
  pgmap.page_fault = (vma, addr, page, flags, pmdp) => {
    const result = devmem.ops.fault(devmem, vma as vm_area_struct, addr, page, flags, pmdp);
    k.trace.emit({
      name: 'devmem_fault',
      device: dev_name(devmem.device),
      pfn: k.mem.page_to_pfn(page),
      mm: (vma as vm_area_struct).vm_mm.id,
      addr,
      result,
    });
    return result;
  };
  // Once per page freed: no event built when nobody listens, and no name looked up to know.
  const devmem_free = k.trace.point('devmem_free');
  pgmap.page_free = (page) => {
    if (devmem_free.enabled)
      k.trace.emit({ name: 'devmem_free', device: dev_name(devmem.device), pfn: k.mem.page_to_pfn(page) });
    devmem.ops.free(devmem, page);
  };
  pgmap.kill = () => hmm_devmem_ref_kill(k, devmem);
  return pgmap;
}

/** Common tail of both adds: percpu ref, its exit action. 0 or an error. */
function hmm_devmem_init_ref(k: Kernel, devmem: hmm_devmem): number {
  const ret = percpu_ref_init(k, devmem.ref, () => hmm_devmem_ref_release(devmem));
  if (ret) return ret;
  return devm_add_action(k, devmem.device, hmm_devmem_ref_exit, devmem);
}

function hmm_devmem_set_pfns(k: Kernel, devmem: hmm_devmem): void {
  const res = devmem.resource!;
  devmem.pfn_first = Math.floor(res.start / k.c.PAGE_SIZE);
  devmem.pfn_last = devmem.pfn_first + Math.floor(resource_size(res) / k.c.PAGE_SIZE);
}

/**
 * hmm_devmem_add: find a free physical range for `size` bytes of device memory and
 * hotplug it as ZONE_DEVICE, MEMORY_DEVICE_PRIVATE.
 * F-DEVMEM-1: size rounded up to PA_SECTION_SIZE; candidates go downward from the top of
 * iomem (capped at MAX_PHYSMEM_BITS) in steps of `size`; the first REGION_DISJOINT one
 * is claimed. -ERANGE when none is free, -ENOMEM when claiming fails.
 * F-DEVMEM-4: every failure undoes what the call did.
 */
export function hmm_devmem_add(
  k: Kernel,
  ops: hmm_devmem_ops,
  dev: device,
  size: number,
): ErrPtr<hmm_devmem> {
  if (k.fault.should_fail('kmalloc')) return -ENOMEM;
  const devmem = new hmm_devmem(ops, dev);

  const ret = hmm_devmem_init_ref(k, devmem);
  if (ret) return unwind_ref(k, devmem, ret);

  size = ALIGN(size, k.c.PA_SECTION_SIZE);
  let addr = Math.min(k.iomem_resource.end, 2 ** k.c.MAX_PHYSMEM_BITS - 1) - size + 1;
  for (; addr > size && addr >= k.iomem_resource.start; addr -= size) {
    if (region_intersects(k, addr, size, 0, 0) !== REGION_DISJOINT) continue;
    devmem.resource = devm_request_mem_region(k, dev, addr, size, dev_name(dev));
    if (!devmem.resource) return unwind_ref(k, devmem, -ENOMEM);
    break;
  }
  if (!devmem.resource) return unwind_ref(k, devmem, -ERANGE);

  // F-DEVMEM-2: the range is device private memory, its pages ZONE_DEVICE.
  devmem.resource.desc = IORES_DESC_DEVICE_PRIVATE_MEMORY;
  hmm_devmem_set_pfns(k, devmem);
  devmem.pagemap = hmm_devmem_pagemap(k, devmem, MEMORY_DEVICE_PRIVATE);
  const result = devm_memremap_pages(k, dev, devmem.pagemap);
  if (IS_ERR(result)) {
    devm_release_mem_region(k, dev, devmem.resource.start, resource_size(devmem.resource));
    return unwind_ref(k, devmem, result);
  }
  k.trace.emit({
    name: 'devmem_add',
    device: dev_name(dev),
    start: addr,
    end: addr + size - 1,
    type: 'private',
  });
  return devmem;
}

/**
 * F-DEVMEM-3: hotplug a CPU-addressable device range the platform described. Only a
 * DEVICE_PUBLIC_MEMORY resource is accepted (-EINVAL otherwise).
 */
export function hmm_devmem_add_resource(
  k: Kernel,
  ops: hmm_devmem_ops,
  dev: device,
  res: resource,
): ErrPtr<hmm_devmem> {
  if (res.desc !== IORES_DESC_DEVICE_PUBLIC_MEMORY) return -EINVAL;
  if (k.fault.should_fail('kmalloc')) return -ENOMEM;
  const devmem = new hmm_devmem(ops, dev);
  devmem.resource = res;
  const ret = hmm_devmem_init_ref(k, devmem);
  if (ret) return unwind_ref(k, devmem, ret);
  hmm_devmem_set_pfns(k, devmem);
  devmem.pagemap = hmm_devmem_pagemap(k, devmem, MEMORY_DEVICE_PUBLIC);
  const result = devm_memremap_pages(k, dev, devmem.pagemap);
  if (IS_ERR(result)) return unwind_ref(k, devmem, result);
  k.trace.emit({ name: 'devmem_add', device: dev_name(dev), start: res.start, end: res.end, type: 'public' });
  return devmem;
}

/** Error tail of the adds, as the seed's labels: kill and exit the ref, drop its action. */
function unwind_ref(k: Kernel, devmem: hmm_devmem, err: number): number {
  if (devmem.ref.count > 0) {
    percpu_ref_kill(k, devmem.ref);
    devm_remove_action(devmem.device, hmm_devmem_ref_exit, devmem);
    percpu_ref_exit(devmem.ref);
  }
  return err;
}

/**
 * hmm_devmem_remove: kill the ref, wait for every page to be freed, remove the pages and
 * release the region (F-DEVMEM-4). Returns a completion that fires when all is gone.
 */
export function hmm_devmem_remove(k: Kernel, devmem: hmm_devmem | null): Completion {
  if (!devmem) return completed();
  if (devmem.removed) return devmem.removed;
  const done = (devmem.removed = new Completion());
  const dev = devmem.device;
  const res = devmem.resource!;
  const { start, end } = res;
  const size = resource_size(res);
  const released = devres_release(k, dev, devm_memremap_pages_release, (d) => d === devmem.pagemap);
  wait_for_completion(released, () => {
    devres_release(k, dev, hmm_devmem_ref_exit, (d) => d === devmem);
    if (devmem.pagemap.type === MEMORY_DEVICE_PRIVATE) devm_release_mem_region(k, dev, start, size);
    k.trace.emit({ name: 'devmem_remove', device: dev_name(dev), start, end });
    complete(done);
  });
  return done;
}

export const HMM_DEVICE_MAX = 256;

export class hmm_device extends device {
  constructor(
    readonly minor: number,
    drvdata: unknown,
  ) {
    super(`hmm_device${minor}`);
    this.drvdata = drvdata;
  }
}

/** F-DEVICE-1: a fake device for drivers with several memories; minors 0..255, then -EBUSY. */
export function hmm_device_new(k: Kernel, drvdata: unknown): ErrPtr<hmm_device> {
  if (k.fault.should_fail('kmalloc')) return -ENOMEM;
  const minor = k.hmm_device_mask.indexOf(0);
  if (minor < 0) return -EBUSY;
  k.hmm_device_mask[minor] = 1;
  return new hmm_device(minor, drvdata);
}

export function hmm_device_put(k: Kernel, hdev: hmm_device): void {
  k.hmm_device_mask[hdev.minor] = 0;
}
