// dmirror: the HMM test driver (the HMM series' dummy driver, later lib/test_hmm.c). Its
// memory is un-addressable device private memory hotplugged with hmm_devmem_add; each
// process it serves gets a mirror (hmm_mirror) holding the device's page table, filled by
// migrating the process's pages into device memory with migrate_vma, or by the device
// faulting them in through the mirror (hmm_range_register + hmm_range_fault, the 2019 API).
// A CPU access to a migrated page faults it back through hmm_devmem_ops.fault. Its commands
// are the ioctls of lib/test_hmm.c, with the results tools/testing/selftests/mm/hmm-tests.c
// checks (ret, cpages, faults, snapshot bytes).
import type { Kernel } from '../kernel/kernel';
import { dev_set_drvdata, type device } from '../kernel/drivers/base/core';
import { EAGAIN, EBUSY, EFAULT, EINVAL, ENOENT, EPERM, IS_ERR, type ErrPtr } from '../kernel/include/errno';
import { get_page, lock_page, page_count } from '../kernel/include/mm';
import {
  VM_FAULT_SIGBUS,
  VM_READ,
  VM_WRITE,
  type mm_struct,
  type vm_area_struct,
} from '../kernel/include/mm_types';
import type { task_struct } from '../kernel/include/sched';
import { pmd_huge } from '../kernel/include/pgtable';
import { is_device_private_page, page_pgmap } from '../kernel/kernel/memremap';
import type { mirror_dump, mirror_pte } from '../kernel/mm/debug_vm';
import { clear_highpage, copy_highpage } from '../kernel/mm/highmem';
import {
  hmm_devmem_add,
  hmm_vma_alloc_locked_page,
  type hmm_devmem,
  type hmm_devmem_ops,
} from '../kernel/mm/hmm';
import {
  HMM_PFN_DEVICE_PRIVATE,
  HMM_PFN_ERROR,
  HMM_PFN_SPECIAL,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmm_mirror,
  hmm_mirror_register,
  hmm_mirror_unregister,
  hmm_pfn_to_page,
  hmm_pfn_to_pfn,
  hmm_range,
  hmm_range_fault,
  hmm_range_register,
  hmm_range_snapshot,
  hmm_range_unregister,
  hmm_range_valid,
  hmm_range_wait_until_valid,
  type hmm_update,
} from '../kernel/mm/hmm_mirror';
import { is_zero_pfn } from '../kernel/mm/memory';
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
import { find_vma, vma_lookup } from '../kernel/mm/mmap';
import { walk_lookup, type Walk } from '../kernel/mm/pgtable';
import { rmap_walk } from '../kernel/mm/rmap';

/** Device memory when the machine file does not say (256 MiB). */
export const DMIRROR_DEVICE_MEMORY = 256 * 2 ** 20;
/** Pages per migrate_vma call (test_hmm's src_pfns[64]). */
export const DMIRROR_MIGRATE_BATCH = 64;
/** Pages per hmm_range_fault / hmm_range_snapshot call (test_hmm's pfns[64]). */
export const DMIRROR_RANGE_PAGES = 64;
/**
 * Tries of one range before the driver gives up with -EBUSY (test_hmm waits
 * HMM_RANGE_DEFAULT_TIMEOUT; the simulator has no threads, so a range that stays invalid
 * this long never becomes valid).
 */
export const DMIRROR_RANGE_TRIES = 16;

// HMM_DMIRROR_SNAPSHOT's byte per page (lib/test_hmm_uapi.h), combined with OR.
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;

// The driver's range->flags[] and range->values[]: VALID, WRITE, DEVICE_PRIVATE in the low
// bits, an error bit above them, the pfn from bit 4.
const DMIRROR_PFN_FLAGS = [1, 2, 4] as const;
const DMIRROR_PFN_VALUES = [8, 0, 10] as const; // ERROR, NONE, SPECIAL
const DMIRROR_PFN_SHIFT = 4;
const PFN_VALID = DMIRROR_PFN_FLAGS[HMM_PFN_VALID];
const PFN_WRITE = DMIRROR_PFN_FLAGS[HMM_PFN_WRITE];
const PFN_DEVICE_PRIVATE = DMIRROR_PFN_FLAGS[HMM_PFN_DEVICE_PRIVATE];

const PFN_UNIT = 2 ** DMIRROR_PFN_SHIFT;

function pfn_flags(v: number): number {
  return v - Math.floor(v / PFN_UNIT) * PFN_UNIT;
}

/**
 * Device pages in the order they were added (oldest first), as a list linked through typed
 * arrays indexed by the page's offset in the device: adding and removing a page hashes
 * nothing. The arrays are allocated on first use.
 */
export class DevicePageLru {
  /** Links as offset + 1 (0: none). */
  private next: Int32Array | null = null;
  private prev: Int32Array | null = null;
  private head = 0;
  private tail = 0;

  constructor(
    private readonly k: Kernel,
    private readonly first_pfn: number,
    private readonly nr_pages: number,
  ) {}

  /** Append the page, unless it is listed already. */
  add(page: number): void {
    if (!this.next || !this.prev) {
      this.next = new Int32Array(this.nr_pages);
      this.prev = new Int32Array(this.nr_pages);
    }
    const i = this.k.mem.page_to_pfn(page) - this.first_pfn + 1;
    if (this.prev[i - 1] || this.head === i) return;
    this.prev[i - 1] = this.tail;
    if (this.tail) this.next[this.tail - 1] = i;
    else this.head = i;
    this.tail = i;
  }

  delete(page: number): void {
    if (!this.next || !this.prev) return;
    const i = this.k.mem.page_to_pfn(page) - this.first_pfn + 1;
    const prev = this.prev[i - 1]!;
    const next = this.next[i - 1]!;
    if (!prev && this.head !== i) return;
    if (prev) this.next[prev - 1] = next;
    else this.head = next;
    if (next) this.prev[next - 1] = prev;
    else this.tail = prev;
    this.prev[i - 1] = 0;
    this.next[i - 1] = 0;
  }

  *[Symbol.iterator](): Iterator<number> {
    for (let i = this.head; i; i = this.next![i - 1]!) yield this.k.mem.pfn_to_page(this.first_pfn + i - 1);
  }
}

/**
 * The driver's free device pages: never-used pages in pfn order, then the ones the kernel
 * gave back through the free callback. Nothing is built up front: the stack of pages given
 * back is reserved at 4 bytes a device page, and the OS backs it only as pages come back.
 */
export class DevicePagePool {
  private next: number;
  /** The pages given back, a stack: freed[0..nr_freed). */
  private readonly freed: Int32Array;
  private nr_freed = 0;
  readonly nr_pages: number;
  /**
   * Pages in use, least recently migrated in first: the `fault` policy's eviction order (the
   * driver sees faults, not the device's accesses).
   */
  readonly lru: DevicePageLru;

  constructor(
    private readonly k: Kernel,
    first_pfn: number,
    private readonly end_pfn: number,
  ) {
    this.next = first_pfn;
    this.nr_pages = end_pfn - first_pfn;
    this.freed = new Int32Array(this.nr_pages);
    this.lru = new DevicePageLru(k, first_pfn, this.nr_pages);
  }

  /** A free device page (page index), or -1 when the device memory is exhausted. */
  alloc(): number {
    if (this.nr_freed) return this.freed[--this.nr_freed]!;
    return this.next < this.end_pfn ? this.k.mem.pfn_to_page(this.next++) : -1;
  }

  free(page: number): void {
    // Only a page handed out twice (a driver bug) could be given back past the device's size.
    if (this.nr_freed === this.nr_pages) return this.k.WARN(`device page pool: page ${page} freed twice`);
    this.freed[this.nr_freed++] = page;
  }

  get nr_free(): number {
    return this.end_pfn - this.next + this.nr_freed;
  }

  /** Every page handed out at least once (free again or not), in pfn order. */
  *handed_out(): Iterable<number> {
    const first = this.end_pfn - this.nr_pages;
    for (let pfn = first; pfn < this.next; pfn++) yield this.k.mem.pfn_to_page(pfn);
  }
}

/** Entries per device page-table node. */
const DPT_ENTRIES = 512;
/** store_range's values that are no entry: leave the page's entry as it is, or drop it. */
export const DPT_KEEP = -1;
export const DPT_UNMAP = -2;

/**
 * The device's page table for one address space: virtual page number -> device page * 2,
 * + 1 when the device may write. Two levels, as a device MMU's, so keys stay small integers.
 */
export class DevicePageTable {
  /** vpn / DPT_ENTRIES -> node of entry + 1 (0: none). */
  private readonly nodes = new Map<number, Float64Array>();
  size = 0;
  /** The node found last: neighbouring pages share it, so most lookups skip the Map. */
  private last_key = -1;
  private last_node: Float64Array | undefined;

  private node(key: number, create: boolean): Float64Array | undefined {
    if (key === this.last_key) return this.last_node;
    let node = this.nodes.get(key);
    if (!node) {
      if (!create) return undefined;
      node = new Float64Array(DPT_ENTRIES);
      this.nodes.set(key, node);
    }
    this.last_key = key;
    this.last_node = node;
    return node;
  }

  get(vpn: number): number | undefined {
    const key = Math.floor(vpn / DPT_ENTRIES);
    const v = this.node(key, false)?.[vpn - key * DPT_ENTRIES];
    return v ? v - 1 : undefined;
  }

  set(vpn: number, value: number): void {
    const key = Math.floor(vpn / DPT_ENTRIES);
    const node = this.node(key, true)!;
    const i = vpn - key * DPT_ENTRIES;
    if (!node[i]) this.size++;
    node[i] = value + 1;
  }

  delete(vpn: number): void {
    const key = Math.floor(vpn / DPT_ENTRIES);
    const node = this.node(key, false);
    const i = vpn - key * DPT_ENTRIES;
    if (!node?.[i]) return;
    node[i] = 0;
    this.size--;
  }

  /**
   * The nodes n virtual pages from first cover, in order: fn(key, from, to, i) for entries
   * [from, to) of node key, the first of them the range's page i.
   */
  private each_node(
    first: number,
    n: number,
    fn: (key: number, from: number, to: number, i: number) => void,
  ): void {
    for (let i = 0; i < n;) {
      const key = Math.floor((first + i) / DPT_ENTRIES);
      const from = first + i - key * DPT_ENTRIES;
      const to = Math.min(DPT_ENTRIES, from + n - i);
      fn(key, from, to, i);
      i += to - from;
    }
  }

  /** The entries of n virtual pages from first into out (-1 where none), a node at a time. */
  lookup_range(first: number, n: number, out: Float64Array): void {
    this.each_node(first, n, (key, from, to, i) => {
      const node = this.nodes.get(key);
      for (let j = from; j < to; j++, i++) out[i] = node ? node[j]! - 1 : -1;
    });
  }

  /**
   * Write n entries from first, a node at a time: values[i] >= 0 maps that page, DPT_UNMAP
   * drops its entry, DPT_KEEP leaves it.
   */
  store_range(first: number, n: number, values: Float64Array): void {
    this.each_node(first, n, (key, from, to, i) => {
      let node = this.nodes.get(key);
      for (let j = from; j < to; j++, i++) {
        const v = values[i]!;
        if (v === DPT_KEEP || (!node && v === DPT_UNMAP)) continue;
        if (!node) this.nodes.set(key, (node = new Float64Array(DPT_ENTRIES)));
        if (node[j]) this.size--;
        node[j] = v === DPT_UNMAP ? 0 : v + 1;
        if (node[j]) this.size++;
      }
    });
  }

  /** Drop the entries of [first, last) virtual pages; returns how many there were. */
  clear_range(first: number, last: number): number {
    const before = this.size;
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
    return before - this.size;
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

  /** The entry of a virtual page decoded, or null. */
  entry(vpn: number): DmirrorEntry | null {
    const v = this.get(vpn);
    return v === undefined ? null : { page: Math.floor(v / 2), write: v % 2 === 1 };
  }

  /** Every entry as check_mirror_coherence reads it, in no particular order. */
  *dump(k: Kernel): Iterable<mirror_pte> {
    for (const [vpn, v] of this.entries())
      yield { addr: vpn * k.c.PAGE_SIZE, pfn: k.mem.page_to_pfn(Math.floor(v / 2)), write: v % 2 === 1 };
  }

  /** Every entry as [vpn, value], in no particular order. */
  *entries(): Iterable<[number, number]> {
    for (const [key, node] of this.nodes)
      for (let i = 0; i < DPT_ENTRIES; i++) if (node[i]) yield [key * DPT_ENTRIES + i, node[i]! - 1];
  }

  clear(): void {
    this.nodes.clear();
    this.size = 0;
    this.last_key = -1;
    this.last_node = undefined;
  }
}

/**
 * struct dmirror: one process's mirror on the device, with the device's page table for it.
 * Dumpable, so check_mirror_coherence can hold its page table against the CPU's.
 */
export class dmirror extends hmm_mirror implements mirror_dump {
  readonly pt = new DevicePageTable();
  readonly driver: string;

  constructor(
    readonly mdevice: dmirror_device,
    readonly mm: mm_struct,
  ) {
    super(null);
    this.driver = `dmirror ${mdevice.dev.name}`;
    this.ops = {
      sync_cpu_device_pagetables: (_mirror, update) => mdevice.sync(this, update),
      release: () => mdevice.mirror_release(this),
    };
  }

  dump(): Iterable<mirror_pte> {
    return this.pt.dump(this.mdevice.k);
  }
}

/** What a migration returns: the kernel's answer and the pages it moved. */
export interface DmirrorResult {
  ret: number;
  /** Pages the device copied (migrated). */
  cpages: number;
}

/**
 * What a command returns, as the ioctls of lib/test_hmm.c fill struct hmm_dmirror_cmd and
 * tools/testing/selftests/mm/hmm-tests.c checks it.
 */
export interface DmirrorCmdResult extends DmirrorResult {
  /** Times the device faulted the range in (one round may fault many pages). */
  faults: number;
  /** Pages moved between system and device memory (what the copy engine carried). */
  moved: number;
  /** snapshot: one HMM_DMIRROR_PROT_* byte per page. */
  bytes?: Uint8Array;
}

/** What the `fault` policy returns: the pages it migrated in (cpages) and evicted for room. */
export interface DmirrorFaultResult extends DmirrorCmdResult {
  evicted: number;
}

/** A device page-table entry: the page the device maps and whether it may write. */
export interface DmirrorEntry {
  page: number;
  write: boolean;
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
  /** Pages per hmm_range_fault call when the device faults a range in (a GPU's fault batch). */
  range_pages = DMIRROR_RANGE_PAGES;
  /** The mm this device is migrating: its own invalidations are no news to its page table. */
  private migrating: mm_struct | null = null;
  private src = new Float64Array(DMIRROR_MIGRATE_BATCH);
  private dst = new Float64Array(DMIRROR_MIGRATE_BATCH);
  private readonly fault_src = new Float64Array(1);
  private readonly fault_dst = new Float64Array(1);

  readonly devmem_ops: hmm_devmem_ops = {
    fault: (_devmem, vma, addr) => this.devmem_fault(vma, addr),
    free: (_devmem, page) => {
      this.pool.lru.delete(page);
      this.pool.free(page);
    },
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
        this.pool.lru.add(dpage);
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
    const cleared = mirror.pt.size
      ? mirror.pt.clear_range(Math.floor(update.start / ps), Math.ceil(update.end / ps))
      : 0;
    if (this.k.trace.on('dmirror_sync'))
      this.k.trace.emit({
        name: 'dmirror_sync',
        device: this.dev.name,
        mm: mirror.mm.id,
        start: update.start,
        end: update.end,
        cleared,
      });
    return 0;
  }

  /** hmm_mirror_ops.release: the mm is exiting; forget its page table and let go of the mirror. */
  mirror_release(mirror: dmirror): void {
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

  /** dmirror_fops_open: the task opens the device file; the driver mirrors its mm. */
  open(task: task_struct): number {
    if (!task.mm) return -EINVAL;
    const mirror = this.mirror_get(task.mm);
    return IS_ERR(mirror) ? mirror : 0;
  }

  /** dmirror_fops_release: the file is closed; the mirror and its page table go. */
  close(task: task_struct): void {
    const mirror = task.mm ? this.mirrors.get(task.mm) : undefined;
    if (mirror) this.mirror_release(mirror);
  }

  /** The device page mapped at addr in the device's page table for mm, or -1. */
  device_page(mm: mm_struct, addr: number): number {
    return this.device_entry(mm, addr)?.page ?? -1;
  }

  /** The device page-table entry for addr of mm, or null. */
  device_entry(mm: mm_struct, addr: number): DmirrorEntry | null {
    return this.mirrors.get(mm)?.pt.entry(Math.floor(addr / this.k.c.PAGE_SIZE)) ?? null;
  }

  /** The checks of dmirror_fops_unlocked_ioctl: a page-aligned, non-empty range of a live mm. */
  private cmd_mirror(task: task_struct, addr: number, npages: number): ErrPtr<dmirror> {
    if (!task.mm || task.mm.dying) return -EINVAL;
    if (addr % this.k.c.PAGE_SIZE || !Number.isSafeInteger(npages) || npages <= 0) return -EINVAL;
    return this.mirror_get(task.mm);
  }

  private cmd_done(
    task: task_struct,
    cmd: string,
    addr: number,
    npages: number,
    res: DmirrorCmdResult,
  ): DmirrorCmdResult {
    this.k.trace.emit({
      name: 'dmirror_cmd',
      device: this.dev.name,
      mm: task.mm?.id ?? -1,
      cmd,
      start: addr,
      npages,
      ret: res.ret,
      cpages: res.cpages,
      faults: res.faults,
    });
    return res;
  }

  /**
   * HMM_DMIRROR_READ (dmirror_read): the device reads npages at addr through its page table,
   * faulting the range in (read) whenever an entry is missing; `faults` counts those rounds.
   * On success the bytes land in `buffer` (byte k of the buffer is byte k of the range);
   * on failure the buffer is left as it was.
   */
  read(task: task_struct, addr: number, npages: number, buffer: Uint8Array | null = null): DmirrorCmdResult {
    const mirror = this.cmd_mirror(task, addr, npages);
    if (IS_ERR(mirror)) return { ret: mirror, cpages: 0, faults: 0, moved: 0 };
    const ps = this.k.c.PAGE_SIZE;
    const end = addr + npages * ps;
    const bounce = buffer ? new Uint8Array(Math.min(buffer.length, npages * ps)) : null;
    const res: DmirrorCmdResult = { ret: 0, cpages: 0, faults: 0, moved: 0 };
    this.access_faulting(mirror, addr, end, false, res, (start) =>
      this.do_read(mirror, addr, start, end, bounce, res),
    );
    if (res.ret === 0 && buffer && bounce) {
      // copy_to_user of the whole range: a buffer shorter than the range faults.
      buffer.set(bounce);
      if (buffer.length < npages * ps) res.ret = -EFAULT;
    }
    return this.cmd_done(task, 'read', addr, npages, res);
  }

  /**
   * HMM_DMIRROR_WRITE (dmirror_write): the device writes `buffer` into npages at addr through
   * its page table, write-faulting the range in while an entry is missing or read-only. Pages
   * already in this device's memory are written there directly.
   */
  write(task: task_struct, addr: number, npages: number, buffer: Uint8Array): DmirrorCmdResult {
    const mirror = this.cmd_mirror(task, addr, npages);
    if (IS_ERR(mirror)) return { ret: mirror, cpages: 0, faults: 0, moved: 0 };
    const ps = this.k.c.PAGE_SIZE;
    const res: DmirrorCmdResult = { ret: 0, cpages: 0, faults: 0, moved: 0 };
    // copy_from_user of the whole range into the bounce buffer.
    if (buffer.length < npages * ps) {
      res.ret = -EFAULT;
      return this.cmd_done(task, 'write', addr, npages, res);
    }
    const end = addr + npages * ps;
    this.access_faulting(mirror, addr, end, true, res, (start) =>
      this.do_write(mirror, addr, start, end, buffer, res),
    );
    return this.cmd_done(task, 'write', addr, npages, res);
  }

  /**
   * The loop of dmirror_read and dmirror_write: `access` goes on from the first page not yet
   * done (res.cpages counts them) until it meets a page the device does not map (-ENOENT);
   * the rest of the range is then faulted in and the access resumes, at most
   * DMIRROR_RANGE_TRIES rounds (-EBUSY after). res.ret is the outcome.
   */
  private access_faulting(
    mirror: dmirror,
    addr: number,
    end: number,
    write: boolean,
    res: DmirrorCmdResult,
    access: (start: number) => number,
  ): void {
    const ps = this.k.c.PAGE_SIZE;
    for (;;) {
      res.ret = access(addr + res.cpages * ps);
      if (res.ret !== -ENOENT) return;
      res.ret = this.fault(mirror, addr + res.cpages * ps, end, write);
      if (res.ret) return;
      if (++res.faults > DMIRROR_RANGE_TRIES) {
        res.ret = -EBUSY;
        return;
      }
    }
  }

  /** dmirror_do_read: copy [start, end) from the pages the device maps; -ENOENT at the first hole. */
  private do_read(
    mirror: dmirror,
    base: number,
    start: number,
    end: number,
    bounce: Uint8Array | null,
    res: DmirrorCmdResult,
  ): number {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    for (let addr = start; addr < end; addr += ps) {
      const v = mirror.pt.get(addr / ps);
      if (v === undefined) return -ENOENT;
      const off = addr - base;
      if (bounce && off < bounce.length) {
        const n = Math.min(ps, bounce.length - off);
        const bytes = k.contents.peek(Math.floor(v / 2));
        if (bytes) bounce.set(bytes.subarray(0, n), off);
        else bounce.fill(0, off, off + n);
      }
      res.cpages++;
    }
    return 0;
  }

  /** dmirror_do_write: copy into the pages the device maps writable; -ENOENT at the first other. */
  private do_write(
    mirror: dmirror,
    base: number,
    start: number,
    end: number,
    buffer: Uint8Array,
    res: DmirrorCmdResult,
  ): number {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    for (let addr = start; addr < end; addr += ps) {
      const v = mirror.pt.get(addr / ps);
      if (v === undefined || v % 2 === 0) return -ENOENT;
      const page = Math.floor(v / 2);
      k.contents.kmap(page, ps).set(buffer.subarray(addr - base, addr - base + ps));
      k.mem.stamp[page] = (k.mem.stamp[page]! + 1) >>> 0;
      res.cpages++;
    }
    return 0;
  }

  /** dmirror_fault: fault [start, end) into the device page table, range_pages at a time. */
  private fault(mirror: dmirror, start: number, end: number, write: boolean): number {
    const span = this.range_pages * this.k.c.PAGE_SIZE;
    for (let addr = start; addr < end; addr += span) {
      const ret = this.range_fault(mirror, addr, Math.min(end, addr + span), write);
      if (ret) return ret;
    }
    return 0;
  }

  private new_range(npages: number): hmm_range {
    return new hmm_range(new Float64Array(npages), DMIRROR_PFN_FLAGS, DMIRROR_PFN_VALUES, DMIRROR_PFN_SHIFT);
  }

  private retry(mirror: dmirror, range: hmm_range, reason: string): void {
    this.k.trace.emit({
      name: 'dmirror_retry',
      device: this.dev.name,
      mm: mirror.mm.id,
      start: range.start,
      end: range.end,
      reason,
    });
  }

  /**
   * dmirror_range_fault with the 2019 API and its documented loop: register the range,
   * wait until it is valid, hmm_range_fault, then under the device lock check
   * hmm_range_valid and update the device page table only if it still is; retry on
   * -EAGAIN, -EBUSY or an invalidated range. The seed-era fault leaves device-private
   * pages where they are unless asked: a page of another device, or one of this device the
   * device may not write, is requested again with DEVICE_PRIVATE so the CPU fault brings
   * it home (the later kernels' dev_private_owner).
   */
  private range_fault(mirror: dmirror, start: number, end: number, write: boolean): number {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    const npages = (end - start) / ps;
    const range = this.new_range(npages);
    const home = new Uint8Array(npages);
    const request = PFN_VALID + (write ? PFN_WRITE : 0);
    for (let tries = 0; tries < DMIRROR_RANGE_TRIES; tries++) {
      let ret = hmm_range_register(k, range, mirror, start, end, k.c.PAGE_SHIFT);
      if (ret) return ret;
      for (let i = 0; i < npages; i++) range.pfns[i] = request + (home[i] ? PFN_DEVICE_PRIVATE : 0);
      if (!hmm_range_wait_until_valid(range)) {
        hmm_range_unregister(range);
        this.retry(mirror, range, 'invalid');
        continue;
      }
      ret = hmm_range_fault(k, range, true);
      if (ret < 0) {
        hmm_range_unregister(range);
        if (ret !== -EAGAIN && ret !== -EBUSY) return ret;
        this.retry(mirror, range, ret === -EAGAIN ? '-EAGAIN' : '-EBUSY');
        continue;
      }
      // Take the device lock: the device page table changes only while the range is valid.
      if (!hmm_range_valid(range)) {
        hmm_range_unregister(range);
        this.retry(mirror, range, 'invalidated');
        continue;
      }
      let elsewhere = false;
      for (let i = 0; i < npages; i++) {
        const v = range.pfns[i]!;
        const page = hmm_pfn_to_page(k, range, v);
        if (page < 0) {
          hmm_range_unregister(range);
          k.WARN(`dmirror: hmm_range_fault left 0x${(start + i * ps).toString(16)} without a page`);
          return -EFAULT;
        }
        const f = pfn_flags(v);
        if (
          f & PFN_DEVICE_PRIVATE &&
          (page_pgmap(k, page) !== this.devmem.pagemap || (write && !(f & PFN_WRITE)))
        ) {
          home[i] = 1;
          elsewhere = true;
        }
      }
      if (elsewhere) {
        hmm_range_unregister(range);
        this.retry(mirror, range, 'device-private');
        continue;
      }
      for (let i = 0; i < npages; i++) {
        const v = range.pfns[i]!;
        mirror.pt.set(start / ps + i, hmm_pfn_to_page(k, range, v) * 2 + (pfn_flags(v) & PFN_WRITE ? 1 : 0));
      }
      hmm_range_unregister(range);
      return 0;
    }
    this.retry(mirror, range, 'gave up');
    return -EBUSY;
  }

  /**
   * HMM_DMIRROR_SNAPSHOT (dmirror_snapshot): one HMM_DMIRROR_PROT_* byte per page of what the
   * CPU page table holds, without faulting, DMIRROR_RANGE_PAGES at a time. With `buffer`,
   * byte k of the buffer gets page k's byte. cpages counts the pages snapshotted.
   */
  snapshot(
    task: task_struct,
    addr: number,
    npages: number,
    buffer: Uint8Array | null = null,
  ): DmirrorCmdResult {
    const mirror = this.cmd_mirror(task, addr, npages);
    if (IS_ERR(mirror)) return { ret: mirror, cpages: 0, faults: 0, moved: 0 };
    const ps = this.k.c.PAGE_SIZE;
    const bytes = new Uint8Array(npages);
    const res: DmirrorCmdResult = { ret: 0, cpages: 0, faults: 0, moved: 0, bytes };
    const end = addr + npages * ps;
    for (let start = addr; start < end;) {
      const next = Math.min(end, start + DMIRROR_RANGE_PAGES * ps);
      res.ret = this.range_snapshot(mirror, start, next, bytes.subarray((start - addr) / ps));
      if (res.ret) break;
      res.cpages += (next - start) / ps;
      start = next;
    }
    if (res.ret === 0 && buffer) {
      buffer.set(bytes.subarray(0, Math.min(npages, buffer.length)));
      if (buffer.length < npages) res.ret = -EFAULT;
    }
    return this.cmd_done(task, 'snapshot', addr, npages, res);
  }

  /**
   * dmirror_range_snapshot over [start, end), vma by vma: the 2019 hmm_range_snapshot stops
   * at a hole (-EFAULT) and at a vma without VM_READ (-EPERM), so the driver walks each vma
   * alone and reports such pages as ERROR, as later kernels' walk does.
   */
  private range_snapshot(mirror: dmirror, start: number, end: number, out: Uint8Array): number {
    const ps = this.k.c.PAGE_SIZE;
    for (let addr = start; addr < end;) {
      const vma = find_vma(mirror.mm, addr);
      const next = !vma ? end : vma.vm_start > addr ? Math.min(end, vma.vm_start) : Math.min(end, vma.vm_end);
      if (!vma || vma.vm_start > addr)
        out.fill(HMM_DMIRROR_PROT_ERROR, (addr - start) / ps, (next - start) / ps);
      else {
        const ret = this.snapshot_vma(mirror, addr, next, out.subarray((addr - start) / ps));
        if (ret) return ret;
      }
      addr = next;
    }
    return 0;
  }

  /** One vma's part of a snapshot, with the register / snapshot / valid retry loop. */
  private snapshot_vma(mirror: dmirror, start: number, end: number, out: Uint8Array): number {
    const k = this.k;
    const npages = (end - start) / k.c.PAGE_SIZE;
    const range = this.new_range(npages);
    for (let tries = 0; tries < DMIRROR_RANGE_TRIES; tries++) {
      let ret = hmm_range_register(k, range, mirror, start, end, k.c.PAGE_SHIFT);
      if (ret) return ret;
      range.pfns.fill(0);
      if (!hmm_range_wait_until_valid(range)) {
        hmm_range_unregister(range);
        this.retry(mirror, range, 'invalid');
        continue;
      }
      ret = hmm_range_snapshot(k, range);
      if (ret === -EAGAIN || ret === -EBUSY) {
        hmm_range_unregister(range);
        this.retry(mirror, range, ret === -EAGAIN ? '-EAGAIN' : '-EBUSY');
        continue;
      }
      if (!hmm_range_valid(range)) {
        hmm_range_unregister(range);
        this.retry(mirror, range, 'invalidated');
        continue;
      }
      hmm_range_unregister(range);
      // No valid mirror entry for a vma the CPU may not read or the device may not map.
      if (ret === -EPERM || ret === -EFAULT) out.fill(HMM_DMIRROR_PROT_ERROR, 0, npages);
      else if (ret < 0) return ret;
      else for (let i = 0; i < npages; i++) out[i] = this.mkentry(mirror, range, i);
      return 0;
    }
    this.retry(mirror, range, 'gave up');
    return -EBUSY;
  }

  private readonly walk: Walk = { pud: -1, pmd: -1, pte: -1 };

  /**
   * dmirror_mkentry: the snapshot byte of entry i. The 2019 entries carry no mapping order
   * (later kernels' hmm_pfn_to_map_order), so PMD and PUD come from the CPU page table's
   * leaf at that address, read while the range is still valid.
   */
  private mkentry(mirror: dmirror, range: hmm_range, i: number): number {
    const k = this.k;
    const v = range.pfns[i]!;
    if (v === range.values[HMM_PFN_ERROR] || v === range.values[HMM_PFN_SPECIAL])
      return HMM_DMIRROR_PROT_ERROR;
    const pfn = hmm_pfn_to_pfn(range, v);
    if (pfn < 0) return HMM_DMIRROR_PROT_NONE;
    const page = k.mem.pfn_to_page(pfn);
    const f = pfn_flags(v);
    let perm = HMM_DMIRROR_PROT_NONE;
    if (f & PFN_DEVICE_PRIVATE || (page >= 0 && is_device_private_page(k, page)))
      perm =
        page_pgmap(k, page) === this.devmem.pagemap
          ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL
          : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
    else if (is_zero_pfn(k, pfn)) perm = HMM_DMIRROR_PROT_ZERO;
    perm += f & PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
    const w = walk_lookup(k, mirror.mm, range.start + i * k.c.PAGE_SIZE, this.walk);
    if (w.pud >= 0 && pmd_huge(k.pt.entries[w.pud]!)) perm += HMM_DMIRROR_PROT_PUD;
    else if (w.pmd >= 0 && pmd_huge(k.pt.entries[w.pmd]!)) perm += HMM_DMIRROR_PROT_PMD;
    return perm;
  }

  /**
   * HMM_DMIRROR_RELEASE: evict all of this device's memory, whoever maps it: every device
   * page in use goes back to system memory through migrate_vma on a mapping rmap finds (the
   * migration unmaps it from every process sharing it). cpages counts the pages moved.
   */
  release(task: task_struct): DmirrorCmdResult {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    const res: DmirrorCmdResult = { ret: 0, cpages: 0, faults: 0, moved: 0 };
    const prev = this.migrating;
    for (const page of this.pool.handed_out()) {
      // A device page idles at refcount 1: only pages in use are mapped somewhere.
      if (page_count(k, page) <= 1) continue;
      let vma: vm_area_struct | null = null;
      let addr = 0;
      rmap_walk(k, page, (v, a) => {
        vma = v;
        addr = a;
        return false;
      });
      if (!vma) continue;
      const mm = (vma as vm_area_struct).vm_mm;
      const ctx: dmirror_migration = { mirror: this.mirrors.get(mm) ?? null, cpages: 0 };
      this.migrating = mm;
      const ret = migrate_vma(
        k,
        this.to_system_ops,
        vma,
        addr,
        addr + ps,
        this.fault_src,
        this.fault_dst,
        ctx,
      );
      this.migrating = prev;
      if (ret) {
        res.ret = ret;
        break;
      }
      res.cpages += ctx.cpages;
    }
    res.moved = res.cpages;
    return this.cmd_done(task, 'release', 0, 0, res);
  }

  /**
   * The device faulted on npages at addr (a run of a device kernel's fault batch; `write`
   * when an access there writes). The lab's policy for dmirror, not a test_hmm ioctl: when
   * free device memory is short, evict the least recently migrated-in pages (evict); migrate
   * the range to device memory (HMM_DMIRROR_MIGRATE); whatever did not move (shared or file
   * memory, another device's page, which the CPU fault brings home) is faulted into the device
   * page table where it is (dmirror_fault). cpages: pages migrated in; faults: those rounds.
   */
  device_fault(task: task_struct, addr: number, npages: number, write: boolean): DmirrorFaultResult {
    const res: DmirrorFaultResult = { ret: 0, cpages: 0, faults: 0, moved: 0, evicted: 0 };
    const mirror = this.cmd_mirror(task, addr, npages);
    if (IS_ERR(mirror)) return { ...res, ret: mirror };
    const ps = this.k.c.PAGE_SIZE;
    const end = addr + npages * ps;
    const usable = (a: number): boolean => {
      const v = mirror.pt.get(a / ps);
      return v !== undefined && (!write || v % 2 === 1);
    };
    let missing = 0;
    for (let a = addr; a < end; a += ps) if (mirror.pt.get(a / ps) === undefined) missing++;
    if (missing > this.pool.nr_free) res.evicted = this.evict(missing - this.pool.nr_free);
    const moved = this.migrate_range(task.mm!, addr, npages, this.to_device_ops, mirror);
    res.ret = moved.ret;
    res.cpages = moved.cpages;
    for (let start = addr; start < end && !res.ret;) {
      if (usable(start)) {
        start += ps;
        continue;
      }
      let stop = start + ps;
      while (stop < end && !usable(stop)) stop += ps;
      res.ret = this.fault(mirror, start, stop, write);
      res.faults++;
      start = stop;
    }
    res.moved = res.cpages + res.evicted;
    return this.cmd_done(task, 'fault', addr, npages, res) as DmirrorFaultResult;
  }

  /**
   * Send the n least recently migrated-in device pages home, neighbouring pages of one vma in
   * one migration (migrate_range). Returns the pages moved.
   */
  private evict(n: number): number {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    const victims: { vma: vm_area_struct; addr: number }[] = [];
    for (const page of this.pool.lru) {
      if (victims.length >= n) break;
      rmap_walk(k, page, (vma, addr) => {
        victims.push({ vma, addr });
        return false;
      });
    }
    victims.sort((x, y) => x.vma.vm_mm.id - y.vma.vm_mm.id || x.addr - y.addr);
    let moved = 0;
    for (let i = 0; i < victims.length;) {
      const { vma, addr } = victims[i]!;
      let j = i + 1;
      while (j < victims.length && victims[j]!.vma === vma && victims[j]!.addr === addr + (j - i) * ps) j++;
      const mm = vma.vm_mm;
      moved += this.migrate_range(mm, addr, j - i, this.to_system_ops, this.mirrors.get(mm) ?? null).cpages;
      i = j;
    }
    return moved;
  }

  /** HMM_DMIRROR_MIGRATE: move npages at addr of the task into device memory. */
  migrate(task: task_struct, addr: number, npages: number): DmirrorResult {
    if (!task.mm) return { ret: -EINVAL, cpages: 0 };
    const mirror = this.mirror_get(task.mm);
    if (IS_ERR(mirror)) return { ret: mirror, cpages: 0 };
    return this.migrate_range(task.mm, addr, npages, this.to_device_ops, mirror);
  }

  /**
   * HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device): migrate, then read the range back
   * through the device page table as the ioctl does to return the data: cpages counts the
   * pages the device maps there afterwards, -ENOENT when one is missing (a page that could
   * not move, such as shared memory or another device's page).
   */
  migrate_to_dev(
    task: task_struct,
    addr: number,
    npages: number,
    buffer: Uint8Array | null = null,
  ): DmirrorCmdResult {
    const mirror = this.cmd_mirror(task, addr, npages);
    if (IS_ERR(mirror)) return { ret: mirror, cpages: 0, faults: 0, moved: 0 };
    const moved = this.migrate_range(task.mm!, addr, npages, this.to_device_ops, mirror);
    const res: DmirrorCmdResult = { ret: moved.ret, cpages: 0, faults: 0, moved: moved.cpages };
    if (res.ret) return this.cmd_done(task, 'migrate', addr, npages, res);
    const ps = this.k.c.PAGE_SIZE;
    const bounce = buffer ? new Uint8Array(Math.min(buffer.length, npages * ps)) : null;
    res.ret = this.do_read(mirror, addr, addr, addr + npages * ps, bounce, res);
    if (res.ret === 0 && buffer && bounce) {
      buffer.set(bounce);
      if (buffer.length < npages * ps) res.ret = -EFAULT;
    }
    return this.cmd_done(task, 'migrate', addr, npages, res);
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
