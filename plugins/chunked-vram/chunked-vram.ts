// chunked-vram: a GPU driver in the manner of nouveau's and amdgpu's SVM support. VRAM is
// device private memory, handed out in 2 MiB chunks allocated lazily (nouveau_dmem_chunk):
// a chunk joins the allocator the first time its pages are needed and leaves it when its
// last page is freed. A GPU fault migrates the aligned 2 MiB block around the faulting
// address (clipped to the vma) to VRAM in one migrate_vma, its copies one dma_copy batch.
// When VRAM is full the least recently used chunk is evicted: its pages go back to system
// memory, again one batch per run of pages. A CPU access to a page in VRAM brings just that
// page home. Pages that cannot live in VRAM (shared or file memory) are mapped in place, as a
// GPU reads system memory over the link.
//
// Commands: `fault` (the GPU faulted on the range, as a workload's device kernel does: each
// block it touches comes to VRAM, `write` when an access writes), `read` / `write` (the GPU reads the
// range into, or writes the range from, the buffer, faulting as it goes), `migrate`,
// `migrate_to_sys`, `release` (evict all of VRAM) and `stats`.
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  MIGRATE_PFN_DEVICE,
  MIGRATE_PFN_ERROR,
  MIGRATE_PFN_LOCKED,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  PAGE_SIZE,
  VM_FAULT_SIGBUS,
  VM_READ,
  VM_WRITE,
  copy_from_buffer,
  copy_to_buffer,
  dev_info,
  dev_warn,
  device_pt_lookup,
  device_pt_map_range,
  device_pt_unmap,
  devmem_pfn_first,
  dma_copy,
  find_vma,
  get_page,
  hmm_devmem_add,
  hmm_mirror_register,
  hmm_mirror_unregister,
  hmm_range_alloc,
  hmm_range_fault,
  hmm_range_free,
  hmm_range_pfns,
  hmm_range_register,
  hmm_range_set_pfns,
  hmm_range_unregister,
  hmm_range_valid,
  hmm_vma_alloc_locked_page,
  lock_page,
  migrate_vma,
  mm_dying,
  mutex_init,
  mutex_lock,
  mutex_unlock,
  page_get_cookie,
  page_is_mine,
  page_mapped_at,
  page_set_cookie,
  page_to_pfn,
  pfn_to_page,
  vma_end,
  vma_flags,
  vma_mm,
  vma_start,
  type CommandArgs,
  type CommandResult,
  type DeviceInfo,
  type Mirror,
  type Mm,
  type Page,
  type Vma,
} from 'hmm-lab';

/** The allocation unit of VRAM, and the block a GPU fault migrates: 2 MiB. */
const CHUNK_SIZE = 2 * 1024 * 1024;
const CHUNK_PAGES = CHUNK_SIZE / PAGE_SIZE;
const MPFN = 64;
const TO_DEVICE = 0;
const TO_SYSTEM = 1;

/** One 2 MiB chunk of VRAM. */
interface Chunk {
  index: number;
  firstPfn: number;
  /** In the allocator (some page of it handed out since it was last empty). */
  allocated: boolean;
  /** Free pfns of an allocated chunk. */
  free: number[];
  /** Pages of it holding data (mapped by some process). */
  inUse: Set<Page>;
  /** When the GPU last touched it (the LRU clock). */
  lastUse: number;
}

const chunks: Chunk[] = [];
const mirrors = new Map<Mm, Mirror>();
const mirrorMm = new Map<Mirror, Mm>();
const lock = mutex_init('chunked-vram->lock');
let lruClock = 0;
let migrating: Mm = 0;
const stats = { chunkAllocs: 0, evictions: 0, evictedPages: 0, gpuFaults: 0, cpuFaults: 0, remote: 0 };

/** One migration's context: whose device page table, the destination page of each entry. */
interface Migration {
  mirror: Mirror;
  dpages: Page[];
  cpages: number;
  failed: boolean;
}
let ctx: Migration = { mirror: 0, dpages: [], cpages: 0, failed: false };

export function probe(dev: DeviceInfo): number {
  const nchunks = Math.floor(dev.memory / CHUNK_SIZE);
  if (nchunks < 1) return -EINVAL;
  const devmem = hmm_devmem_add(dev.memory);
  if (devmem < 0) return devmem;
  const first = devmem_pfn_first(devmem);
  for (let i = 0; i < nchunks; i++)
    chunks.push({
      index: i,
      firstPfn: first + i * CHUNK_PAGES,
      allocated: false,
      free: [],
      inUse: new Set(),
      lastUse: 0,
    });
  dev_info(`${nchunks} chunks of 2 MiB VRAM, allocated on demand`);
  return 0;
}

// ---- the VRAM allocator ------------------------------------------------------------------

function freePages(): number {
  let n = 0;
  for (const c of chunks) n += c.allocated ? c.free.length : CHUNK_PAGES;
  return n;
}

/** A chunk joins the allocator: all its pages are free. */
function chunkAlloc(c: Chunk): void {
  c.allocated = true;
  c.free = [];
  for (let i = CHUNK_PAGES - 1; i >= 0; i--) c.free.push(c.firstPfn + i);
  c.lastUse = ++lruClock;
  stats.chunkAllocs++;
}

/** A free VRAM page, referenced and locked: from an allocated chunk first, else a new chunk. */
function allocPage(): Page {
  let c = chunks.find((x) => x.allocated && x.free.length > 0);
  if (!c) {
    c = chunks.find((x) => !x.allocated);
    if (!c) return -1;
    chunkAlloc(c);
  }
  const page = pfn_to_page(c.free.pop()!);
  get_page(page);
  lock_page(page);
  page_set_cookie(page, c.index + 1);
  return page;
}

function chunkOf(page: Page): Chunk | undefined {
  const cookie = page_get_cookie(page);
  return cookie ? chunks[cookie - 1] : undefined;
}

/** hmm_devmem_ops.free: the page is free VRAM again; an empty chunk leaves the allocator. */
export function free(page: Page): void {
  const c = chunkOf(page);
  if (!c) return;
  c.inUse.delete(page);
  c.free.push(page_to_pfn(page));
  if (c.free.length === CHUNK_PAGES && c.inUse.size === 0) c.allocated = false;
}

/** Make room for `pages` pages by evicting least recently used chunks (not those in `keep`). */
function makeRoom(pages: number, keep: Set<number>): number {
  while (freePages() < pages) {
    let victim: Chunk | undefined;
    for (const c of chunks)
      if (c.allocated && c.inUse.size && !keep.has(c.index) && (!victim || c.lastUse < victim.lastUse))
        victim = c;
    if (!victim) return -ENOMEM;
    const moved = evictChunk(victim);
    if (moved < 0) return moved;
    stats.evictions++;
    stats.evictedPages += moved;
    if (moved === 0) return -EBUSY;
  }
  return 0;
}

/** Evict a chunk: its pages in use go home, a batch per run of neighbouring pages. */
function evictChunk(c: Chunk): number {
  const at: { vma: Vma; addr: number }[] = [];
  for (const page of c.inUse) {
    const m = page_mapped_at(page);
    if (m.length === 2) at.push({ vma: m[0]!, addr: m[1]! });
  }
  at.sort((a, b) => a.vma - b.vma || a.addr - b.addr);
  let moved = 0;
  for (let i = 0; i < at.length;) {
    let j = i + 1;
    while (j < at.length && at[j]!.vma === at[i]!.vma && at[j]!.addr === at[j - 1]!.addr + PAGE_SIZE) j++;
    const vma = at[i]!.vma;
    const r = migrateRange(vma_mm(vma), vma, at[i]!.addr, at[j - 1]!.addr + PAGE_SIZE, TO_SYSTEM);
    if (r < 0) return r;
    moved += r;
    i = j;
  }
  return moved;
}

/** migrate_vma of [start, end) of one vma, in this driver's context. Pages moved, or -errno. */
function migrateRange(mm: Mm, vma: Vma, start: number, end: number, dir: number): number {
  const saved = ctx;
  const prev = migrating;
  ctx = { mirror: mirrors.get(mm) ?? 0, dpages: [], cpages: 0, failed: false };
  migrating = mm;
  const ret = migrate_vma(vma, start, end, dir);
  const moved = ctx.cpages;
  migrating = prev;
  ctx = saved;
  return ret < 0 ? ret : moved;
}

// ---- migration callbacks ------------------------------------------------------------------

export function alloc_and_copy(vma: Vma, src: number[], start: number, _end: number, priv: number): number[] {
  const n = src.length;
  const dst = new Array<number>(n).fill(0);
  const dpages = new Array<number>(n).fill(-1);
  const to: Page[] = [];
  const from: Page[] = [];
  const writable = (vma_flags(vma) & VM_WRITE) !== 0;
  for (let i = 0; i < n; i++) {
    const s = src[i]!;
    const f = s % MPFN;
    if (!(f & MIGRATE_PFN_MIGRATE)) continue;
    const spage = f & MIGRATE_PFN_VALID ? pfn_to_page(Math.floor(s / MPFN)) : -1;
    let dpage: Page;
    let e: number;
    if (priv === TO_DEVICE) {
      if (f & MIGRATE_PFN_DEVICE) continue;
      dpage = allocPage();
      if (dpage < 0) break;
      e = page_to_pfn(dpage) * MPFN + MIGRATE_PFN_VALID + MIGRATE_PFN_LOCKED;
      if (f & MIGRATE_PFN_WRITE || (spage < 0 && writable)) e += MIGRATE_PFN_WRITE;
    } else {
      if (!(f & MIGRATE_PFN_DEVICE) || !page_is_mine(spage)) continue;
      dpage = hmm_vma_alloc_locked_page(vma, start + i * PAGE_SIZE);
      if (dpage < 0) {
        dst[i] = MIGRATE_PFN_ERROR;
        ctx.failed = true;
        continue;
      }
      e = page_to_pfn(dpage) * MPFN + MIGRATE_PFN_VALID + MIGRATE_PFN_LOCKED;
    }
    to.push(dpage);
    from.push(spage);
    dpages[i] = dpage;
    dst[i] = e;
  }
  // One batch for the copy engine.
  if (to.length) dma_copy(to, from);
  ctx.dpages = dpages;
  return dst;
}

export function finalize_and_map(
  _vma: Vma,
  src: number[],
  dst: number[],
  start: number,
  _end: number,
  priv: number,
): void {
  const n = src.length;
  const entries = new Array<number>(n).fill(-1);
  let mapped = 0;
  for (let i = 0; i < n; i++) {
    const d = dst[i]!;
    if (!((src[i]! % MPFN) & MIGRATE_PFN_MIGRATE) || !((d % MPFN) & MIGRATE_PFN_VALID)) continue;
    ctx.cpages++;
    if (priv === TO_DEVICE) {
      const page = ctx.dpages[i]!;
      const c = chunkOf(page);
      if (c) {
        c.inUse.add(page);
        c.lastUse = ++lruClock;
      }
      entries[i] = page * 2 + ((d % MPFN) & MIGRATE_PFN_WRITE ? 1 : 0);
      mapped++;
    } else if (ctx.mirror) {
      const addr = start + i * PAGE_SIZE;
      device_pt_unmap(ctx.mirror, addr, addr + PAGE_SIZE);
    }
  }
  if (priv === TO_DEVICE && ctx.mirror && mapped) device_pt_map_range(ctx.mirror, start, entries);
}

/** A CPU access to a page in VRAM: bring that page home. */
export function fault(vma: Vma, addr: number, _page: Page, _flags: number): number {
  stats.cpuFaults++;
  const start = addr - (addr % PAGE_SIZE);
  const saved = ctx;
  const r = migrateRange(vma_mm(vma), vma, start, start + PAGE_SIZE, TO_SYSTEM);
  const failed = ctx.failed;
  ctx = saved;
  return r < 1 || failed ? VM_FAULT_SIGBUS : 0;
}

// ---- the mirror -----------------------------------------------------------------------------

export function sync_cpu_device_pagetables(mirror: Mirror, start: number, end: number): number {
  // Our own migration replaces the entries itself, in finalize_and_map.
  if (migrating !== 0 && migrating === mirrorMm.get(mirror)) return 0;
  device_pt_unmap(mirror, start, end);
  return 0;
}

export function release(mirror: Mirror): void {
  dropMirror(mirror);
}

function dropMirror(mirror: Mirror): void {
  device_pt_unmap(mirror, 0, 2 ** 47);
  const mm = mirrorMm.get(mirror);
  if (mm !== undefined) mirrors.delete(mm);
  mirrorMm.delete(mirror);
  hmm_mirror_unregister(mirror);
}

function mirrorGet(mm: Mm): Mirror | number {
  const m = mirrors.get(mm);
  if (m) return m;
  const mirror = hmm_mirror_register(mm);
  if (mirror < 0) return mirror;
  mirrors.set(mm, mirror);
  mirrorMm.set(mirror, mm);
  return mirror;
}

export function open(mm: Mm): number {
  const m = mirrorGet(mm);
  return m < 0 ? m : 0;
}

export function close(mm: Mm): void {
  const m = mirrors.get(mm);
  if (m) dropMirror(m);
}

export function remove(): void {
  releaseAll();
  for (const m of [...mirrors.values()]) dropMirror(m);
}

// ---- GPU faults ---------------------------------------------------------------------------

/**
 * The GPU faulted on [addr, last) (one page by default): migrate the aligned 2 MiB block
 * around addr (within its vma) to VRAM, evicting LRU chunks for room. Faulting pages of the
 * block that stay in system memory are mapped where they are. Returns pages migrated, or -errno.
 */
function gpuFault(mm: Mm, mirror: Mirror, addr: number, write: boolean, last = addr + PAGE_SIZE): number {
  stats.gpuFaults++;
  const vma = find_vma(mm, addr);
  if (!vma || vma_start(vma) > addr || !(vma_flags(vma) & VM_READ)) return -EFAULT;
  const block = addr - (addr % CHUNK_SIZE);
  const start = Math.max(block, vma_start(vma));
  const end = Math.min(block + CHUNK_SIZE, vma_end(vma));
  // Chunks already holding this block's pages stay: evicting them would undo the work.
  const keep = new Set<number>();
  let missing = 0;
  for (let a = start; a < end; a += PAGE_SIZE) {
    const v = device_pt_lookup(mirror, a);
    if (v < 0) missing++;
    else {
      const c = chunkOf(Math.floor(v / 2));
      if (c) keep.add(c.index);
    }
  }
  mutex_lock(lock);
  const room = makeRoom(missing, keep);
  mutex_unlock(lock);
  if (room < 0) dev_warn(`no room in VRAM for a block at 0x${block.toString(16)} (${room})`);
  const moved = room < 0 ? 0 : migrateRange(mm, vma, start, end, TO_DEVICE);
  if (moved < 0) return moved;
  // What could not move (shared or file memory, VRAM full) is reached over the link.
  for (let a = addr - (addr % PAGE_SIZE); a < Math.min(last, end); a += PAGE_SIZE) {
    const v = device_pt_lookup(mirror, a);
    if (v >= 0 && (!write || v % 2 === 1)) continue;
    const r = mapRemote(mirror, a, write);
    if (r < 0) return r;
  }
  return moved;
}

/** Map one system page for the GPU through the mirror (hmm_range_fault). */
function mapRemote(mirror: Mirror, addr: number, write: boolean): number {
  const range = hmm_range_alloc(1, [1, 2, 4], [8, 0, 10], 4);
  try {
    for (let tries = 0; tries < 16; tries++) {
      const r = hmm_range_register(range, mirror, addr, addr + PAGE_SIZE);
      if (r) return r;
      hmm_range_set_pfns(range, [1 + (write ? 2 : 0)]);
      const ret = hmm_range_fault(range, true);
      if (ret < 0 || !hmm_range_valid(range)) {
        hmm_range_unregister(range);
        if (ret < 0 && ret !== -EBUSY && ret !== -11) return ret;
        continue;
      }
      const v = hmm_range_pfns(range)[0]!;
      hmm_range_unregister(range);
      if (!((v % 16) & 1)) return -EFAULT;
      device_pt_map_range(mirror, addr, [pfn_to_page(Math.floor(v / 16)) * 2 + ((v % 16) & 2 ? 1 : 0)]);
      stats.remote++;
      return 0;
    }
    return -EBUSY;
  } finally {
    hmm_range_free(range);
  }
}

/** The GPU touched the page at addr: its chunk is recently used. */
function touch(v: number): void {
  const c = chunkOf(Math.floor(v / 2));
  if (c) c.lastUse = ++lruClock;
}

// ---- commands ---------------------------------------------------------------------------

function checked(a: CommandArgs): Mirror | number {
  if (mm_dying(a.mm)) return -EINVAL;
  if (a.addr % PAGE_SIZE || !Number.isSafeInteger(a.pages) || a.pages <= 0) return -EINVAL;
  return mirrorGet(a.mm);
}

/** `fault`: the GPU faulted on the range (`write`: an access writes): block by block. */
function faultCmd(a: CommandArgs): CommandResult {
  const mirror = checked(a);
  if (mirror < 0) return { ret: mirror };
  const before = stats.evictedPages;
  let cpages = 0;
  const end = a.addr + a.pages * PAGE_SIZE;
  for (let addr = a.addr; addr < end; addr = addr - (addr % CHUNK_SIZE) + CHUNK_SIZE) {
    const r = gpuFault(a.mm, mirror, addr, a.write, end);
    if (r < 0) return { ret: r, cpages, evicted: stats.evictedPages - before };
    cpages += r;
  }
  return { ret: 0, cpages, evicted: stats.evictedPages - before };
}

/** The GPU reads or writes the range page by page, faulting a block in at each miss. */
function access(a: CommandArgs, write: boolean): CommandResult {
  const mirror = checked(a);
  if (mirror < 0) return { ret: mirror };
  if (a.buffer && a.bufferSize < a.pages * PAGE_SIZE && write) return { ret: -EFAULT };
  const before = stats.evictedPages;
  const res: CommandResult = { ret: 0, cpages: 0, faults: 0 };
  for (let i = 0; i < a.pages; i++) {
    const addr = a.addr + i * PAGE_SIZE;
    let v = device_pt_lookup(mirror, addr);
    if (v < 0 || (write && v % 2 === 0)) {
      res.faults!++;
      const r = gpuFault(a.mm, mirror, addr, write);
      if (r < 0) return { ...res, ret: r };
      v = device_pt_lookup(mirror, addr);
      if (v < 0 || (write && v % 2 === 0)) return { ...res, ret: -EFAULT };
    }
    touch(v);
    const off = i * PAGE_SIZE;
    if (a.buffer && write) copy_from_buffer(Math.floor(v / 2), a.buffer, off);
    else if (a.buffer && off < a.bufferSize)
      copy_to_buffer(a.buffer, off, Math.floor(v / 2), Math.min(PAGE_SIZE, a.bufferSize - off));
    res.cpages!++;
  }
  return { ...res, evicted: stats.evictedPages - before };
}

/** `migrate`: the range to VRAM block by block, as if the GPU faulted at each block. */
function migrateCmd(a: CommandArgs): CommandResult {
  const mirror = checked(a);
  if (mirror < 0) return { ret: mirror };
  const before = stats.evictedPages;
  let cpages = 0;
  const end = a.addr + a.pages * PAGE_SIZE;
  for (let addr = a.addr; addr < end; addr = addr - (addr % CHUNK_SIZE) + CHUNK_SIZE) {
    const r = gpuFault(a.mm, mirror, addr, false);
    if (r < 0) return { ret: r, cpages };
    cpages += r;
  }
  return { ret: 0, cpages, evicted: stats.evictedPages - before };
}

/** `migrate_to_sys`: this device's pages of the range back to system memory. */
function migrateToSys(a: CommandArgs): CommandResult {
  if (mm_dying(a.mm) || a.addr % PAGE_SIZE || a.pages <= 0) return { ret: -EINVAL };
  let cpages = 0;
  const end = a.addr + a.pages * PAGE_SIZE;
  for (let addr = a.addr; addr < end;) {
    const vma = find_vma(a.mm, addr);
    if (!vma || vma_start(vma) > addr) return { ret: -EINVAL, cpages };
    const next = Math.min(end, vma_end(vma));
    const r = migrateRange(a.mm, vma, addr, next, TO_SYSTEM);
    if (r < 0) return { ret: r, cpages };
    cpages += r;
    addr = next;
  }
  return { ret: 0, cpages };
}

function releaseAll(): number {
  let moved = 0;
  for (const c of chunks) if (c.inUse.size) moved += Math.max(0, evictChunk(c));
  return moved;
}

export const commands = {
  fault: faultCmd,
  read: (a: CommandArgs) => access(a, false),
  write: (a: CommandArgs) => access(a, true),
  migrate: migrateCmd,
  migrate_to_sys: migrateToSys,
  release: (): CommandResult => ({ ret: 0, cpages: releaseAll() }),
  stats: (): CommandResult => ({
    ret: 0,
    chunks: chunks.length,
    chunksAllocated: chunks.filter((c) => c.allocated).length,
    freePages: freePages(),
    ...stats,
  }),
};
