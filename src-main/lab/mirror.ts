// The Mirror view's data: a dmirror device's page table for a process next to the CPU's,
// row by row, and the mirror trace: the kernel's HMM tracepoints (registration,
// invalidations, range faults and snapshots) and the driver's (commands, retries), turned
// into lines a front end can show and coalesced so a thousand COW faults make one line.
import type { DeviceEntry, MirrorEvent, MirrorEventKind, MirrorRow, MirrorView } from '../api';
import type { Kernel } from '../kernel/kernel';
import { errname } from '../kernel/include/errno';
import { is_zone_device_page } from '../kernel/include/mm';
import { page_pgmap } from '../kernel/kernel/memremap';
import { check_mirror_coherence, mirror_pte_incoherence } from '../kernel/mm/debug_vm';
import type { vm_area_struct } from '../kernel/include/mm_types';
import { find_vma, vma_lookup } from '../kernel/mm/mmap';
import type { Walk } from '../kernel/mm/pgtable';
import type { TraceEvent } from '../kernel/trace/events';
import type { DeviceDriver } from '../drivers/driver';
import type { VirtualClock } from './clock';
import { InputError } from './input-error';
import { hex, parseSize } from './numbers';
import type { Userland } from './ops';
import { MAX_PAGE_ROWS, pageRow, vmaInfo } from './processes';

export interface MirrorRequest {
  proc: string;
  device: string;
  at?: string;
  offset?: number;
  pages?: number;
}

function driverOf(u: Userland, device: unknown): DeviceDriver {
  if (typeof device !== 'string')
    throw new InputError('device', `expected a device name, got ${JSON.stringify(device)}`);
  const d = u.machine.devices.get(device);
  if (!d) {
    const known = [...u.machine.devices.keys()];
    throw new InputError(
      'device',
      `no device named "${device}"${known.length ? ` (known: ${known.join(', ')})` : ''}`,
    );
  }
  if ('error' in d || !d.driver)
    throw new InputError('device', `device "${device}" has no driver with a device page table`);
  return d.driver;
}

function deviceEntry(k: Kernel, page: number, write: boolean): DeviceEntry {
  const pfn = k.mem.page_to_pfn(page);
  if (is_zone_device_page(k, page)) {
    const pgmap = page_pgmap(k, page);
    return { pfn, write, memory: 'device', ...(pgmap && { device: pgmap.dev.name }) };
  }
  return { pfn, write, memory: pfn === k.zero_pfn ? 'zero' : 'system' };
}

/**
 * The CPU and device page tables of one process's range, side by side (see MirrorView). The
 * range may cross vmas and holes: a row outside every vma says so (`mapped: false`).
 */
export function mirrorView(u: Userland, req: MirrorRequest): MirrorView {
  const k = u.machine.kernel;
  const ps = k.c.PAGE_SIZE;
  const driver = driverOf(u, req.device);
  if (typeof req.proc !== 'string')
    throw new InputError('proc', `expected a process name, got ${JSON.stringify(req.proc)}`);
  const task = u.procs.get(req.proc);
  if (!task?.mm) throw new InputError('proc', `no process named "${req.proc}"`);
  const mm = task.mm;
  let base: number;
  if (req.at === undefined) base = mm.mmap[0]?.vm_start ?? 0;
  else {
    const m = u.mappings.get(req.at);
    base = m ? m.addr : parseSize(req.at, 'at');
  }
  const offset = req.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new InputError(
      'offset',
      `expected a page count (a non-negative integer), got ${JSON.stringify(req.offset)}`,
    );
  const pages = req.pages ?? 64;
  if (!Number.isSafeInteger(pages) || pages < 1 || pages > MAX_PAGE_ROWS)
    throw new InputError('pages', `expected 1 to ${MAX_PAGE_ROWS} pages, got ${JSON.stringify(req.pages)}`);
  const start = Math.floor(base / ps) * ps + offset * ps;
  const mirror = driver.mirror(mm);
  const pt = driver.pageTable(mm);
  const w: Walk = { pud: -1, pmd: -1, pte: -1 };
  let vma: vm_area_struct | null = null;
  const rows: MirrorRow[] = [];
  for (let i = 0; i < pages; i++) {
    const addr = start + i * ps;
    if (!vma || addr >= vma.vm_end) vma = find_vma(mm, addr);
    const mapped = !!vma && vma.vm_start <= addr;
    const e = pt?.entry(addr / ps) ?? null;
    const row: MirrorRow = {
      addr: hex(addr),
      mapped,
      cpu: pageRow(k, mm, addr, w),
      dev: e ? deviceEntry(k, e.page, e.write) : null,
    };
    if (e) {
      const why = mirror_pte_incoherence(k, mm, { addr, pfn: k.mem.page_to_pfn(e.page), write: e.write });
      if (why) row.mismatch = `the CPU ${why}`;
    }
    rows.push(row);
  }
  const first = vma_lookup(mm, start);
  return {
    proc: req.proc,
    pid: task.pid,
    device: req.device,
    open: u.isOpen(req.proc, req.device),
    mirrored: !!mirror,
    vma: first ? vmaInfo(k, first) : null,
    start: hex(start),
    offset,
    rows,
    deviceEntries: pt?.size ?? 0,
    reports: mirror ? check_mirror_coherence(k, [mirror]) : [],
  };
}

/** Lines the trace keeps for a front end that connects late. */
export const MIRROR_TRACE_KEEP = 500;
/** Lines one drain hands out at most (the oldest beyond it are dropped). */
export const MIRROR_DRAIN_MAX = 500;

/**
 * The mirror trace of one machine: subscribes to the kernel's tracepoints, keeps the HMM
 * ones as MirrorEvents, merging a tracepoint into the line before it when it is the same
 * kind, process, device and answer and its range continues that line's.
 */
export class MirrorTrace {
  private pending: MirrorEvent[] = [];
  private readonly kept: MirrorEvent[] = [];
  private seq = 0;
  /** Why each mm's running invalidation started (the mmu notifier's event). */
  private readonly reason = new Map<number, string>();
  /** mms with a mirror, or whose last mirror just went: their exit released it. */
  private readonly mirrored = new Set<number>();
  private lastUnregistered = -1;
  private readonly unsubscribe: () => void;
  private readonly pageSize: number;

  constructor(
    k: Kernel,
    private readonly clock: VirtualClock,
    private readonly procName: (mm: number) => string,
  ) {
    this.pageSize = k.c.PAGE_SIZE;
    this.unsubscribe = k.trace.subscribe((e) => this.record(e));
  }

  detach(): void {
    this.unsubscribe();
  }

  /** The lines since the last drain (coalesced), in order. */
  drain(): MirrorEvent[] {
    const out = this.pending;
    this.pending = [];
    return out.length > MIRROR_DRAIN_MAX ? out.slice(-MIRROR_DRAIN_MAX) : out;
  }

  /** The latest lines, for a front end that just connected. */
  recent(): MirrorEvent[] {
    return this.kept.slice(-MIRROR_TRACE_KEEP);
  }

  private record(e: TraceEvent): void {
    switch (e.name) {
      case 'mmu_notifier_invalidate_range_start':
        this.reason.set(e.mm, e.event);
        return;
      case 'hmm_mirror_register':
        this.mirrored.add(e.mm);
        return this.add(
          'register',
          e.mm,
          undefined,
          undefined,
          undefined,
          `${e.mirrors} mirror(s) of the mm`,
        );
      case 'hmm_mirror_unregister':
        this.mirrored.delete(e.mm);
        this.lastUnregistered = e.mm;
        return this.add(
          'unregister',
          e.mm,
          undefined,
          undefined,
          undefined,
          'last mirror gone: notifier off',
        );
      case 'mmu_notifier_release':
        // The tracepoint follows the mirrors' release callbacks (and their unregister).
        if (this.mirrored.delete(e.mm) || this.lastUnregistered === e.mm)
          this.add('release', e.mm, undefined, undefined, undefined, 'mm exiting: mirrors released');
        return;
      case 'dmirror_sync':
        return this.add(
          'invalidate',
          e.mm,
          e.device,
          e,
          '0',
          this.reason.get(e.mm) ?? 'invalidate',
          e.cleared,
        );
      case 'hmm_fault':
      case 'hmm_snapshot':
        return this.add(
          e.name === 'hmm_fault' ? 'fault' : 'snapshot',
          e.mm,
          undefined,
          e,
          e.ret < 0 ? errname(e.ret) : '0',
          e.ret < 0 ? errname(e.ret) : 'valid',
        );
      case 'dmirror_retry':
        return this.add('retry', e.mm, e.device, e, undefined, e.reason);
      case 'dmirror_cmd': {
        const range =
          e.cmd === 'release' ? undefined : { start: e.start, end: e.start + e.npages * this.pageSize };
        const detail =
          `${e.cmd} cpages ${e.cpages}` +
          (e.cmd === 'read' || e.cmd === 'write' ? ` faults ${e.faults}` : '');
        return this.add('command', e.mm, e.device, range, errname(e.ret), detail, undefined, true);
      }
      default:
        return;
    }
  }

  private add(
    kind: MirrorEventKind,
    mm: number,
    device: string | undefined,
    range: { start: number; end: number } | undefined,
    ret: string | undefined,
    detail: string,
    cleared?: number,
    alone = false,
  ): void {
    const last = this.pending.at(-1);
    if (
      !alone &&
      range &&
      last &&
      last.kind === kind &&
      last.mm === mm &&
      last.device === device &&
      last.ret === ret &&
      last.detail === detail &&
      last.end !== undefined &&
      Number(last.end) === range.start
    ) {
      last.end = hex(range.end);
      last.count++;
      if (cleared !== undefined) last.cleared = (last.cleared ?? 0) + cleared;
      return;
    }
    const ev: MirrorEvent = {
      seq: ++this.seq,
      t: this.clock.now,
      kind,
      proc: this.procName(mm),
      mm,
      count: 1,
      detail,
      ...(device !== undefined && { device }),
      ...(range && { start: hex(range.start), end: hex(range.end) }),
      ...(ret !== undefined && { ret }),
      ...(cleared !== undefined && { cleared }),
    };
    this.pending.push(ev);
    if (this.pending.length > 2 * MIRROR_DRAIN_MAX)
      this.pending.splice(0, this.pending.length - MIRROR_DRAIN_MAX);
    this.kept.push(ev);
    if (this.kept.length > 2 * MIRROR_TRACE_KEEP) this.kept.splice(0, this.kept.length - MIRROR_TRACE_KEEP);
  }
}
