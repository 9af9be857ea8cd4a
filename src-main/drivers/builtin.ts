// The built-in device drivers that probe a machine's devices until driver plugins load:
// a private device memory with dmirror (drivers/dmirror.ts), a public one as a bare
// hmm_devmem, a persistent-memory namespace as pmem.
import type { Kernel } from '../kernel/kernel';
import { device } from '../kernel/drivers/base/core';
import { devres_release_all } from '../kernel/drivers/base/devres';
import { nd_pmem_probe, type PmemMode, type pmem_device } from '../kernel/drivers/nvdimm/pmem';
import { EBUSY, IS_ERR } from '../kernel/include/errno';
import {
  IORESOURCE_MEM,
  IORES_DESC_DEVICE_PUBLIC_MEMORY,
  IORES_DESC_PERSISTENT_MEMORY,
} from '../kernel/include/ioport';
import { VM_FAULT_SIGBUS } from '../kernel/include/mm_types';
import {
  hmm_devmem_add,
  hmm_devmem_add_resource,
  hmm_devmem_remove,
  type hmm_devmem,
  type hmm_devmem_ops,
} from '../kernel/mm/hmm';
import { Completion, complete, wait_for_completion } from '../kernel/kernel/sched/completion';
import { insert_resource_conflict, release_resource, resource } from '../kernel/kernel/resource';
import { DevicePagePool, dmirror_device_probe, type dmirror_device } from './dmirror';
import { BuiltinDmirror, type DeviceDriver } from './driver';

export { DevicePagePool } from './dmirror';

export type DeviceKind = 'private' | 'public' | 'pmem';

export interface DeviceConfig {
  name: string;
  kind: DeviceKind;
  /** Bytes of device memory. */
  memory: number;
  /** Physical start of a public device range or a pmem namespace. */
  start?: number;
  driver: string;
  mode?: PmemMode;
}

export const BUILTIN_DRIVERS: Record<DeviceKind, string> = {
  private: 'dmirror',
  public: 'dmirror',
  pmem: 'pmem',
};

/** A probed device: what the kernel gave it, and how to take it away again. */
export interface BoundDevice {
  config: DeviceConfig;
  dev: device;
  devmem?: hmm_devmem;
  pmem?: pmem_device;
  /** The firmware's description of a public or pmem range. */
  platformRes?: resource;
  /** The driver's allocator of device pages. */
  pool: DevicePagePool | null;
  /** The dmirror instance serving a private device. */
  dmirror?: dmirror_device;
  /** The driver as the lab drives it: the built-in dmirror or a plugin (drivers/driver.ts). */
  driver?: DeviceDriver;
  removing?: Completion;
}

/** The minimal driver's memory ops: no migration yet, so a CPU fault is SIGBUS. */
function minimalOps(bound: BoundDevice): hmm_devmem_ops {
  return {
    fault: () => VM_FAULT_SIGBUS,
    free: (_devmem, page) => bound.pool?.free(page),
  };
}

/** Describe a firmware range in iomem, as the platform code does before the driver binds. */
export function platformResource(
  k: Kernel,
  cfg: DeviceConfig,
  name: string,
  desc: number,
): resource | number {
  const start = cfg.start!;
  const res = new resource(name, start, start + cfg.memory - 1, IORESOURCE_MEM, desc);
  return insert_resource_conflict(k.iomem_resource, res) ? -EBUSY : res;
}

/** Probe a device with its built-in driver. Returns the bound device or an errno. */
export function probeDevice(k: Kernel, cfg: DeviceConfig): BoundDevice | number {
  const bound: BoundDevice = { config: cfg, dev: new device(cfg.name), pool: null };
  const fail = (err: number): number => {
    devres_release_all(k, bound.dev);
    if (bound.platformRes) release_resource(bound.platformRes);
    return err;
  };
  if (cfg.kind === 'private' && cfg.driver === 'dmirror') {
    const mdevice = dmirror_device_probe(k, bound.dev, cfg.memory);
    if (IS_ERR(mdevice)) return fail(mdevice);
    bound.dmirror = mdevice;
    bound.driver = new BuiltinDmirror(mdevice, cfg.driver);
    bound.devmem = mdevice.devmem;
    bound.pool = mdevice.pool;
  } else if (cfg.kind === 'private') {
    const devmem = hmm_devmem_add(k, minimalOps(bound), bound.dev, cfg.memory);
    if (IS_ERR(devmem)) return fail(devmem);
    bound.devmem = devmem;
  } else if (cfg.kind === 'public') {
    const res = platformResource(k, cfg, `${cfg.name} memory`, IORES_DESC_DEVICE_PUBLIC_MEMORY);
    if (typeof res === 'number') return res;
    bound.platformRes = res;
    const devmem = hmm_devmem_add_resource(k, minimalOps(bound), bound.dev, res);
    if (IS_ERR(devmem)) return fail(devmem);
    bound.devmem = devmem;
  } else {
    const res = platformResource(k, cfg, 'Persistent Memory', IORES_DESC_PERSISTENT_MEMORY);
    if (typeof res === 'number') return res;
    bound.platformRes = res;
    const pmem = nd_pmem_probe(k, bound.dev, { res, mode: cfg.mode ?? 'fsdax' });
    if (IS_ERR(pmem)) return fail(pmem);
    bound.pmem = pmem;
  }
  if (bound.devmem && !bound.pool)
    bound.pool = new DevicePagePool(k, bound.devmem.pfn_first, bound.devmem.pfn_last);
  return bound;
}

/** Unbind: hot-unplug the device memory (waiting for pages in use) and release all it holds. */
export function removeDevice(k: Kernel, bound: BoundDevice): Completion {
  if (bound.removing) return bound.removing;
  const done = (bound.removing = new Completion());
  bound.driver?.unbind();
  const unplugged = bound.devmem ? hmm_devmem_remove(k, bound.devmem) : devres_release_all(k, bound.dev);
  wait_for_completion(unplugged, () => {
    wait_for_completion(devres_release_all(k, bound.dev), () => {
      if (bound.platformRes) release_resource(bound.platformRes);
      bound.pool = null;
      bound.driver?.dispose?.();
      complete(done);
    });
  });
  return done;
}
