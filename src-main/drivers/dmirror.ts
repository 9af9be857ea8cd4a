// dmirror: the HMM test driver (the HMM series' dummy driver, later lib/test_hmm.c). Its
// memory is un-addressable device private memory hotplugged with hmm_devmem_add; each
// process it serves gets a mirror (hmm_mirror) holding the device's page table, filled by
// migrating the process's pages into device memory with migrate_vma. A CPU access to a
// migrated page faults it back through hmm_devmem_ops.fault.
import type { Kernel } from '../kernel/kernel';
import { dev_set_drvdata, type device } from '../kernel/drivers/base/core';
import { EINVAL, IS_ERR, type ErrPtr } from '../kernel/include/errno';
import { get_page, lock_page } from '../kernel/include/mm';
import {
  VM_FAULT_SIGBUS,
  VM_READ,
  VM_WRITE,
  type mm_struct,
  type vm_area_struct,
} from '../kernel/include/mm_types';
import type { task_struct } from '../kernel/include/sched';
import { page_pgmap } from '../kernel/kernel/memremap';
import { clear_highpage, copy_highpage } from '../kernel/mm/highmem';
import {
  hmm_devmem_add,
  hmm_vma_alloc_locked_page,
  type hmm_devmem,
  type hmm_devmem_ops,
} from '../kernel/mm/hmm';
import {
  hmm_mirror,
  hmm_mirror_register,
  hmm_mirror_unregister,
  type hmm_update,
} from '../kernel/mm/hmm_mirror';
import {
  MIGRATE_PFN_DEVICE,
  MIGRATE_PFN_ERROR,
  MIGRATE_PFN_LOCKED,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  migrate_pfn,
  migrate_pfn_has,
  migrate_pfn_to_page,
  migrate_vma,
  type migrate_vma_ops,
} from '../kernel/mm/migrate';
import { vma_lookup } from '../kernel/mm/mmap';

/** Device memory when the machine file does not say (256 MiB). */
export const DMIRROR_DEVICE_MEMORY = 256 * 2 ** 20;
/** Pages per migrate_vma call (test_hmm's src_pfns[64]). */
export const DMIRROR_MIGRATE_BATCH = 64;

/**
 * The driver's free device pages: never-used pages in pfn order, then the ones the kernel
 * gave back through the free callback. Costs nothing up front.
 */
export class DevicePagePool {
  private next: number;
  private readonly freed: number[] = [];
  readonly nr_pages: number;

  constructor(
    private readonly k: Kernel,
    first_pfn: number,
    private readonly end_pfn: number,
  ) {
    this.next = first_pfn;
    this.nr_pages = end_pfn - first_pfn;
  }

  /** A free device page (page index), or -1 when the device memory is exhausted. */
  alloc(): number {
    const page = this.freed.pop();
    if (page !== undefined) return page;
    return this.next < this.end_pfn ? this.k.mem.pfn_to_page(this.next++) : -1;
  }

  free(page: number): void {
    this.freed.push(page);
  }

  get nr_free(): number {
    return this.end_pfn - this.next + this.freed.length;
  }
}

/** Entries per device page-table node. */
const DPT_ENTRIES = 512;

/**
 * The device's page table for one address space: virtual page number -> device page * 2,
 * + 1 when the device may write. Two levels, as a device MMU's, so keys stay small integers.
 */
export class DevicePageTable {
  /** vpn / DPT_ENTRIES -> node of entry + 1 (0: none). */
  private readonly nodes = new Map<number, Float64Array>();
  size = 0;

  get(vpn: number): number | undefined {
    const v = this.nodes.get(Math.floor(vpn / DPT_ENTRIES))?.[vpn % DPT_ENTRIES];
    return v ? v - 1 : undefined;
  }

  set(vpn: number, value: number): void {
    const key = Math.floor(vpn / DPT_ENTRIES);
    let node = this.nodes.get(key);
    if (!node) {
      node = new Float64Array(DPT_ENTRIES);
      this.nodes.set(key, node);
    }
    const i = vpn % DPT_ENTRIES;
    if (!node[i]) this.size++;
    node[i] = value + 1;
  }

  delete(vpn: number): void {
    const node = this.nodes.get(Math.floor(vpn / DPT_ENTRIES));
    const i = vpn % DPT_ENTRIES;
    if (!node?.[i]) return;
    node[i] = 0;
    this.size--;
  }

  /** Drop the entries of [first, last) virtual pages. */
  clear_range(first: number, last: number): void {
    const firstKey = Math.floor(first / DPT_ENTRIES);
    const endKey = Math.ceil(last / DPT_ENTRIES);
    if (endKey - firstKey > this.nodes.size) {
      // A range wider than the table (an exit, a huge munmap): visit the nodes there are.
      for (const [key, node] of this.nodes)
        if (key >= firstKey && key < endKey) this.clear_node(key, node, first, last);
    } else
      for (let key = firstKey; key < endKey; key++) {
        const node = this.nodes.get(key);
        if (node) this.clear_node(key, node, first, last);
      }
  }

  private clear_node(key: number, node: Float64Array, first: number, last: number): void {
    const from = Math.max(first - key * DPT_ENTRIES, 0);
    const to = Math.min(last - key * DPT_ENTRIES, DPT_ENTRIES);
    for (let i = from; i < to; i++) {
      if (!node[i]) continue;
      node[i] = 0;
      this.size--;
    }
  }

  clear(): void {
    this.nodes.clear();
    this.size = 0;
  }
}

/** struct dmirror: one process's mirror on the device, with the device's page table for it. */
export class dmirror extends hmm_mirror {
  readonly pt = new DevicePageTable();

  constructor(
    readonly mdevice: dmirror_device,
    readonly mm: mm_struct,
  ) {
    super(null);
    this.ops = {
      sync_cpu_device_pagetables: (_mirror, update) => mdevice.sync(this, update),
      release: () => mdevice.release(this),
    };
  }
}

/** What a command returns, as the ioctls of tools/testing/selftests/mm/hmm-tests.c see it. */
export interface DmirrorResult {
  ret: number;
  /** Pages the device copied (migrated). */
  cpages: number;
}

/** The private data of one migration: whose device page table, and what was copied. */
interface dmirror_migration {
  mirror: dmirror | null;
  cpages: number;
}

export class dmirror_device {
  devmem!: hmm_devmem;
  pool!: DevicePagePool;
  /** Mirrors by address space (test_hmm opens one per process). */
  readonly mirrors = new Map<mm_struct, dmirror>();
  /** CPU faults on this device's pages (devmem fault callbacks). */
  faults = 0;
  /** Pages per migrate_vma call. */
  batch = DMIRROR_MIGRATE_BATCH;
  /** The mm this device is migrating: its own invalidations are no news to its page table. */
  private migrating: mm_struct | null = null;
  private src = new Float64Array(DMIRROR_MIGRATE_BATCH);
  private dst = new Float64Array(DMIRROR_MIGRATE_BATCH);
  private readonly fault_src = new Float64Array(1);
  private readonly fault_dst = new Float64Array(1);

  readonly devmem_ops: hmm_devmem_ops = {
    fault: (_devmem, vma, addr) => this.devmem_fault(vma, addr),
    free: (_devmem, page) => this.pool.free(page),
  };

  /** System memory -> device memory. */
  private readonly to_device_ops: migrate_vma_ops = {
    alloc_and_copy: (vma, src, dst, start, end) => this.alloc_and_copy_to_device(vma, src, dst, start, end),
    finalize_and_map: (_vma, src, dst, start, end, priv) => {
      const ctx = priv as dmirror_migration;
      const ps = this.k.c.PAGE_SIZE;
      for (let i = 0, addr = start; addr < end; i++, addr += ps) {
        if (!migrate_pfn_has(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
        const dpage = migrate_pfn_to_page(this.k, dst[i]!);
        if (dpage < 0) continue;
        ctx.mirror?.pt.set(addr / ps, dpage * 2 + (migrate_pfn_has(dst[i]!, MIGRATE_PFN_WRITE) ? 1 : 0));
        ctx.cpages++;
      }
    },
  };

  /** Device memory -> system memory (a CPU fault, or the migrate_to_sys command). */
  private readonly to_system_ops: migrate_vma_ops = {
    alloc_and_copy: (vma, src, dst, start, end) => this.alloc_and_copy_to_system(vma, src, dst, start, end),
    finalize_and_map: (_vma, src, dst, start, end, priv) => {
      const ctx = priv as dmirror_migration;
      const ps = this.k.c.PAGE_SIZE;
      for (let i = 0, addr = start; addr < end; i++, addr += ps) {
        if (!migrate_pfn_has(src[i]!, MIGRATE_PFN_MIGRATE) || migrate_pfn_to_page(this.k, dst[i]!) < 0)
          continue;
        ctx.mirror?.pt.delete(addr / ps);
        ctx.cpages++;
      }
    },
  };

  constructor(
    readonly k: Kernel,
    readonly dev: device,
  ) {}

  /** dmirror_devmem_alloc_page: a free device page, referenced and locked; -1 when full. */
  private alloc_page(): number {
    const page = this.pool.alloc();
    if (page < 0) return -1;
    get_page(this.k, page);
    lock_page(this.k, page);
    return page;
  }

  private alloc_and_copy_to_device(
    vma: vm_area_struct,
    src: Float64Array,
    dst: Float64Array,
    start: number,
    end: number,
  ): void {
    const k = this.k;
    const n = (end - start) / k.c.PAGE_SIZE;
    for (let i = 0; i < n; i++) {
      const s = src[i]!;
      // Pages already in device memory stay where they are.
      if (!migrate_pfn_has(s, MIGRATE_PFN_MIGRATE) || migrate_pfn_has(s, MIGRATE_PFN_DEVICE)) continue;
      const spage = migrate_pfn_to_page(k, s);
      const dpage = this.alloc_page();
      if (dpage < 0) continue;
      // The device's DMA: a hole or the zero page arrives as zeroes.
      if (spage >= 0) copy_highpage(k, dpage, spage);
      else clear_highpage(k, dpage);
      let d = migrate_pfn(k.mem.page_to_pfn(dpage)) + MIGRATE_PFN_LOCKED;
      if (migrate_pfn_has(s, MIGRATE_PFN_WRITE) || (spage < 0 && vma.vm_flags & VM_WRITE))
        d += MIGRATE_PFN_WRITE;
      dst[i] = d;
    }
  }

  private alloc_and_copy_to_system(
    vma: vm_area_struct,
    src: Float64Array,
    dst: Float64Array,
    start: number,
    end: number,
  ): void {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    for (let i = 0, addr = start; addr < end; i++, addr += ps) {
      const s = src[i]!;
      if (!migrate_pfn_has(s, MIGRATE_PFN_MIGRATE) || !migrate_pfn_has(s, MIGRATE_PFN_DEVICE)) continue;
      const spage = migrate_pfn_to_page(k, s);
      if (page_pgmap(k, spage) !== this.devmem.pagemap) continue;
      const dpage = hmm_vma_alloc_locked_page(k, vma, addr);
      if (dpage < 0) {
        dst[i] = MIGRATE_PFN_ERROR;
        continue;
      }
      copy_highpage(k, dpage, spage);
      dst[i] = migrate_pfn(k.mem.page_to_pfn(dpage)) + MIGRATE_PFN_LOCKED;
    }
  }

  /** hmm_devmem_ops.fault: migrate the faulting page back to system memory, or SIGBUS. */
  private devmem_fault(vma: vm_area_struct, addr: number): number {
    const k = this.k;
    this.faults++;
    const start = Math.floor(addr / k.c.PAGE_SIZE) * k.c.PAGE_SIZE;
    const ctx: dmirror_migration = { mirror: this.mirrors.get(vma.vm_mm) ?? null, cpages: 0 };
    const prev = this.migrating;
    this.migrating = vma.vm_mm;
    const ret = migrate_vma(
      k,
      this.to_system_ops,
      vma,
      start,
      start + k.c.PAGE_SIZE,
      this.fault_src,
      this.fault_dst,
      ctx,
    );
    this.migrating = prev;
    if (ret || migrate_pfn_has(this.fault_dst[0]!, MIGRATE_PFN_ERROR)) return VM_FAULT_SIGBUS;
    return 0;
  }

  /** sync_cpu_device_pagetables: drop the device's mappings of [start, end). */
  sync(mirror: dmirror, update: hmm_update): number {
    if (this.migrating === mirror.mm) return 0;
    const ps = this.k.c.PAGE_SIZE;
    if (mirror.pt.size) mirror.pt.clear_range(Math.floor(update.start / ps), Math.ceil(update.end / ps));
    return 0;
  }

  /** The mm is exiting: forget its page table and let go of the mirror. */
  release(mirror: dmirror): void {
    mirror.pt.clear();
    this.mirrors.delete(mirror.mm);
    hmm_mirror_unregister(this.k, mirror);
  }

  private mirror_get(mm: mm_struct): ErrPtr<dmirror> {
    let mirror = this.mirrors.get(mm);
    if (mirror) return mirror;
    mirror = new dmirror(this, mm);
    const ret = hmm_mirror_register(this.k, mirror, mm);
    if (ret) return ret;
    this.mirrors.set(mm, mirror);
    return mirror;
  }

  /** The device page mapped at addr in the device's page table for mm, or -1. */
  device_page(mm: mm_struct, addr: number): number {
    const v = this.mirrors.get(mm)?.pt.get(Math.floor(addr / this.k.c.PAGE_SIZE));
    return v === undefined ? -1 : Math.floor(v / 2);
  }

  /** HMM_DMIRROR_MIGRATE: move npages at addr of the task into device memory. */
  migrate(task: task_struct, addr: number, npages: number): DmirrorResult {
    if (!task.mm) return { ret: -EINVAL, cpages: 0 };
    const mirror = this.mirror_get(task.mm);
    if (IS_ERR(mirror)) return { ret: mirror, cpages: 0 };
    return this.migrate_range(task.mm, addr, npages, this.to_device_ops, mirror);
  }

  /** HMM_DMIRROR_MIGRATE_TO_SYS: bring this device's pages in the range back to system memory. */
  migrate_to_sys(task: task_struct, addr: number, npages: number): DmirrorResult {
    if (!task.mm) return { ret: -EINVAL, cpages: 0 };
    return this.migrate_range(task.mm, addr, npages, this.to_system_ops, this.mirrors.get(task.mm) ?? null);
  }

  /** dmirror_migrate: the range vma by vma, in batches of `batch` pages; -EINVAL at a gap or unreadable vma. */
  private migrate_range(
    mm: mm_struct,
    addr: number,
    npages: number,
    ops: migrate_vma_ops,
    mirror: dmirror | null,
  ): DmirrorResult {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    if (addr % ps || !Number.isInteger(npages) || npages <= 0) return { ret: -EINVAL, cpages: 0 };
    if (this.src.length < this.batch) {
      this.src = new Float64Array(this.batch);
      this.dst = new Float64Array(this.batch);
    }
    const ctx: dmirror_migration = { mirror, cpages: 0 };
    const end = addr + npages * ps;
    const prev = this.migrating;
    this.migrating = mm;
    let ret = 0;
    for (let start = addr; start < end;) {
      const vma = vma_lookup(mm, start);
      if (!vma || !(vma.vm_flags & VM_READ)) {
        ret = -EINVAL;
        break;
      }
      const next = Math.min(end, vma.vm_end, start + this.batch * ps);
      ret = migrate_vma(k, ops, vma, start, next, this.src, this.dst, ctx);
      if (ret) break;
      start = next;
    }
    this.migrating = prev;
    return { ret, cpages: ctx.cpages };
  }
}

/** Probe: hotplug `size` bytes of device private memory and serve it. */
export function dmirror_device_probe(
  k: Kernel,
  dev: device,
  size: number = DMIRROR_DEVICE_MEMORY,
): ErrPtr<dmirror_device> {
  const mdevice = new dmirror_device(k, dev);
  const devmem = hmm_devmem_add(k, mdevice.devmem_ops, dev, size);
  if (IS_ERR(devmem)) return devmem;
  mdevice.devmem = devmem;
  mdevice.pool = new DevicePagePool(k, devmem.pfn_first, devmem.pfn_last);
  dev_set_drvdata(dev, mdevice);
  return mdevice;
}
