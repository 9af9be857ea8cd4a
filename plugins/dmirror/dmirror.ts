// dmirror: the HMM test driver (the HMM series' dummy driver, later lib/test_hmm.c) as a
// plugin, with the built-in TypeScript dmirror's behaviour (src-main/drivers/dmirror.ts).
//
// Device private memory hotplugged with hmm_devmem_add, handed out from a free list; one
// mirror per process that opens the device, whose device page table the device's MMU holds
// (device_pt_*). Pages reach the device by migration (migrate_vma to device memory) or by the
// device faulting them in through the mirror (hmm_range_register + hmm_range_fault, the 2019
// API). A CPU access to a migrated page faults it home through `fault`. Commands are the
// ioctls of lib/test_hmm.c: read, write, migrate, migrate_to_sys, snapshot, release, with the
// results tools/testing/selftests/mm/hmm-tests.c checks (ret, cpages, faults, bytes).
import {
  EAGAIN,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  EPERM,
  HMM_PFN_ERROR,
  HMM_PFN_NONE,
  HMM_PFN_SPECIAL,
  MIGRATE_PFN_DEVICE,
  MIGRATE_PFN_ERROR,
  MIGRATE_PFN_LOCKED,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  PAGE_SIZE,
  PMD_SIZE,
  VM_FAULT_SIGBUS,
  VM_READ,
  VM_WRITE,
  WARN,
  copy_from_buffer,
  copy_to_buffer,
  dev_info,
  device_pt_lookup,
  device_pt_map_range,
  device_pt_unmap,
  devmem_pfn_first,
  devmem_pfn_last,
  dma_copy,
  find_vma,
  get_page,
  hmm_devmem_add,
  hmm_mirror_register,
  hmm_mirror_unregister,
  hmm_range_alloc,
  hmm_range_fault,
  hmm_range_pfns,
  hmm_range_register,
  hmm_range_set_pfns,
  hmm_range_snapshot,
  hmm_range_unregister,
  hmm_range_valid,
  hmm_range_wait_until_valid,
  hmm_vma_alloc_locked_page,
  is_device_private_page,
  is_zero_pfn,
  lock_page,
  map_order,
  migrate_vma,
  mm_dying,
  page_count,
  page_is_mine,
  page_mapped_at,
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
  type Range,
  type Vma,
} from 'hmm-lab';

/** Pages per migrate_vma call (test_hmm's src_pfns[64]). */
const MIGRATE_BATCH = 64;
/** Pages per hmm_range_fault / hmm_range_snapshot call (test_hmm's pfns[64]). */
const RANGE_PAGES = 64;
/** Tries of one range before giving up with -EBUSY (the lab never sleeps). */
const RANGE_TRIES = 16;

// HMM_DMIRROR_SNAPSHOT's byte per page (lib/test_hmm_uapi.h), combined with OR.
const PROT_ERROR = 0xff;
const PROT_NONE = 0x00;
const PROT_READ = 0x01;
const PROT_WRITE = 0x02;
const PROT_PMD = 0x04;
const PROT_PUD = 0x08;
const PROT_ZERO = 0x10;
const PROT_DEV_PRIVATE_LOCAL = 0x20;
const PROT_DEV_PRIVATE_REMOTE = 0x30;

// The driver's range->flags[] and range->values[]: VALID, WRITE, DEVICE_PRIVATE in the low
// bits, the pfn from bit 4; ERROR 8, NONE 0, SPECIAL 10.
const PFN_VALID = 1;
const PFN_WRITE = 2;
const PFN_DEVICE_PRIVATE = 4;
const PFN_FLAGS: [number, number, number] = [PFN_VALID, PFN_WRITE, PFN_DEVICE_PRIVATE];
const PFN_VALUES: [number, number, number] = [8, 0, 10];
const PFN_SHIFT = 4;
const PFN_UNIT = 2 ** PFN_SHIFT;

/** migrate_vma's priv: which way the pages go. */
const TO_DEVICE = 0;
const TO_SYSTEM = 1;

const MPFN_UNIT = 64;
const PMD_ORDER = Math.log2(PMD_SIZE / PAGE_SIZE);

// ---- the device ------------------------------------------------------------------------

let firstPfn = 0;
let nextPfn = 0;
let endPfn = 0;
/** Pages the kernel gave back through `free`, reused first. */
const freePages: Page[] = [];
/** The pfn of each device page handed out (so the hot paths need not ask the kernel). */
const pfnOf = new Map<Page, number>();
/** Device pages in use (mapped by some process), for `release`. */
const inUse = new Set<Page>();
/** Mirrors by address space (test_hmm opens one per process), and back. */
const mirrors = new Map<Mm, Mirror>();
const mirrorMm = new Map<Mirror, Mm>();
/** The mm this device is migrating: its own invalidations are no news to its page table. */
let migrating: Mm = 0;
let range: Range = 0;

/** One migration's context: whose device page table, what the device copied, what failed. */
interface Migration {
  mirror: Mirror;
  cpages: number;
  failed: boolean;
  /** The destination page of each entry alloc_and_copy filled. */
  dpages: Page[];
}
let ctx: Migration = { mirror: 0, cpages: 0, failed: false, dpages: [] };

export function probe(dev: DeviceInfo): number {
  const devmem = hmm_devmem_add(dev.memory);
  if (devmem < 0) return devmem;
  firstPfn = nextPfn = devmem_pfn_first(devmem);
  endPfn = devmem_pfn_last(devmem);
  range = hmm_range_alloc(RANGE_PAGES, PFN_FLAGS, PFN_VALUES, PFN_SHIFT);
  dev_info(`${endPfn - nextPfn} pages of device memory at pfn 0x${nextPfn.toString(16)}`);
  return 0;
}

/** dmirror_devmem_alloc_page: a free device page, referenced and locked; -1 when full. */
function alloc_device_page(): Page {
  let page = freePages.pop();
  if (page === undefined) {
    if (nextPfn >= endPfn) return -1;
    page = pfn_to_page(nextPfn);
    pfnOf.set(page, nextPfn++);
  }
  get_page(page);
  lock_page(page);
  return page;
}

/** Whether a pfn is this device's memory (page_is_mine without asking the kernel). */
function mine(pfn: number): boolean {
  return pfn >= firstPfn && pfn < endPfn;
}

/** hmm_devmem_ops.free: the page's refcount fell back to 1; it is free device memory again. */
export function free(page: Page): void {
  inUse.delete(page);
  freePages.push(page);
}

/** hmm_devmem_ops.fault: migrate the faulting page back to system memory, or SIGBUS. */
export function fault(vma: Vma, addr: number, _page: Page, _flags: number): number {
  const start = addr - (addr % PAGE_SIZE);
  const mm = vma_mm(vma);
  const saved = ctx;
  const prev = migrating;
  ctx = { mirror: mirrors.get(mm) ?? 0, cpages: 0, failed: false, dpages: [] };
  migrating = mm;
  const ret = migrate_vma(vma, start, start + PAGE_SIZE, TO_SYSTEM);
  const failed = ctx.failed;
  migrating = prev;
  ctx = saved;
  return ret || failed ? VM_FAULT_SIGBUS : 0;
}

// ---- migration ----------------------------------------------------------------------------

export function alloc_and_copy(vma: Vma, src: number[], start: number, _end: number, priv: number): number[] {
  const n = src.length;
  const dst = new Array<number>(n).fill(0);
  const dpages: Page[] = new Array<number>(n).fill(-1);
  const to: Page[] = [];
  const from: Page[] = [];
  const writable = priv === TO_DEVICE && (vma_flags(vma) & VM_WRITE) !== 0;
  for (let i = 0; i < n; i++) {
    const s = src[i]!;
    const f = s % MPFN_UNIT;
    if (!(f & MIGRATE_PFN_MIGRATE)) continue;
    if (priv === TO_DEVICE) {
      // Pages already in device memory stay where they are.
      if (f & MIGRATE_PFN_DEVICE) continue;
      const dpage = alloc_device_page();
      if (dpage < 0) continue;
      // The device's DMA: a hole or the zero page arrives as zeroes (-1).
      const spage = f & MIGRATE_PFN_VALID ? pfn_to_page(Math.floor(s / MPFN_UNIT)) : -1;
      to.push(dpage);
      from.push(spage);
      dpages[i] = dpage;
      let e = pfnOf.get(dpage)! * MPFN_UNIT + MIGRATE_PFN_VALID + MIGRATE_PFN_LOCKED;
      if (f & MIGRATE_PFN_WRITE || (spage < 0 && writable)) e += MIGRATE_PFN_WRITE;
      dst[i] = e;
    } else {
      if (!(f & MIGRATE_PFN_DEVICE) || !mine(Math.floor(s / MPFN_UNIT))) continue;
      const spage = pfn_to_page(Math.floor(s / MPFN_UNIT));
      const dpage = hmm_vma_alloc_locked_page(vma, start + i * PAGE_SIZE);
      if (dpage < 0) {
        dst[i] = MIGRATE_PFN_ERROR;
        ctx.failed = true;
        continue;
      }
      to.push(dpage);
      from.push(spage);
      dpages[i] = dpage;
      dst[i] = page_to_pfn(dpage) * MPFN_UNIT + MIGRATE_PFN_VALID + MIGRATE_PFN_LOCKED;
    }
  }
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
  if (priv === TO_DEVICE) {
    const entries = new Array<number>(n).fill(-1);
    let mapped = 0;
    for (let i = 0; i < n; i++) {
      if (!((src[i]! % MPFN_UNIT) & MIGRATE_PFN_MIGRATE)) continue;
      const d = dst[i]!;
      const dpage = ctx.dpages[i] ?? -1;
      if (!((d % MPFN_UNIT) & MIGRATE_PFN_VALID) || dpage < 0) continue;
      inUse.add(dpage);
      entries[i] = dpage * 2 + ((d % MPFN_UNIT) & MIGRATE_PFN_WRITE ? 1 : 0);
      mapped++;
      ctx.cpages++;
    }
    if (ctx.mirror && mapped) device_pt_map_range(ctx.mirror, start, entries);
    return;
  }
  for (let i = 0; i < n; i++) {
    if (!((src[i]! % MPFN_UNIT) & MIGRATE_PFN_MIGRATE) || !((dst[i]! % MPFN_UNIT) & MIGRATE_PFN_VALID))
      continue;
    const addr = start + i * PAGE_SIZE;
    if (ctx.mirror) device_pt_unmap(ctx.mirror, addr, addr + PAGE_SIZE);
    ctx.cpages++;
  }
}

// ---- the mirror ---------------------------------------------------------------------------

/** sync_cpu_device_pagetables: drop the device's mappings of [start, end). */
export function sync_cpu_device_pagetables(
  mirror: Mirror,
  start: number,
  end: number,
  _event: number,
  _blockable: boolean,
): number {
  if (migrating !== 0 && migrating === mirrorMm.get(mirror)) return 0;
  device_pt_unmap(mirror, start, end);
  return 0;
}

/** hmm_mirror_ops.release: the mm is exiting; forget its page table and let go of the mirror. */
export function release(mirror: Mirror): void {
  mirror_release(mirror);
}

function mirror_release(mirror: Mirror): void {
  device_pt_unmap(mirror, 0, 2 ** 47);
  const mm = mirrorMm.get(mirror);
  if (mm !== undefined) mirrors.delete(mm);
  mirrorMm.delete(mirror);
  hmm_mirror_unregister(mirror);
}

function mirror_get(mm: Mm): Mirror | number {
  const have = mirrors.get(mm);
  if (have) return have;
  const mirror = hmm_mirror_register(mm);
  if (mirror < 0) return mirror;
  mirrors.set(mm, mirror);
  mirrorMm.set(mirror, mm);
  return mirror;
}

/** dmirror_fops_open: the process opens the device file; the driver mirrors its mm. */
export function open(mm: Mm): number {
  const m = mirror_get(mm);
  return m < 0 ? m : 0;
}

/** dmirror_fops_release: the file is closed; the mirror and its page table go. */
export function close(mm: Mm): void {
  const m = mirrors.get(mm);
  if (m) mirror_release(m);
}

/** The device is unbound: all device memory goes home (dmirror_device_evict_chunk). */
export function remove(): void {
  evict_all();
  for (const m of [...mirrors.values()]) mirror_release(m);
}

// ---- commands ---------------------------------------------------------------------------

function result(ret: number, cpages = 0, faults = 0): CommandResult {
  return { ret, cpages, faults };
}

/** The checks of dmirror_fops_unlocked_ioctl: a page-aligned, non-empty range of a live mm. */
function cmd_mirror(a: CommandArgs): Mirror | number {
  if (mm_dying(a.mm)) return -EINVAL;
  if (a.addr % PAGE_SIZE || !Number.isSafeInteger(a.pages) || a.pages <= 0) return -EINVAL;
  return mirror_get(a.mm);
}

/** dmirror_do_read without the copy: -ENOENT at the first page the device does not map. */
function do_read(mirror: Mirror, start: number, end: number, res: CommandResult): number {
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    if (device_pt_lookup(mirror, addr) < 0) return -ENOENT;
    res.cpages!++;
  }
  return 0;
}

/** copy_to_user of the range, through the device page table; -EFAULT for a short buffer. */
function copy_out(mirror: Mirror, a: CommandArgs): number {
  if (!a.buffer) return 0;
  for (let off = 0; off < a.bufferSize && off < a.pages * PAGE_SIZE; off += PAGE_SIZE) {
    const v = device_pt_lookup(mirror, a.addr + off);
    if (v < 0) return -ENOENT;
    copy_to_buffer(a.buffer, off, Math.floor(v / 2), Math.min(PAGE_SIZE, a.bufferSize - off));
  }
  return a.bufferSize < a.pages * PAGE_SIZE ? -EFAULT : 0;
}

/**
 * HMM_DMIRROR_READ: the device reads the range through its page table, faulting it in
 * (read) whenever an entry is missing; `faults` counts those rounds. The bytes land in the
 * buffer only on success.
 */
function read(a: CommandArgs): CommandResult {
  const mirror = cmd_mirror(a);
  if (mirror < 0) return result(mirror);
  const end = a.addr + a.pages * PAGE_SIZE;
  const res = result(0);
  for (;;) {
    res.ret = do_read(mirror, a.addr + res.cpages! * PAGE_SIZE, end, res);
    if (res.ret !== -ENOENT) break;
    res.ret = range_fault_all(mirror, a.addr + res.cpages! * PAGE_SIZE, end, false);
    if (res.ret) break;
    if (++res.faults! > RANGE_TRIES) {
      res.ret = -EBUSY;
      break;
    }
  }
  if (res.ret === 0) res.ret = copy_out(mirror, a);
  return res;
}

/** HMM_DMIRROR_WRITE: the device writes the buffer into the range, write-faulting as needed. */
function write(a: CommandArgs): CommandResult {
  const mirror = cmd_mirror(a);
  if (mirror < 0) return result(mirror);
  const res = result(0);
  if (a.bufferSize < a.pages * PAGE_SIZE) return result(-EFAULT);
  const end = a.addr + a.pages * PAGE_SIZE;
  for (;;) {
    res.ret = 0;
    for (let addr = a.addr + res.cpages! * PAGE_SIZE; addr < end; addr += PAGE_SIZE) {
      const v = device_pt_lookup(mirror, addr);
      if (v < 0 || v % 2 === 0) {
        res.ret = -ENOENT;
        break;
      }
      copy_from_buffer(Math.floor(v / 2), a.buffer, addr - a.addr);
      res.cpages!++;
    }
    if (res.ret !== -ENOENT) break;
    res.ret = range_fault_all(mirror, a.addr + res.cpages! * PAGE_SIZE, end, true);
    if (res.ret) break;
    if (++res.faults! > RANGE_TRIES) {
      res.ret = -EBUSY;
      break;
    }
  }
  return res;
}

/** dmirror_fault: fault [start, end) into the device page table, RANGE_PAGES at a time. */
function range_fault_all(mirror: Mirror, start: number, end: number, write: boolean): number {
  const span = RANGE_PAGES * PAGE_SIZE;
  for (let addr = start; addr < end; addr += span) {
    const ret = range_fault(mirror, addr, Math.min(end, addr + span), write);
    if (ret) return ret;
  }
  return 0;
}

/**
 * dmirror_range_fault with the documented loop: register, wait until valid, hmm_range_fault,
 * then update the device page table only if the range is still valid; retry on -EAGAIN,
 * -EBUSY or an invalidated range. A device-private page of another device (or one of ours
 * the device may not write) is asked for again with DEVICE_PRIVATE, so it comes home.
 */
function range_fault(mirror: Mirror, start: number, end: number, write: boolean): number {
  const npages = (end - start) / PAGE_SIZE;
  const home = new Array<number>(npages).fill(0);
  const request = PFN_VALID + (write ? PFN_WRITE : 0);
  for (let tries = 0; tries < RANGE_TRIES; tries++) {
    let ret = hmm_range_register(range, mirror, start, end);
    if (ret) return ret;
    hmm_range_set_pfns(
      range,
      home.map((h) => request + (h ? PFN_DEVICE_PRIVATE : 0)),
    );
    if (!hmm_range_wait_until_valid(range)) {
      hmm_range_unregister(range);
      continue;
    }
    ret = hmm_range_fault(range, true);
    if (ret < 0) {
      hmm_range_unregister(range);
      if (ret !== -EAGAIN && ret !== -EBUSY) return ret;
      continue;
    }
    if (!hmm_range_valid(range)) {
      hmm_range_unregister(range);
      continue;
    }
    const pfns = hmm_range_pfns(range);
    const entries = new Array<number>(npages);
    let elsewhere = false;
    for (let i = 0; i < npages; i++) {
      const v = pfns[i]!;
      const f = v % PFN_UNIT;
      const page =
        v === PFN_VALUES[HMM_PFN_ERROR] || !(f & PFN_VALID) ? -1 : pfn_to_page(Math.floor(v / PFN_UNIT));
      if (page < 0) {
        hmm_range_unregister(range);
        WARN(`hmm_range_fault left 0x${(start + i * PAGE_SIZE).toString(16)} without a page`);
        return -EFAULT;
      }
      if (f & PFN_DEVICE_PRIVATE && (!page_is_mine(page) || (write && !(f & PFN_WRITE)))) {
        home[i] = 1;
        elsewhere = true;
      }
      entries[i] = page * 2 + (f & PFN_WRITE ? 1 : 0);
    }
    if (elsewhere) {
      hmm_range_unregister(range);
      continue;
    }
    device_pt_map_range(mirror, start, entries);
    hmm_range_unregister(range);
    return 0;
  }
  return -EBUSY;
}

/** HMM_DMIRROR_SNAPSHOT: one PROT_* byte per page of the CPU page table, without faulting. */
function snapshot(a: CommandArgs): CommandResult {
  const mirror = cmd_mirror(a);
  if (mirror < 0) return result(mirror);
  const bytes = new Array<number>(a.pages).fill(0);
  const res: CommandResult = { ret: 0, cpages: 0, faults: 0, bytes };
  const end = a.addr + a.pages * PAGE_SIZE;
  for (let start = a.addr; start < end;) {
    const next = Math.min(end, start + RANGE_PAGES * PAGE_SIZE);
    res.ret = range_snapshot(a.mm, mirror, start, next, bytes, (start - a.addr) / PAGE_SIZE);
    if (res.ret) break;
    res.cpages! += (next - start) / PAGE_SIZE;
    start = next;
  }
  if (res.ret === 0 && a.buffer && a.bufferSize < a.pages) res.ret = -EFAULT;
  return res;
}

/**
 * The 2019 hmm_range_snapshot stops at a hole (-EFAULT) and at a vma without VM_READ
 * (-EPERM): walk vma by vma and report such pages as ERROR, as later kernels do.
 */
function range_snapshot(
  mm: Mm,
  mirror: Mirror,
  start: number,
  end: number,
  out: number[],
  at: number,
): number {
  for (let addr = start; addr < end;) {
    const vma = find_vma(mm, addr);
    const vs = vma ? vma_start(vma) : end;
    const next = !vma ? end : vs > addr ? Math.min(end, vs) : Math.min(end, vma_end(vma));
    const i = at + (addr - start) / PAGE_SIZE;
    const j = at + (next - start) / PAGE_SIZE;
    if (!vma || vs > addr) out.fill(PROT_ERROR, i, j);
    else {
      const ret = snapshot_vma(mm, mirror, addr, next, out, i);
      if (ret) return ret;
    }
    addr = next;
  }
  return 0;
}

function snapshot_vma(mm: Mm, mirror: Mirror, start: number, end: number, out: number[], at: number): number {
  const npages = (end - start) / PAGE_SIZE;
  for (let tries = 0; tries < RANGE_TRIES; tries++) {
    let ret = hmm_range_register(range, mirror, start, end);
    if (ret) return ret;
    hmm_range_set_pfns(range, new Array<number>(npages).fill(0));
    if (!hmm_range_wait_until_valid(range)) {
      hmm_range_unregister(range);
      continue;
    }
    ret = hmm_range_snapshot(range);
    if (ret === -EAGAIN || ret === -EBUSY) {
      hmm_range_unregister(range);
      continue;
    }
    if (!hmm_range_valid(range)) {
      hmm_range_unregister(range);
      continue;
    }
    const pfns = hmm_range_pfns(range);
    hmm_range_unregister(range);
    // No valid mirror entry for a vma the CPU may not read or the device may not map.
    if (ret === -EPERM || ret === -EFAULT) out.fill(PROT_ERROR, at, at + npages);
    else if (ret < 0) return ret;
    else for (let i = 0; i < npages; i++) out[at + i] = mkentry(mm, start + i * PAGE_SIZE, pfns[i]!);
    return 0;
  }
  return -EBUSY;
}

/** dmirror_mkentry: the snapshot byte of one entry; PMD and PUD from the CPU's mapping order. */
function mkentry(mm: Mm, addr: number, v: number): number {
  if (v === PFN_VALUES[HMM_PFN_ERROR] || v === PFN_VALUES[HMM_PFN_SPECIAL]) return PROT_ERROR;
  const f = v % PFN_UNIT;
  if (v === PFN_VALUES[HMM_PFN_NONE] || !(f & PFN_VALID)) return PROT_NONE;
  const pfn = Math.floor(v / PFN_UNIT);
  const page = pfn_to_page(pfn);
  let perm = PROT_NONE;
  if (f & PFN_DEVICE_PRIVATE || (page >= 0 && is_device_private_page(page)))
    perm = page_is_mine(page) ? PROT_DEV_PRIVATE_LOCAL : PROT_DEV_PRIVATE_REMOTE;
  else if (is_zero_pfn(pfn)) perm = PROT_ZERO;
  perm += f & PFN_WRITE ? PROT_WRITE : PROT_READ;
  const order = map_order(mm, addr);
  if (order >= 2 * PMD_ORDER) perm += PROT_PUD;
  else if (order >= PMD_ORDER) perm += PROT_PMD;
  return perm;
}

/** dmirror_migrate: the range vma by vma, MIGRATE_BATCH pages at a time; -EINVAL at a gap. */
function migrate_range(mm: Mm, addr: number, pages: number, dir: number, mirror: Mirror): CommandResult {
  if (addr % PAGE_SIZE || !Number.isSafeInteger(pages) || pages <= 0) return result(-EINVAL);
  const end = addr + pages * PAGE_SIZE;
  const saved = ctx;
  const prev = migrating;
  ctx = { mirror, cpages: 0, failed: false, dpages: [] };
  migrating = mm;
  let ret = 0;
  for (let start = addr; start < end;) {
    const vma = find_vma(mm, start);
    if (!vma || vma_start(vma) > start || !(vma_flags(vma) & VM_READ)) {
      ret = -EINVAL;
      break;
    }
    const next = Math.min(end, vma_end(vma), start + MIGRATE_BATCH * PAGE_SIZE);
    ret = migrate_vma(vma, start, next, dir);
    if (ret) break;
    start = next;
  }
  const cpages = ctx.cpages;
  migrating = prev;
  ctx = saved;
  return result(ret, cpages);
}

/**
 * HMM_DMIRROR_MIGRATE_TO_DEV: migrate, then read the range back through the device page
 * table: cpages counts the pages the device maps there afterwards, -ENOENT when one is
 * missing (shared memory, another device's page).
 */
function migrate(a: CommandArgs): CommandResult {
  const mirror = cmd_mirror(a);
  if (mirror < 0) return result(mirror);
  const moved = migrate_range(a.mm, a.addr, a.pages, TO_DEVICE, mirror);
  if (moved.ret) return result(moved.ret);
  const res = result(0);
  res.ret = do_read(mirror, a.addr, a.addr + a.pages * PAGE_SIZE, res);
  if (res.ret === 0) res.ret = copy_out(mirror, a);
  return res;
}

/** HMM_DMIRROR_MIGRATE_TO_SYS: bring this device's pages in the range back to system memory. */
function migrate_to_sys(a: CommandArgs): CommandResult {
  if (mm_dying(a.mm)) return result(-EINVAL);
  return migrate_range(a.mm, a.addr, a.pages, TO_SYSTEM, mirrors.get(a.mm) ?? 0);
}

/** Migrate every device page in use home, one mapping rmap finds per page. Pages moved. */
function evict_all(): number {
  let moved = 0;
  for (const page of [...inUse]) {
    if (page_count(page) <= 1) {
      inUse.delete(page);
      continue;
    }
    const at = page_mapped_at(page);
    if (at.length < 2) continue;
    const [vma, addr] = at as [Vma, number];
    const mm = vma_mm(vma);
    const saved = ctx;
    const prev = migrating;
    ctx = { mirror: mirrors.get(mm) ?? 0, cpages: 0, failed: false, dpages: [] };
    migrating = mm;
    const ret = migrate_vma(vma, addr, addr + PAGE_SIZE, TO_SYSTEM);
    moved += ctx.cpages;
    migrating = prev;
    ctx = saved;
    if (ret) break;
  }
  return moved;
}

/** HMM_DMIRROR_RELEASE: evict all of this device's memory, whoever maps it. */
function release_cmd(_a: CommandArgs): CommandResult {
  return result(0, evict_all());
}

export const commands = {
  read,
  write,
  migrate,
  migrate_to_sys,
  snapshot,
  release: release_cmd,
};
