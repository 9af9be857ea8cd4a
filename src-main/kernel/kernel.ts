// The kernel's globals, one instance per simulated machine: what a real kernel keeps
// in iomem_resource, mem_section[], NODE_DATA(), the pgmap index and the log. Every
// kernel function takes it as its first argument.
import './init/jit';
import { kernelConsts, type KernelConfig, type KernelConsts } from './include/config';
import { Printk, type LogLevel } from './kernel/printk';
import { resource } from './kernel/resource';
import type { dev_pagemap } from './kernel/memremap';
import { FaultInjector } from './lib/fault-inject';
import { Memmap } from './mm/sparse';
import { PageTablePool } from './mm/pgtable';
import { PageContents } from './mm/highmem';
import { pglist_data } from './mm/mmzone';
import { IORESOURCE_MEM } from './include/ioport';
import { Tracepoints } from './trace/events';
import { swapTypes, type SwapTypes } from './include/swapops';
import type { task_struct } from './include/sched';

export class Kernel {
  readonly c: KernelConsts;
  /** The special swap types (F-DEV-1). */
  readonly swp: SwapTypes;
  readonly iomem_resource: resource;
  readonly mem: Memmap;
  /** Every page table of every address space. */
  readonly pt: PageTablePool;
  /** Bytes of pages that were written with real data (scenario stores). */
  readonly contents = new PageContents();
  /** page->mapping targets: anon_vmas and address_spaces by id (0: none). */
  readonly mappings: unknown[] = [null];
  /** Node 0; the lab simulates one NUMA node. */
  readonly node: pglist_data;
  /** dev_pagemap table: page->pgmap holds an index into it (0: none). */
  readonly pgmaps: (dev_pagemap | undefined)[] = [undefined];
  /** The per-section pgmap index (F-PGMAP-3): section number -> dev_pagemap. */
  readonly pgmap_index = new Map<number, dev_pagemap>();
  readonly log = new Printk();
  readonly fault = new FaultInjector();
  readonly trace = new Tracepoints();
  /** pfn of empty_zero_page and of the huge zero page, set at boot. */
  zero_pfn = -1;
  huge_zero_pfn = -1;
  /** Live tasks by pid. */
  readonly tasks = new Map<number, task_struct>();
  last_pid = 0;
  last_mm_id = 0;
  /** Faults that found a migration entry and waited (migration_entry_wait). */
  migration_waits = 0;
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
    this.swp = swapTypes(config.maxSwapfilesShift);
    this.iomem_resource = new resource('PCI mem', 0, 2 ** config.physAddrBits - 1, IORESOURCE_MEM);
    this.mem = new Memmap(this.c, reserveSections);
    this.pt = new PageTablePool(this.c);
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
