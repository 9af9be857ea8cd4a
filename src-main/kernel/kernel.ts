// The kernel's globals, one instance per simulated machine: what a real kernel keeps
// in iomem_resource, mem_section[], NODE_DATA(), the pgmap index and the log. Every
// kernel function takes it as its first argument.
import { kernelConsts, type KernelConfig, type KernelConsts } from './include/config';
import { Printk, type LogLevel } from './kernel/printk';
import { resource } from './kernel/resource';
import type { dev_pagemap } from './kernel/memremap';
import { FaultInjector } from './lib/fault-inject';
import { Memmap } from './mm/sparse';
import { pglist_data } from './mm/mmzone';
import { IORESOURCE_MEM } from './include/ioport';
import { Tracepoints } from './trace/events';

export class Kernel {
  readonly c: KernelConsts;
  readonly iomem_resource: resource;
  readonly mem: Memmap;
  /** Node 0; the lab simulates one NUMA node. */
  readonly node: pglist_data;
  /** dev_pagemap table: page->pgmap holds an index into it (0: none). */
  readonly pgmaps: (dev_pagemap | undefined)[] = [undefined];
  /** The per-section pgmap index (F-PGMAP-3): section number -> dev_pagemap. */
  readonly pgmap_index = new Map<number, dev_pagemap>();
  readonly log = new Printk();
  readonly fault = new FaultInjector();
  readonly trace = new Tracepoints();
  /** mem_hotplug_begin() nesting depth. */
  mem_hotplug_depth = 0;
  /** hmm_device minors in use (bitmap of HMM_DEVICE_MAX). */
  readonly hmm_device_mask = new Uint8Array(256);
  private readonly warnedOnce = new Set<string>();

  constructor(
    readonly config: KernelConfig,
    reserveSections: number,
  ) {
    this.c = kernelConsts(config);
    this.iomem_resource = new resource('PCI mem', 0, 2 ** config.physAddrBits - 1, IORESOURCE_MEM);
    this.mem = new Memmap(this.c, reserveSections);
    this.node = new pglist_data(0);
  }

  printk(level: LogLevel, text: string): void {
    this.log.printk(level, text);
  }

  pr_debug(text: string): void {
    this.printk('debug', text);
  }

  dev_err(devName: string, text: string): void {
    this.printk('err', `${devName}: ${text}`);
  }

  /** WARN(): a kernel warning with its "WARNING:" banner; the simulation carries on. */
  WARN(text: string): void {
    this.printk('warn', `WARNING: ${text}`);
  }

  WARN_ONCE(key: string, text: string): void {
    if (this.warnedOnce.has(key)) return;
    this.warnedOnce.add(key);
    this.WARN(text);
  }
}
