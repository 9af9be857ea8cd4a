/**
 * The HMM Lab driver API: what a device driver plugin imports from `'hmm-lab'`.
 *
 * A plugin is one TypeScript module. It exports its driver as top-level functions, named as
 * the kernel's callbacks (types below: {@link Probe}, {@link DevmemFault}, ...):
 *
 * ```ts
 * import { hmm_devmem_add, dev_info, VM_FAULT_SIGBUS } from 'hmm-lab';
 * export function probe(dev: DeviceInfo): number { ... }            // required
 * export function fault(vma, addr, page, flags): number { ... }     // hmm_devmem_ops.fault
 * export function free(page): void { ... }                          // hmm_devmem_ops.free
 * export function sync_cpu_device_pagetables(mirror, start, end, event, blockable): number { ... }
 * export function release(mirror): void { ... }                     // hmm_mirror_ops.release
 * export function alloc_and_copy(vma, src, start, end, priv): number[] | void { ... } // migrate_vma_ops
 * export function finalize_and_map(vma, src, dst, start, end, priv): void { ... }
 * export function open(mm): number { ... }    // optional: a process opens the device file
 * export function close(mm): void { ... }     // optional
 * export function remove(): void { ... }      // optional: the device is unbound
 * export const commands = { read(args) { ... return { ret: 0, cpages: n }; } };
 * ```
 *
 * Rules of the wall:
 * - Only plain data crosses: numbers, booleans, strings, arrays and plain objects. Arrays of
 *   numbers cross fast, a `Float64Array` fastest (its bytes copied in one piece, no loop in the
 *   engine: pass one wherever an API takes numbers); an object costs ~20-35 us, so hot
 *   callbacks (fault, free, sync) take and return numbers only. Batches the kernel hands you
 *   (migration src/dst, range entries, page lists) arrive as `Float64Array`s.
 * - Per-page work is cheap on the kernel's side of the wall and dear on yours (~1 us a call, a
 *   slow interpreter): the batch helpers ({@link migrate_alloc_devmem_pages},
 *   {@link migrate_alloc_system_pages}, {@link device_pt_map_migrated},
 *   {@link device_pt_map_pfns}, {@link device_pt_lookup_range}) do a whole batch in one call.
 * - Kernel objects are handles: small positive numbers ({@link Devmem}, {@link Mirror},
 *   {@link Vma}, {@link Mm}, {@link Range}, ...), checked on every call; 0 is NULL. A page is a
 *   number too ({@link Page}), as everywhere in the lab.
 * - Functions that can fail return a negative errno (`-EINVAL`), as the kernel does. Passing a
 *   handle that is not yours, stale or of the wrong kind throws an Error with `.errno`.
 * - Physical addresses and pfns exceed 32 bits: never use `|`, `&`, `<<` or `>>` on them.
 *   Entries such as migrate pfns are `pfn * 2 ** shift + flags`: use `%`, `Math.floor` and `+`
 *   (flags alone fit in 32 bits, so `(entry % 64) & MIGRATE_PFN_WRITE` is fine).
 * - A callback that throws is reported with its file, line and column; one that loops, runs
 *   out of memory or recurses too deep is stopped, and the device is marked failed (its CPU
 *   faults get SIGBUS, its memory stays consistent). Load the driver again to go on.
 * - The kernel checks what you hand it: freeing a page twice, migrating to a page you do not
 *   own, returning a bad pfn, or leaving a device mapping the CPU no longer backs is reported
 *   kernel-style ("BUG: Bad page state ... in dmirror.free") and the bad entry treated as failed.
 */
declare module 'hmm-lab' {
  // ---------------------------------------------------------------------------------------
  // Types
  // ---------------------------------------------------------------------------------------

  /** A struct page: its index in the memmap. -1 is NULL. Convert with {@link page_to_pfn}. */
  export type Page = number;
  /** A page frame number: physical address / page size. */
  export type Pfn = number;
  /** struct hmm_devmem: device memory the driver hotplugged. */
  export type Devmem = number;
  /** struct hmm_mirror: the driver's mirror of one address space. */
  export type Mirror = number;
  /** struct vm_area_struct: valid while the mapping exists. */
  export type Vma = number;
  /** struct mm_struct: an address space (its id). */
  export type Mm = number;
  /** struct hmm_range: a range of pfns the driver reads from the CPU page table. */
  export type Range = number;
  /** struct mutex. */
  export type Mutex = number;
  /** struct hmm_device (a fake device, hmm_device%d). */
  export type HmmDevice = number;
  /** struct request_queue (block layer). */
  export type Queue = number;
  /** A command's user buffer (the scenario's host buffer); 0 when the command has none. */
  export type Buffer = number;

  /** The device being probed, from the machine file. */
  export interface DeviceInfo {
    /** "gpu0". */
    readonly name: string;
    /** `private`: call hmm_devmem_add; `public`: hmm_devmem_add_resource; `pmem`: a namespace. */
    readonly kind: 'private' | 'public' | 'pmem';
    /** Bytes of device memory. */
    readonly memory: number;
    /** Physical start of a public range or pmem namespace; -1 for a private device. */
    readonly start: number;
    /** A pmem namespace's mode (`fsdax`, `sector`, `raw`); '' otherwise. */
    readonly mode: string;
    readonly pageSize: number;
    readonly pageShift: number;
    /** PA_SECTION_SIZE: hotplug granularity. */
    readonly sectionSize: number;
  }

  /** What a command gets: the range of the process's address space and its buffer. */
  export interface CommandArgs {
    /** The calling process's address space. */
    readonly mm: Mm;
    /** Start of the range (page aligned by the lab; check anyway). */
    readonly addr: number;
    /** Pages in the range. */
    readonly pages: number;
    /** The scenario's buffer, 0 if none: byte k of it is byte k of the range. */
    readonly buffer: Buffer;
    /** Its size in bytes (0 without one). */
    readonly bufferSize: number;
    /**
     * `fault` (a device kernel's fault on the range, one run of its fault batch): an access
     * there writes, so the device needs the pages writable. False for other commands.
     */
    readonly write: boolean;
  }

  /**
   * What a command returns: `ret` 0 or -errno, and counters as lib/test_hmm.c's
   * struct hmm_dmirror_cmd. Other plain fields become fields of the scenario step's result.
   */
  export interface CommandResult {
    ret: number;
    /** Pages the command copied, migrated or snapshotted. */
    cpages?: number;
    /** Fault rounds (one round may fault many pages). */
    faults?: number;
    /** snapshot: one HMM_DMIRROR_PROT_* byte per page (copied into the buffer if any). */
    bytes?: number[];
    [field: string]: unknown;
  }

  /** `probe(dev)`: set the device up; 0 or -errno (the device then fails its probe). */
  export type Probe = (dev: DeviceInfo) => number;
  /**
   * hmm_devmem_ops.fault: the CPU touched one of your device-private pages at `addr`. Migrate
   * it back to system memory (migrate_vma) and return 0, or VM_FAULT_SIGBUS.
   * `flags`: FAULT_FLAG_WRITE when the access writes.
   */
  export type DevmemFault = (vma: Vma, addr: number, page: Page, flags: number) => number;
  /** hmm_devmem_ops.free: a device page's refcount fell back to 1: it is yours again. */
  export type DevmemFree = (page: Page) => void;
  /**
   * hmm_mirror_ops.sync_cpu_device_pagetables: the CPU page table of [start, end) is about to
   * change: drop your device mappings there ({@link device_pt_unmap}). Return 0, or -EAGAIN
   * when `blockable` is false and you would have to sleep.
   */
  export type SyncCpuDevicePagetables = (
    mirror: Mirror,
    start: number,
    end: number,
    event: number,
    blockable: boolean,
  ) => number;
  /** hmm_mirror_ops.release: the address space is going away: stop using it. */
  export type MirrorRelease = (mirror: Mirror) => void;
  /**
   * migrate_vma_ops.alloc_and_copy: for each `src` entry with MIGRATE_PFN_MIGRATE, allocate a
   * destination page (referenced and locked), copy into it ({@link dma_copy}) and return the
   * dst entries: `migrate_pfn(pfn) + MIGRATE_PFN_LOCKED` (+ MIGRATE_PFN_WRITE), 0 to skip a
   * page, MIGRATE_PFN_ERROR on failure. One entry per page of [start, end). Or fill them with
   * {@link migrate_alloc_devmem_pages} / {@link migrate_alloc_system_pages} and return nothing
   * (entries returned after a helper filled dst are ignored, with a warning).
   */
  export type AllocAndCopy = (
    vma: Vma,
    src: Float64Array,
    start: number,
    end: number,
    priv: number,
  ) => number[] | Float64Array | void;
  /**
   * migrate_vma_ops.finalize_and_map: the pages moved (src still has MIGRATE): map them in the
   * device ({@link device_pt_map_migrated} does it for the whole batch).
   */
  export type FinalizeAndMap = (
    vma: Vma,
    src: Float64Array,
    dst: Float64Array,
    start: number,
    end: number,
    priv: number,
  ) => void;
  /** A process opened the device file: register a mirror of `mm`. 0 or -errno. */
  export type Open = (mm: Mm) => number;
  /** The process closed the device file: its mirror goes (dmirror_fops_release). */
  export type Close = (mm: Mm) => void;
  /** The device is unbound: give device memory back, unregister mirrors, clean up. */
  export type Remove = () => void;
  /**
   * A command, run by a scenario's `device` step or the lab. A workload's device kernel runs
   * on a device whose driver exports `fault`: for each run of neighbouring pages of its fault
   * batch the lab calls it with the range and `write`; make the pages accessible in the device
   * page table as your policy says, and return `cpages` (pages migrated to device memory) and
   * `evicted` (pages sent home for room).
   */
  export type Command = (args: CommandArgs) => CommandResult;

  // ---------------------------------------------------------------------------------------
  // Constants
  // ---------------------------------------------------------------------------------------

  export const EPERM: 1;
  export const ENOENT: 2;
  export const EINTR: 4;
  export const EIO: 5;
  export const ENXIO: 6;
  export const ENOEXEC: 8;
  export const EAGAIN: 11;
  export const ENOMEM: 12;
  export const EACCES: 13;
  export const EFAULT: 14;
  export const EBUSY: 16;
  export const EEXIST: 17;
  export const ENODEV: 19;
  export const EINVAL: 22;
  export const ENOSPC: 28;
  export const ERANGE: 34;
  export const EDEADLK: 35;

  /** The page size of the machine (4096 unless the machine file says otherwise). */
  export const PAGE_SIZE: number;
  export const PAGE_SHIFT: number;
  /** Huge page (PMD) size: 2 MiB on x86-64 with 4 KiB pages. */
  export const PMD_SIZE: number;

  /** Fault results (include/linux/mm.h). */
  export const VM_FAULT_OOM: 0x0001;
  export const VM_FAULT_SIGBUS: 0x0002;
  export const VM_FAULT_MAJOR: 0x0004;
  export const VM_FAULT_WRITE: 0x0008;
  export const VM_FAULT_HWPOISON: 0x0010;
  export const VM_FAULT_SIGSEGV: 0x0040;
  export const VM_FAULT_NOPAGE: 0x0100;
  export const VM_FAULT_LOCKED: 0x0200;
  export const VM_FAULT_RETRY: 0x0400;
  /** `fault` flags: the access writes. */
  export const FAULT_FLAG_WRITE: 0x01;

  /** vm_flags bits ({@link vma_flags}). */
  export const VM_READ: 0x1;
  export const VM_WRITE: 0x2;
  export const VM_EXEC: 0x4;
  export const VM_SHARED: 0x8;

  /** migrate_vma entries: `pfn * 2 ** MIGRATE_PFN_SHIFT + flags` (include/linux/migrate.h). */
  export const MIGRATE_PFN_VALID: 1;
  export const MIGRATE_PFN_MIGRATE: 2;
  export const MIGRATE_PFN_LOCKED: 4;
  export const MIGRATE_PFN_WRITE: 8;
  export const MIGRATE_PFN_DEVICE: 16;
  export const MIGRATE_PFN_ERROR: 32;
  export const MIGRATE_PFN_SHIFT: 6;

  /** Indices into a range's `flags` table (your bit for each). */
  export const HMM_PFN_VALID: 0;
  export const HMM_PFN_WRITE: 1;
  export const HMM_PFN_DEVICE_PRIVATE: 2;
  /** Indices into a range's `values` table (your encoding of each). */
  export const HMM_PFN_ERROR: 0;
  export const HMM_PFN_NONE: 1;
  export const HMM_PFN_SPECIAL: 2;
  /** sync_cpu_device_pagetables `event`: an invalidation. */
  export const HMM_UPDATE_INVALIDATE: 0;

  /** dev_pagemap types. */
  export const MEMORY_DEVICE_HOST: 0;
  export const MEMORY_DEVICE_PRIVATE: 1;
  export const MEMORY_DEVICE_PUBLIC: 2;

  // ---------------------------------------------------------------------------------------
  // The device and logging
  // ---------------------------------------------------------------------------------------

  /** The device this driver is bound to (the same object `probe` gets). */
  export function device_info(): DeviceInfo;
  /** printk at KERN_INFO, prefixed with the driver and device name: "dmirror gpu0: text". */
  export function dev_info(text: string): void;
  /** printk at KERN_WARNING, with the device name. */
  export function dev_warn(text: string): void;
  /** printk at KERN_ERR, with the device name. */
  export function dev_err(text: string): void;
  /** printk at KERN_DEBUG, with the device name. */
  export function dev_dbg(text: string): void;
  /** A kernel warning ("WARNING: text", with the device name); the lab carries on. */
  export function WARN(text: string): void;

  // ---------------------------------------------------------------------------------------
  // Device memory (mm/hmm.c)
  // ---------------------------------------------------------------------------------------

  /**
   * hmm_devmem_add: hotplug `size` bytes (rounded up to a section) of un-addressable device
   * private memory at a free physical range, searched downward from the top of iomem. Its
   * pages land in ZONE_DEVICE at refcount 1; your `fault` and `free` serve them.
   * Returns a handle, or -ERANGE (no free range) / -ENOMEM.
   */
  export function hmm_devmem_add(size: number): Devmem;
  /**
   * hmm_devmem_add_resource: map the device's own DEVICE_PUBLIC range (a `public` device;
   * CPU-addressable). -EINVAL for any other device.
   */
  export function hmm_devmem_add_resource(): Devmem;
  /** hmm_devmem_remove: unplug (waits, in the kernel, for pages still in use). */
  export function hmm_devmem_remove(devmem: Devmem): void;
  /** devmem->pfn_first: the first pfn of the device memory. */
  export function devmem_pfn_first(devmem: Devmem): Pfn;
  /** devmem->pfn_last: one past the last pfn. */
  export function devmem_pfn_last(devmem: Devmem): Pfn;
  /**
   * Pages of `devmem` {@link migrate_alloc_devmem_pages} can still hand out: never handed out,
   * or given back (their refcount fell to 1). Its free list is kept host side, as dmirror's
   * list threaded through page->zone_device_data, so `free` need not be exported for it. A page
   * you took by other means (get_page) is skipped when its turn comes, and leaves the list.
   */
  export function devmem_nr_free(devmem: Devmem): number;
  /**
   * Pages {@link migrate_alloc_devmem_pages} handed out of `devmem` that are still in use, the
   * least recently handed out first (an LRU for eviction), at most `max` (and 65,536).
   */
  export function devmem_pages_in_use(devmem: Devmem, max?: number): Float64Array;
  /** hmm_device_new: a fake device hmm_device%d (minors 0..255, then -EBUSY). */
  export function hmm_device_new(): HmmDevice;
  /** hmm_device_put: free the fake device's minor. */
  export function hmm_device_put(hdev: HmmDevice): void;

  // ---------------------------------------------------------------------------------------
  // Pages (include/linux/mm.h, kernel/memremap.c)
  // ---------------------------------------------------------------------------------------

  /** get_page: take a reference. A device page leaves idle (refcount 1 -> 2) and pins its pagemap. */
  export function get_page(page: Page): void;
  /**
   * put_page: drop a reference you hold. A device page falling back to 1 goes to your `free`;
   * putting a page you hold no reference to is a "Bad page state" bug and is refused.
   */
  export function put_page(page: Page): void;
  /** lock_page (PG_locked). Locking a page twice warns. */
  export function lock_page(page: Page): void;
  /** unlock_page: release a page lock you took (lock_page, trylock_page, hmm_vma_alloc_locked_page). */
  export function unlock_page(page: Page): void;
  /** trylock_page: true if the lock was taken. */
  export function trylock_page(page: Page): boolean;
  /** page_count: the page's reference count (a device page idles at 1). */
  export function page_count(page: Page): number;
  /** page_mapcount: how many page tables map the page. */
  export function page_mapcount(page: Page): number;
  /** page_to_pfn: the page's frame number. */
  export function page_to_pfn(page: Page): Pfn;
  /** pfn_to_page: -1 when the pfn has no struct page. */
  export function pfn_to_page(pfn: Pfn): Page;
  /** is_zone_device_page: device memory (private, public or pmem). */
  export function is_zone_device_page(page: Page): boolean;
  /** is_device_private_page: un-addressable device memory (a CPU access faults). */
  export function is_device_private_page(page: Page): boolean;
  /** Whether the page is device memory of one of this driver's devmems. */
  export function page_is_mine(page: Page): boolean;
  /** is_zero_pfn: the shared zero page. */
  export function is_zero_pfn(pfn: Pfn): boolean;
  /** The driver's cookie on one of its device pages (page->zone_device_data); 0 if unset. */
  export function page_get_cookie(page: Page): number;
  /** Set the cookie of one of your device pages (a chunk number, an index in your tables). */
  export function page_set_cookie(page: Page, cookie: number): void;
  /** alloc_page(GFP_HIGHUSER): a system page at refcount 1 (yours), or -1. */
  export function alloc_page(): Page;
  /** hmm_vma_alloc_locked_page: a locked system page for migrating `addr` of `vma` home, or -1. */
  export function hmm_vma_alloc_locked_page(vma: Vma, addr: number): Page;

  // ---------------------------------------------------------------------------------------
  // The copy engine
  // ---------------------------------------------------------------------------------------

  /**
   * dma_copy: the device's copy engine copies each src page into the dst page at the same
   * index (contents and stamp); a src of -1 zero-fills its dst. One call is one batch: it costs
   * the cost model's `dmaCopyNs` plus the bytes at the device's link speed, so batch your
   * copies. Returns the pages copied, or -EINVAL (lengths differ, a bad page).
   */
  export function dma_copy(
    dst_pages: readonly number[] | Float64Array,
    src_pages: readonly number[] | Float64Array,
  ): number;
  /** The device reads a page into the command's buffer at `offset` (up to a page, or `length`). */
  export function copy_to_buffer(buffer: Buffer, offset: number, page: Page, length?: number): number;
  /** The device writes the command's buffer at `offset` into a page (a page's worth). */
  export function copy_from_buffer(page: Page, buffer: Buffer, offset: number): number;

  // ---------------------------------------------------------------------------------------
  // Address spaces
  // ---------------------------------------------------------------------------------------

  /** find_vma: the first vma ending above addr, or 0. */
  export function find_vma(mm: Mm, addr: number): Vma;
  /** vma->vm_start. */
  export function vma_start(vma: Vma): number;
  /** vma->vm_end (exclusive). */
  export function vma_end(vma: Vma): number;
  /** vma->vm_flags: VM_READ, VM_WRITE, VM_EXEC, VM_SHARED... */
  export function vma_flags(vma: Vma): number;
  /** vma->vm_mm: the address space the vma belongs to. */
  export function vma_mm(vma: Vma): Mm;
  /** Whether the mm is exiting (its mirrors get `release`). */
  export function mm_dying(mm: Mm): boolean;
  /**
   * The order of the CPU's mapping at addr: 0 for a PTE, 9 for a PMD, 18 for a PUD (later
   * kernels' hmm_pfn_to_map_order), -1 when nothing is mapped.
   */
  export function map_order(mm: Mm, addr: number): number;
  /** One place a page is mapped (rmap_walk's first hit): [vma, addr], or [] when unmapped. */
  export function page_mapped_at(page: Page): number[];

  // ---------------------------------------------------------------------------------------
  // The mirror (mm/hmm.c) and the device's page table
  // ---------------------------------------------------------------------------------------

  /**
   * hmm_mirror_register: mirror mm. From now on `sync_cpu_device_pagetables(mirror, ...)` runs
   * before its CPU page table changes and `release(mirror)` when it goes away.
   */
  export function hmm_mirror_register(mm: Mm): Mirror;
  /** hmm_mirror_unregister: stop mirroring; drop your device mappings first (device_pt_unmap). */
  export function hmm_mirror_unregister(mirror: Mirror): void;
  /** The address space a mirror mirrors. */
  export function mirror_mm(mirror: Mirror): Mm;

  /**
   * The device's page table (its MMU) for a mirror: map the page at addr, writable or not.
   * The page must be the one the CPU maps there (or one of your device pages a migration put
   * there). Returns 0, or -EINVAL (and a kernel warning) for a page you may not map.
   */
  export function device_pt_map(mirror: Mirror, addr: number, page: Page, write: boolean): number;
  /** Map npages from `start`: `entries[i]` is `page * 2 + write`, or -1 to leave a page alone. */
  export function device_pt_map_range(
    mirror: Mirror,
    start: number,
    entries: readonly number[] | Float64Array,
  ): number;
  /** Drop the device mappings of [start, end); returns how many there were. */
  export function device_pt_unmap(mirror: Mirror, start: number, end: number): number;
  /** The device's entry at addr: `page * 2 + write`, or -1. */
  export function device_pt_lookup(mirror: Mirror, addr: number): number;
  /** Entries in the mirror's device page table. */
  export function device_pt_size(mirror: Mirror): number;
  /**
   * The device's entries of `npages` pages from `start` (page aligned, at most 65,536 pages),
   * as {@link device_pt_lookup} gives each: `page * 2 + write`, or -1. (`.indexOf(-1)` finds
   * the first page it lacks without a loop of yours.) Throws -EINVAL for a bad range.
   */
  export function device_pt_lookup_range(mirror: Mirror, start: number, npages: number): Float64Array;
  /**
   * dmirror_do_fault: map every page of a range {@link hmm_range_fault} (or a snapshot, or the
   * 2017 calls) filled into the mirror's device page table, writable where the entry has your
   * WRITE bit. Take it as the documented loop's last step: it checks the range is still valid
   * itself, so it is the device lock and {@link hmm_range_valid} in one. Returns the pages
   * mapped, and maps nothing when it returns:
   * - -EAGAIN: the range was invalidated (or was not filled by the kernel, or is not tracked
   *   any more): fault it again;
   * - -EACCES: an entry is device memory the device may not map (another device's, or your
   *   device-private page read-only when `write`): ask for those entries again with
   *   HMM_PFN_DEVICE_PRIVATE (read them with {@link hmm_range_pfns} first), so the fault brings
   *   them home;
   * - -EFAULT: an entry without a page (ERROR, NONE: the fault left a hole), with a warning;
   * - -EINVAL: the range is not page aligned.
   * Throws -EINVAL when the range is not of the mirror's address space.
   */
  export function device_pt_map_pfns(mirror: Mirror, range: Range, write: boolean): number;
  /**
   * finalize_and_map for the whole batch (dmirror_migrate_finalize_and_map): every page of the
   * migration that moved (src still MIGRATE, a valid dst) is mapped in the mirror's device page
   * table when it came to your device memory (writable when dst has MIGRATE_PFN_WRITE) and
   * unmapped when it left it. Returns the pages that moved; with mirror 0 it only counts them.
   * Only inside `finalize_and_map`; throws -EINVAL elsewhere, or for a mirror of another mm.
   */
  export function device_pt_map_migrated(mirror: Mirror | 0): number;

  /**
   * A range of pfns: room for `npages` entries, encoded with your tables: entry = pfn *
   * 2 ** pfn_shift + flag bits; `flags[HMM_PFN_VALID|WRITE|DEVICE_PRIVATE]` are your bits,
   * `values[HMM_PFN_ERROR|NONE|SPECIAL]` your special entries.
   */
  export function hmm_range_alloc(
    npages: number,
    flags: readonly [number, number, number],
    values: readonly [number, number, number],
    pfn_shift: number,
  ): Range;
  /** Free a range (unregistering it first if it is registered). */
  export function hmm_range_free(range: Range): void;
  /** Set the request entries (what to fault: VALID, WRITE, DEVICE_PRIVATE bits). */
  export function hmm_range_set_pfns(range: Range, pfns: readonly number[] | Float64Array): void;
  /** The range's entries, one per page of [start, end). */
  export function hmm_range_pfns(range: Range): Float64Array;
  /** 2019 API: hmm_range_register over [start, end) of the mirror's mm. 0 or -errno. */
  export function hmm_range_register(range: Range, mirror: Mirror, start: number, end: number): number;
  /** 2019 API: hmm_range_unregister: stop tracking the range. */
  export function hmm_range_unregister(range: Range): void;
  /** false when an invalidation is running: retry. */
  export function hmm_range_wait_until_valid(range: Range): boolean;
  /** Fill entries from the CPU page table without faulting. Pages filled, or -errno. */
  export function hmm_range_snapshot(range: Range): number;
  /** Fault in what the request entries ask for. Pages, or -errno (-EAGAIN, -EBUSY: retry). */
  export function hmm_range_fault(range: Range, block: boolean): number;
  /** Whether no invalidation touched the range since it was filled. */
  export function hmm_range_valid(range: Range): boolean;
  /** 2017 API: hmm_vma_get_pfns over [start, end) of one vma. 0 or -errno. */
  export function hmm_vma_get_pfns(range: Range, vma: Vma, start: number, end: number): number;
  /** 2017 API: hmm_vma_fault. 0 or -errno. */
  export function hmm_vma_fault(range: Range, vma: Vma, start: number, end: number, block: boolean): number;
  /** 2017 API: stop tracking; true if the range stayed valid (else retry). */
  export function hmm_vma_range_done(range: Range): boolean;
  /** The pfn of an entry of this range, -1 for NONE, ERROR, SPECIAL. */
  export function hmm_pfn_to_pfn(range: Range, entry: number): Pfn;
  /** The page of an entry of this range, or -1. */
  export function hmm_pfn_to_page(range: Range, entry: number): Page;

  // ---------------------------------------------------------------------------------------
  // Migration (mm/migrate.c, the 4.14 migrate_vma)
  // ---------------------------------------------------------------------------------------

  /**
   * migrate_vma: migrate [start, end) of vma (page aligned, inside it). The kernel collects,
   * locks and unmaps the pages, calls your `alloc_and_copy(vma, src, start, end, priv)`,
   * moves the struct pages, calls `finalize_and_map(vma, src, dst, start, end, priv)` and
   * restores whatever did not move. `priv` is passed through (a direction, a context id).
   * Returns 0 or -EINVAL.
   */
  export function migrate_vma(vma: Vma, start: number, end: number, priv?: number): number;
  /**
   * alloc_and_copy for the whole batch, to device memory (dmirror_migrate_alloc_and_copy): for
   * every src entry with MIGRATE_PFN_MIGRATE and without MIGRATE_PFN_DEVICE whose dst is still
   * 0, a free page of `devmem` (from the free list kept host side: {@link devmem_nr_free}),
   * referenced and locked, the src page copied into it (zeroes for a hole or the zero page) and
   * its dst entry `migrate_pfn(pfn) + MIGRATE_PFN_LOCKED`, + MIGRATE_PFN_WRITE when src has it
   * (or for a hole of a writable vma). One {@link dma_copy} batch. Stops when `devmem` is full
   * (the rest is not migrated). Returns the pages allocated; alloc_and_copy then returns nothing.
   * Only inside `alloc_and_copy`; throws -EINVAL elsewhere.
   */
  export function migrate_alloc_devmem_pages(devmem: Devmem): number;
  /**
   * alloc_and_copy for the whole batch, home: for every src entry with MIGRATE_PFN_MIGRATE and
   * MIGRATE_PFN_DEVICE whose page is your device memory and whose dst is still 0, a system page
   * ({@link hmm_vma_alloc_locked_page} at its address), the device page copied into it, dst
   * `migrate_pfn(pfn) + MIGRATE_PFN_LOCKED`; MIGRATE_PFN_ERROR where no page could be had. One
   * {@link dma_copy} batch. Returns the pages allocated, or -ENOMEM when one failed. Only inside
   * `alloc_and_copy`; throws -EINVAL elsewhere.
   */
  export function migrate_alloc_system_pages(): number;
  /** migrate_pfn: `pfn * 64 + MIGRATE_PFN_VALID`. */
  export function migrate_pfn(pfn: Pfn): number;
  /** The page of a valid entry, -1 otherwise. */
  export function migrate_pfn_to_page(entry: number): Page;
  /** The MIGRATE_PFN_* bits of an entry (`entry % 64`). */
  export function migrate_pfn_flags(entry: number): number;

  // ---------------------------------------------------------------------------------------
  // Locks
  // ---------------------------------------------------------------------------------------

  /**
   * mutex_init: a mutex. The lab has one thread, so a mutex never waits: locking one you hold
   * is a recursive-locking BUG (the call throws -EDEADLK), unlocking one you do not hold a
   * bad-unlock warning, and one still held when your callback returns is warned about and
   * released.
   */
  export function mutex_init(name?: string): Mutex;
  /** mutex_lock: take the mutex (a BUG if you hold it already). */
  export function mutex_lock(m: Mutex): void;
  /** mutex_unlock: release the mutex (a warning if it is not held). */
  export function mutex_unlock(m: Mutex): void;
  /** mutex_trylock: true if the mutex was taken. */
  export function mutex_trylock(m: Mutex): boolean;
  /** mutex_is_locked. */
  export function mutex_is_locked(m: Mutex): boolean;

  // ---------------------------------------------------------------------------------------
  // Persistent memory (drivers/nvdimm/pmem.c, block/blk-core.c)
  // ---------------------------------------------------------------------------------------

  /** devm_request_mem_region over the device's range: 0 or -EBUSY. */
  export function devm_request_mem_region(start: number, size: number): number;
  /** blk_alloc_queue_node: a request queue with a live usage counter, or -ENOMEM. */
  export function blk_alloc_queue(): Queue;
  /** blk_cleanup_queue: mark dying and kill its usage counter. */
  export function blk_cleanup_queue(q: Queue): void;
  /** Whether the queue's usage counter is dead. */
  export function blk_queue_dying(q: Queue): boolean;
  /**
   * devm_memremap_pages: map [start, start + size) of the device's range as ZONE_DEVICE
   * (MEMORY_DEVICE_HOST) struct pages, with the queue's usage counter as the pagemap's
   * reference. Returns the range's address or -errno (-ENXIO mixed, -EBUSY collides).
   */
  export function devm_memremap_pages(start: number, size: number, ref: Queue): number;
  /** devm_add_action: call your exported function `name(arg)` when the device is unbound. 0 or -ENOMEM. */
  export function devm_add_action(name: string, arg: number): number;
}
