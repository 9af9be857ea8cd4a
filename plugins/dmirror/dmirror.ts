// dmirror: the HMM test driver (the HMM series' dummy driver, later lib/test_hmm.c) as a
// plugin, with the built-in TypeScript dmirror's behaviour (src-main/drivers/dmirror.ts).
//
// Device private memory hotplugged with hmm_devmem_add, handed out from a free list; one
// mirror per process that opens the device, whose device page table the device's MMU holds
// (device_pt_*). Pages reach the device by migration (migrate_vma to device memory) or by the
// device faulting them in through the mirror (hmm_range_register + hmm_range_fault, the 2019
// API). A CPU access to a migrated page faults it home through `fault`. Commands are the
// ioctls of lib/test_hmm.c: read, write, migrate, migrate_to_sys, snapshot, release, with the
// results tools/testing/selftests/mm/hmm-tests.c checks (ret, cpages, faults, bytes), and
// `fault`, the lab's device fault policy for workloads' device kernels (README.md).
import {
  EACCES,
  EAGAIN,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  EPERM,
  HMM_PFN_ERROR,
  HMM_PFN_NONE,
  HMM_PFN_SPECIAL,
  PAGE_SIZE,
  PMD_SIZE,
  VM_FAULT_SIGBUS,
  VM_READ,
  copy_from_buffer,
  copy_to_buffer,
  dev_info,
  device_pt_lookup,
  device_pt_lookup_range,
  device_pt_map_migrated,
  device_pt_map_pfns,
  device_pt_unmap,
  devmem_nr_free,
  devmem_pages_in_use,
  devmem_pfn_first,
  devmem_pfn_last,
  find_vma,
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
  is_device_private_page,
  is_zero_pfn,
  map_order,
  migrate_alloc_devmem_pages,
  migrate_alloc_system_pages,
  migrate_vma,
  mm_dying,
  page_is_mine,
  page_mapped_at,
  pfn_to_page,
  vma_end,
  vma_flags,
  vma_mm,
  vma_start,
  type CommandArgs,
  type CommandResult,
  type DeviceInfo,
  type Devmem,
  type Mirror,
  type Mm,
  type Page,
  type Range,
  type Vma,
} from 'hmm-lab';

/**
 * Pages per migrate_vma call: as many as the kernel takes in one (test_hmm uses 64), since
 * the batch helpers do the per-page work host side and a call costs the same for 1 or 65,536.
 */
const MIGRATE_BATCH = 65_536;
/** Pages per hmm_range_fault / hmm_range_snapshot call of read and write (test_hmm's pfns[64]). */
const RANGE_PAGES = 64;
/** Pages per round of `fault_in`: a GPU's fault buffer batch (the cost model's faultBatchSize). */
const FAULT_BATCH = 256;
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

const PMD_ORDER = Math.log2(PMD_SIZE / PAGE_SIZE);

// ---- the device ------------------------------------------------------------------------

/**
 * The device memory. Its free list (never-used pages in pfn order, then those the kernel gives
 * back) and the pages in use, least recently migrated in first (the order `fault` evicts them
 * in), are kept host side by migrate_alloc_devmem_pages: devmem_nr_free, devmem_pages_in_use.
 */
let devmem: Devmem = 0;
/** Mirrors by address space (test_hmm opens one per process), and back. */
const mirrors = new Map<Mm, Mirror>();
const mirrorMm = new Map<Mirror, Mm>();
/** The mm this device is migrating: its own invalidations are no news to its page table. */
let migrating: Mm = 0;
let range: Range = 0;

/** One migration's context: whose device page table, what moved, whether a page failed. */
interface Migration {
  mirror: Mirror;
  cpages: number;
  failed: boolean;
}
let ctx: Migration = { mirror: 0, cpages: 0, failed: false };
/** The mm of each vma handle a fault came with (a handle names one vma for good). */
const vmaMm = new Map<Vma, Mm>();

export function probe(dev: DeviceInfo): number {
  devmem = hmm_devmem_add(dev.memory);
  if (devmem < 0) return devmem;
  const first = devmem_pfn_first(devmem);
  range = hmm_range_alloc(FAULT_BATCH, PFN_FLAGS, PFN_VALUES, PFN_SHIFT);
  dev_info(`${devmem_pfn_last(devmem) - first} pages of device memory at pfn 0x${first.toString(16)}`);
  return 0;
}

/**
 * hmm_devmem_ops.fault: migrate the faulting page back to system memory, or SIGBUS. (No
 * `free` callback: the free list is kept host side, so a page coming home costs no call.)
 */
export function fault(vma: Vma, addr: number, _page: Page, _flags: number): number {
  const start = addr - (addr % PAGE_SIZE);
  let mm = vmaMm.get(vma);
  if (mm === undefined) vmaMm.set(vma, (mm = vma_mm(vma)));
  const saved = ctx;
  const prev = migrating;
  ctx = { mirror: mirrors.get(mm) ?? 0, cpages: 0, failed: false };
  migrating = mm;
  const ret = migrate_vma(vma, start, start + PAGE_SIZE, TO_SYSTEM);
  const failed = ctx.failed;
  migrating = prev;
  ctx = saved;
  return ret || failed ? VM_FAULT_SIGBUS : 0;
}

// ---- migration ----------------------------------------------------------------------------

/**
 * dmirror_migrate_alloc_and_copy: to device memory, a free device page for every page that
 * may move (pages already in device memory stay), copied by one DMA batch; home, a system page
 * for each of this device's pages. The helpers fill the kernel's dst entries themselves.
 */
export function alloc_and_copy(
  _vma: Vma,
  _src: Float64Array,
  _start: number,
  _end: number,
  priv: number,
): void {
  if (priv === TO_DEVICE) migrate_alloc_devmem_pages(devmem);
  else if (migrate_alloc_system_pages() < 0) ctx.failed = true;
}

/** dmirror_migrate_finalize_and_map: the moved pages enter (or leave) the device page table. */
export function finalize_and_map(
  _vma: Vma,
  _src: Float64Array,
  _dst: Float64Array,
  _start: number,
  _end: number,
  _priv: number,
): void {
  ctx.cpages += device_pt_map_migrated(ctx.mirror);
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
  for (let addr = start; addr < end;) {
    const n = Math.min((end - addr) / PAGE_SIZE, MIGRATE_BATCH);
    const miss = device_pt_lookup_range(mirror, addr, n).indexOf(-1);
    res.cpages! += miss < 0 ? n : miss;
    if (miss >= 0) return -ENOENT;
    addr += n * PAGE_SIZE;
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
  const request = new Float64Array((end - start) / PAGE_SIZE).fill(PFN_VALID + (write ? PFN_WRITE : 0));
  for (let tries = 0; tries < RANGE_TRIES; tries++) {
    let ret = hmm_range_register(range, mirror, start, end);
    if (ret) return ret;
    hmm_range_set_pfns(range, request);
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
    // dmirror_do_fault under the device lock: -EAGAIN when the range was invalidated meanwhile.
    ret = device_pt_map_pfns(mirror, range, write);
    if (ret === -EACCES) ask_home(request, write);
    hmm_range_unregister(range);
    if (ret >= 0) return 0;
    if (ret !== -EAGAIN && ret !== -EACCES) return ret;
  }
  return -EBUSY;
}

/**
 * The entries device_pt_map_pfns may not map (another device's memory, or ours read-only for a
 * write) are asked for again with DEVICE_PRIVATE, so the CPU fault brings them home.
 */
function ask_home(request: Float64Array, write: boolean): void {
  const pfns = hmm_range_pfns(range);
  for (let i = 0; i < pfns.length; i++) {
    const v = pfns[i]!;
    const f = v % PFN_UNIT;
    if (
      f & PFN_DEVICE_PRIVATE &&
      (!page_is_mine(pfn_to_page(Math.floor(v / PFN_UNIT))) || (write && !(f & PFN_WRITE)))
    )
      request[i] = PFN_VALID + (write ? PFN_WRITE : 0) + PFN_DEVICE_PRIVATE;
  }
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
  ctx = { mirror, cpages: 0, failed: false };
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
  for (;;) {
    const before = moved;
    const pages = devmem_pages_in_use(devmem);
    for (const page of pages) {
      const at = page_mapped_at(page);
      if (at.length < 2) continue;
      const [vma, addr] = at as [Vma, number];
      const mm = vma_mm(vma);
      const saved = ctx;
      const prev = migrating;
      ctx = { mirror: mirrors.get(mm) ?? 0, cpages: 0, failed: false };
      migrating = mm;
      const ret = migrate_vma(vma, addr, addr + PAGE_SIZE, TO_SYSTEM);
      moved += ctx.cpages;
      migrating = prev;
      ctx = saved;
      if (ret) return moved;
    }
    // More than one batch of pages in use: ask again while pages keep moving.
    if (pages.length < MIGRATE_BATCH || moved === before) return moved;
  }
}

/** Free device pages: never handed out, or given back. */
function free_count(): number {
  return devmem_nr_free(devmem);
}

/**
 * Send the n least recently migrated-in device pages home, neighbouring pages of one vma in
 * one migration. Returns the pages moved.
 */
function evict(n: number): number {
  // Only as many of the oldest pages as needed cross the sandbox: twice n at first, more
  // while pages no process maps any more (on their way home) leave it short.
  let victims: number[][] = [];
  for (let want = Math.max(2 * n, 64); ; want *= 2) {
    victims = [];
    const oldest = devmem_pages_in_use(devmem, want);
    for (const page of oldest) {
      if (victims.length >= n) break;
      const at = page_mapped_at(page);
      if (at.length === 2) victims.push(at);
    }
    if (victims.length >= n || oldest.length < want) break;
  }
  victims.sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!);
  let moved = 0;
  for (let i = 0; i < victims.length;) {
    const [vma, addr] = victims[i] as [Vma, number];
    let j = i + 1;
    while (j < victims.length && victims[j]![0] === vma && victims[j]![1] === addr + (j - i) * PAGE_SIZE) j++;
    const mm = vma_mm(vma);
    moved += migrate_range(mm, addr, j - i, TO_SYSTEM, mirrors.get(mm) ?? 0).cpages!;
    i = j;
  }
  return moved;
}

/**
 * `fault`: the device faulted on the range (a run of a device kernel's fault batch; `write`
 * when an access there writes). Not a test_hmm ioctl but the lab's policy for dmirror: when
 * free device memory is short, evict the least recently migrated-in pages; migrate the range
 * to device memory; fault whatever did not move (shared or file memory, another device's
 * page, which the CPU fault brings home) into the device page table where it is. cpages:
 * pages migrated in; evicted: pages sent home; faults: hmm_range_fault rounds.
 */
function fault_cmd(a: CommandArgs): CommandResult {
  const mirror = cmd_mirror(a);
  if (mirror < 0) return result(mirror);
  if (a.pages > MIGRATE_BATCH) return result(-EINVAL);
  const end = a.addr + a.pages * PAGE_SIZE;
  // The device page table of the range, read in one call (before and after the migration).
  let pt = device_pt_lookup_range(mirror, a.addr, a.pages);
  const usable = (addr: number): boolean => {
    const v = pt[(addr - a.addr) / PAGE_SIZE]!;
    return v >= 0 && (!a.write || v % 2 === 1);
  };
  let missing = 0;
  for (let i = 0; i < a.pages; i++) if (pt[i]! < 0) missing++;
  const evicted = missing > free_count() ? evict(missing - free_count()) : 0;
  const moved = migrate_range(a.mm, a.addr, a.pages, TO_DEVICE, mirror);
  pt = device_pt_lookup_range(mirror, a.addr, a.pages);
  const res: CommandResult = { ret: moved.ret, cpages: moved.cpages, faults: 0, evicted };
  for (let start = a.addr; start < end && !res.ret;) {
    if (usable(start)) {
      start += PAGE_SIZE;
      continue;
    }
    let stop = start + PAGE_SIZE;
    while (stop < end && !usable(stop)) stop += PAGE_SIZE;
    res.ret = range_fault_all(mirror, start, stop, a.write);
    res.faults!++;
    start = stop;
  }
  return res;
}

/**
 * `fault_in`: the device faults the range into its page table where the pages are, without
 * migrating (dmirror_fault), FAULT_BATCH pages a round as a GPU's fault buffer delivers them;
 * `write` when its accesses write. cpages: pages mapped; faults: rounds.
 */
function fault_in(a: CommandArgs): CommandResult {
  const mirror = cmd_mirror(a);
  if (mirror < 0) return result(mirror);
  const res = result(0);
  const end = a.addr + a.pages * PAGE_SIZE;
  for (let start = a.addr; start < end && !res.ret; start += FAULT_BATCH * PAGE_SIZE) {
    const stop = Math.min(end, start + FAULT_BATCH * PAGE_SIZE);
    res.ret = range_fault(mirror, start, stop, a.write);
    res.faults!++;
    if (!res.ret) res.cpages! += (stop - start) / PAGE_SIZE;
  }
  return res;
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
  fault: fault_cmd,
  fault_in,
};
