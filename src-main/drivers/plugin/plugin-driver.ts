// A plugin bound to a device: the kernel calls the plugin's callbacks through the sandbox,
// the plugin calls the kernel through the driver API (host-api.ts), and this class stands
// between them as the kernel's rules would: it names kernel objects by handles checked on
// every call, keeps a journal of the page references and locks the plugin takes, checks what
// the plugin hands back (dst pages of a migration, device mappings), and turns the plugin's
// mistakes into kernel-style reports naming the callback, instead of corrupting the machine.
//
// After a budget fault (timeout, memory, stack, crash) the plugin's state is gone: the device
// is marked failed, its device page tables are dropped (the device stops), CPU faults on its
// pages get SIGBUS, and the kernel's own error paths restore any migration in flight.
import type { Kernel } from '../../kernel/kernel';
import { dev_name } from '../../kernel/drivers/base/core';
import {
  EACCES,
  EAGAIN,
  EFAULT,
  EINVAL,
  EIO,
  ENODEV,
  ENOEXEC,
  ENOMEM,
  EPROBE_DEFER,
} from '../../kernel/include/errno';
import { IORES_DESC_NAMES } from '../../kernel/include/ioport';
import {
  get_page,
  is_zone_device_page,
  lock_page,
  page_count,
  page_mapcount,
  PageLocked,
  put_page,
  unlock_page,
} from '../../kernel/include/mm';
import {
  VM_FAULT_HWPOISON,
  VM_FAULT_LOCKED,
  VM_FAULT_MAJOR,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_FAULT_WRITE,
  VM_WRITE,
  type mm_struct,
  type vm_area_struct,
} from '../../kernel/include/mm_types';
import type { task_struct } from '../../kernel/include/sched';
import { MEMORY_DEVICE_PRIVATE } from '../../kernel/include/memremap';
import { is_device_private_page, page_pgmap } from '../../kernel/kernel/memremap';
import { mirror_pte_incoherence, type mirror_dump, type mirror_pte } from '../../kernel/mm/debug_vm';
import { clear_highpage, copy_highpage } from '../../kernel/mm/highmem';
import {
  hmm_vma_alloc_locked_page,
  type hmm_devmem,
  type hmm_devmem_ops,
  type hmm_device,
} from '../../kernel/mm/hmm';
import {
  HMM_PFN_DEVICE_PRIVATE,
  HMM_PFN_WRITE,
  hmm_mirror,
  hmm_mirror_unregister,
  hmm_pfn_to_page,
  type hmm,
  type hmm_range,
  type hmm_update,
} from '../../kernel/mm/hmm_mirror';
import {
  MIGRATE_PFN_DEVICE,
  MIGRATE_PFN_ERROR,
  MIGRATE_PFN_LOCKED,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  migrate_pfn,
  migrate_pfn_flags,
  migrate_pfn_has,
  migrate_pfn_pfn,
  migrate_pfn_to_page,
  migrate_vma,
  type migrate_vma_ops,
} from '../../kernel/mm/migrate';
import { find_vma } from '../../kernel/mm/mmap';
import { alloc_pages_bulk, GFP_HIGHUSER } from '../../kernel/mm/page_alloc';
import { rmap_walk } from '../../kernel/mm/rmap';
import type { request_queue } from '../../kernel/block/blk-core';
import type { BoundDevice } from '../builtin';
import { DevicePagePool, DevicePageTable, DPT_KEEP, DPT_UNMAP } from '../dmirror';
import {
  commandFailed,
  type DeviceCommandArgs,
  type DeviceCommandResult,
  type DeviceDriver,
} from '../driver';
import {
  HostError,
  PluginError,
  STOPPING_KINDS,
  type PluginErrorInfo,
  type PluginErrorKind,
} from '../sandbox/errors';
import { PluginSandbox, type SandboxOptions } from '../sandbox/sandbox';
import { describe, returns, type CallValue, type Expect, type PlainValue } from '../sandbox/values';
import { takeEngine } from './engines';
import { driverApi } from './host-api';
import type { PluginSource } from './sources';

/** A plugin's fault, or a kernel rule it broke, as the lab reports it. */
export interface DriverReport {
  /** The sandbox's kind, or 'rule' for a broken kernel rule. */
  kind: PluginErrorKind | 'rule';
  /** The callback that was running ("fault", "commands.read"). */
  callback: string;
  message: string;
  file: string;
  line: number;
  column: number;
  /** The device and the driver. */
  device: string;
  driver: string;
}

export interface PluginHooks {
  report(r: DriverReport): void;
}

/** Past this many rule reports a driver's further ones are counted, not printed. */
const MAX_RULE_REPORTS = 64;
/**
 * Most pages one migrate_vma of a plugin may span (one crossing of src and dst each), and one
 * batch helper may take or give (a crossing stays under ~1 MiB).
 */
export const MAX_MIGRATE_PAGES = 65_536;
/** Every VM_FAULT_* bit a fault callback may return. */
const VM_FAULT_BITS =
  VM_FAULT_OOM |
  VM_FAULT_SIGBUS |
  VM_FAULT_MAJOR |
  VM_FAULT_WRITE |
  VM_FAULT_HWPOISON |
  VM_FAULT_SIGSEGV |
  VM_FAULT_NOPAGE |
  VM_FAULT_LOCKED |
  VM_FAULT_RETRY;

const FAILED = Symbol('the callback failed');
type Outcome = CallValue | typeof FAILED;

const hex = (n: number): string => `0x${n.toString(16)}`;

/** A plugin's mirror of one mm, with the device's page table (its MMU) kept host side. */
export class PluginMirror extends hmm_mirror implements mirror_dump {
  readonly pt = new DevicePageTable();
  readonly driver: string;

  constructor(
    readonly drv: PluginDriver,
    readonly mm: mm_struct,
    readonly handle: number,
  ) {
    super(null);
    this.driver = drv.label;
    this.ops = {
      sync_cpu_device_pagetables: (_m, update) => drv.sync(this, update),
      release: () => drv.mirrorRelease(this),
    };
  }

  dump(): Iterable<mirror_pte> {
    return this.pt.dump(this.drv.k);
  }
}

/** A plugin range handle's kernel range. */
export interface RangeSlot {
  range: hmm_range;
  npages: number;
  /** The entries are the kernel's (a fault or snapshot filled them), not the plugin's requests. */
  filled: boolean;
}

export interface MutexSlot {
  name: string;
  held: boolean;
  /** The callback that took it. */
  by: string;
}

/** Whether pfn is in one of the devmems' ranges. */
function owns(devmems: readonly hmm_devmem[], pfn: number): boolean {
  for (const dm of devmems) if (pfn >= dm.pfn_first && pfn < dm.pfn_last) return true;
  return false;
}

/**
 * A devmem's pages for migrate_alloc_devmem_pages, as dmirror keeps them: a free list (never-used
 * pages in pfn order, then those the kernel gave back) and the pages handed out, oldest first,
 * threaded through their struct pages' lru links as test_hmm threads its list through
 * zone_device_data (a ZONE_DEVICE page is never on an LRU or buddy list): no per-page table.
 */
export class DevmemPool {
  readonly free: DevicePagePool;
  private head = -1;
  private tail = -1;
  size = 0;

  constructor(
    private readonly k: Kernel,
    readonly devmem: hmm_devmem,
  ) {
    this.free = new DevicePagePool(k, devmem.pfn_first, devmem.pfn_last);
  }

  /** A page handed out: the newest in use. */
  add(page: number): void {
    const m = this.k.mem;
    m.lruPrev[page] = this.tail;
    m.lruNext[page] = -1;
    if (this.tail >= 0) m.lruNext[this.tail] = page;
    else this.head = page;
    this.tail = page;
    this.size++;
  }

  /** The page's refcount fell to 1: if it is one of ours, out of the list and free again. */
  release(page: number): void {
    const m = this.k.mem;
    const prev = m.lruPrev[page]!;
    const next = m.lruNext[page]!;
    // Links of a page never in this list lead nowhere back to it.
    if (prev >= 0 ? m.lruNext[prev] !== page : this.head !== page) return;
    if (prev >= 0) m.lruNext[prev] = next;
    else this.head = next;
    if (next >= 0) m.lruPrev[next] = prev;
    else this.tail = prev;
    m.lruPrev[page] = m.lruNext[page] = -1;
    this.size--;
    this.free.free(page);
  }

  /** Up to max pages in use, oldest first. */
  oldest(max: number): Float64Array {
    const out = new Float64Array(Math.max(0, Math.min(max, this.size)));
    const next = this.k.mem.lruNext;
    for (let i = 0, p = this.head; i < out.length; i++, p = next[p]!) out[i] = p;
    return out;
  }
}

/** A migration the plugin's callbacks are inside of. */
interface Migration {
  vma: vm_area_struct;
  start: number;
  end: number;
  src: Float64Array;
  /**
   * The kernel's dst entries: those the batch helpers made, then those the kernel accepted from
   * alloc_and_copy (finalize_and_map may map their pages before the CPU does).
   */
  dst: Float64Array;
  /** A batch helper filled dst: alloc_and_copy returns nothing. */
  filled: boolean;
  /** finalize_and_map is running: the struct pages have moved. */
  finalizing: boolean;
}

export class PluginDriver implements DeviceDriver {
  readonly plugin = true;
  readonly name: string;
  /** "dmirror gpu0": how reports and printk name the driver and its device. */
  readonly label: string;
  readonly device: string;
  commands: readonly string[] = [];
  failure: PluginErrorInfo | null = null;
  sandbox: PluginSandbox | null = null;

  // Handles: one counter, a table per kind (a handle of one kind is never valid as another).
  private nextHandle = 1;
  readonly devmems = new Map<number, hmm_devmem>();
  readonly mirrors = new Map<number, PluginMirror>();
  readonly ranges = new Map<number, RangeSlot>();
  readonly mutexes = new Map<number, MutexSlot>();
  readonly hdevs = new Map<number, hmm_device>();
  readonly queues = new Map<number, request_queue>();
  private readonly vmas = new Map<number, vm_area_struct>();
  private readonly vmaIds = new WeakMap<vm_area_struct, number>();
  readonly mms = new Map<number, mm_struct>();
  /**
   * Pagemap ids of this driver's device memory, as flags indexed by id (page->pgmap is 16
   * bits): asked for every page of a batch, so read without hashing.
   */
  readonly pgmapIds = new Uint8Array(2 ** 16);
  /** page->zone_device_data of this driver's device pages. */
  readonly cookies = new Map<number, number>();
  /** Queues cleaned up before the pagemap was mapped (F-PGMAP-6's dropped probe rounds). */
  readonly droppedQueues: request_queue[] = [];
  /** The free list migrate_alloc_devmem_pages takes each devmem's pages from, made on first use. */
  private readonly pools = new Map<hmm_devmem, DevmemPool>();

  // The journal of what the plugin holds: page references and page locks.
  readonly held = new Map<number, number>();
  readonly locked = new Set<number>();
  /** Pages acquired during each alloc_and_copy in progress (undone if it fails). */
  private readonly scopes: number[][] = [];

  /** The callbacks running, innermost last. */
  private readonly stack: string[] = [];
  private readonly reported = new WeakSet<PluginError>();
  /** The last PluginError a callback ended with (its errno answers a failed command). */
  private lastError: PluginError | null = null;
  private ruleReports = 0;
  /** Invalidated ranges whose device mappings are checked once the driver is out of its callbacks. */
  private readonly pending: { mirror: PluginMirror; start: number; end: number }[] = [];
  migration: Migration | null = null;
  /** The buffer of the command running, for copy_to_buffer/copy_from_buffer. */
  cmdBuffer: Uint8Array | null = null;
  /** Processes that opened the device: their mm, opened again after a reload. */
  readonly opened = new Set<task_struct>();
  private unbound = false;
  /** The outermost callback that returned last (settle() names it). */
  private lastCallback = '<load>';
  private readonly untrace: () => void;
  /** Whether the plugin exports `free`: asked once per device page freed, so known from load. */
  private exportsFree = false;
  private lastPool: DevmemPool | undefined;

  readonly devmemOps: hmm_devmem_ops = {
    fault: (_devmem, vma, addr, page, flags) => this.devmemFault(vma, addr, page, flags),
    free: (devmem, page) => {
      // Once per page freed: the pool of the devmem freed last answers before the Map (a
      // driver has one devmem, or frees one's pages in a row).
      const last = this.lastPool;
      (last?.devmem === devmem ? last : (this.lastPool = this.pools.get(devmem)))?.release(page);
      this.devmemFree(page);
    },
  };

  readonly migrateOps: migrate_vma_ops = {
    alloc_and_copy: (vma, src, dst, start, end, priv) => this.allocAndCopy(vma, src, dst, start, end, priv),
    finalize_and_map: (vma, src, dst, start, end, priv) =>
      this.finalizeAndMap(vma, src, dst, start, end, priv),
  };

  constructor(
    readonly k: Kernel,
    readonly bound: BoundDevice,
    readonly src: PluginSource,
    private readonly hooks: PluginHooks,
    private readonly options: SandboxOptions = {},
  ) {
    this.name = src.name;
    this.device = bound.config.name;
    this.label = `${src.name} ${bound.config.name}`;
    this.untrace = k.trace.subscribe(
      (e) => {
        if (e.name !== 'mmu_notifier_invalidate_range_end') return;
        for (const m of this.mirrors.values())
          if (m.mm.id === e.mm) this.pending.push({ mirror: m, start: e.start, end: e.end });
        if (this.stack.length === 0) this.settle();
      },
      ['mmu_notifier_invalidate_range_end'],
    );
  }

  // ---- life cycle --------------------------------------------------------------------------

  /** Load the plugin and run its probe. 0, or -errno (the caller unwinds what probe did). */
  probe(): number {
    const engine = takeEngine();
    if (!engine) {
      this.k.dev_err(this.device, `${this.name}: no plugin engine is ready (prepare engines before booting)`);
      return -EPROBE_DEFER;
    }
    try {
      this.sandbox = PluginSandbox.loadWith(
        engine,
        this.src.source,
        this.src.filename,
        driverApi(this),
        this.options,
      );
    } catch (e) {
      if (!(e instanceof PluginError)) throw e;
      this.fail(e);
      return -ENOEXEC;
    }
    const exported = this.sandbox.callbacks;
    this.exportsFree = this.sandbox.has('free');
    this.commands = exported.filter((p) => p.startsWith('commands.')).map((p) => p.slice('commands.'.length));
    if (!this.sandbox.has('probe')) {
      this.rule('<load>', `${this.src.filename} exports no probe(dev) function`);
      return -ENOEXEC;
    }
    const r = this.invoke('probe', [this.deviceInfo()], returns.int);
    if (r === FAILED) return this.failure ? -ENODEV : -EIO;
    return (r as number) < 0 ? (r as number) : 0;
  }

  /** The device as the plugin's probe sees it. */
  deviceInfo(): { [key: string]: PlainValue } {
    const cfg = this.bound.config;
    const k = this.k;
    return {
      name: cfg.name,
      kind: cfg.kind,
      memory: cfg.memory,
      start: cfg.start ?? -1,
      mode: cfg.mode ?? (cfg.kind === 'pmem' ? 'fsdax' : ''),
      pageSize: k.c.PAGE_SIZE,
      pageShift: k.c.PAGE_SHIFT,
      sectionSize: k.c.PA_SECTION_SIZE,
      ...(this.bound.platformRes && { desc: IORES_DESC_NAMES[this.bound.platformRes.desc] ?? 'NONE' }),
    };
  }

  /**
   * Stop serving before the device goes: the plugin's remove(), then the host undoes what it
   * left behind: mirrors unregistered, page references and locks dropped (reported: a leak).
   * Device pages still mapped are migrated home when `evict` is set (the driver is being
   * replaced) or the plugin failed (nothing else can bring them back); otherwise the removal
   * waits for them, as hmm_devmem_remove does. Devres actions run after, at removal.
   */
  unbind(opts: { evict?: boolean; callRemove?: boolean } = {}): void {
    if (this.unbound) return;
    this.unbound = true;
    if (opts.callRemove !== false && this.has('remove')) this.invoke('remove', []);
    for (const m of [...this.mirrors.values()]) this.dropMirror(m);
    if (this.locked.size || this.held.size) {
      if (!this.failure)
        this.rule(
          'remove',
          `WARNING: ${this.held.size} page references and ${this.locked.size} page locks left by the driver dropped`,
          'warn',
        );
      for (const page of this.locked) if (PageLocked(this.k, page)) unlock_page(this.k, page);
      this.locked.clear();
      for (const [page, n] of [...this.held]) for (let i = 0; i < n; i++) this.kernelPut(page);
      this.held.clear();
    }
    if (opts.evict || this.failure) this.evictAll();
    this.opened.clear();
  }

  /** After removal completed: drop the engine and stop listening. */
  dispose(): void {
    this.untrace();
    this.sandbox?.dispose();
  }

  // ---- calling the plugin --------------------------------------------------------------------

  has(path: string): boolean {
    return !this.failure && (this.sandbox?.has(path) ?? false);
  }

  /** The callback running, innermost. */
  get callback(): string {
    return this.stack[this.stack.length - 1] ?? '<load>';
  }

  /** Call the plugin; a PluginError is reported and becomes FAILED. */
  private invoke(path: string, args: CallValue[], expect?: Expect): Outcome {
    const sb = this.sandbox;
    if (!sb || this.failure) return FAILED;
    this.stack.push(path);
    try {
      return sb.call(path, args, expect);
    } catch (e) {
      if (!(e instanceof PluginError)) throw e;
      this.pluginFault(e);
      return FAILED;
    } finally {
      this.stack.pop();
      if (this.stack.length === 0) {
        this.lastCallback = path;
        this.settle();
      }
    }
  }

  private pluginFault(e: PluginError): void {
    this.lastError = e;
    if (this.reported.has(e)) return;
    this.reported.add(e);
    if (STOPPING_KINDS.has(e.kind) || e.kind === 'stopped') this.fail(e);
    else {
      this.k.printk('err', `${this.label}: ${e.message}`);
      this.emit({ ...e.toJSON(), kind: e.kind });
    }
  }

  /** The plugin is stopped: the device fails, and its MMU forgets everything it mapped. */
  private fail(e: PluginError): void {
    if (this.failure) return;
    this.reported.add(e);
    this.failure = e.toJSON();
    this.k.printk('err', `${this.label}: ${e.message}`);
    this.k.printk('err', `${this.label}: driver stopped (${e.kind}); the device is marked failed`);
    for (const m of this.mirrors.values()) m.pt.clear();
    this.emit({ ...e.toJSON(), kind: e.kind });
  }

  private emit(info: PluginErrorInfo | (Omit<PluginErrorInfo, 'kind'> & { kind: 'rule' })): void {
    this.hooks.report({
      kind: info.kind,
      callback: info.callback,
      message: info.message,
      file: info.file,
      line: info.line,
      column: info.column,
      device: this.device,
      driver: this.name,
    });
  }

  /** A kernel rule the plugin broke: a kernel-style line, and a report naming the callback. */
  rule(callback: string, text: string, level: 'err' | 'warn' = 'err'): void {
    if (++this.ruleReports > MAX_RULE_REPORTS) {
      if (this.ruleReports === MAX_RULE_REPORTS + 1)
        this.k.printk('warn', `${this.label}: further reports of this driver suppressed`);
      return;
    }
    const line = `${text} in ${this.name}.${callback} (${this.device})`;
    this.k.printk(level, line);
    const at = this.sandbox?.siteOf(callback) ?? { line: 1, column: 1 };
    this.emit({ kind: 'rule', callback, message: line, file: this.src.filename, ...at });
  }

  /** "BUG: Bad page state": a page the plugin mishandled, dumped as the kernel's bad_page does. */
  badPage(page: number, reason: string, callback = this.callback): void {
    const k = this.k;
    this.rule(
      callback,
      `BUG: Bad page state: pfn:${hex(k.mem.page_to_pfn(page))} count:${page_count(k, page)} mapcount:${page_mapcount(k, page)}: page dumped because: ${reason}`,
    );
  }

  /** Back in the kernel from the plugin's outermost callback: check what it left behind. */
  private settle(): void {
    const cb = this.lastCallback;
    for (const m of this.mutexes.values())
      if (m.held) {
        this.rule(m.by, `WARNING: lock held when returning to the kernel: mutex ${m.name}`, 'warn');
        m.held = false;
      }
    if (this.locked.size && !this.migration) {
      for (const page of this.locked) {
        this.badPage(page, `page left locked by ${this.name} when ${cb} returned`, cb);
        if (PageLocked(this.k, page)) unlock_page(this.k, page);
      }
      this.locked.clear();
    }
    if (this.pending.length) this.checkMirrors();
  }

  // ---- handles -----------------------------------------------------------------------------

  newHandle(): number {
    return this.nextHandle++;
  }

  vmaHandle(vma: vm_area_struct): number {
    let h = this.vmaIds.get(vma);
    if (h === undefined) {
      if (this.vmas.size >= 4096) this.pruneVmas();
      h = this.newHandle();
      this.vmaIds.set(vma, h);
      this.vmas.set(h, vma);
    }
    this.mmHandle(vma.vm_mm);
    return h;
  }

  /** The vma of a handle if it is still mapped, else null. */
  vmaOf(h: number): vm_area_struct | null {
    const vma = this.vmas.get(h);
    if (!vma) return null;
    if (find_vma(vma.vm_mm, vma.vm_start) !== vma) {
      this.vmas.delete(h);
      return null;
    }
    return vma;
  }

  private pruneVmas(): void {
    for (const h of [...this.vmas.keys()]) this.vmaOf(h);
  }

  mmHandle(mm: mm_struct): number {
    this.mms.set(mm.id, mm);
    return mm.id;
  }

  /** Whether the page is device memory of one of this driver's devmems. */
  isMine(page: number): boolean {
    return this.pgmapIds[this.k.mem.pgmap[page]!] === 1;
  }

  // ---- the page journal ------------------------------------------------------------------------

  /** The plugin took a reference (get_page, alloc_page...). */
  acquired(page: number): void {
    this.held.set(page, (this.held.get(page) ?? 0) + 1);
    this.scopes[this.scopes.length - 1]?.push(page);
  }

  /** A reference the plugin holds is handed over (to a migration) or dropped. */
  released(page: number): boolean {
    const n = this.held.get(page) ?? 0;
    if (n <= 0) return false;
    if (n === 1) this.held.delete(page);
    else this.held.set(page, n - 1);
    return true;
  }

  /** put_page by the host on the plugin's behalf (undoing a failed callback). */
  private kernelPut(page: number): void {
    if (page_count(this.k, page) > (is_zone_device_page(this.k, page) ? 1 : 0)) put_page(this.k, page);
  }

  /** Give back what a failed alloc_and_copy took: unlock, drop the references. */
  private undo(pages: number[]): void {
    for (let i = pages.length - 1; i >= 0; i--) this.undoPage(pages[i]!);
  }

  private undoPage(page: number): void {
    if (this.locked.delete(page) && PageLocked(this.k, page)) unlock_page(this.k, page);
    if (this.released(page)) this.kernelPut(page);
  }

  // ---- hmm_devmem_ops ------------------------------------------------------------------------

  private devmemFault(vma: vm_area_struct, addr: number, page: number, flags: number): number {
    if (!this.has('fault')) return VM_FAULT_SIGBUS;
    const r = this.invoke('fault', [this.vmaHandle(vma), addr, page, flags], returns.int);
    if (r === FAILED) return VM_FAULT_SIGBUS;
    const v = r as number;
    if (v < 0 || v % 1 !== 0 || (v & ~VM_FAULT_BITS) !== 0) {
      this.rule(
        'fault',
        `WARNING: fault returned ${v}, not VM_FAULT_* bits: treated as VM_FAULT_SIGBUS`,
        'warn',
      );
      return VM_FAULT_SIGBUS;
    }
    return v;
  }

  private devmemFree(page: number): void {
    // The cookie stays: a free page is still the driver's (zone_device_data outlives the use).
    if (this.exportsFree && !this.failure) this.invoke('free', [page]);
  }

  // ---- hmm_mirror_ops ------------------------------------------------------------------------

  sync(mirror: PluginMirror, update: hmm_update): number {
    if (!this.has('sync_cpu_device_pagetables')) {
      // No callback at all: the stale entries are reported once the invalidation ends.
      if (this.failure) this.dropRange(mirror, update.start, update.end);
      return 0;
    }
    const r = this.invoke(
      'sync_cpu_device_pagetables',
      [mirror.handle, update.start, update.end, update.event, update.blockable],
      returns.int,
    );
    if (r === FAILED) {
      // The device cannot be trusted to have dropped them: the lab does.
      this.dropRange(mirror, update.start, update.end);
      return 0;
    }
    return r as number;
  }

  private dropRange(mirror: PluginMirror, start: number, end: number): void {
    const ps = this.k.c.PAGE_SIZE;
    if (mirror.pt.size) mirror.pt.clear_range(Math.floor(start / ps), Math.ceil(end / ps));
  }

  mirrorRelease(mirror: PluginMirror): void {
    if (this.has('release')) this.invoke('release', [mirror.handle]);
    if (mirror.pt.size && this.mirrors.has(mirror.handle)) {
      const first = mirror.dump()[Symbol.iterator]().next().value as mirror_pte;
      this.rule(
        'release',
        `BUG: mirror ${this.label} maps ${hex(first.addr)} -> pfn ${hex(first.pfn)} (and ${mirror.pt.size - 1} more) but mm${mirror.mm.id} is exiting (release did not stop the device)`,
      );
      mirror.pt.clear();
    }
  }

  /** Unregister a mirror the plugin left registered; its device page table goes. */
  dropMirror(m: PluginMirror): void {
    m.pt.clear();
    hmm_mirror_unregister(this.k, m);
    this.mirrors.delete(m.handle);
  }

  /** The plugin's mirror of mm, if it has one. */
  mirrorOf(mm: mm_struct): PluginMirror | undefined {
    for (const m of this.mirrors.values()) if (m.mm === mm) return m;
    return undefined;
  }

  /**
   * CONFIG_DEBUG_VM for the plugin's mirrors: every device mapping in a range the CPU just
   * invalidated must still be backed by the CPU page table. One that is not means the
   * plugin's sync_cpu_device_pagetables left it: reported and dropped (the entry fails).
   */
  private checkMirrors(): void {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    const work = this.pending.splice(0);
    for (const { mirror, start, end } of work) {
      if (!mirror.pt.size || !this.mirrors.has(mirror.handle)) continue;
      const first = Math.floor(start / ps);
      const last = Math.ceil(end / ps);
      const stale: mirror_pte[] = [];
      let why = '';
      const look = (vpn: number, v: number): void => {
        const pte = { addr: vpn * ps, pfn: k.mem.page_to_pfn(Math.floor(v / 2)), write: v % 2 === 1 };
        const w = mirror.mm.dying
          ? `mm${mirror.mm.id} is exiting`
          : mirror_pte_incoherence(k, mirror.mm, pte);
        if (!w) return;
        if (!stale.length) why = w;
        stale.push(pte);
      };
      if (last - first > mirror.pt.size * 4) {
        for (const [vpn, v] of mirror.pt.entries()) if (vpn >= first && vpn < last) look(vpn, v);
      } else
        for (let vpn = first; vpn < last; vpn++) {
          const v = mirror.pt.get(vpn);
          if (v !== undefined) look(vpn, v);
        }
      if (!stale.length) continue;
      const p = stale[0]!;
      this.rule(
        'sync_cpu_device_pagetables',
        `BUG: mirror ${this.label} maps ${hex(p.addr)} -> pfn ${hex(p.pfn)}${p.write ? ' (write)' : ''}${stale.length > 1 ? ` and ${stale.length - 1} more` : ''} but the CPU ${why} (check_mirror_coherence: sync_cpu_device_pagetables did not invalidate)`,
      );
      for (const s of stale) mirror.pt.delete(s.addr / ps);
    }
  }

  // ---- migrate_vma_ops -----------------------------------------------------------------------

  /** The host side of the plugin's migrate_vma: the kernel's, with this driver's ops. */
  migrate(vma: vm_area_struct, start: number, end: number, priv: number): number {
    if (this.migration) {
      this.rule(this.callback, 'WARNING: migrate_vma called from inside a migration callback', 'warn');
      return -EINVAL;
    }
    const ps = this.k.c.PAGE_SIZE;
    const npages = Math.max(0, Math.floor(end / ps) - Math.floor(start / ps));
    if (npages > MAX_MIGRATE_PAGES) return -EINVAL;
    // The arrays of the last migration of this size are reused (a CPU fault's one page, a
    // command's full batches); a migration nesting in a sync gets its own.
    let arrays = this.spare;
    this.spare = null;
    if (arrays?.src.length !== npages)
      arrays = { src: new Float64Array(npages), dst: new Float64Array(npages) };
    try {
      return migrate_vma(this.k, this.migrateOps, vma, start, end, arrays.src, arrays.dst, priv);
    } finally {
      this.spare = arrays;
    }
  }

  /** src and dst of the last migration, free for the next. */
  private spare: { src: Float64Array; dst: Float64Array } | null = null;
  /** migrateAllocSystem's entries to bring home and their new pages, kept between calls. */
  private homeIdx = new Int32Array(0);
  private homePages = new Int32Array(0);

  private allocAndCopy(
    vma: vm_area_struct,
    src: Float64Array,
    dst: Float64Array,
    start: number,
    end: number,
    priv: unknown,
  ): void {
    const k = this.k;
    // Collect left every dst entry 0.
    const n = (end - start) / k.c.PAGE_SIZE;
    if (!this.has('alloc_and_copy')) return;
    const mig: Migration = { vma, start, end, src, dst, filled: false, finalizing: false };
    this.migration = mig;
    this.scopes.push([]);
    this.dstLength = n;
    const r = this.invoke(
      'alloc_and_copy',
      [this.vmaHandle(vma), n === src.length ? src : src.subarray(0, n), start, end, priv as number],
      this.expectDst,
    );
    const scope = this.scopes.pop()!;
    if (r === FAILED) {
      // The kernel restores every page: no dst means nothing migrates.
      this.undo(scope);
      if (mig.filled) this.dropDst(mig, n);
      return;
    }
    if (mig.filled) {
      // The host made these entries itself; a returned array would leave its pages stranded.
      if (r !== undefined)
        this.rule(
          'alloc_and_copy',
          'WARNING: returned dst entries after a batch helper filled dst; the returned entries are ignored',
          'warn',
        );
      return;
    }
    const out = r as number[];
    const seen = new Set<number>();
    const at = (i: number): number => start + i * k.c.PAGE_SIZE;
    for (let i = 0; i < n; i++) {
      const v = out[i]!;
      if (v === 0) continue;
      if (!Number.isSafeInteger(v) || v < 0) {
        this.badDst(i, v, at(i), 'not a migrate pfn');
        continue;
      }
      if (!migrate_pfn_has(v, MIGRATE_PFN_VALID)) {
        if (migrate_pfn_flags(v) === v && (v & ~MIGRATE_PFN_ERROR) === 0) dst[i] = v;
        else this.badDst(i, v, at(i), 'flags without MIGRATE_PFN_VALID');
        continue;
      }
      const page = migrate_pfn_to_page(k, v);
      if (page < 0) {
        this.badDst(i, v, at(i), `pfn ${hex(Math.floor(v / 64))} has no struct page (bad pfn)`);
        continue;
      }
      if (seen.has(page)) {
        this.badDst(i, v, at(i), 'the same page is already the destination of another entry', page);
        continue;
      }
      if (!this.locked.has(page) || !this.held.has(page)) {
        this.badPage(
          page,
          `${this.name} migrates to a page it does not own (not referenced and locked by it)`,
          'alloc_and_copy',
        );
        dst[i] = 0;
        continue;
      }
      if (!migrate_pfn_has(v, MIGRATE_PFN_LOCKED)) {
        this.badDst(i, v, at(i), 'no MIGRATE_PFN_LOCKED', page);
        continue;
      }
      if (is_zone_device_page(k, page)) {
        if (!this.isMine(page)) {
          this.badPage(
            page,
            `${this.name} migrates to a device page of ${page_pgmap(k, page)?.dev.name ?? 'no device'}`,
            'alloc_and_copy',
          );
          this.undoPage(page);
          continue;
        }
        if (page_count(k, page) !== 2 || page_mapcount(k, page) !== 0) {
          this.badPage(
            page,
            `${this.name} hands a device page still in use to a migration (freed twice?)`,
            'alloc_and_copy',
          );
          this.undoPage(page);
          continue;
        }
      }
      seen.add(page);
      // The kernel takes the reference and the lock over; it unlocks and puts in finalize.
      this.locked.delete(page);
      this.released(page);
      dst[i] = v;
    }
    // Pages of rejected entries the plugin still holds were undone above; the rest it keeps.
  }

  /** dst entries alloc_and_copy must return: one per page, unless a batch helper filled them. */
  private dstLength = 0;
  private readonly expectDst: Expect = (v) =>
    (Array.isArray(v) && v.length === this.dstLength) || this.migration?.filled
      ? undefined
      : `expected an array of ${this.dstLength} dst entries, got ${describe(v)}`;

  /** Give back the pages the batch helpers put in dst (alloc_and_copy failed after all). */
  private dropDst(mig: Migration, n: number): void {
    const k = this.k;
    for (let i = 0; i < n; i++) {
      const page = migrate_pfn_to_page(k, mig.dst[i]!);
      mig.dst[i] = 0;
      if (page < 0) continue;
      unlock_page(k, page);
      put_page(k, page);
    }
  }

  /** A dst entry the kernel cannot take: warned about, the page it names given back. */
  private badDst(i: number, v: number, addr: number, why: string, page = -1): void {
    this.rule(
      'alloc_and_copy',
      `WARNING: dst[${i}] = ${hex(v)} for ${hex(addr)}: ${why}; the page is not migrated`,
      'warn',
    );
    if (page >= 0) this.undoPage(page);
  }

  private finalizeAndMap(
    vma: vm_area_struct,
    src: Float64Array,
    dst: Float64Array,
    start: number,
    end: number,
    priv: unknown,
  ): void {
    const n = (end - start) / this.k.c.PAGE_SIZE;
    this.migration = { vma, start, end, src, dst, filled: true, finalizing: true };
    try {
      if (this.has('finalize_and_map'))
        this.invoke('finalize_and_map', [
          this.vmaHandle(vma),
          n === src.length ? src : src.subarray(0, n),
          n === dst.length ? dst : dst.subarray(0, n),
          start,
          end,
          priv as number,
        ]);
    } finally {
      this.migration = null;
    }
  }

  // ---- batch helpers: a batch's per-page work on this side, one crossing for all of it -------

  /** The migration whose alloc_and_copy (or finalize_and_map) is running, for a batch helper. */
  private inMigration(fn: string, finalizing: boolean): Migration {
    const mig = this.migration;
    const callback = finalizing ? 'finalize_and_map' : 'alloc_and_copy';
    if (!mig || mig.finalizing !== finalizing || this.callback !== callback)
      throw new HostError(-EINVAL, `${fn}: only inside ${callback}`);
    return mig;
  }

  /** The device's copy engine moved `pages` pages in one batch (charged as dma_copy is). */
  dmaCopied(pages: number): void {
    // Heard only by listeners (the lab's clock charges the copy from the event).
    if (!this.k.trace.on('dma_copy')) return;
    this.k.trace.emit({
      name: 'dma_copy',
      device: dev_name(this.bound.dev),
      pages,
      bytes: pages * this.k.c.PAGE_SIZE,
    });
  }

  /** migrate_alloc_devmem_pages (hmm-lab.d.ts): dmirror_migrate_alloc_and_copy to device memory. */
  migrateAllocDevmem(devmem: hmm_devmem): number {
    const mig = this.inMigration('migrate_alloc_devmem_pages', false);
    mig.filled = true;
    const copied = this.allocDevmemPages(mig, this.pool(devmem));
    if (copied) this.dmaCopied(copied);
    return copied;
  }

  // The batch helpers' per-page loops are methods of their own that end with the loop. V8
  // compiles a hot loop while it runs (OSR), before the code after it has ever run; that code
  // would then leave the compiled loop at every later call, and the next loop start slow.

  /** A free device page, copied into, for each entry of the batch that moves. Pages copied. */
  private allocDevmemPages(mig: Migration, pool: DevmemPool): number {
    const k = this.k;
    const mem = k.mem;
    const free = pool.free;
    const { src, dst } = mig;
    const n = (mig.end - mig.start) / k.c.PAGE_SIZE;
    const writable = (mig.vma.vm_flags & VM_WRITE) !== 0;
    let copied = 0;
    for (let i = 0; i < n; i++) {
      const s = src[i]!;
      const f = migrate_pfn_flags(s);
      if (!(f & MIGRATE_PFN_MIGRATE) || f & MIGRATE_PFN_DEVICE || dst[i] !== 0) continue;
      // A page the plugin took by other means is not free, whatever the list says.
      let page = free.alloc();
      while (page >= 0 && (mem.refcount[page] !== 1 || PageLocked(k, page))) page = free.alloc();
      if (page < 0) break;
      get_page(k, page);
      lock_page(k, page);
      pool.add(page);
      // A hole or the zero page arrives as zeroes, writable if the vma is.
      if (f & MIGRATE_PFN_VALID) copy_highpage(k, page, mem.pfn_to_page(migrate_pfn_pfn(s)));
      else clear_highpage(k, page);
      const write = f & MIGRATE_PFN_WRITE || (!(f & MIGRATE_PFN_VALID) && writable);
      dst[i] = migrate_pfn(mem.page_to_pfn(page)) + MIGRATE_PFN_LOCKED + (write ? MIGRATE_PFN_WRITE : 0);
      copied++;
    }
    return copied;
  }

  /** The batch helpers' free list of devmem. */
  pool(devmem: hmm_devmem): DevmemPool {
    let pool = this.pools.get(devmem);
    if (!pool) {
      pool = new DevmemPool(this.k, devmem);
      this.pools.set(devmem, pool);
    }
    return pool;
  }

  /** migrate_alloc_system_pages (hmm-lab.d.ts): this driver's device pages of the batch home. */
  migrateAllocSystem(): number {
    const mig = this.inMigration('migrate_alloc_system_pages', false);
    const n = (mig.end - mig.start) / this.k.c.PAGE_SIZE;
    mig.filled = true;
    // The entries to bring home, then their pages in one batch: what
    // hmm_vma_alloc_locked_page at each would give, without each page's buddy list updates.
    if (this.homeIdx.length < n) {
      this.homeIdx = new Int32Array(n);
      this.homePages = new Int32Array(n);
    }
    const want = this.homeEntries(mig, n);
    alloc_pages_bulk(this.k, GFP_HIGHUSER, want, this.homePages);
    const failed = this.copyHome(mig, want);
    const copied = want - failed;
    if (copied) this.dmaCopied(copied);
    return failed ? -ENOMEM : copied;
  }

  /** Into homeIdx, the entries of this driver's device pages that move; how many. */
  private homeEntries(mig: Migration, n: number): number {
    const { src, dst } = mig;
    const idx = this.homeIdx;
    const devmems = [...this.devmems.values()];
    let want = 0;
    for (let i = 0; i < n; i++) {
      const s = src[i]!;
      const f = migrate_pfn_flags(s);
      if (!(f & MIGRATE_PFN_MIGRATE) || !(f & MIGRATE_PFN_DEVICE) || dst[i] !== 0) continue;
      if (owns(devmems, migrate_pfn_pfn(s))) idx[want++] = i;
    }
    return want;
  }

  /** Each of the want entries copied into its new system page (ERROR where none); the failures. */
  private copyHome(mig: Migration, want: number): number {
    const k = this.k;
    const mem = k.mem;
    const { src, dst } = mig;
    const idx = this.homeIdx;
    const pages = this.homePages;
    let failed = 0;
    for (let j = 0; j < want; j++) {
      const i = idx[j]!;
      const page = pages[j]!;
      if (page < 0) {
        dst[i] = MIGRATE_PFN_ERROR;
        failed++;
        continue;
      }
      lock_page(k, page);
      copy_highpage(k, page, mem.pfn_to_page(migrate_pfn_pfn(src[i]!)));
      dst[i] = migrate_pfn(mem.page_to_pfn(page)) + MIGRATE_PFN_LOCKED;
    }
    return failed;
  }

  /** device_pt_map_migrated (hmm-lab.d.ts): finalize_and_map's device page-table update. */
  mapMigrated(mirror: PluginMirror | null): number {
    const mig = this.inMigration('device_pt_map_migrated', true);
    if (mirror && mirror.mm !== mig.vma.vm_mm)
      throw new HostError(
        -EINVAL,
        `device_pt_map_migrated: mirror ${mirror.handle} does not mirror the migrated mm`,
      );
    const k = this.k;
    const { src, dst } = mig;
    const first = mig.start / k.c.PAGE_SIZE;
    const n = mig.end / k.c.PAGE_SIZE - first;
    // Whose page a pfn is, told by the devmems' pfn ranges: only the pages entering this
    // device's page table are looked up in the memmap.
    const devmems = [...this.devmems.values()];
    const values = this.scratchOf(n);
    let moved = 0;
    let rewritten = 0;
    for (let i = 0; i < n; i++) {
      values[i] = DPT_KEEP;
      const s = src[i]!;
      const sf = migrate_pfn_flags(s);
      if (!(sf & MIGRATE_PFN_MIGRATE)) continue;
      const d = dst[i]!;
      // The host checked every dst entry: a valid one names a page.
      if (!migrate_pfn_has(d, MIGRATE_PFN_VALID)) continue;
      moved++;
      const dpfn = migrate_pfn_pfn(d);
      if (owns(devmems, dpfn))
        values[i] = k.mem.pfn_to_page(dpfn) * 2 + (migrate_pfn_flags(d) & MIGRATE_PFN_WRITE ? 1 : 0);
      else if (sf & MIGRATE_PFN_DEVICE && owns(devmems, migrate_pfn_pfn(s))) values[i] = DPT_UNMAP;
      else continue;
      rewritten++;
    }
    mirror?.pt.store_range(first, n, values);
    // Every entry of the range is now the page the CPU is about to map there (or none): the
    // coherence check of the invalidations inside it has nothing left to find.
    if (mirror && rewritten === n)
      for (let j = this.pending.length - 1; j >= 0; j--) {
        const p = this.pending[j]!;
        if (p.mirror === mirror && p.start >= mig.start && p.end <= mig.end) this.pending.splice(j, 1);
      }
    return moved;
  }

  /** device_pt_map_pfns (hmm-lab.d.ts): dmirror_do_fault, the entries of a valid range mapped. */
  mapPfns(mirror: PluginMirror, slot: RangeSlot, write: boolean): number {
    const r = slot.range;
    const h = r.hmm ?? (r.vma?.vm_mm.hmm as hmm | null | undefined);
    // Only entries the kernel filled, while no invalidation has touched them, are the CPU's.
    if (!slot.filled || !h?.ranges.has(r) || !r.valid) return -EAGAIN;
    if (h.mm !== mirror.mm)
      throw new HostError(-EINVAL, `device_pt_map_pfns: the range is not of mirror ${mirror.handle}'s mm`);
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    if (r.start % ps || r.end % ps) return -EINVAL;
    const n = Math.min(r.pfns.length, (r.end - r.start) / ps);
    const unit = 2 ** r.pfn_shift;
    const wbit = r.flags[HMM_PFN_WRITE]!;
    const dbit = r.flags[HMM_PFN_DEVICE_PRIVATE]!;
    const entries = this.scratchOf(r.pfns.length);
    for (let i = 0; i < n; i++) {
      const v = r.pfns[i]!;
      const page = hmm_pfn_to_page(k, r, v);
      if (page < 0) {
        k.WARN(`${this.label}: hmm_range_fault left ${hex(r.start + i * ps)} without a page`);
        return -EFAULT;
      }
      const f = v % unit;
      const w = (f & wbit) !== 0;
      // Another device's memory (the rule device_pt_map keeps), or our device-private page
      // read-only for a write: it must come home first. The kernel flags device entries.
      if (is_zone_device_page(k, page) && !this.isMine(page)) return -EACCES;
      if (write && !w && (dbit ? f & dbit : is_device_private_page(k, page))) return -EACCES;
      entries[i] = page * 2 + (w ? 1 : 0);
    }
    mirror.pt.store_range(r.start / ps, n, entries);
    return n;
  }

  /** Scratch device page-table entries of device_pt_map_pfns and device_pt_map_migrated. */
  private scratch = new Float64Array(256);

  private scratchOf(n: number): Float64Array {
    if (this.scratch.length < n) this.scratch = new Float64Array(n);
    return this.scratch;
  }

  /**
   * Take every device page of this driver still in use home, as the driver core would for a
   * device whose driver is gone: each mapped page goes back to system memory through
   * migrate_vma on a mapping rmap finds, with the host's own copy.
   */
  private evictAll(): void {
    const k = this.k;
    const ps = k.c.PAGE_SIZE;
    const ops: migrate_vma_ops = {
      alloc_and_copy: (vma, src, dst, start, end) => {
        for (let i = 0, addr = start; addr < end; i++, addr += ps) {
          const s = src[i]!;
          dst[i] = 0;
          if (!migrate_pfn_has(s, MIGRATE_PFN_MIGRATE) || !migrate_pfn_has(s, MIGRATE_PFN_DEVICE)) continue;
          const spage = migrate_pfn_to_page(k, s);
          if (!this.isMine(spage)) continue;
          const dpage = hmm_vma_alloc_locked_page(k, vma, addr);
          if (dpage < 0) {
            dst[i] = MIGRATE_PFN_ERROR;
            continue;
          }
          copy_highpage(k, dpage, spage);
          dst[i] = migrate_pfn(k.mem.page_to_pfn(dpage)) + MIGRATE_PFN_LOCKED;
        }
      },
      finalize_and_map: () => {},
    };
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    for (const devmem of this.devmems.values()) {
      if (devmem.pagemap.type !== MEMORY_DEVICE_PRIVATE || k.pgmaps[devmem.pagemap.id] !== devmem.pagemap)
        continue;
      for (let pfn = devmem.pfn_first; pfn < devmem.pfn_last; pfn++) {
        const page = k.mem.pfn_to_page(pfn);
        if (page < 0 || page_count(k, page) <= 1) continue;
        let vma: vm_area_struct | null = null;
        let addr = 0;
        rmap_walk(k, page, (v, a) => {
          vma = v;
          addr = a;
          return false;
        });
        if (vma) migrate_vma(k, ops, vma, addr, addr + ps, src, dst, null);
      }
    }
  }

  // ---- DeviceDriver --------------------------------------------------------------------------

  open(task: task_struct): number {
    if (this.failure) return -ENODEV;
    if (!task.mm) return -EINVAL;
    let ret = 0;
    if (this.has('open')) {
      const r = this.invoke('open', [this.mmHandle(task.mm)], returns.int);
      ret = r === FAILED ? (this.failure ? -ENODEV : -EIO) : (r as number);
    }
    if (ret === 0) this.opened.add(task);
    return ret;
  }

  close(task: task_struct): void {
    this.opened.delete(task);
    if (task.mm && this.has('close')) this.invoke('close', [this.mmHandle(task.mm)]);
  }

  command(task: task_struct, cmd: string, a: DeviceCommandArgs): DeviceCommandResult {
    if (this.failure) return commandFailed(-ENODEV);
    if (!task.mm || task.mm.dying) return commandFailed(-EINVAL);
    if (!this.commands.includes(cmd)) return commandFailed(-EINVAL);
    const expect: Expect = (v) =>
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      Number.isSafeInteger((v as { ret?: unknown }).ret)
        ? undefined
        : `expected a result object with an integer ret, got ${describe(v)}`;
    const args = {
      mm: this.mmHandle(task.mm),
      addr: a.addr,
      pages: a.pages,
      buffer: a.buffer ? 1 : 0,
      bufferSize: a.buffer?.length ?? 0,
      write: a.write === true,
    };
    this.cmdBuffer = a.buffer;
    let r: Outcome;
    try {
      r = this.invoke(`commands.${cmd}`, [args], expect);
    } finally {
      this.cmdBuffer = null;
    }
    const res =
      r === FAILED
        ? commandFailed(this.failure ? -ENODEV : (this.lastError?.errno ?? -EIO))
        : this.commandResult(cmd, r as { [key: string]: PlainValue }, a.buffer);
    // The device command tracepoint the built-in dmirror emits too (the Mirror view's trace).
    this.k.trace.emit({
      name: 'dmirror_cmd',
      device: this.device,
      mm: task.mm.id,
      cmd,
      start: a.addr,
      npages: a.pages,
      ret: res.ret,
      cpages: res.cpages,
      faults: res.faults,
    });
    return res;
  }

  private commandResult(
    cmd: string,
    r: { [key: string]: PlainValue },
    buffer: Uint8Array | null,
  ): DeviceCommandResult {
    const count = (key: string): number => {
      const v = r[key];
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
    };
    const res: DeviceCommandResult = {
      ret: r.ret as number,
      cpages: count('cpages'),
      faults: count('faults'),
      moved: 0,
      accessed: 0,
    };
    const bytes = r.bytes;
    if (bytes !== undefined) {
      if (
        !Array.isArray(bytes) ||
        !bytes.every((b) => typeof b === 'number' && b >= 0 && b <= 255 && b % 1 === 0)
      )
        this.rule(`commands.${cmd}`, 'WARNING: bytes is not an array of bytes; ignored', 'warn');
      else {
        res.bytes = bytes as number[];
        if (buffer && (res.ret === 0 || res.ret === -EFAULT))
          buffer.set((bytes as number[]).slice(0, buffer.length));
      }
    }
    const extra: Record<string, PlainValue> = {};
    for (const [key, v] of Object.entries(r))
      if (!['ret', 'cpages', 'faults', 'bytes', 'op', 't'].includes(key)) extra[key] = v;
    if (Object.keys(extra).length) res.extra = extra;
    return res;
  }

  pageTable(mm: mm_struct): DevicePageTable | undefined {
    return this.mirrorOf(mm)?.pt;
  }

  mirror(mm: mm_struct): PluginMirror | undefined {
    return this.mirrorOf(mm);
  }

  memory(): { pages: number; free: number } {
    let pages = 0;
    let used = 0;
    for (const d of this.devmems.values()) {
      if (this.k.pgmaps[d.pagemap.id] !== d.pagemap) continue;
      pages += d.pfn_last - d.pfn_first;
      used += d.pagemap.nr_busy;
    }
    return { pages, free: pages - used };
  }

  /** Run a devres action the plugin registered (devm_add_action). */
  devresAction(name: string, arg: number): void {
    if (this.has(name)) this.invoke(name, [arg]);
  }

  /** A devmem the plugin added: its handle, and its pages counted as the driver's. */
  addDevmem(devmem: hmm_devmem): number {
    const h = this.newHandle();
    this.devmems.set(h, devmem);
    this.pgmapIds[devmem.pagemap.id] = 1;
    if (!this.bound.devmem) this.bound.devmem = devmem;
    return h;
  }

  toString(): string {
    return `${this.label} (${dev_name(this.bound.dev)})`;
  }
}
